"""Received SQS messages become envelopes: the one source-specific step of the SQS poller.

Each :data:`Normalizer` turns one message into its envelopes (id = MessageId,
partition = MessageGroupId on FIFO queues, time = SentTimestamp for SQS records).
:func:`sqs_envelopes` is the SQS event source itself; S3 and SNS carrier queues
reuse the same poller with :func:`s3_envelopes` and :func:`sns_envelopes`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bus.envelope import Envelope

from .s3_records import iso_time, s3_records
from .sns_records import sns_record
from .sqs_records import MalformedMessage, arn_parts, sqs_record

Normalizer = Callable[[Mapping[str, Any], "Queue"], list[Envelope]]
"""One received message → its envelopes (``trigger`` is filled in at publish). Raises
:class:`MalformedMessage` to leave the message at the source; [] deletes it unpublished."""


@dataclass(frozen=True)
class Queue:
    """What the poller learned about its queue at start."""

    arn: str
    url: str
    name: str
    region: str
    fifo: bool
    visibility_timeout_s: float
    dead_letter_arn: str | None = None


def sent_time(record_attributes: Mapping[str, Any]) -> float:
    try:
        return int(record_attributes["SentTimestamp"]) / 1000
    except (KeyError, TypeError, ValueError):
        return time.time()


def message_group(message: Mapping[str, Any], queue: Queue) -> str | None:
    return (message.get("Attributes") or {}).get("MessageGroupId") if queue.fifo else None


def sqs_envelopes(message: Mapping[str, Any], queue: Queue) -> list[Envelope]:
    """The SQS event source itself: one Lambda SQS record per message."""
    record = sqs_record(message, queue.arn)
    return [
        Envelope(
            id=record["messageId"], source="aws:sqs", type="aws:sqs", trigger="",
            record=record, time=sent_time(record["attributes"]), subject=queue.name,
            partition=message_group(message, queue), first_seen=time.time(),
        )
    ]  # fmt: skip


def s3_envelopes(message: Mapping[str, Any], queue: Queue) -> list[Envelope]:
    """An S3 carrier queue: one Lambda S3 record per notification record."""
    body, carrier_id = message.get("Body"), message.get("MessageId")
    if not isinstance(body, str) or not isinstance(carrier_id, str):
        raise MalformedMessage("carrier message lacks MessageId or Body")
    now = time.time()
    return [
        Envelope(
            id=event_id, source="aws:s3", type=record["eventName"], trigger="", record=record,
            time=iso_time(record["eventTime"]), subject=record["s3"]["object"]["key"],
            partition=message_group(message, queue), first_seen=now,
        )
        for event_id, record in s3_records(body, carrier_id, queue.region)
    ]  # fmt: skip


def sns_envelopes(message: Mapping[str, Any], queue: Queue) -> list[Envelope]:
    """An SNS carrier queue (raw delivery off): one Lambda SNS record per notification."""
    body = message.get("Body")
    if not isinstance(body, str):
        raise MalformedMessage("carrier message lacks a Body")
    made = sns_record(body)
    if made is None:
        return []
    event_id, record = made
    sns = record["Sns"]
    return [
        Envelope(
            id=event_id, source="aws:sns", type="Notification", trigger="", record=record,
            time=iso_time(sns["Timestamp"]), subject=arn_parts(sns["TopicArn"])[2],
            partition=message_group(message, queue), first_seen=time.time(),
        )
    ]  # fmt: skip
