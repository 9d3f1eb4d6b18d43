"""Scheduler defects found in review, each pinned by a test that failed before its fix: a
schedule's first tick and one-time ``at()`` lost across a restart, a crashed claim lost
under ``CATCHUP=none``, one broken schedule stopping the rest, a flexible-window tick
skipped after a restart, ``--fire`` hiding missed ticks, plan() cost after a week down,
and an unbounded ``rate``. Real redis-server; the clock is injected (rounds are driven by
calling ``run_due`` at chosen times, no waiting)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from redis.asyncio import Redis

from adapters.schedule.events import scheduled_event
from adapters.schedule.expressions import Cron, ExpressionError, parse
from adapters.schedule.plan import Cursor, Policy, due_at, listed, plan
from adapters.schedule.scheduler import MISSED, Scheduler
from adapters.schedule.spec import ScheduleSpec, check_properties
from adapters.template import TemplateError, load_template
from bus import metrics
from bus.keys import schedule_claim, schedule_watermark
from bus.publish import Target
from bus.spec import Trigger


def ts(y: int, mo: int, d: int, h: int = 0, mi: int = 0, sec: int = 0) -> float:
    return datetime(y, mo, d, h, mi, sec, tzinfo=UTC).timestamp()


class Clock:
    """Time moves only when the test sets it."""

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float, stop: asyncio.Event) -> None:
        await asyncio.sleep(0)


def spec(event: str, text: str, *, kind: str = "Schedule", flex_s: int = 0,
         input: str | None = None) -> ScheduleSpec:  # fmt: skip
    return ScheduleSpec(
        function="Fn", event=event, kind=kind, expression=parse(text, allow_at=True),
        text=text, name=f"s-Fn{event}", arn=f"arn:aws:events:us-east-1:1:rule/s-Fn{event}",
        input=input, enabled=True, flex_window_s=flex_s,
    )  # fmt: skip


def replica(redis: Redis, stack: str, specs: list[ScheduleSpec], clock: Clock,
            name: str, policy: Policy | None = None, **kw: Any) -> Scheduler:  # fmt: skip
    targets = {s.rule: Target("Fn", Trigger(s.event)) for s in specs}
    return Scheduler(redis, stack, specs, targets, clock=clock, policy=policy, replica=name, **kw)


def missed(rule: str) -> float:
    return MISSED.labels(rule)._value.get()


async def test_first_tick_of_a_schedule_that_never_fired_is_caught_up(
    redis: Redis, stack_name: str
) -> None:
    """Deployed at 11:00, scheduler down 11:55-12:30: noon runs when it returns."""
    s = spec("Noon", "cron(0 12 * * ? *)")
    clock = Clock(ts(2026, 11, 27, 11, 0))
    first = replica(redis, stack_name, [s], clock, "a")
    await first.run_due()
    clock.t = ts(2026, 11, 27, 11, 55)
    await first.run_due()  # then it goes down
    clock.t = ts(2026, 11, 27, 12, 30)
    again = replica(redis, stack_name, [s], clock, "b")
    before = missed(s.rule)
    await again.run_due()
    assert again.fired == [(s.rule, ts(2026, 11, 27, 12, 0))]
    assert missed(s.rule) == before


async def test_at_schedule_whose_time_passes_during_a_restart_still_runs(
    redis: Redis, stack_name: str
) -> None:
    s = spec("Once", "at(2026-11-27T12:00:00)", kind="ScheduleV2")
    clock = Clock(ts(2026, 11, 27, 11, 59))
    await replica(redis, stack_name, [s], clock, "a").run_due()
    clock.t = ts(2026, 11, 27, 12, 3)
    again = replica(redis, stack_name, [s], clock, "b")
    await again.run_due()
    clock.t += 3600
    await again.run_due()
    assert again.fired == [(s.rule, ts(2026, 11, 27, 12, 0))]  # once, not lost, not twice


async def test_a_new_schedule_does_not_fire_its_past(redis: Redis, stack_name: str) -> None:
    """No watermark yet: start now (all replicas agree), never retroactively."""
    s = spec("Hourly", "rate(1 hour)")
    clock = Clock(ts(2026, 11, 27, 12, 30))
    replicas = [replica(redis, stack_name, [s], clock, f"r{i}") for i in range(2)]
    await replicas[0].run_due()
    clock.t += 5
    await replicas[1].run_due()
    assert [r.fired for r in replicas] == [[], []]
    assert float(await redis.get(schedule_watermark(stack_name, s.rule)) or 0) == clock.t


async def test_crashed_claim_fires_under_catchup_none(redis: Redis, stack_name: str) -> None:
    """A tick claimed on time by a replica that died is owed, not 'missed', even when its
    lease runs out after the grace; and the default lease is well inside the grace."""
    s = spec("Job", "rate(5 minutes)")
    tick = ts(2026, 11, 27, 12, 0)
    clock = Clock(tick - 10)
    none = Policy(catchup="none")
    a = replica(redis, stack_name, [s], clock, "a", none)
    b = replica(redis, stack_name, [s], clock, "b", none)
    await a.run_due()
    await b.run_due()
    clock.t = tick

    async def crash(sp: ScheduleSpec, tick: float, now: float) -> None:
        raise SystemExit("replica a killed after claiming")

    a._publish = crash  # type: ignore[method-assign,assignment]
    with pytest.raises(SystemExit):
        await a.run_due()
    before = missed(s.rule)
    for dt in range(1, 90, 5):  # b runs on; a's claim blocks it
        clock.t = tick + dt
        await b.run_due()
    assert b.fired == []
    await redis.delete(schedule_claim(stack_name, s.rule, int(tick)))  # the lease expires
    clock.t = tick + 95  # now more than the grace late
    await b.run_due()
    assert b.fired == [(s.rule, tick)]
    assert missed(s.rule) == before
    assert b.lease_ms < none.grace_s * 1000  # so a survivor usually re-claims on time


async def test_one_failing_schedule_does_not_stop_the_others(redis: Redis, stack_name: str) -> None:
    broken = spec("Broken", "rate(1 minute)", input="{not json")  # bypasses load checks
    good = spec("Good", "rate(1 minute)")
    start = ts(2026, 11, 27, 12, 0)
    clock = Clock(start - 5)
    r = replica(redis, stack_name, [broken, good], clock, "a")
    errors = metrics.ADAPTER_ERRORS.labels("scheduler")
    before = errors._value.get()
    await r.run_due()  # first round: both start now
    for minute in range(5):
        clock.t = start + 60 * minute + 1
        assert await r.run_due() is not None
    assert [t for rule, t in r.fired] == [start + 60 * m for m in range(5)]
    assert {rule for rule, _ in r.fired} == {good.rule}
    assert errors._value.get() - before == 5  # each failure counted (and logged)
    # the broken one is retried with backoff (16 s after 5 failures), not every second
    assert r.next_wake() == clock.t + 16


async def test_every_schedule_failing_makes_the_round_fail(redis: Redis, stack_name: str) -> None:
    """So the loop backs off instead of spinning when Redis itself is gone."""
    broken = spec("Broken", "rate(1 minute)", input="{not json")
    clock = Clock(ts(2026, 11, 27, 12, 0, 1))
    r = replica(redis, stack_name, [broken], clock, "a")
    await r.run_due()
    clock.t += 60
    assert await r.run_due() is None


def test_group_name_and_input_are_checked_as_they_will_be_delivered() -> None:
    base = {"ScheduleExpression": "rate(1 minute)"}
    assert check_properties("ScheduleV2", {**base, "GroupName": 'ops"team'}) == (
        "GroupName", "1-64 letters, digits, '.', '-' or '_'")  # fmt: skip
    assert check_properties("ScheduleV2", {**base, "Name": "bäckup"})[0] == "Name"  # type: ignore[index]
    problem = check_properties(
        "ScheduleV2", {**base, "Input": '{"a": <aws.scheduler.schedule-arn>}'}
    )
    assert problem is not None and problem[0] == "Input" and "\n" not in problem[1]
    ok = {**base, "GroupName": "ops", "Input": '{"a": "<aws.scheduler.schedule-arn>", '
          '"n": <aws.scheduler.attempt-number>}'}  # fmt: skip
    assert check_properties("ScheduleV2", ok) is None


def test_bad_group_name_is_a_one_line_template_error(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    path = tmp_path / "template.yaml"
    path.write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      Handler: app.handler\n      CodeUri: src/\n"
        "      Events:\n        E:\n          Type: ScheduleV2\n          Properties:\n"
        "            ScheduleExpression: rate(1 minute)\n"
        "            GroupName: 'ops\"team'\n"
        '            Input: \'{"arn": "<aws.scheduler.schedule-arn>"}\'\n'
    )
    with pytest.raises(TemplateError) as caught:
        load_template(path, stack_name="tmp")
    message = str(caught.value)
    assert "\n" not in message and "template.yaml" in message
    assert message.endswith(
        "F: Events.E.Properties.GroupName: 1-64 letters, digits, '.', '-' or '_'"
    )


def test_placeholder_values_cannot_break_out_of_their_json_string() -> None:
    s = replace(spec("V2", "rate(1 minute)", kind="ScheduleV2",
                     input='{"arn": "<aws.scheduler.schedule-arn>", "k": 1}'),
                arn='arn:aws:scheduler:us-east-1:1:schedule/g/x", "k": 2, "z": "\\')  # fmt: skip
    event = scheduled_event(s, ts(2026, 11, 27, 12, 0), "us-east-1", "1")
    assert event == {"arn": s.arn, "k": 1}


async def test_flexible_window_tick_still_waiting_survives_a_restart(
    redis: Redis, stack_name: str
) -> None:
    s = spec("Flex", "rate(5 minutes)", kind="ScheduleV2", flex_s=15 * 60)
    base = ts(2026, 11, 27, 12, 0)
    # two ticks where the later one is due first
    t1 = next(t for t in (base + 300 * i for i in range(500)) if due_at(s, t) > due_at(s, t + 300))
    t2 = t1 + 300
    clock = Clock(t1 - 1)
    a = replica(redis, stack_name, [s], clock, "a")
    await a.run_due()
    clock.t = due_at(s, t2) + 1
    await a.run_due()
    assert a.fired == [(s.rule, t2)]  # t1 still inside its window; then a restarts
    clock.t += 5
    b = replica(redis, stack_name, [s], clock, "b")
    end = due_at(s, t1) + 30
    while clock.t < end:
        clock.t += 10
        await b.run_due()
    assert (s.rule, t1) in b.fired and (s.rule, t2) not in b.fired


async def test_fire_now_does_not_hide_ticks_missed_before_it(redis: Redis, stack_name: str) -> None:
    """``--fire`` of a future tick during an outage: the restart still catches up."""
    s = spec("Quarter", "rate(15 minutes)")
    clock = Clock(ts(2026, 11, 27, 5, 0, 30))
    await replica(redis, stack_name, [s], clock, "a").run_due()
    await replica(redis, stack_name, [s], clock, "a").run_due()  # down after 05:00:30
    clock.t = ts(2026, 11, 27, 5, 50)
    assert await replica(redis, stack_name, [s], clock, "cli").fire_next(s.rule) == ts(
        2026, 11, 27, 6, 0)  # fmt: skip
    clock.t = ts(2026, 11, 27, 5, 50, 30)
    before = missed(s.rule)
    again = replica(redis, stack_name, [s], clock, "b")
    await again.run_due()
    assert again.fired == [(s.rule, ts(2026, 11, 27, 5, 45))]  # latest of the missed
    assert missed(s.rule) - before == 2  # 05:15, 05:30
    clock.t = ts(2026, 11, 27, 6, 0, 5)
    await again.run_due()
    assert len(again.fired) == 1  # 06:00 was fired by --fire, not again


def test_plan_walks_the_calendar_once_after_a_week_down(monkeypatch: pytest.MonkeyPatch) -> None:
    s = spec("Minutely", "cron(* * * * ? *)")
    walks = []
    original = Cron.local_times

    def counting(self: Cron, start: datetime) -> Any:
        walks.append(start)
        return original(self, start)

    monkeypatch.setattr(Cron, "local_times", counting)
    now = ts(2026, 11, 27, 12, 0)
    p = plan(s, Cursor(now - 7 * 86400), now, Policy())
    assert p.late_count == 7 * 1440 - 2  # two within the grace are on time
    assert len(walks) <= 2  # not one search from scratch per tick
    assert len(p.late) == listed(Policy()) and p.late[-1] == now - 120


def test_rate_past_year_9999_is_a_load_error(redis: Redis) -> None:
    problem = check_properties("Schedule", {"Schedule": "rate(999999999 days)"})
    assert problem == ("Schedule", "rate(999999999 days): the interval runs past year 9999")
    with pytest.raises(ExpressionError, match="past year 9999"):
        parse("rate(99999999 days)")
    # the longest accepted rate still describes (the `lambdabus dev` banner)
    s = spec("Long", "rate(2800000 days)")
    r = Scheduler(redis, "st", [s], {s.rule: Target("Fn", Trigger("Long"))},
                  clock=Clock(ts(2026, 11, 27)))  # fmt: skip
    assert r.describe().startswith("1 schedule; next: Fn.Long at ")


def test_scheduled_event_from_checked_input_validates() -> None:
    """The default event still matches powertools' model after the escaping change."""
    s = spec("V2", "rate(1 minute)", kind="ScheduleV2")
    event = scheduled_event(s, ts(2026, 11, 27, 12, 0), "us-east-1", "123456789012")
    assert EventBridgeModel.model_validate(event).resources == [s.arn]
    assert json.loads(json.dumps(event)) == event
