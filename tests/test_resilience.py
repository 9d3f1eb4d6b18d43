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
