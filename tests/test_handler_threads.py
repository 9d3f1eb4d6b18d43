"""Plain ``def`` handlers run on pool threads that, as on Lambda, have an event loop:
``asyncio.get_event_loop().run_until_complete(...)`` (what Mangum does) and
``asyncio.run(...)`` both work, invocation after invocation."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bus.context import LambdaContext
from bus.handler import InProcessRunner
from bus.spec import FunctionSpec


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def loop_user(event: Any, context: Any) -> int:
    loop = asyncio.get_event_loop()
    return loop.run_until_complete(_double(event["x"]))


def asyncio_runner(event: Any, context: Any) -> int:
    return asyncio.run(_double(event["x"]))


def context(fn: FunctionSpec) -> LambdaContext:
    return LambdaContext(
        aws_request_id="req",
        function_name=fn.name,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{fn.name}",
        memory_limit_in_mb=fn.memory_mb,
        log_group_name=f"/aws/lambda/{fn.name}",
        log_stream_name="test",
        deadline_mono=time.monotonic() + fn.timeout_s,
    )


async def test_plain_handlers_can_use_an_event_loop_on_their_thread() -> None:
    for handler in (loop_user, asyncio_runner):
        fn = FunctionSpec("Threads", "tests.test_handler_threads.loop_user", threads=2)
        runner = InProcessRunner(fn, handler)
        try:
            outcomes = [await runner.run({"x": i}, context(fn)) for i in range(4)]
            outcomes += await asyncio.gather(*(runner.run({"x": 10}, context(fn))
                                               for _ in range(4)))  # fmt: skip
        finally:
            runner.executor.shutdown(wait=True)
        assert [(o.status, o.result) for o in outcomes] == [
            ("success", 0), ("success", 2), ("success", 4), ("success", 6),
        ] + [("success", 20)] * 4, handler.__name__  # fmt: skip
