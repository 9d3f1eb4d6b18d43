"""What a schedule tick delivers: EventBridge's scheduled event (validated with
aws-lambda-powertools' EventBridgeModel), a rule's Input, or a ScheduleV2 Input with
EventBridge Scheduler's placeholders filled in."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

from adapters.schedule.events import envelope_for, envelope_id, event_uuid, scheduled_event
from adapters.schedule.spec import ScheduleSpec, schedules_from
from adapters.template import load_template
from adapters.template.models import ACCOUNT_ID
from bus.envelope import decode, encode

NOON = datetime(2026, 11, 27, 12, 0, tzinfo=UTC).timestamp()


def load(tmp_path: Path, events: str) -> list[ScheduleSpec]:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent("""\
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Backup:
            Type: AWS::Serverless::Function
            Properties:
              Handler: app.handler
              CodeUri: src/
              Events:
        """) + textwrap.indent(textwrap.dedent(events), " " * 8))  # fmt: skip
    loaded = load_template(path, stack_name="shop")
    return schedules_from(loaded)


@pytest.fixture(autouse=True)
def default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)


def test_rule_delivers_eventbridge_scheduled_event(tmp_path: Path) -> None:
    (spec,) = load(tmp_path, """\
        Daily:
          Type: Schedule
          Properties: {Schedule: 'cron(0 12 * * ? *)'}
        """)  # fmt: skip
    event = scheduled_event(spec, NOON, "us-east-1", ACCOUNT_ID)
    model = EventBridgeModel.model_validate(event)
    assert model.version == "0"
    assert model.detail_type == "Scheduled Event"
    assert model.source == "aws.events"
    assert model.account == ACCOUNT_ID and model.region == "us-east-1"
    assert model.resources == [f"arn:aws:events:us-east-1:{ACCOUNT_ID}:rule/shop-BackupDaily"]
    assert model.time == datetime(2026, 11, 27, 12, 0, tzinfo=UTC)  # the tick, not "now"
    assert event["time"] == "2026-11-27T12:00:00Z" and event["detail"] == {}
    # a redelivered tick carries the same id; the next tick another one
    assert event["id"] == scheduled_event(spec, NOON, "us-east-1", ACCOUNT_ID)["id"]
    assert event["id"] != scheduled_event(spec, NOON + 86400, "us-east-1", ACCOUNT_ID)["id"]


def test_rule_name_and_input(tmp_path: Path) -> None:
    (spec,) = load(tmp_path, """\
        Daily:
          Type: Schedule
          Properties:
            Schedule: rate(1 day)
            Name: nightly-backup
            Input: '{"table": "orders", "full": true}'
        """)  # fmt: skip
    assert spec.arn == f"arn:aws:events:us-east-1:{ACCOUNT_ID}:rule/nightly-backup"
    assert scheduled_event(spec, NOON, "us-east-1", ACCOUNT_ID) == {"table": "orders",
                                                                    "full": True}  # fmt: skip


def test_schedule_v2_fills_scheduler_placeholders(tmp_path: Path) -> None:
    (spec,) = load(tmp_path, """\
        Noon:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 12 * * ? *)
            ScheduleExpressionTimezone: Europe/Berlin
            GroupName: backups
            Input: >-
              {"arn": "<aws.scheduler.schedule-arn>", "at": "<aws.scheduler.scheduled-time>",
               "run": "<aws.scheduler.execution-id>", "attempt": <aws.scheduler.attempt-number>}
        """)  # fmt: skip
    event = scheduled_event(spec, NOON, "us-east-1", ACCOUNT_ID)
    assert event == {
        "arn": f"arn:aws:scheduler:us-east-1:{ACCOUNT_ID}:schedule/backups/shop-BackupNoon",
        "at": "2026-11-27T12:00:00Z",
        "run": event_uuid(spec, NOON),
        "attempt": 1,
    }


def test_schedule_v2_without_input_is_schedulers_event(tmp_path: Path) -> None:
    (spec,) = load(tmp_path, """\
        Hourly:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(1 hour)}
        """)  # fmt: skip
    event = scheduled_event(spec, NOON, "us-east-1", ACCOUNT_ID)
    model = EventBridgeModel.model_validate(event)
    assert model.source == "aws.scheduler" and model.detail == {}
    assert model.resources == [
        f"arn:aws:scheduler:us-east-1:{ACCOUNT_ID}:schedule/default/shop-BackupHourly"
    ]


def test_envelope_is_keyed_by_rule_and_tick_and_round_trips(tmp_path: Path) -> None:
    (spec,) = load(tmp_path, """\
        Daily:
          Type: Schedule
          Properties: {Schedule: 'cron(0 12 * * ? *)'}
        """)  # fmt: skip
    env = envelope_for(spec, NOON, "us-east-1", ACCOUNT_ID, now=NOON + 3)
    assert env.id == envelope_id(spec, NOON) == f"schedule:Backup.Daily:{int(NOON)}"
    assert env.id != envelope_id(spec, NOON + 86400)
    assert (env.source, env.type, env.trigger, env.time) == ("aws.events", "Scheduled Event",
                                                             "Daily", NOON)  # fmt: skip
    again = decode(encode(env))
    assert again == env
    EventBridgeModel.model_validate(json.loads(json.dumps(again.record)))


def test_disabled_schedules_never_load(tmp_path: Path) -> None:
    specs = load(tmp_path, """\
        Off:
          Type: Schedule
          Properties: {Schedule: rate(1 minute), Enabled: false}
        OffV2:
          Type: ScheduleV2
          Properties: {ScheduleExpression: rate(1 minute), State: DISABLED}
        Enabled:
          Type: Schedule
          Properties: {Schedule: rate(1 minute)}
        """)  # fmt: skip
    assert [s.event for s in specs] == ["Enabled"]


def test_flexible_window_and_dates(tmp_path: Path) -> None:
    (spec,) = load(tmp_path, """\
        Window:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: rate(1 hour)
            FlexibleTimeWindow: {Mode: FLEXIBLE, MaximumWindowInMinutes: 15}
            StartDate: "2026-11-27T10:30:00Z"
            EndDate: "2026-11-27T13:30:00Z"
        """)  # fmt: skip
    assert spec.flex_window_s == 900
    # rate ticks are anchored at StartDate and stop at EndDate
    t, ticks = 0.0, []
    while (nxt := spec.next_tick(t)) is not None:
        ticks.append(datetime.fromtimestamp(nxt, UTC).strftime("%H:%M"))
        t = nxt
    assert ticks == ["10:30", "11:30", "12:30", "13:30"]
