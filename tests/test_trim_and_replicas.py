"""Retention and durability: MINID trimming never drops undelivered or pending
entries, and WAIT-backed publish only returns once replicas have the events."""

from __future__ import annotations

import time

import pytest
from redis.asyncio import Redis

from bus.embedded import EmbeddedRedis
from bus.envelope import Envelope
from bus.keys import GROUP, FunctionKeys
from bus.maintenance import Maintenance
from bus.publish import Publisher, ReplicationError, Target
from bus.redis_conn import connect, ensure_group
from bus.spec import DIRECT, FunctionSpec, Stack
from bus.worker import Worker


def _env(i: int) -> Envelope:
    now = time.time()
    return Envelope(f"e{i}", "test", "t", DIRECT.name, {"i": i}, now, first_seen=now)


async def test_trim_keeps_pending_and_undelivered_entries(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    # Given 10 entries: 6 delivered, of which 3 acked, and 4 never delivered
    keys = FunctionKeys(stack_name, "f")
    await ensure_group(redis, keys.stream)
    await Publisher(redis, stack_name).publish([_env(i) for i in range(10)], [Target("f", DIRECT)])
    reply = await redis.xreadgroup(GROUP, "c1", {keys.stream: ">"}, count=6)
    delivered = (
        [entry_id for entry_id, _ in reply[0][1]]
        if isinstance(reply, list)
        else [entry_id for entry_id, _ in reply[keys.stream.encode()][0]]
    )
    await redis.xack(keys.stream, GROUP, *delivered[:3])

    # When housekeeping trims
    worker = Worker(redis_url, Stack(stack_name, {"f": FunctionSpec("f", "x.y")}), "f")
    worker.redis = redis
    lag, pending = await Maintenance(worker).trim(keys.stream)

    # Then only the acked prefix is gone; pending and undelivered entries stay
    left = [entry_id for entry_id, _ in await redis.xrange(keys.stream)]
    assert left == delivered[3:] + left[3:]
    assert len(left) == 7
    assert (lag, pending) == (4, 3)


async def test_trim_never_passes_an_old_pending_entry(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    # Given the oldest entry still pending while later ones were acked
    keys = FunctionKeys(stack_name, "f")
    await ensure_group(redis, keys.stream)
    await Publisher(redis, stack_name).publish([_env(i) for i in range(5)], [Target("f", DIRECT)])
    await redis.xreadgroup(GROUP, "c1", {keys.stream: ">"}, count=5)
    ids = [entry_id for entry_id, _ in await redis.xrange(keys.stream)]
    await redis.xack(keys.stream, GROUP, *ids[1:])

    worker = Worker(redis_url, Stack(stack_name, {"f": FunctionSpec("f", "x.y")}), "f")
    worker.redis = redis
    await Maintenance(worker).trim(keys.stream)

    # Then nothing at or after the pending entry was trimmed
    assert [entry_id for entry_id, _ in await redis.xrange(keys.stream)] == ids


async def test_wait_backed_publish_without_replicas_refuses(redis: Redis, stack_name: str) -> None:
    pub = Publisher(redis, stack_name, wait_replicas=1, wait_timeout_ms=50)
    with pytest.raises(ReplicationError, match="0 of 1 replicas"):
        await pub.publish([_env(1)], [Target("f", DIRECT)])


async def test_wait_backed_publish_with_a_replica_returns_replicated(
    redis_server: EmbeddedRedis, redis_url: str, stack_name: str
) -> None:
    # Given a real replica of the test server
    with EmbeddedRedis(extra_args=["--replicaof", "127.0.0.1", str(redis_server.port)]) as rep:
        primary = connect(redis_url)
        replica = connect(rep.url)
        try:
            # WAIT blocks until a replica has acknowledged the stream so far: linked.
            assert await primary.execute_command("WAIT", 1, 20_000) == 1, "replica never linked"
            pub = Publisher(primary, stack_name, wait_replicas=1, wait_timeout_ms=5000)
            # When publishing with WAIT
            assert await pub.publish([_env(i) for i in range(3)], [Target("f", DIRECT)]) == 3
            # Then the replica already has every entry
            assert await replica.xlen(FunctionKeys(stack_name, "f").stream) == 3
        finally:
            await primary.aclose()
            await replica.aclose()
