"""Handlers of the process-level integration tests (see ``stacks_proc.py``).

Handlers running in worker subprocesses report what they do to the test through
Redis (``TEST_REDIS_URL``): they XADD facts to result streams the test awaits.
Handlers used in-process (``test_sync_invoke.py``) record their calls in
``CALLS`` instead, keyed by function name.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict
from typing import Any

from redis import Redis

STARTED = "test:started"
"""Stream: one entry per invocation that began (fields id, pid)."""
DONE = "test:done"
"""Stream: one entry per invocation that finished its work (fields id, pid)."""
CONC_CURRENT = "test:conc:current"
CONC_MAX = "test:conc:max"

_ENTER = """
local c = redis.call('INCR', KEYS[1])
local m = tonumber(redis.call('GET', KEYS[2]) or '0')
if c > m then redis.call('SET', KEYS[2], c) end
return c
"""

_client: Redis | None = None


def _redis() -> Redis:
    global _client
    if _client is None:
        _client = Redis.from_url(os.environ["TEST_REDIS_URL"])
    return _client


def _record(stream: str, event: dict[str, Any], **extra: Any) -> None:
    fields = {"id": str(event["id"]), "pid": os.getpid(), **extra}
    _redis().xadd(stream, fields)


# -- test_process_kill ---------------------------------------------------------


def hang_in_victim(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """In a worker started with ``HANG=1`` every invocation hangs; elsewhere it completes."""
    _record(STARTED, event)
    if os.environ.get("HANG") == "1":
        time.sleep(120)  # the process is SIGKILLed long before this returns
    _record(DONE, event)
    return {"ok": event["id"]}


# -- test_sigterm --------------------------------------------------------------


async def slow_async(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _record(STARTED, event)
    await asyncio.sleep(1.0)
    _record(DONE, event)
    return {"ok": event["id"]}


def slow_def(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _record(STARTED, event)
    time.sleep(1.0)
    _record(DONE, event)
    return {"ok": event["id"]}


# -- test_concurrency ----------------------------------------------------------


def _enter() -> None:
    _redis().eval(_ENTER, 2, CONC_CURRENT, CONC_MAX)


def _leave(event: dict[str, Any]) -> None:
    r = _redis()
    r.decr(CONC_CURRENT)
    _record(DONE, event)


def counted_def(event: dict[str, Any], context: Any) -> None:
    _enter()
    try:
        time.sleep(0.1)
    finally:
        _leave(event)


async def counted_async(event: dict[str, Any], context: Any) -> None:
    _enter()
    try:
        await asyncio.sleep(0.1)
    finally:
        _leave(event)


# -- test_metrics --------------------------------------------------------------


def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sleeps 30 ms (a known duration in seconds), then fails if the event says so."""
    time.sleep(0.03)
    _record(STARTED, event)
    if event.get("fail"):
        raise RuntimeError(f"event {event['id']} always fails")
    return {"ok": event["id"]}


# -- test_sync_invoke (in-process) --------------------------------------------

CALLS: defaultdict[str, list[Any]] = defaultdict(list)
"""function name → events its handler was called with (in this process)."""


async def echo_async(event: Any, context: Any) -> dict[str, Any]:
    CALLS[context.function_name].append(event)
    await asyncio.sleep(0)
    return {"echo": event, "request_id": context.aws_request_id}


async def raise_async(event: Any, context: Any) -> None:
    CALLS[context.function_name].append(event)
    raise ValueError(f"bad input {event['n']}")
