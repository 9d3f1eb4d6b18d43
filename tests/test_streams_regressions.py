"""Regressions of the DynamoDB Streams adapter found by review, each against real parts
(redis-server, tests.streams_server over HTTP, moto's SQS):

- StartingPosition LATEST survives a failed GetRecords and a restart before the shard's
  first checkpoint (it used to take a fresh LATEST iterator and skip what came meanwhile);
- stream backpressure sees a function's whole ordered backlog, not its first 100 keys;
- a mapping's first start on a stream listing 8,000+ shards;
- one given-up batch larger than one dead-letter read is one OnFailure record, and its
  condition is judged when it was given up.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.session import get_session
from aws_lambda_powertools.utilities.parser.models import (
    DynamoDBStreamLambdaOnFailureDestinationModel,
    DynamoDBStreamModel,
)
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from adapters.base import Backlog
from adapters.streams import StreamAdapter, StreamFailureForwarder, StreamMapping, StreamSettings
from adapters.streams.failures import failure_record
from adapters.streams.leases import ShardLeases
from bus.backlog import ordered_backlog
from bus.envelope import Envelope, decode, encode
from bus.keys import FunctionKeys, StreamSourceKeys
from bus.scripts import DEAD_LETTER
from bus.spec import Trigger
from tests.handlers_bus import wait_until
from tests.streams_server import StreamsServer

QUIET = StreamSettings(
    lease_s=3.0, poll_s=0.05, discover_s=30.0, backoff_base_s=0.02, backoff_cap_s=0.2
)
"""One shard listing at start, then none: a throttle armed later hits a GetRecords."""
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/src/stream/2026-01-01T00:00:00.000"


def trigger(**over: Any) -> Trigger:
    args: dict[str, Any] = dict(name="Changes", batch_size=100, shape="records", ordered=True,
                                partial_batch="checkpoint", max_retry_attempts=-1)  # fmt: skip
    return Trigger(**{**args, **over})


def fn_name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


class Clock:
    """The streams server's clock (ApproximateCreationDateTime), movable by a test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
async def clocked(
    aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[StreamsServer, Clock]]:
    clock = Clock()
    server = StreamsServer(clock=clock)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", await server.start())
    try:
        yield server, clock
    finally:
        await server.stop()


async def published(redis: Redis, stack: str, fn: str) -> list[dict[str, Any]]:
    """The records waiting on the function's partition streams (no worker runs)."""
    keys = FunctionKeys(stack, fn)
    out: list[dict[str, Any]] = []
    for ph in await redis.zrange(keys.partitions, 0, -1):
        for _, fields in await redis.xrange(keys.partition_stream(ph.decode())):
            out.append(decode(fields[b"d"]).record)
    return out


def keys_of(records: list[dict[str, Any]]) -> set[str]:
    return {r["dynamodb"]["Keys"]["pk"]["S"] for r in records}


# -- 1. StartingPosition LATEST is durable ---------------------------------------------------


async def test_latest_loses_nothing_to_a_failed_read_before_the_first_record(
    clocked: tuple[StreamsServer, Clock], redis: Redis, stack_name: str
) -> None:
    server, clock = clocked
    table, fn = f"{stack_name}-t", fn_name("Latest")
    arn = server.create_stream(table)
    clock.offset = -100.0  # written well before the mapping existed: LATEST skips these
    for i in range(3):
        server.put(table, {"pk": {"S": f"old{i}"}})
    clock.offset = 0.0
    mapping = StreamMapping(fn, trigger(), arn, starting_position="LATEST")
    adapter = StreamAdapter(redis, stack_name, mapping, settings=QUIET)
    await adapter.start()
    try:
        await wait_until(lambda: _skipped(adapter, 3), what="old records skipped")
        server.stall(True)  # reads come back empty, in place: the reader waits before...
        for i in range(5):
            server.put(table, {"pk": {"S": f"new{i}"}})  # ...these, written after the start
        iterators = len(adapter.iterators)
        server.throttle(1)  # the next GetRecords fails
        await wait_until(lambda: _throttled(server), what="a GetRecords throttled")
        server.stall(False)
        await wait_until(lambda: _count(redis, stack_name, fn, 5), what="5 published")
        assert len(adapter.iterators) == iterators  # a throttle keeps the iterator
    finally:
        await adapter.stop(5)
    records = await published(redis, stack_name, fn)
    assert keys_of(records) == {f"new{i}" for i in range(5)} and len(records) == 5
    DynamoDBStreamModel.model_validate({"Records": records})


