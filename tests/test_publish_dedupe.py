"""Idempotent publish: an event id reaches a function once per dedupe window."""

from __future__ import annotations

import uuid

from redis.asyncio import Redis

from bus.deadletter import DeadLetters
from bus.keys import FunctionKeys
from bus.publish import Publisher, Target
from bus.spec import FunctionSpec, RetryPolicy, Stack, Trigger
from tests.handlers_bus import Probe, env, probe, running, wait_until

QUEUE = Trigger("queue")


def stack_of(stack_name: str, *specs: FunctionSpec) -> Stack:
    return Stack(stack_name, {s.name: s for s in specs})


def ids_seen(p: Probe) -> list[str]:
    return [r["id"] for r in p.all_records()]


async def test_duplicate_publish_runs_once(redis_url: str, redis: Redis, stack_name: str) -> None:
    fn = f"dedupe_{stack_name}"
    stack = stack_of(
        stack_name, FunctionSpec(fn, "tests.handlers_bus.record", triggers={"queue": QUEUE})
    )
    p = probe(fn)
    pub = Publisher(redis, stack_name)
    target = [Target(fn, QUEUE)]
    async with running(redis_url, stack, fn):
        assert await pub.publish([env("e1", {"id": "e1"})], target) == 1
        assert await pub.publish([env("e1", {"id": "e1", "v": 2})], target) == 0
        # The same id twice in one call is also added once.
        assert await pub.publish([env("e2", {"id": "e2"}), env("e2", {"id": "e2"})], target) == 1
        assert await pub.publish([env("sentinel", {"id": "sentinel"})], target) == 1
        # Events of one stream are delivered in order: once the sentinel ran, a
        # duplicate of e1/e2 would have run too.
        await p.wait(lambda calls: any(c.records[0]["id"] == "sentinel" and c.ok for c in calls))
    assert sorted(ids_seen(p)) == ["e1", "e2", "sentinel"]
    assert p.all_records()[0] == {"id": "e1"}  # the first copy wins
    assert await redis.xlen(FunctionKeys(stack_name, fn).stream) <= 3


async def test_each_target_function_gets_its_own_copy(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    f1, f2 = f"copy1_{stack_name}", f"copy2_{stack_name}"
    stack = stack_of(
        stack_name,
        FunctionSpec(f1, "tests.handlers_bus.record", triggers={"queue": QUEUE}),
        FunctionSpec(f2, "tests.handlers_bus.record", triggers={"queue": QUEUE}),
    )
    p1, p2 = probe(f1), probe(f2)
    pub = Publisher(redis, stack_name)
    targets = [Target(f1, QUEUE), Target(f2, QUEUE)]
    async with running(redis_url, stack, f1, f2):
        assert await pub.publish([env("shared", {"id": "shared"})], targets) == 2
        assert await pub.publish([env("shared", {"id": "shared"})], targets) == 0
        assert await pub.publish([env("end", {"id": "end"})], targets) == 2
        for p in (p1, p2):
            await p.wait(lambda calls: any(c.records[0]["id"] == "end" for c in calls))
    assert ids_seen(p1) == ["shared", "end"]
    assert ids_seen(p2) == ["shared", "end"]
    # A function that subscribes later still gets the event: the seen set is per function.
    f3 = f"copy3_{stack_name}"
    assert await pub.publish([env("shared", {"id": "shared"})], [Target(f3, QUEUE)]) == 1


async def test_redriven_dead_letter_runs_despite_seen_set(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = f"redrive_{stack_name}"
    spec = FunctionSpec(
        fn, "tests.handlers_bus.flaky", triggers={"queue": QUEUE},
        retry=RetryPolicy(max_retry_attempts=0, backoff_base_s=0.05, backoff_cap_s=0.1),
    )  # fmt: skip
    stack = stack_of(stack_name, spec)
    p = probe(fn, fail_first=1)
    pub = Publisher(redis, stack_name)
    dl = DeadLetters(redis, stack_name)
    async with running(redis_url, stack, fn):
        assert await pub.publish([env("once", {"id": "once"})], [Target(fn, QUEUE)]) == 1
        await wait_until(lambda: dl.count(fn), what="dead letter")
        assert len(p.calls) == 1 and p.calls[0].ok is False
        # Publishing it again is still deduplicated...
        assert await pub.publish([env("once", {"id": "once"})], [Target(fn, QUEUE)]) == 0
        # ...but a redrive bypasses the seen set.
        assert await dl.redrive(fn) == (1, 0)
        await p.wait(lambda calls: len(calls) == 2 and calls[1].ok is True)
        assert await dl.count(fn) == 0
    assert ids_seen(p) == ["once", "once"]


async def test_dedupe_window_expires(redis_url: str, redis: Redis, stack_name: str) -> None:
    fn = f"window_{stack_name}"
    short = Trigger("queue", dedupe_window_s=0.05)
    stack = stack_of(
        stack_name, FunctionSpec(fn, "tests.handlers_bus.record", triggers={"queue": short})
    )
    p = probe(fn)
    pub = Publisher(redis, stack_name)
    seen = FunctionKeys(stack_name, fn).seen
    async with running(redis_url, stack, fn):
        assert await pub.publish([env("w", {"id": "w", "n": 1})], [Target(fn, short)]) == 1
        expires_ms = await redis.zscore(seen, "w")
        assert expires_ms is not None

        async def expired() -> bool:
            sec, usec = await redis.time()
            return sec * 1000 + usec // 1000 > expires_ms

        await wait_until(expired, within=5, what="dedupe window expiry (redis TIME)")
        assert await pub.publish([env("w", {"id": "w", "n": 2})], [Target(fn, short)]) == 1
        await p.wait(lambda calls: len(calls) == 2)
    assert [r["n"] for r in p.all_records()] == [1, 2]


async def test_memory_per_remembered_id(redis: Redis, stack_name: str) -> None:
    fn = f"memory_{stack_name}"  # no worker: only the publish side matters
    pub = Publisher(redis, stack_name)
    n = 20_000
    envs = [env(str(uuid.uuid4()), {"i": i}) for i in range(n)]
    assert len(envs[0].id) == 36
    assert await pub.publish(envs, [Target(fn, QUEUE)]) == n
    seen = FunctionKeys(stack_name, fn).seen
    assert await redis.zcard(seen) == n
    used = await redis.memory_usage(seen, samples=0)
    assert used is not None
    per_id = used / n
    print(f"\nseen set: {used} bytes for {n} ids = {per_id:.1f} bytes per remembered id")
    assert 36 < per_id < 300
