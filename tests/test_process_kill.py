"""A worker process SIGKILLed mid-invocation loses nothing: another process finishes its work.

The victim worker runs with ``HANG=1``, so every invocation it starts hangs;
the test kills it as soon as one has started. A second worker process takes
over the victim's pending entries once they have been idle for the
function's visibility timeout (4 s) and completes every event.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from bus.deadletter import DeadLetters
from bus.envelope import Envelope, encode
from bus.keys import FunctionKeys
from bus.spec import DIRECT
from bus.sync import Invoker
from tests.handlers_proc import DONE, STARTED
from tests.procs import (
    ProcGroup,
    WorkerProc,
    eventually,
    group_state,
    metric,
    publish,
    read_stream,
    stream_entries,
)

STACK, FN = "pkill", "hang"
KEYS = FunctionKeys(STACK, FN)


@pytest.fixture
def procs(redis_url: str) -> Iterator[ProcGroup]:
    with ProcGroup(redis_url) as group:
        yield group


async def settled(redis: Redis, stream: str) -> bool:
    state = await group_state(redis, stream)
    return state["pending"] == 0 and state["lag"] == 0


async def test_sigkill_mid_invocation_events_completed_by_another_worker(
    redis: Redis, procs: ProcGroup
) -> None:
    ids = [f"e{i:02d}" for i in range(20)]
    # Published before any worker runs, so the victim's first read takes all 20.
    assert await publish(redis, STACK, FN, [{"id": i} for i in ids]) == 20

    victim = await procs.start("KILL", FN, env={"HANG": "1"})
    first = await read_stream(redis, STARTED, 1)
    assert first[0]["pid"] == str(victim.pid)
    assert await victim.kill() == -signal.SIGKILL
    assert (await group_state(redis, KEYS.stream))["pending"] == 20  # all held by the dead one

    rescuer = await procs.start("KILL", FN)
    await read_stream(redis, DONE, len(ids), timeout_s=40)
    await eventually(lambda: settled(redis, KEYS.stream), "every entry acknowledged")

    done = await stream_entries(redis, DONE)
    assert sorted(d["id"] for d in done) == ids  # each completed, exactly once, none missing
    assert {d["pid"] for d in done} == {str(rescuer.pid)}
    started = await stream_entries(redis, STARTED)
    in_victim = {s["id"] for s in started if s["pid"] == str(victim.pid)}
    assert first[0]["id"] in in_victim
    assert in_victim <= {d["id"] for d in done}

    assert await redis.zcard(KEYS.delayed) == 0
    assert await redis.xlen(KEYS.dead_letters) == 0
    samples = await rescuer.metrics()
    # Every entry came back through reclaim (the kill happened before the victim's Timeout).
    assert metric(samples, "lambdabus_reclaimed_events_total", function=FN) == len(ids)
    assert metric(samples, "lambdabus_invocations_total", function=FN, outcome="success") == 20
    assert await rescuer.stop() == 0


async def test_sigkill_during_sync_invoke_answers_worker_lost_and_does_not_rerun(
    redis: Redis, redis_url: str, procs: ProcGroup
) -> None:
    victim = await procs.start("KILL", FN, env={"HANG": "1"})
    async with Invoker(redis_url, STACK) as inv:
        call = asyncio.create_task(inv.invoke(FN, {"id": "sync-1"}, timeout_s=40))
        started = await read_stream(redis, STARTED, 1)
        assert started[0] == {"id": "sync-1", "pid": str(victim.pid)}
        await victim.kill()
        rescuer = await procs.start("KILL", FN)
        result = await asyncio.wait_for(call, 40)

    # Lambda doesn't retry a synchronous call whose runtime died: the caller gets an error.
    assert result.status == "error"
    assert result.payload["errorType"] == "Runtime.WorkerLost"
    assert {"errorType", "errorMessage", "stackTrace"} <= set(result.payload)
    await eventually(lambda: settled(redis, KEYS.sync), "the sync entry acknowledged")
    assert await stream_entries(redis, DONE) == []  # never run again
    assert len(await stream_entries(redis, STARTED)) == 1
    samples = await rescuer.metrics()
    assert metric(samples, "lambdabus_reclaimed_events_total", function=FN) == 1
    assert metric(samples, "lambdabus_invocations_total", function=FN) in (None, 0)


async def test_event_whose_workers_keep_dying_is_dead_lettered_after_max_retry_attempts(
    redis: Redis, procs: ProcGroup
) -> None:
    """Each reclaim is an attempt (delivery count from XPENDING). With
    max_retry_attempts=1 an event whose worker died on attempts 0 and 1 is
    dead-lettered (Runtime.WorkerLost) by the next worker, not run a third time.

    The 12 entries are written with ids ``<ms>-0`` .. ``<ms>-11``, as one publish
    call within one millisecond makes them, so one XAUTOCLAIM batch spans
    sequence numbers of one and two digits.
    """
    fn = "hang_r1"
    keys = FunctionKeys(STACK, fn)
    ids = [f"p{i:02d}" for i in range(12)]
    now = time.time()
    ms = int(now * 1000)
    for i, event_id in enumerate(ids):
        env = Envelope(id=event_id, source="test", type="Test", trigger=DIRECT.name,
                       record={"id": event_id}, time=now, first_seen=now)  # fmt: skip
        await redis.xadd(keys.stream, {"d": encode(env)}, id=f"{ms}-{i}")

    async def started_in(proc: WorkerProc) -> bool:
        return any(s["pid"] == str(proc.pid) for s in await stream_entries(redis, STARTED))

    for _ in range(2):  # attempt 0, then attempt 1 (after a reclaim): the worker dies
        victim = await procs.start("KILL", fn, env={"HANG": "1"})
        await eventually(lambda v=victim: started_in(v), "an invocation to start", timeout_s=40)
        await victim.kill()

    rescuer = await procs.start("KILL", fn)
    await eventually(lambda: settled(redis, keys.stream), "every entry settled", timeout_s=40)

    assert await stream_entries(redis, DONE) == []  # no third run
    letters = await DeadLetters(redis, STACK).list(fn)
    assert sorted(e.envelope.id for e in letters if e.envelope) == ids
    assert {(e.error_type, e.reason) for e in letters} == {
        ("Runtime.WorkerLost", "RetriesExhausted")
    }
    samples = await rescuer.metrics()
    assert metric(samples, "lambdabus_invocations_total", function=fn) == 0
    assert metric(samples, "lambdabus_dead_letters_total", function=fn) == len(ids)