async def test_latest_resumes_after_a_restart_before_the_first_record(
    clocked: tuple[StreamsServer, Clock], redis: Redis, stack_name: str
) -> None:
    server, _ = clocked
    table, fn = f"{stack_name}-t", fn_name("Restart")
    arn = server.create_stream(table)
    mapping = StreamMapping(fn, trigger(), arn, starting_position="LATEST")
    first = StreamAdapter(redis, stack_name, mapping, settings=QUIET)
    await first.start()
    try:
        await wait_until(lambda: _positioned(first), what="reader positioned")
    finally:
        await first.stop(5)
    assert await first.leases.checkpoints() == {}  # nothing read: no checkpoint to resume
    for i in range(5):  # written while no adapter runs
        server.put(table, {"pk": {"S": f"k{i}"}})
    second = StreamAdapter(redis, stack_name, mapping, settings=QUIET)
    await second.start()
    try:
        await wait_until(lambda: _count(redis, stack_name, fn, 5), what="5 published")
    finally:
        await second.stop(5)
    assert keys_of(await published(redis, stack_name, fn)) == {f"k{i}" for i in range(5)}
    assert second.skipped_before_start == 0


async def _skipped(adapter: StreamAdapter, n: int) -> bool:
    return adapter.skipped_before_start >= n


async def _throttled(server: StreamsServer) -> bool:
    return server.errors["LimitExceededException"] >= 1


async def _positioned(adapter: StreamAdapter) -> bool:
    return bool(adapter.iterators)


async def _count(redis: Redis, stack: str, fn: str, n: int) -> bool:
    return len(await published(redis, stack, fn)) >= n


# -- 2. backpressure over more than 100 item keys ---------------------------------------------


async def test_backlog_counts_every_partition_not_the_first_hundred(
    redis: Redis, stack_name: str
) -> None:
    keys = FunctionKeys(stack_name, "Fn")
    pipe = redis.pipeline(transaction=False)
    for i in range(300):  # 300 item keys, one record waiting in each
        pipe.xadd(keys.partition_stream(f"p{i:03d}"), {"d": b"x"})
        pipe.zadd(keys.partitions, {f"p{i:03d}": i})
    await pipe.execute()
    depth = await Backlog(redis, stack_name).depth("Fn", ordered=True)
    assert depth == 300
    assert depth == await ordered_backlog(redis, keys)  # the backlog gauge's own estimate


# -- 3. a first start on a stream of many shards ----------------------------------------------


async def test_initial_shards_of_a_stream_listing_9000_shards(
    redis: Redis, stack_name: str
) -> None:
    keys = StreamSourceKeys(stack_name, "Fn.Changes")
    a = ShardLeases(redis, keys, "a", 5.0)
    ids = [f"shardId-{i:020d}-abcdefgh" for i in range(9000)]
    before = time.time()
    started, shards = await a.initial(ids)
    assert shards == set(ids)
    assert before - 5 < started < time.time() + 5  # Redis's clock, near ours
    again = await ShardLeases(redis, keys, "b", 5.0).initial([*ids, "shardId-new"])
    assert again == (started, set(ids))  # fixed once, by the first start


# -- 4. OnFailure: one record per given-up batch ----------------------------------------------


def letter(i: int, partition: str, at: float = 1_000.0) -> Envelope:
    record = {
        "eventID": f"e{i}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": ARN,
        "dynamodb": {"Keys": {"pk": {"S": partition}}, "SequenceNumber": str(10**20 + i),
                     "SizeBytes": 10, "StreamViewType": "KEYS_ONLY"},
    }  # fmt: skip
    return Envelope(id=f"e{i}", source="aws:dynamodb", type="INSERT", trigger="Changes",
                    record=record, time=at, subject="shardId-00000001-aaaa",
                    partition=partition, first_seen=at)  # fmt: skip


async def give_up(redis: Redis, stack: str, envs: list[Envelope]) -> None:
    """What the bus writes when it gives up on a batch: one DEAD_LETTER script call."""
    args: list[Any] = [""]
    for env in envs:
        args += ["", encode(env), "FlakyError", "boom", "", "RetriesExhausted", "3"]
    keys = FunctionKeys(stack, "Fn")
    await redis.register_script(DEAD_LETTER)(
        keys=[keys.partition_stream("x"), keys.dead_letters], args=args
    )


