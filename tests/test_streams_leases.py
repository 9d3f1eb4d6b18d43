"""Shard leases and checkpoints against a real redis-server: one owner per shard,
take-over after expiry, renewal, guarded and forward-only checkpoints, the replicas'
fair share, and the checkpoint written only after the publish."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from adapters.base import Handoff
from adapters.streams import StreamAdapter, StreamMapping, StreamSettings
from adapters.streams.leases import ShardLeases
from adapters.streams.reader import Checkpoint, LeaseLost, ShardReader
from adapters.streams.shards import SHARD_END, Position, Shard
from bus.envelope import Envelope
from bus.keys import FunctionKeys, StreamSourceKeys, partition_hash
from bus.publish import Target
from bus.spec import Trigger
from tests.handlers_bus import wait_until

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"


def leases(redis: Redis, stack: str, owner: str, ttl_s: float = 5.0) -> ShardLeases:
    return ShardLeases(redis, StreamSourceKeys(stack, "Fn.Changes"), owner, ttl_s)


async def test_one_owner_per_shard_and_takeover_after_expiry(redis: Redis, stack_name: str) -> None:
    a = leases(redis, stack_name, "a", ttl_s=0.3)
    b = leases(redis, stack_name, "b", ttl_s=0.3)
    assert await a.acquire("shard-1")
    assert not await b.acquire("shard-1")
    assert await b.acquire("shard-2")
    assert await a.holder("shard-1") == "a"
    # a dies (stops renewing): after the TTL b takes the shard over.
    await wait_until(lambda: b.acquire("shard-1"), within=5, what="lease expired")
    assert await b.holder("shard-1") == "b"
    # a's renewal now reports the shard lost; b's keeps it, and takes back shard-2, which
    # lapsed meanwhile (b never renewed it) but which no one else took.
    assert await a.renew(["shard-1"]) == {"shard-1"}
    assert await b.renew(["shard-1", "shard-2"]) == set()
    assert await b.holder("shard-2") == "b"


async def test_renewal_keeps_a_lease_past_its_ttl(redis: Redis, stack_name: str) -> None:
    a = leases(redis, stack_name, "a", ttl_s=0.5)
    b = leases(redis, stack_name, "b", ttl_s=0.5)
    assert await a.acquire("s")
    key = StreamSourceKeys(stack_name, "Fn.Changes").lease("s")
    for _ in range(5):  # renewed before it lapses, again and again
        await redis.pexpire(key, 50)  # nearly expired...
        assert await a.renew(["s"]) == set()
        assert await redis.pttl(key) > 300  # ...and back to the full TTL
        assert not await b.acquire("s")
    await a.release("s")
    assert await b.acquire("s")
    await a.release("s")  # not a's any more: releasing does nothing
    assert await b.holder("s") == "b"


async def test_checkpoints_need_the_lease_and_only_move_forward(
    redis: Redis, stack_name: str
) -> None:
    a = leases(redis, stack_name, "a")
    b = leases(redis, stack_name, "b")
    assert await a.acquire("s")
    assert await a.checkpoint("s", "300000000000000000010")
    assert not await b.checkpoint("s", "300000000000000000099")  # not b's lease
    assert await a.checkpoint("s", "99")  # older (shorter number): ignored, not an error
    assert await a.checkpoint("s", "300000000000000000009")
    assert (await a.checkpoints())["s"] == "300000000000000000010"
    assert await a.checkpoint("s", "1000000000000000000000")  # longer = later
    assert await a.checkpoint("s", SHARD_END)
    assert await a.checkpoint("s", "2000000000000000000000")  # nothing moves past the end
    assert await b.checkpoints() == {"s": SHARD_END}


async def test_readers_heartbeat_and_initial_shards_are_fixed_once(
    redis: Redis, stack_name: str
) -> None:
    a = leases(redis, stack_name, "a", ttl_s=0.3)
    b = leases(redis, stack_name, "b", ttl_s=0.3)
    assert await a.heartbeat() == 1
    assert await b.heartbeat() == 2
    await b.leave()
    assert await a.heartbeat() == 1
    assert await a.initial_shards(["s1", "s2"]) == {"s1", "s2"}
    assert await b.initial_shards(["s1", "s2", "s3"]) == {"s1", "s2"}  # the first one wins


# -- the adapter: checkpoint only after publish -------------------------------------------------


def mapping() -> StreamMapping:
    return StreamMapping("Fn", Trigger("Changes", ordered=True, shape="records"), ARN)


def env(i: int) -> Envelope:
    return Envelope(
        id=f"ev{i}",
        source="aws:dynamodb",
        type="INSERT",
        trigger="",
        record={"n": i},
        time=0.0,
        partition="k",
        first_seen=0.0,
    )


async def test_checkpoint_is_written_only_after_the_publish(redis: Redis, stack_name: str) -> None:
    seen: list[Any] = []

    async def after_publish(handoff: Handoff[Any]) -> None:
        # Published already, and the checkpoint not yet moved.
        stream = FunctionKeys(stack_name, "Fn").partition_stream(partition_hash("Changes\x00k"))
        seen.append((await redis.xlen(stream), await adapter.leases.checkpoints()))

    adapter = StreamAdapter(
        redis,
        stack_name,
        mapping(),
        owner="me",
        settings=StreamSettings(lease_s=5),
        after_publish=after_publish,
    )
    assert await adapter.leases.acquire("s")
    target = Target("Fn", adapter.mapping.trigger)
    await adapter.handoff(Handoff([env(1), env(2)], [target], Checkpoint("s", "11")))
    assert seen == [(2, {})]
    assert await adapter.leases.checkpoints() == {"s": "11"}
    # Re-reading after a crash publishes nothing twice (dedupe by eventID) yet checkpoints.
    await adapter.handoff(Handoff([env(1), env(2), env(3)], [target], Checkpoint("s", "12")))
    assert seen[-1][0] == 3 and adapter.counts.duplicates == 2
    assert await adapter.leases.checkpoints() == {"s": "12"}


async def test_a_publish_whose_lease_was_lost_does_not_checkpoint(
    redis: Redis, stack_name: str
) -> None:
    adapter = StreamAdapter(
        redis, stack_name, mapping(), owner="me", settings=StreamSettings(lease_s=5)
    )
    other = leases(redis, stack_name, "other")
    assert await other.acquire("s")
    target = Target("Fn", adapter.mapping.trigger)
    with pytest.raises(LeaseLost):
        await adapter.handoff(Handoff([env(1)], [target], Checkpoint("s", "11")))
    assert await adapter.leases.checkpoints() == {}


async def test_a_malformed_record_is_skipped_counted_and_checkpointed_past(
    redis: Redis, stack_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Hostile input from the stream: the good records around it are published, the bad
    one is logged and counted, and the shard does not stall on it."""

    def raw(seq: int, **over: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "eventID": f"id{seq}", "eventName": "INSERT", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": datetime(2026, 1, 1, tzinfo=UTC),
                         "Keys": {"pk": {"S": "k"}}, "NewImage": {"pk": {"S": "k"}},
                         "SequenceNumber": str(seq), "SizeBytes": 10,
                         "StreamViewType": "NEW_AND_OLD_IMAGES"},
        }  # fmt: skip
        record.update(over)
        return record

    fn = f"Bad{stack_name}"
    m = StreamMapping(fn, Trigger("Changes", ordered=True, shape="records"), ARN)
    adapter = StreamAdapter(redis, stack_name, m, owner="me", settings=StreamSettings(lease_s=5))
    assert await adapter.leases.acquire("s")
    reader = ShardReader(adapter, Shard("s", None, "1", None), Position("TRIM_HORIZON"))
    caplog.set_level(logging.ERROR, logger="adapters.streams")
    await reader._publish([raw(11), raw(12, eventName="UPSERT"), raw(13)], None)
    stream = FunctionKeys(stack_name, fn).partition_stream(
        partition_hash('Changes\x00{"pk":{"S":"k"}}')
    )
    assert await redis.xlen(stream) == 2
    assert await adapter.leases.checkpoints() == {"s": "13"}
    label = {"adapter": m.label, "reason": "malformed"}
    assert REGISTRY.get_sample_value("lambdabus_stream_records_skipped_total", label) == 1
    assert "skipped record 12 of s" in caplog.text and "UPSERT" in caplog.text
