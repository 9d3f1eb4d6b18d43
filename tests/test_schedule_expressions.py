"""AWS schedule expressions: AWS's documented examples, DST in non-UTC zones, and the
expressions AWS rejects (rejected again at template load, as one line)."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.schedule.expressions import (
    At,
    Cron,
    ExpressionError,
    Rate,
    aws_weekday,
    describe_next,
    parse,
)
from adapters.template import TemplateError, load_template


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def upcoming(expr: str, after: str, n: int = 4, tz: str | None = None) -> list[str]:
    return describe_next(parse(expr, tz), ts(after), n)


# 2026-11-27 is a Friday.
FRI = "2026-11-27T05:00:00Z"

AWS_EXAMPLES = [
    # EventBridge "Schedule expressions for rules" and Scheduler "Schedule types".
    ("cron(0 10 * * ? *)", ["2026-11-27T10:00:00Z", "2026-11-28T10:00:00Z"]),
    ("cron(15 12 * * ? *)", ["2026-11-27T12:15:00Z", "2026-11-28T12:15:00Z"]),
    ("cron(0 18 ? * MON-FRI *)", ["2026-11-27T18:00:00Z", "2026-11-30T18:00:00Z"]),
    ("cron(0 8 1 * ? *)", ["2026-12-01T08:00:00Z", "2027-01-01T08:00:00Z"]),
    ("cron(0/15 * * * ? *)", ["2026-11-27T05:15:00Z", "2026-11-27T05:30:00Z"]),
    # every 10 minutes Mon-Fri: after Friday's last tick comes Monday's first
    ("cron(0/10 * ? * MON-FRI *)", ["2026-11-27T05:10:00Z", "2026-11-27T05:20:00Z"]),
    ("cron(0/5 8-17 ? * MON-FRI *)", ["2026-11-27T08:00:00Z", "2026-11-27T08:05:00Z"]),
    # first Monday of the month (2 = MON in AWS numbering): Dec 7 2026, Jan 4 2027
    ("cron(0 9 ? * 2#1 *)", ["2026-12-07T09:00:00Z", "2027-01-04T09:00:00Z"]),
    ("cron(0 0 L * ? *)", ["2026-11-30T00:00:00Z", "2026-12-31T00:00:00Z"]),
    # last Friday (6 = FRI): Nov 27 00:00 has passed, so Dec 25, then Jan 29
    ("cron(0 0 ? * 6L *)", ["2026-12-25T00:00:00Z", "2027-01-29T00:00:00Z"]),
    # weekday nearest the 15th: Dec 15 2026 is a Tuesday; Nov 15 2026 was a Sunday
    ("cron(0 0 15W * ? *)", ["2026-12-15T00:00:00Z", "2027-01-15T00:00:00Z"]),
    ("rate(5 minutes)", ["2026-11-27T05:05:00Z", "2026-11-27T05:10:00Z"]),
    ("rate(1 hour)", ["2026-11-27T06:00:00Z", "2026-11-27T07:00:00Z"]),
    ("rate(7 days)", ["2026-12-03T00:00:00Z", "2026-12-10T00:00:00Z"]),
]


@pytest.mark.parametrize(("expr", "expected"), AWS_EXAMPLES, ids=[e for e, _ in AWS_EXAMPLES])
def test_aws_documented_examples(expr: str, expected: list[str]) -> None:
    assert upcoming(expr, FRI, len(expected)) == expected


def test_weekday_ranges_skip_the_weekend() -> None:
    # Friday 17:55 is the last tick of the week; Monday 08:00 the next.
    assert upcoming("cron(0/5 8-17 ? * MON-FRI *)", "2026-11-27T17:54:00Z", 3) == [
        "2026-11-27T17:55:00Z", "2026-11-30T08:00:00Z", "2026-11-30T08:05:00Z",
    ]  # fmt: skip


def test_aws_day_of_week_numbering_is_one_for_sunday() -> None:
    assert aws_weekday(datetime(2026, 11, 29).date()) == 1  # Sunday
    assert aws_weekday(datetime(2026, 11, 28).date()) == 7  # Saturday
    assert upcoming("cron(0 0 ? * 1 *)", FRI, 1) == upcoming("cron(0 0 ? * SUN *)", FRI, 1)
    assert upcoming("cron(0 0 ? * 1 *)", FRI, 1) == ["2026-11-29T00:00:00Z"]


def test_nearest_weekday_never_leaves_the_month() -> None:
    # Aug 1 2026 is a Saturday: 1W is Monday the 3rd, not Friday Jul 31.
    assert upcoming("cron(0 0 1W 8 ? 2026)", "2026-07-01T00:00:00Z", 1) == ["2026-08-03T00:00:00Z"]
    # Nov 15 2026 is a Sunday: Monday the 16th.
    assert upcoming("cron(0 0 15W 11 ? *)", "2026-11-01T00:00:00Z", 1) == ["2026-11-16T00:00:00Z"]
    # LW: last weekday. Jan 31 2027 is a Sunday: Friday the 29th.
    assert upcoming("cron(0 0 LW 1 ? *)", FRI, 1) == ["2027-01-29T00:00:00Z"]


def test_year_field_and_named_months() -> None:
    assert upcoming("cron(0 0 1 JAN ? 2028-2029)", FRI, 3) == [
        "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z",
    ]  # fmt: skip
    assert upcoming("cron(0 0 29 FEB ? *)", FRI, 1) == ["2028-02-29T00:00:00Z"]


def test_at_is_one_time() -> None:
    expr = parse("at(2022-11-20T13:00:00)")
    assert isinstance(expr, At)
    assert expr.next_after(ts("2022-11-20T12:59:59Z")) == ts("2022-11-20T13:00:00Z")
    assert expr.next_after(ts("2022-11-20T13:00:00Z")) is None
    in_berlin = parse("at(2022-11-20T13:00:00)", "Europe/Berlin")
    assert in_berlin.next_after(0) == ts("2022-11-20T12:00:00Z")


def test_kinds() -> None:
    assert isinstance(parse("rate(1 day)"), Rate)
    assert isinstance(parse(" cron(0 12 * * ? *) "), Cron)


# -- daylight saving time -----------------------------------------------------------------


def test_new_york_spring_forward_skips_the_missing_time() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist that day and does not fire.
    got = upcoming("cron(30 2 * * ? *)", "2026-03-07T00:00:00Z", 3, "America/New_York")
    assert got == ["2026-03-07T07:30:00Z", "2026-03-09T06:30:00Z", "2026-03-10T06:30:00Z"]


def test_new_york_fall_back_fires_a_repeated_time_once() -> None:
    # 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice, fires once (the first).
    got = upcoming("cron(30 1 * * ? *)", "2026-10-31T12:00:00Z", 3, "America/New_York")
    assert got == ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "2026-11-03T06:30:00Z"]
    every_half_hour = upcoming("cron(0/30 * * * ? *)", "2026-11-01T04:50:00Z", 4,
                               "America/New_York")  # fmt: skip
    assert every_half_hour == [
        "2026-11-01T05:00:00Z", "2026-11-01T05:30:00Z",  # 01:00, 01:30 EDT
        "2026-11-01T07:00:00Z", "2026-11-01T07:30:00Z",  # 02:00, 02:30 EST
    ]  # fmt: skip


def test_berlin_noon_stays_at_local_noon_across_dst() -> None:
    got = upcoming("cron(0 12 * * ? *)", "2026-03-28T00:00:00Z", 2, "Europe/Berlin")
    assert got == ["2026-03-28T11:00:00Z", "2026-03-29T10:00:00Z"]
    got = upcoming("cron(0 12 * * ? *)", "2026-10-24T00:00:00Z", 2, "Europe/Berlin")
    assert got == ["2026-10-24T10:00:00Z", "2026-10-25T11:00:00Z"]


def test_berlin_skipped_and_repeated_hours() -> None:
    spring = upcoming("cron(30 2 * * ? *)", "2026-03-27T12:00:00Z", 3, "Europe/Berlin")
    assert spring == ["2026-03-28T01:30:00Z", "2026-03-30T00:30:00Z", "2026-03-31T00:30:00Z"]
    autumn = upcoming("cron(30 2 * * ? *)", "2026-10-24T12:00:00Z", 3, "Europe/Berlin")
    assert autumn == ["2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z", "2026-10-27T01:30:00Z"]


def test_rate_ignores_dst_and_at_in_a_gap_moves_forward() -> None:
    got = upcoming("rate(1 hour)", "2026-03-08T05:30:00Z", 3, "America/New_York")
    assert got == ["2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z", "2026-03-08T08:00:00Z"]
    # 02:30 does not exist on 2026-03-08 in New York; the one-time schedule runs at 03:30 EDT.
    gap = parse("at(2026-03-08T02:30:00)", "America/New_York")
    assert gap.next_after(0) == ts("2026-03-08T07:30:00Z")


# -- invalid expressions --------------------------------------------------------------------

INVALID = [
    ("rate(1 minutes)", "AWS requires rate(1 minute)"),
    ("rate(5 minute)", "AWS requires rate(5 minutes)"),
    ("rate(0 hours)", "positive"),
    ("rate(5 weeks)", "minute(s), hour(s) or day(s)"),
    ("rate(-1 days)", "minute(s), hour(s) or day(s)"),
    ("cron(* * * * * *)", "exactly one of day-of-month and day-of-week must be '?'"),
    ("cron(0 12 * * ? * *)", "6 fields"),
    ("cron(0 12 ? * ? *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 12 * * ?)", "cron needs 6 fields"),
    ("cron(60 * * * ? *)", "minutes: 60 is out of range 0-59"),
    ("cron(0 24 * * ? *)", "hours: 24 is out of range 0-23"),
    ("cron(0 0 32 * ? *)", "day-of-month: 32 is out of range 1-31"),
    ("cron(0 0 ? 13 MON *)", "month: 13 is out of range 1-12"),
    ("cron(0 0 ? * 8 *)", "day-of-week: 8 is out of range 1-7"),
    ("cron(0 0 ? * 0 *)", "day-of-week: 0 is out of range 1-7"),
    ("cron(0 0 1 * ? 1969)", "year: 1969 is out of range 1970-2199"),
    ("cron(0 0 ? * 2#6 *)", "out of range 1-5"),
    ("cron(0 0 ? * 3#1,6#3 *)", "only one n#k expression allowed"),
    ("cron(0 0 ? * FRI-MON *)", "must ascend"),
    ("cron(0/0 * * * ? *)", "minutes step: 0 is out of range 1-60"),
    ("cron(0/ * * * ? *)", "bad step"),
    ("cron(0 0 5L * ? *)", "not valid"),
    ("cron(0 0 ? * 2W *)", "not valid"),
    ("cron(x 0 * * ? *)", "'x' is not a number"),
    ("at(2022-13-01T00:00:00)", "month must be in 1..12"),
    ("at(2022-11-20 13:00)", "expected at(yyyy-mm-ddThh:mm:ss)"),
    ("daily", "expected rate(...), cron(...) or at(...)"),
    ("cron(" + "1," * 200 + "1 * * * ? *)", "at most 256"),
]


@pytest.mark.parametrize(("expr", "message"), INVALID, ids=[e[:40] for e, _ in INVALID])
def test_invalid_expressions_are_rejected_clearly(expr: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(expr)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unknown_time_zone() -> None:
    with pytest.raises(ExpressionError, match="unknown time zone 'Mars/Olympus'"):
        parse("rate(1 hour)", "Mars/Olympus")
    with pytest.raises(ExpressionError, match="not an IANA time zone name"):
        parse("rate(1 hour)", "../../etc/passwd")


# -- at template load -----------------------------------------------------------------------


def template(tmp_path: Path, event: str) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent("""\
        Transform: AWS::Serverless-2016-10-31
        Resources:
          F:
            Type: AWS::Serverless::Function
            Properties:
              Handler: app.handler
              CodeUri: src/
              Events:
                E:
        """) + textwrap.indent(textwrap.dedent(event), " " * 10))  # fmt: skip
    return path


BAD_TEMPLATES = [
    ("Type: Schedule\nProperties: {Schedule: rate(1 minutes)}",
     "F: Events.E.Properties.Schedule: rate(1 minutes): AWS requires rate(1 minute)"),
    ("Type: Schedule\nProperties: {Schedule: 'cron(* * * * * *)'}",
     "F: Events.E.Properties.Schedule: cron(* * * * * *): exactly one of"),
    ("Type: Schedule\nProperties: {Schedule: 'at(2030-01-01T00:00:00)'}",
     "F: Events.E.Properties.Schedule: at(...) is only for ScheduleV2"),
    ("Type: ScheduleV2\nProperties: {ScheduleExpression: 'cron(0 12 * *)'}",
     "F: Events.E.Properties.ScheduleExpression: cron needs 6 fields"),
    ("Type: ScheduleV2\nProperties: {ScheduleExpression: rate(1 hour), "
     "ScheduleExpressionTimezone: Europe/Atlantis}",
     "F: Events.E.Properties.ScheduleExpressionTimezone: unknown time zone 'Europe/Atlantis'"),
    ("Type: Schedule\nProperties: {Schedule: rate(1 hour), Input: '{not json'}",
     "F: Events.E.Properties.Input: not valid JSON"),
    ("Type: ScheduleV2\nProperties: {ScheduleExpression: rate(1 hour), "
     "StartDate: yesterday}",
     "F: Events.E.Properties.StartDate: not an ISO 8601 date-time: 'yesterday'"),
    ("Type: ScheduleV2\nProperties: {ScheduleExpression: rate(1 hour), "
     "FlexibleTimeWindow: {Mode: FLEXIBLE}}",
     "F: Events.E.Properties.FlexibleTimeWindow.MaximumWindowInMinutes: required"),
]  # fmt: skip


@pytest.mark.parametrize(("event", "message"), BAD_TEMPLATES)
def test_bad_schedules_fail_template_load_in_one_line(
    tmp_path: Path, event: str, message: str
) -> None:
    path = template(tmp_path, event)
    with pytest.raises(TemplateError) as caught:
        load_template(path, stack_name="tmp")
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith(f"{path}: ") or line.startswith("template.yaml: ")
    assert message in line


def test_good_schedule_loads_and_its_retry_policy_leaves_function_retries_alone(
    tmp_path: Path,
) -> None:
    """RetryPolicy is about delivering to the target; the function's errors are retried
    by its own EventInvokeConfig (Lambda's async defaults here), as on AWS."""
    path = template(tmp_path, """\
        Type: ScheduleV2
        Properties:
          ScheduleExpression: cron(0 12 * * ? *)
          ScheduleExpressionTimezone: Europe/Berlin
          Input: '{"arn": "<aws.scheduler.schedule-arn>", "n": <aws.scheduler.attempt-number>}'
          RetryPolicy: {MaximumRetryAttempts: 5, MaximumEventAgeInSeconds: 300}
        """)  # fmt: skip
    loaded = load_template(path, stack_name="tmp")
    trigger = loaded.stack.functions["F"].triggers["E"]
    assert (trigger.max_retry_attempts, trigger.max_record_age_s) == (None, None)
    assert loaded.stack.functions["F"].retry.max_retry_attempts == 2
    assert trigger.shape == "single"
    assert [e.type for e in loaded.events] == ["ScheduleV2"]


def test_hostile_names_and_inputs_are_rejected(tmp_path: Path) -> None:
    path = template(tmp_path, "Type: Schedule\nProperties: {Schedule: rate(1 hour), "
                              "Name: 'a b/../c'}\n")  # fmt: skip
    with pytest.raises(TemplateError, match=r"F: Events\.E\.Properties\.Name: 1-64 letters"):
        load_template(path, stack_name="tmp")
    big = '{"x": "' + "a" * (256 * 1024) + '"}'
    path = template(tmp_path, f"Type: Schedule\nProperties: {{Schedule: rate(1 hour), "
                              f"Input: '{big}'}}\n")  # fmt: skip
    with pytest.raises(TemplateError, match="Input: larger than 262144 bytes"):
        load_template(path, stack_name="tmp")


def test_state_machine_schedules_are_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent("""\
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Flow:
            Type: AWS::Serverless::StateMachine
            Properties:
              Definition: {StartAt: A, States: {A: {Type: Pass, End: true}}}
              Events:
                Nightly:
                  Type: Schedule
                  Properties: {Schedule: 'cron(0 0 * * * *)'}
        """))  # fmt: skip
    with pytest.raises(TemplateError) as caught:
        load_template(path, stack_name="tmp")
    assert "Flow: Events.Nightly.Properties.Schedule: cron(0 0 * * * *): exactly one" in str(
        caught.value
    )


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789*?/,-#LW ²٣abcMONJAN\n", max_size=40))
def test_any_cron_text_parses_or_fails_clearly(body: str) -> None:
    try:
        expr = parse(f"cron({body})")
    except ExpressionError as exc:
        assert "\n" not in str(exc)
        return
    after = ts(FRI)
    nxt = expr.next_after(after)
    assert nxt is None or nxt > after
