"""Failures around the worker that must not lose or fork events: a dropped Redis
connection, a handler leaking CancelledError, a stale worker settling an entry
that was already settled elsewhere."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from bus.envelope import Envelope, encode
from bus.keys import GROUP, FunctionKeys
from bus.lanes import Lanes
from bus.publish import Publisher, Target
from bus.redis_conn import ensure_group
from bus.scripts import Scripts
from bus.spec import DIRECT, FunctionSpec, Stack
from bus.worker import Worker
from tests.handlers_bus import probe


def _env(i: int) -> Envelope:
    now = time.time()
    return Envelope(f"e{i}", "test", "t", DIRECT.name, {"i": i}, now, first_seen=now)


async def test_a_lane_survives_a_job_that_leaks_cancelled_error() -> None:
    done: list[int] = []

    async def bad() -> None:
        raise asyncio.CancelledError

    async def good(i: int) -> None:
        done.append(i)

    lanes = Lanes(1)
    lanes.submit(bad)
    lanes.submit(good, 1)
    lanes.submit(bad)
    lanes.submit(good, 2)
    assert await lanes.drain(5)
    assert done == [1, 2] and lanes.busy == 0
    await lanes.close()


async def test_the_worker_keeps_reading_after_its_connection_is_killed(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"resilient_{stack_name}"
    stack = Stack(stack_name, {fn: FunctionSpec(fn, "tests.handlers_bus.record")})
    p = probe(fn)
    worker = Worker(redis_url, stack, fn, block_ms=200)
    await worker.start()
    try:
        pub = Publisher(redis, stack_name)
        await pub.publish([_env(1)], [Target(fn, DIRECT)])
        await p.wait(lambda calls: len(calls) == 1, within=10)
        # Kill every connection blocked in XREADGROUP (the worker's reader).
        for client in await redis.client_list():
            if client.get("cmd") == "xreadgroup":
                await redis.client_kill_filter(_id=client["id"])
        await pub.publish([_env(2)], [Target(fn, DIRECT)])
        await p.wait(lambda calls: len(calls) == 2, within=15)
    finally:
        await worker.stop(5)


async def test_a_stale_worker_cannot_fork_a_retry_or_a_second_dead_letter(
    redis: Redis, stack_name: str
) -> None:
    keys = FunctionKeys(stack_name, "f")
    await ensure_group(redis, keys.stream)
    await Publisher(redis, stack_name).publish([_env(1)], [Target("f", DIRECT)])
    [[_, [[entry_id, _fields]]]] = await redis.xreadgroup(GROUP, "c1", {keys.stream: ">"})
    scripts = Scripts(redis)
    payload = encode(_env(1))
    # The first settlement acks the entry and schedules its retry ...
    await scripts.retry_later(keys=[keys.stream, keys.delayed], args=[GROUP, entry_id, 10, payload])
    # ... a stale second one (the entry isn't pending any more) changes nothing.
    await scripts.retry_later(
        keys=[keys.stream, keys.delayed], args=[GROUP, entry_id, 10, payload + b" "]
    )
    assert await redis.zcard(keys.delayed) == 1
    await scripts.dead_letter(
        keys=[keys.stream, keys.dead_letters],
        args=[GROUP, entry_id, payload, "E", "m", "tb", "RetriesExhausted", 1],
    )
    assert await redis.xlen(keys.dead_letters) == 0


RUNS: dict[int, int] = {}
ALL_DONE = asyncio.Event()


async def slow_counter(event: dict[str, int], context: object) -> None:
    """Takes long enough that the queue behind it outlives the visibility timeout."""
    await asyncio.sleep(0.25)
    RUNS[event["i"]] = RUNS.get(event["i"], 0) + 1
    if len(RUNS) == 6:
        ALL_DONE.set()


async def test_entries_queued_here_are_not_reclaimed_by_this_worker(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    # Given one lane and six reclaimed events that take 1.5 s in all, longer than the
    # 0.6 s visibility timeout: taken over all at once, the last ones would wait here
    # past it and be taken over again, by this very worker.
    fn = f"queued_{stack_name}"
    spec = FunctionSpec(
        fn, "tests.test_resilience.slow_counter", timeout_s=0.5, visibility_timeout_s=0.6,
        max_concurrency=1,
    )  # fmt: skip
    RUNS.clear()
    ALL_DONE.clear()
    # A consumer that died holding all six (they wait for the visibility timeout).
    keys = FunctionKeys(stack_name, fn)
    await ensure_group(redis, keys.stream)
    await Publisher(redis, stack_name).publish([_env(i) for i in range(6)], [Target(fn, DIRECT)])
    await redis.xreadgroup(GROUP, "dead-consumer", {keys.stream: ">"}, count=6)
    worker = Worker(redis_url, Stack(stack_name, {fn: spec}), fn, block_ms=100)
    await worker.start()
    try:
        await asyncio.wait_for(ALL_DONE.wait(), 20)
        # Give the reclaimer a few more passes in which it could wrongly re-take entries.
        for _ in range(3):
            await worker.maintenance.reclaim()
    finally:
        await worker.stop(5)
    # Then each ran exactly once and nothing was dead-lettered as a lost worker's.
    assert RUNS == dict.fromkeys(range(6), 1)
    assert await redis.xlen(FunctionKeys(stack_name, fn).dead_letters) == 0
