"""SQS -> DynamoDB: each message becomes one item of the messages table.

The item's key ``id`` is the body's ``id`` (a JSON object's string or integer
field), so a message sent twice is stored once; a body without one is keyed by
its SQS ``messageId``. A message that can't be stored (not a JSON object, an
unusable ``id``, too large for a DynamoDB item, a write DynamoDB refused) is
named in ``batchItemFailures`` — Lambda's partial batch response — so only it
is retried and, after the queue's ``maxReceiveCount``, goes to its dead-letter
queue; the rest of the batch is not stored twice.
"""

from __future__ import annotations

import json
import os
import time
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

MAX_BODY_BYTES = 350 * 1024
"""DynamoDB items stop at 400 KB; leave room for the other attributes."""
MAX_ID_CHARS = 256


class BadMessage(ValueError):
    """A message that can never be stored; the text says why (never the body itself)."""


def item_of(record: dict[str, Any]) -> dict[str, Any]:
    """The DynamoDB item (typed attribute values) for one SQS record."""
    message_id = record.get("messageId")
    body = record.get("body")
    if not isinstance(message_id, str) or not isinstance(body, str):
        raise BadMessage("not an SQS record (no messageId / body)")
    if len(body.encode()) > MAX_BODY_BYTES:
        raise BadMessage(f"body of {len(body.encode())} bytes is over {MAX_BODY_BYTES}")
    try:
        doc = json.loads(body)
    except ValueError:
        raise BadMessage("body is not JSON") from None
    if not isinstance(doc, dict):
        raise BadMessage(f"body is a JSON {type(doc).__name__}, not an object")
    key = doc.get("id", message_id)
    if isinstance(key, bool) or not isinstance(key, str | int) or not str(key):
        raise BadMessage(f"id must be a non-empty string or an integer, got {type(key).__name__}")
    if len(str(key)) > MAX_ID_CHARS:
        raise BadMessage(f"id is over {MAX_ID_CHARS} characters")
    attributes = record.get("attributes") or {}
    item = {
        "id": {"S": str(key)},
        "messageId": {"S": message_id},
        "body": {"S": body},
        "receiveCount": {"N": str(int(attributes.get("ApproximateReceiveCount", 1)))},
    }
    if str(attributes.get("SentTimestamp", "")).isdigit():
        item["sentTimestamp"] = {"N": attributes["SentTimestamp"]}
    return item


def store(dynamodb: Any, table: str, records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Put every storable record; returns ``(messageId, reason)`` of those that failed."""
    failures = []
    for record in records:
        try:
            dynamodb.put_item(TableName=table, Item=item_of(record))
        except BadMessage as exc:
            failures.append((str(record.get("messageId", "")), str(exc)))
        except (ClientError, BotoCoreError) as exc:  # this one may succeed when retried
            failures.append((str(record.get("messageId", "")), f"DynamoDB: {exc}"))
    return failures


@cache
def _dynamodb() -> Any:
    return boto3.client("dynamodb")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    records = event.get("Records") or []
    failures = store(_dynamodb(), os.environ["TABLE_NAME"], records)
    failed = dict(failures)
    for message_id, reason in failures:
        print(f"message {message_id} not stored: {reason}")  # the id, never the body
    for record in records:
        message_id = str(record.get("messageId", ""))
        _report(
            context,
            message_id,
            f"not stored: {failed[message_id]}"
            if message_id in failed
            else f"stored in {os.environ['TABLE_NAME']}",
        )
    return {"batchItemFailures": [{"itemIdentifier": m} for m, _ in failures]}


STORE_URL = os.environ.get("DEMO_STORE_URL", "")


@cache
def _store() -> Any:
    import redis

    return redis.Redis.from_url(STORE_URL)


def _report(context: Any, message_id: str, outcome: str) -> None:
    """Tell the demo (``demo:results`` of DEMO_STORE_URL) what happened, when it listens."""
    if STORE_URL:
        _store().xadd(
            "demo:results",
            {
                "function": context.function_name,
                "key": f"message {message_id[:8]}",
                "outcome": outcome,
                "at": repr(time.time()),
            },
        )
