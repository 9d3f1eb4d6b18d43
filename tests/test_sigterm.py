"""SIGTERM drains a worker process: in-flight invocations finish, the rest stays queued.

The functions take ~1 s per event and run at most two at a time per process
(``max_concurrency=2``), so when SIGTERM arrives two events are in flight and
the others have not been read yet.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from bus.keys import GROUP, FunctionKeys
from tests.handlers_proc import DONE, STARTED
from tests.procs import (
    ProcGroup,
    eventually,
    group_state,
    publish,
    read_stream,
    stream_entries,
)

STACK = "psigterm"
GRACE_S = 10.0


@pytest.fixture
def procs(redis_url: str) -> Iterator[ProcGroup]:
    with ProcGroup(redis_url) as group:
        yield group


@pytest.mark.parametrize("fn", ["slow_async", "slow_def"])
async def test_sigterm_finishes_inflight_work_and_leaves_the_rest_queued(
    redis: Redis, procs: ProcGroup, fn: str
) -> None:
    keys = FunctionKeys(STACK, fn)
    ids = [f"{fn}-{i}" for i in range(6)]
    assert await publish(redis, STACK, fn, [{"id": i} for i in ids]) == len(ids)

    worker = await procs.start("SIGTERM", fn, grace_s=GRACE_S)
    await read_stream(redis, STARTED, 2)  # both slots busy, each for ~1 s
    t0 = time.monotonic()
    worker.signal(signal.SIGTERM)
    code = await worker.wait_exit(GRACE_S + 10)
    elapsed = time.monotonic() - t0
    assert code == 0, worker.output()
    assert elapsed < GRACE_S, f"took {elapsed:.1f} s to drain"

    started = [s["id"] for s in await stream_entries(redis, STARTED)]
    done = [d["id"] for d in await stream_entries(redis, DONE)]
    assert len(started) >= 2
    assert sorted(done) == sorted(started)  # every in-flight invocation completed, once
    assert {d["pid"] for d in await stream_entries(redis, DONE)} == {str(worker.pid)}
    # Nothing left pending (all acknowledged before exit); the rest was never read.
    assert (await redis.xpending(keys.stream, GROUP))["pending"] == 0
    assert await group_state(redis, keys.stream) == {
        "pending": 0,
        "lag": len(ids) - len(started),
    }
    assert await redis.zcard(keys.delayed) == 0
    assert await redis.xlen(keys.dead_letters) == 0

    # The events not yet started are there for the next worker.
    successor = await procs.start("SIGTERM", fn, grace_s=GRACE_S)
    await read_stream(redis, DONE, len(ids), timeout_s=30)

    async def settled() -> bool:
        return await group_state(redis, keys.stream) == {"pending": 0, "lag": 0}

    await eventually(settled, "every entry acknowledged")
    final = await stream_entries(redis, DONE)
    assert sorted(d["id"] for d in final) == ids  # none lost, none run twice
    rest = {d["id"] for d in final if d["pid"] == str(successor.pid)}
    assert rest == set(ids) - set(started)
    assert await successor.stop() == 0
