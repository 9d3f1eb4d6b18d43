"""An ``async def`` handler under its timeout (bus/handler.py ``_run_async``): what
``asyncio.timeout`` would do, without its per-call loop lookups. The outcome is
right, and the task running it is left with no cancel request of ours either way."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from bus.context import LambdaContext
from bus.handler import InProcessRunner
from bus.spec import FunctionSpec


def _runner(handler: Any, timeout_s: float) -> tuple[InProcessRunner, LambdaContext]:
    fn = FunctionSpec(name="Fn", handler="x.y", timeout_s=timeout_s)
    ctx = LambdaContext(
        aws_request_id="req", function_name="Fn",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:Fn",
        memory_limit_in_mb=128, log_group_name="/aws/lambda/Fn", log_stream_name="t",
        deadline_mono=time.monotonic() + timeout_s,
    )  # fmt: skip
    return InProcessRunner(fn, handler), ctx


async def test_a_handler_past_its_timeout_is_a_timeout_and_leaves_no_cancel_behind() -> None:
    async def slow(event: Any, context: Any) -> None:
        await asyncio.sleep(30)

    runner, ctx = _runner(slow, 0.05)
    outcome = await runner.run({}, ctx)
    assert outcome.status == "timeout" and outcome.error is not None
    assert outcome.error.type == "Sandbox.Timedout"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)  # still runnable: no stray cancellation pending


async def test_a_handler_that_swallows_the_cancel_still_leaves_none_behind() -> None:
    async def stubborn(event: Any, context: Any) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            return "caught it"
        return "slept"

    runner, ctx = _runner(stubborn, 0.05)
    outcome = await runner.run({}, ctx)
    assert (outcome.status, outcome.result) == ("success", "caught it")
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)


async def test_a_cancel_from_outside_propagates_and_is_not_a_timeout() -> None:
    started = asyncio.Event()

    async def waits(event: Any, context: Any) -> None:
        started.set()
        await asyncio.sleep(30)

    runner, ctx = _runner(waits, 10)
    run = asyncio.create_task(runner.run({}, ctx))
    await started.wait()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run


async def test_a_handler_cancelling_itself_is_its_own_error() -> None:
    async def self_cancel(event: Any, context: Any) -> None:
        raise asyncio.CancelledError("the handler's own")

    runner, ctx = _runner(self_cancel, 10)
    outcome = await runner.run({}, ctx)
    assert outcome.status == "error"


async def test_success_and_errors_are_unchanged() -> None:
    async def ok(event: Any, context: Any) -> dict[str, Any]:
        return {"echo": event}

    async def boom(event: Any, context: Any) -> None:
        raise ValueError("no")

    runner, ctx = _runner(ok, 10)
    assert (await runner.run({"a": 1}, ctx)).result == {"echo": {"a": 1}}
    runner, ctx = _runner(boom, 10)
    failed = await runner.run({}, ctx)
    assert failed.status == "error" and failed.error is not None
    assert failed.error.type == "ValueError"
