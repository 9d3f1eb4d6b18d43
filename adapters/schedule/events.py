"""What a schedule tick delivers, as AWS delivers it, wrapped in an envelope.

- ``Schedule`` (an EventBridge rule): EventBridge's scheduled event — ``version "0"``,
  ``detail-type "Scheduled Event"``, ``source "aws.events"``, ``resources`` = [rule ARN],
  ``time`` = the scheduled time (not the moment it fired), ``detail {}`` — or, when the
  rule sets ``Input``, that constant JSON instead.
- ``ScheduleV2`` (EventBridge Scheduler): its ``Input`` with the ``<aws.scheduler.*>``
  context attributes filled in. Without ``Input``, Scheduler sends an EventBridge-shaped
  event with ``source "aws.scheduler"`` and ``detail`` as the *string* ``"{}"`` (see
  aws-lambda-powertools issue 6112, which its EventBridgeModel accommodates); so do we.

The envelope id is ``schedule:{Function.Event}:{tick}``: stable for a tick, distinct
between ticks, so the bus's dedupe also drops a second publish of the same tick. The
event ``id`` / execution id is a UUID derived from the same pair, so a redelivered tick
carries the same id, as an AWS retry does.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from bus.envelope import Envelope

from .spec import ScheduleSpec

_NAMESPACE = uuid.UUID("6f1c3c3e-4d0a-5b7e-9a57-1a4b5c0d2e11")


def iso(t: float) -> str:
    """EventBridge's time format: second precision, ``Z``."""
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_uuid(spec: ScheduleSpec, tick: float) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{spec.arn}\x00{int(tick)}"))


def envelope_id(spec: ScheduleSpec, tick: float) -> str:
    return f"schedule:{spec.rule}:{int(tick)}"


def fill_placeholders(text: str, spec: ScheduleSpec, tick: float, attempt: int = 1) -> str:
    """EventBridge Scheduler's context attributes, substituted as text (as it does), each
    value JSON-escaped: a placeholder sits inside a JSON string, and a value with a quote
    or backslash must not end that string early (or inject keys)."""
    values = {
        "<aws.scheduler.schedule-arn>": spec.arn,
        "<aws.scheduler.scheduled-time>": iso(tick),
        "<aws.scheduler.execution-id>": event_uuid(spec, tick),
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, json.dumps(value)[1:-1])
    return text


def scheduled_event(spec: ScheduleSpec, tick: float, region: str, account: str) -> Any:
    """The Lambda event of one tick of ``spec``."""
    if spec.input is not None:
        text = spec.input
        if spec.kind == "ScheduleV2":
            text = fill_placeholders(text, spec, tick)
        return json.loads(text)
    v2 = spec.kind == "ScheduleV2"
    return {
        "version": "0",
        "id": event_uuid(spec, tick),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler" if v2 else "aws.events",
        "account": account,
        "time": iso(tick),
        "region": region,
        "resources": [spec.arn],
        "detail": "{}" if v2 else {},
    }


def envelope_for(spec: ScheduleSpec, tick: float, region: str, account: str,
                 now: float) -> Envelope:  # fmt: skip
    return Envelope(
        id=envelope_id(spec, tick),
        source="aws.scheduler" if spec.kind == "ScheduleV2" else "aws.events",
        type="Scheduled Event",
        trigger=spec.event,
        record=scheduled_event(spec, tick, region, account),
        time=tick,
        subject=spec.arn,
        first_seen=now,
    )
