"""ReservedConcurrentExecutions holds across worker processes.

Two worker processes run a function with ``reserved_concurrency=2``; each
invocation increments a Redis counter on entry (recording the highest value
seen, atomically in Lua), sleeps 0.1 s and decrements on exit. However the
events are spread, no more than two invocations may ever overlap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from bus.keys import FunctionKeys
from tests.handlers_proc import CONC_CURRENT, CONC_MAX, DONE
from tests.procs import (
    ProcGroup,
    eventually,
    group_state,
    metric,
    publish,
    read_stream,
    stream_entries,
)

STACK = "pconc"
RESERVED = 2


@pytest.fixture
def procs(redis_url: str) -> Iterator[ProcGroup]:
    with ProcGroup(redis_url) as group:
        yield group


@pytest.mark.parametrize("fn", ["counted_def", "counted_async"])
async def test_reserved_concurrency_is_global_across_processes(
    redis: Redis, procs: ProcGroup, fn: str
) -> None:
    keys = FunctionKeys(STACK, fn)
    a, b = procs.spawn("CONCURRENCY", fn), procs.spawn("CONCURRENCY", fn)
    await asyncio.gather(a.wait_ready(), b.wait_ready())

    ids = [f"{fn}-{i:02d}" for i in range(30)]
    assert await publish(redis, STACK, fn, [{"id": i} for i in ids]) == len(ids)
    await read_stream(redis, DONE, len(ids), timeout_s=40)

    async def settled() -> bool:
        return await group_state(redis, keys.stream) == {"pending": 0, "lag": 0}

    await eventually(settled, "every entry acknowledged")
    done = await stream_entries(redis, DONE)
    assert sorted(d["id"] for d in done) == ids  # all completed, once each
    assert {d["pid"] for d in done} <= {str(a.pid), str(b.pid)}
    assert int(await redis.get(CONC_CURRENT)) == 0
    highest = int(await redis.get(CONC_MAX))
    assert highest <= RESERVED, f"{highest} invocations ran at once (limit {RESERVED})"
    assert highest == RESERVED  # the limit was actually reached, so it was tested
    assert await redis.zcard(keys.concurrency) == 0  # every lease released

    # Each process takes up to two events at a time, so four wanted to run at
    # once and some had to wait for a lease.
    throttled = 0.0
    for proc in (a, b):
        samples = await proc.metrics()
        throttled += metric(samples, "lambdabus_throttled_invocations_total", function=fn) or 0
    assert throttled > 0
    assert await a.stop() == 0
    assert await b.stop() == 0