async def test_a_batch_longer_than_one_read_is_one_on_failure_record(
    aws_env: str, redis: Redis, stack_name: str
) -> None:
    async with get_session().create_client("sqs") as sqs:
        url = (await sqs.create_queue(QueueName=f"{stack_name}-failed"))["QueueUrl"]
        qarn = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))[
            "Attributes"
        ]["QueueArn"]
        await give_up(redis, stack_name, [letter(i, "a") for i in range(150)])
        await give_up(redis, stack_name, [letter(i, "b") for i in range(150, 180)])
        mapping = StreamMapping("Fn", trigger(), ARN, on_failure=qarn)
        forwarder = StreamFailureForwarder(redis, stack_name, mapping, poll_s=0.05)
        await forwarder.start()
        try:
            await wait_until(lambda: _sent(forwarder, 2), what="two OnFailure records")
        finally:
            await forwarder.stop(5)
        got: list[dict[str, Any]] = []
        for _ in range(5):
            reply = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            got += [json.loads(m["Body"]) for m in reply.get("Messages", [])]
            if len(got) >= 2:
                break
    assert forwarder.sent == 2
    for record in got:
        DynamoDBStreamLambdaOnFailureDestinationModel.model_validate(record)
    spans = sorted(
        (
            r["DDBStreamBatchInfo"]["batchSize"],
            r["DDBStreamBatchInfo"]["startSequenceNumber"],
            r["DDBStreamBatchInfo"]["endSequenceNumber"],
        )
        for r in got
    )
    assert spans == [
        (30, str(10**20 + 150), str(10**20 + 179)),
        (150, str(10**20), str(10**20 + 149)),
    ]
    cursor = await redis.get(StreamSourceKeys(stack_name, mapping.name).failures_cursor)
    last: Any = await redis.xrevrange(FunctionKeys(stack_name, "Fn").dead_letters, count=1)
    assert cursor == last[0][0]  # everything sent: a restart sends nothing again


async def test_a_failed_send_of_a_carried_batch_is_retried_whole(
    aws_env: str, redis: Redis, stack_name: str
) -> None:
    name = f"{stack_name}-later"
    qarn = f"arn:aws:sqs:us-east-1:123456789012:{name}"  # created only after a failed send
    await give_up(redis, stack_name, [letter(i, "a") for i in range(150)])
    mapping = StreamMapping("Fn", trigger(), ARN, on_failure=qarn)
    forwarder = StreamFailureForwarder(redis, stack_name, mapping, poll_s=0.05)
    errors = {"adapter": forwarder.label}
    before = await _errors(errors)
    await forwarder.start()
    try:
        await wait_until(lambda: _more_errors(errors, before), what="the send failed")
        async with get_session().create_client("sqs") as sqs:
            url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
            await wait_until(lambda: _sent(forwarder, 1), what="sent after the queue exists")
            reply = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
    finally:
        await forwarder.stop(5)
    [message] = reply["Messages"]
    info = json.loads(message["Body"])["DDBStreamBatchInfo"]
    assert (info["batchSize"], forwarder.sent) == (150, 1)


async def _errors(labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value("lambdabus_adapter_errors_total", labels) or 0.0


async def _more_errors(labels: dict[str, str], than: float) -> bool:
    return await _errors(labels) > than


async def _sent(forwarder: StreamFailureForwarder, n: int) -> bool:
    return forwarder.sent >= n


def test_on_failure_condition_is_judged_at_the_give_up_not_at_the_send() -> None:
    mapping = StreamMapping("Fn", trigger(max_record_age_s=60.0), ARN, on_failure="arn:x")
    env = letter(1, "a", at=1_000.0)

    def condition(reason: bytes, failed_at_s: float, now: float) -> str:
        fields = {b"reason": reason, b"attempts": b"3",
                  b"failed_at_ms": str(int(failed_at_s * 1000)).encode()}  # fmt: skip
        record = failure_record([(b"1-0", env, fields)], mapping, ARN, now)
        DynamoDBStreamLambdaOnFailureDestinationModel.model_validate(record)
        return str(record["requestContext"]["condition"])

    # Retries ran out 10 s after the record's creation; it is sent an hour later.
    assert condition(b"RetriesExhausted", 1_010.0, 4_600.0) == "RetryAttemptsExhausted"
    # Given up past MaximumRecordAgeInSeconds: by the time of the give-up, or the reason.
    assert condition(b"RetriesExhausted", 1_061.0, 1_061.0) == "RecordAgeExceeded"
    assert condition(b"EventAgeExceeded", 1_010.0, 1_010.0) == "RecordAgeExceeded"
