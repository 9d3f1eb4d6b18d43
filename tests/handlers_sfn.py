"""Functions the workflow tests' Task states call, and the harness around them.

Workers run in the test's process, so handlers report through module state the
test awaits (``CALLS`` per item, ``TOKENS`` queue, ``reached`` events), never
through sleeps. ``stack()`` names the stack from ``SFN_TEST_STACK`` so an
executor subprocess (``--stack tests.handlers_sfn:stack``) and the test agree.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bus.spec import FunctionSpec, Stack
from bus.worker import Worker
from tests.procs import ROOT, WorkerProc

H = "tests.handlers_sfn."
CALLS: Counter[Any] = Counter()
TOKENS: asyncio.Queue[str] | None = None
_THRESHOLDS: list[tuple[int, asyncio.Event]] = []


class FlakyError(Exception):
    """A named exception: Step Functions reports its class name as the error."""


def stack() -> Stack:
    name = os.environ.get("SFN_TEST_STACK", "sfn")
    fns = {
        "item": FunctionSpec("item", H + "item", timeout_s=10),
        "flaky": FunctionSpec("flaky", H + "flaky"),
        "waiter": FunctionSpec("waiter", H + "waiter"),
        "callback": FunctionSpec("callback", H + "callback"),
    }
    return Stack(name, fns)


def reached(total: int) -> asyncio.Event:
    """Set once ``item`` has run ``total`` times in all."""
    event = asyncio.Event()
    _THRESHOLDS.append((total, event))
    return event


async def item(event: Any, context: Any) -> dict[str, Any]:
    CALLS[event["i"]] += 1
    done = sum(CALLS.values())
    for total, ev in _THRESHOLDS:
        if done >= total:
            ev.set()
    await asyncio.sleep(0.02)  # long enough that a Map of 100 is still running when killed
    return {"i": event["i"], "square": event["i"] ** 2}


def flaky(event: Any, context: Any) -> None:
    CALLS["flaky"] += 1
    raise FlakyError(f"attempt {CALLS['flaky']} for order {event.get('order')}")


async def waiter(event: Any, context: Any) -> None:
    """Takes a task token and never calls back (heartbeat-timeout test)."""
    assert TOKENS is not None
    TOKENS.put_nowait(event["token"])


async def callback(event: Any, context: Any) -> None:
    """Hands the task token to the test, which completes it through the API."""
    assert TOKENS is not None
    TOKENS.put_nowait(event["token"])


def reset() -> None:
    global TOKENS
    CALLS.clear()
    _THRESHOLDS.clear()
    TOKENS = asyncio.Queue()


@asynccontextmanager
async def workers(redis_url: str, st: Stack) -> AsyncIterator[list[Worker]]:
    started: list[Worker] = []
    try:
        for name in st.functions:
            w = Worker(redis_url, st, name, block_ms=50)
            await w.start()
            started.append(w)
        yield started
    finally:
        for w in started:
            await w.stop(5.0)


def executor_proc(redis_url: str, stack_name: str, claim_idle_ms: int = 500) -> WorkerProc:
    """``lambdabus sfn executor`` as a subprocess (killable with SIGKILL)."""
    argv = [sys.executable, "-m", "adapters.cli", "sfn", "executor", "--redis-url", redis_url,
            "--stack", "tests.handlers_sfn:stack", "--claim-idle-ms", str(claim_idle_ms),
            "--admin-port", "0", "--grace", "2"]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(ROOT), SFN_TEST_STACK=stack_name)
    return WorkerProc(argv, env, f"sfn-executor-{stack_name}")
