"""Daily backup: export a DynamoDB table to S3 as JSON lines (one item per line).

Triggered by a ``Schedule`` (EventBridge's scheduled event): the object key is dated by
the event's ``time`` — the scheduled time — so a retried or redelivered tick overwrites
its own backup instead of writing a second one. Plain boto3 with no endpoint: the
standard ``AWS_ENDPOINT_URL`` decides where AWS is (moto under ``lambdabus dev``).
"""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from typing import Any

import boto3
import redis

STORE_URL = os.environ.get("DEMO_STORE_URL", "")
_store = redis.Redis.from_url(STORE_URL) if STORE_URL else None


@cache
def _aws() -> tuple[Any, Any]:
    return boto3.resource("dynamodb"), boto3.client("s3")


def plain(value: Any) -> Any:
    """DynamoDB's Python types as JSON: numbers without Decimal, binary as base64, sets
    as sorted lists."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    if hasattr(value, "value") and isinstance(value.value, bytes):  # boto3's Binary
        return base64.b64encode(value.value).decode()
    return value


def scan_all(table: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def backup_key(table: str, when: datetime) -> str:
    return f"backups/{table}/{when:%Y-%m-%d}/{when:%H%M%S}Z.jsonl"


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    table_name, bucket = os.environ["TABLE_NAME"], os.environ["BUCKET_NAME"]
    when_text = event.get("time") if isinstance(event, dict) else None
    when = (datetime.fromisoformat(when_text.replace("Z", "+00:00")) if when_text
            else datetime.now(UTC))  # fmt: skip
    dynamodb, s3 = _aws()
    items = scan_all(dynamodb.Table(table_name))
    body = "".join(json.dumps(plain(i), sort_keys=True, separators=(",", ":")) + "\n"
                   for i in items)  # fmt: skip
    key = backup_key(table_name, when)
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="application/x-ndjson")
    if _store is not None:
        _store.xadd("demo:results", {
            "function": context.function_name, "key": key,
            "outcome": f"backed up {len(items)} items (tick {when_text or 'manual'})",
            "at": repr(time.time()),
        })  # fmt: skip
    return {"bucket": bucket, "key": key, "items": len(items)}
