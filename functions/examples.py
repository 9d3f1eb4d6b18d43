"""Example handlers for the demo: ordinary Lambda handlers, nothing lambdabus-specific.

They report what they did to a Redis stream (``DEMO_RESULTS_URL``) so the demo
can print a table; a real handler would write to its own store instead.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

_client: redis.Redis | None = None


def _results() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["DEMO_RESULTS_URL"])
    return _client


def _report(context: Any, key: str, outcome: str) -> None:
    _results().xadd(
        "demo:results",
        {"function": context.function_name, "key": key, "outcome": outcome,
         "done": repr(time.time())},
    )  # fmt: skip


async def greet(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An ``async def`` handler, invoked synchronously like an API behind a gateway."""
    return {"message": f"hello, {event.get('name', 'world')}", "requestId": context.aws_request_id}


def word_count(event: dict[str, Any], context: Any) -> dict[str, int]:
    """A plain ``def`` handler taking a batch of SQS-style records."""
    counts = {r["messageId"]: len(r["body"].split()) for r in event["Records"]}
    for message_id in counts:
        _report(context, message_id, "success")
    return counts


def flaky(event: dict[str, Any], context: Any) -> str:
    """Fails on its first two attempts, then succeeds: the bus retries it with backoff."""
    attempt = _results().incr(f"demo:attempts:{event['id']}")
    if attempt <= 2:
        raise ConnectionError(f"downstream unavailable (attempt {attempt})")
    _report(context, event["id"], f"success after {attempt} attempts")
    return "ok"


def always_fails(event: dict[str, Any], context: Any) -> None:
    """Never succeeds: after MaximumRetryAttempts it lands in the dead-letter stream."""
    raise ValueError(f"cannot process order {event['id']}")


def on_failure(event: dict[str, Any], context: Any) -> None:
    """An OnFailure destination: receives Lambda's destination record."""
    payload = event["requestPayload"]
    _report(context, payload["id"], f"got {event['requestContext']['condition']}")
