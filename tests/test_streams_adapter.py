"""The DynamoDB Streams adapter end to end, with a real Redis.

Against moto's server (over HTTP, via aiobotocore): the replicator keeps a
second table equal to the source through 1,000 random changes; a restarted
adapter resumes from its checkpoint; LATEST and FilterCriteria; a poison record
with BisectBatchOnFunctionError reaches the OnFailure queue while its
partition goes on; ``lambdabus adapter dynamodb`` as a process.

Against ``tests.streams_server`` (DynamoDB Streams' wire protocol, with the
shard splits and closes, iterator expiry, trimming and throttling moto can't
do): lineage keeps every item's changes in order across splits; recoveries are
counted and logged; two replicas share the shards and one takes over a dead
one's shards from their checkpoints.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session
from aws_lambda_powertools.utilities.parser.models import (
    DynamoDBStreamLambdaOnFailureDestinationModel,
    DynamoDBStreamModel,
)
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from adapters.streams import (
    StreamAdapter,
    StreamFailureForwarder,
    StreamSettings,
    mappings_from_template,
)
from adapters.template import load_template
from adapters.template.loaded import LoadedTemplate
from bus.envelope import Envelope, decode
from bus.keys import FunctionKeys
from tests.handlers_bus import PROBES, FlakyError, probe, running, wait_until
from tests.streams_server import StreamsServer

ROOT = Path(__file__).resolve().parents[1]
FAST = StreamSettings(
    lease_s=15.0, poll_s=0.05, discover_s=0.3, backoff_base_s=0.02, backoff_cap_s=0.2
)
"""Short pauses; a lease long enough that a busy test process (moto's server, the worker
and the adapter share one interpreter here) never loses it: a lapsed lease is taken back
and re-read from the checkpoint, deduplicated on the bus but counted as re-reads."""
TAKEOVER = StreamSettings(
    lease_s=2.5, poll_s=0.05, discover_s=0.3, backoff_base_s=0.02, backoff_cap_s=0.2
)
"""A dead replica's shards are taken over after one lease: short for the test, long
enough that a loaded machine's late renewal doesn't hand a live reader's shard over
(two readers of one shard re-read records: deduplicated on the bus, but counted)."""


def fn_name(prefix: str) -> str:
    """Unique per test: probes and Prometheus metrics are process-global."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def poisoned(event: Any, context: Any) -> None:
    """Fails every batch holding a record whose new image says ``poison``."""
    p = PROBES[context.function_name]
    call = p.begin(event, context)
    if any("poison" in (r["dynamodb"].get("NewImage") or {}) for r in call.records):
        p.finish(call, False)
        raise FlakyError("poison record in batch")
    p.finish(call, True)


async def report_once(event: Any, context: Any) -> dict[str, Any]:
    """ReportBatchItemFailures: the first call names the first record marked ``fail``."""
    p = PROBES[context.function_name]
    call = p.begin(event, context)
    p.finish(call, True)
    failed = [r for r in call.records if "fail" in (r["dynamodb"].get("NewImage") or {})]
    if call.n == 1 and failed:
        return {"batchItemFailures": [{"itemIdentifier": failed[0]["dynamodb"]["SequenceNumber"]}]}
    return {"batchItemFailures": []}


@pytest.fixture
async def ddb(aws_env: str) -> AsyncIterator[Any]:
    async with get_session().create_client("dynamodb") as client:
        yield client


async def create_table(ddb: Any, name: str, stream: bool = True) -> str:
    extra = (
        {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}}
        if stream
        else {}
    )
    made = await ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        **extra,
    )
    return str(made["TableDescription"].get("LatestStreamArn", ""))


def write_template(
    tmp_path: Path,
    stack: str,
    fn: str,
    handler: str,
    stream_arn: str,
    code_uri: str = ".",
    **props: Any,
) -> LoadedTemplate:
    props.setdefault("StartingPosition", "TRIM_HORIZON")
    doc = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            fn: {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "Handler": handler,
                    "CodeUri": code_uri,
                    "Timeout": 5,
                    "Events": {
                        "Changes": {
                            "Type": "DynamoDB",
                            "Properties": {"Stream": stream_arn, **props},
                        }
                    },
                },
            }
        },
    }
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(doc))
    return load_template(path, {}, stack)


@asynccontextmanager
async def streaming(
    redis: Redis,
    loaded: LoadedTemplate,
    *,
    owner: str | None = None,
    settings: StreamSettings = FAST,
) -> AsyncIterator[StreamAdapter]:
    [mapping] = mappings_from_template(loaded)
    adapter = StreamAdapter(redis, loaded.stack.name, mapping, settings=settings, owner=owner)
    await adapter.start()
    try:
        yield adapter
    finally:
        await adapter.stop(5)


async def published(redis: Redis, stack: str, fn: str) -> dict[str, list[Envelope]]:
    """What waits on the function's partition streams (no worker runs): key -> envelopes."""
    keys = FunctionKeys(stack, fn)
    out: dict[str, list[Envelope]] = {}
    names: Any = await redis.zrange(keys.partitions, 0, -1)
    for ph in names:
        entries: Any = await redis.xrange(keys.partition_stream(ph.decode()))
        envs = [decode(fields[b"d"]) for _, fields in entries]
        if envs:
            out[str(envs[0].partition)] = envs
    return out


def count_of(n: int, redis: Redis, stack: str, fn: str) -> Any:
    async def check() -> bool:
        return sum(len(v) for v in (await published(redis, stack, fn)).values()) >= n

    return check


async def scan(ddb: Any, table: str) -> dict[str, Any]:
    items: dict[str, Any] = {}
    args: dict[str, Any] = {"TableName": table}
    while True:
        page = await ddb.scan(**args)
        items.update({i["pk"]["S"]: i for i in page["Items"]})
        if "LastEvaluatedKey" not in page:
            return items
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# -- moto: the replicator ------------------------------------------------------------------------


async def test_replicator_keeps_the_replica_equal_through_1000_random_changes(
    tmp_path: Path,
    ddb: Any,
    redis: Redis,
    redis_url: str,
    stack_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src, dst, fn = f"{stack_name}-src", f"{stack_name}-dst", fn_name("Repl")
    arn = await create_table(ddb, src)
    await create_table(ddb, dst, stream=False)
    monkeypatch.setenv("REPLICA_TABLE", dst)  # the worker runs in this process
    loaded = write_template(
        tmp_path,
        stack_name,
        fn,
        "app.lambda_handler",
        arn,
        code_uri=str(ROOT / "functions" / "replicator"),
        BatchSize=50,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    rng = random.Random(20261127)
    batches: list[dict[str, dict[str, Any]]] = [{}]  # BatchWriteItem requests, by key
    for i in range(1000):
        key = f"item-{rng.randrange(40)}"
        if key in batches[-1] or len(batches[-1]) == 25:  # one request per key per batch
            batches.append({})
        if rng.random() < 0.25:
            batches[-1][key] = {"DeleteRequest": {"Key": {"pk": {"S": key}}}}
            continue
        item = {
            "pk": {"S": key},
            "n": {"N": str(i)},
            "blob": {"B": rng.randbytes(6)},
            "doc": {"M": {"tags": {"SS": [f"t{i % 3}", "x"]}, "raw": {"BS": [rng.randbytes(3)]}}},
        }
        if rng.random() < 0.5:
            item["note"] = {"S": f"ünïcødé {i}"}
        batches[-1][key] = {"PutRequest": {"Item": item}}
    assert sum(len(b) for b in batches) == 1000
    async with running(redis_url, loaded.stack, fn), streaming(redis, loaded) as adapter:
        for batch in batches:  # in order: each item's changes happen one after another
            done = await ddb.batch_write_item(RequestItems={src: list(batch.values())})
            assert not done.get("UnprocessedItems")
        source = await scan(ddb, src)
        assert 5 < len(source) < 40  # the random walk left some deleted, some present

        async def replica_equal() -> bool:
            return await scan(ddb, dst) == source

        await wait_until(replica_equal, within=90, what="replica equals source")
    assert adapter.counts.received >= 750  # every put, and the deletes of present items
    assert adapter.counts.duplicates == 0


# -- moto: restart, LATEST, filters ----------------------------------------------------------------


async def test_restart_resumes_from_the_checkpoint(
    tmp_path: Path, ddb: Any, redis: Redis, stack_name: str
) -> None:
    src, fn = f"{stack_name}-src", fn_name("Restart")
    arn = await create_table(ddb, src)
    loaded = write_template(tmp_path, stack_name, fn, "app.h", arn)
    for i in range(10):
        await ddb.put_item(TableName=src, Item={"pk": {"S": f"k{i % 3}"}, "n": {"N": str(i)}})
    async with streaming(redis, loaded) as first:
        await wait_until(count_of(10, redis, stack_name, fn), what="10 published")
        await wait_until(lambda: first.leases.checkpoints(), what="checkpointed")
    [(shard, checkpoint)] = (await first.leases.checkpoints()).items()
    for i in range(10, 15):
        await ddb.put_item(TableName=src, Item={"pk": {"S": f"k{i % 3}"}, "n": {"N": str(i)}})
    async with streaming(redis, loaded) as second:
        await wait_until(count_of(15, redis, stack_name, fn), what="15 published")
        await wait_until(lambda: _moved(second, shard, checkpoint), what="checkpoint moved")
    # Not TRIM_HORIZON (it would read 15) and not LATEST (it would read none).
    assert second.iterators[0] == (shard, second.iterators[0][1])
    assert (second.iterators[0][1].type, second.iterators[0][1].sequence) == (
        "AFTER_SEQUENCE_NUMBER",
        checkpoint,
    )
    assert (second.counts.received, second.counts.published, second.counts.duplicates) == (5, 5, 0)
    by_key = await published(redis, stack_name, fn)
    numbers = {
        k: [int(e.record["dynamodb"]["NewImage"]["n"]["N"]) for e in v] for k, v in by_key.items()
    }
    assert sorted(numbers.values()) == [[0, 3, 6, 9, 12], [1, 4, 7, 10, 13], [2, 5, 8, 11, 14]]


async def _moved(adapter: StreamAdapter, shard: str, old: str) -> bool:
    return (await adapter.leases.checkpoints()).get(shard) != old


async def test_latest_skips_the_backlog_and_filters_drop_but_checkpoint(
    tmp_path: Path, ddb: Any, redis: Redis, stack_name: str
) -> None:
    src, fn = f"{stack_name}-src", fn_name("Latest")
    arn = await create_table(ddb, src)
    pattern = {
        "eventName": ["INSERT", "MODIFY"],
        "dynamodb": {"NewImage": {"keep": {"BOOL": [True]}}},
    }
    loaded = write_template(
        tmp_path,
        stack_name,
        fn,
        "app.h",
        arn,
        StartingPosition="LATEST",
        FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]},
    )
    for i in range(3):  # before the mapping existed: LATEST never sees these
        await ddb.put_item(TableName=src, Item={"pk": {"S": f"old{i}"}, "keep": {"BOOL": True}})
    async with streaming(redis, loaded) as adapter:
        await wait_until(lambda: _has_iterator(adapter), what="reader positioned")
        # LATEST is the mapping's start time, durable in Redis: read from the beginning,
        # skipping what came before (see test_streams_regressions for restarts).
        assert adapter.iterators[0][1].type == "TRIM_HORIZON"
        await ddb.put_item(TableName=src, Item={"pk": {"S": "a"}, "keep": {"BOOL": True}})
        await ddb.put_item(TableName=src, Item={"pk": {"S": "b"}, "keep": {"BOOL": False}})
        await ddb.delete_item(TableName=src, Key={"pk": {"S": "a"}})
        await wait_until(lambda: _received(adapter, 6), what="3 old and 3 new read")
        await wait_until(
            lambda: _checkpointed_past_a(adapter, redis, stack_name, fn), what="checkpointed"
        )
    by_key = await published(redis, stack_name, fn)
    assert adapter.skipped_before_start == 3
    assert [e.record["dynamodb"]["Keys"]["pk"]["S"] for v in by_key.values() for e in v] == ["a"]
    assert adapter.counts.filtered == 2
    checkpoint = next(iter((await adapter.leases.checkpoints()).values()))
    last = max(int(e.record["dynamodb"]["SequenceNumber"]) for v in by_key.values() for e in v)
    assert int(checkpoint) == last + 2  # past the filtered-out records too


async def _checkpointed_past_a(adapter: StreamAdapter, redis: Redis, stack: str, fn: str) -> bool:
    """The checkpoint is past the two filtered-out changes that followed "a"."""
    seqs = [e.record["dynamodb"]["SequenceNumber"]
            for v in (await published(redis, stack, fn)).values() for e in v]  # fmt: skip
    checkpoints = list((await adapter.leases.checkpoints()).values())
    return bool(seqs) and checkpoints == [str(int(seqs[0]) + 2)]


async def _has_iterator(adapter: StreamAdapter) -> bool:
    return bool(adapter.iterators)  # appended once GetShardIterator returned


async def _received(adapter: StreamAdapter, n: int) -> bool:
    return adapter.counts.received >= n


async def _acked(adapter: StreamAdapter, n: int) -> bool:
    return adapter.counts.acknowledged >= n


# -- moto: poison record, bisect, OnFailure -------------------------------------------------------


async def test_poison_record_is_bisected_out_to_on_failure_and_its_partition_goes_on(
    tmp_path: Path, ddb: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    src, fn = f"{stack_name}-src", fn_name("Poison")
    arn = await create_table(ddb, src)
    async with get_session().create_client("sqs") as sqs:
        queue = await sqs.create_queue(QueueName=f"{stack_name}-failed")
        qarn = (
            await sqs.get_queue_attributes(QueueUrl=queue["QueueUrl"], AttributeNames=["QueueArn"])
        )["Attributes"]["QueueArn"]
        loaded = write_template(
            tmp_path,
            stack_name,
            fn,
            "tests.test_streams_adapter.poisoned",
            arn,
            BatchSize=10,
            MaximumBatchingWindowInSeconds=1,
            BisectBatchOnFunctionError=True,
            MaximumRetryAttempts=1,
            DestinationConfig={"OnFailure": {"Destination": qarn}},
        )
        put = [("a", 1, False), ("a", 2, True), ("a", 3, False), ("b", 1, False), ("a", 4, False)]
        for key, n, bad in put:
            item = {
                "pk": {"S": key},
                "n": {"N": str(n)},
                **({"poison": {"BOOL": True}} if bad else {}),
            }
            await ddb.put_item(TableName=src, Item=item)
        p = probe(fn)
        [mapping] = mappings_from_template(loaded)
        forwarder = StreamFailureForwarder(redis, stack_name, mapping, poll_s=0.1)
        await forwarder.start()
        try:
            async with running(redis_url, loaded.stack, fn), streaming(redis, loaded):
                await p.wait(
                    lambda calls: len(_ok(p, "a")) == 3 and len(_ok(p, "b")) == 1, within=30
                )
                await ddb.put_item(TableName=src, Item={"pk": {"S": "a"}, "n": {"N": "5"}})
                await p.wait(lambda calls: _ok(p, "a") == [1, 3, 4, 5], within=15)
                await wait_until(lambda: _sent(forwarder), within=15, what="OnFailure sent")
        finally:
            await forwarder.stop(5)
        got = await sqs.receive_message(QueueUrl=queue["QueueUrl"], WaitTimeSeconds=1)
    for call in p.calls:
        DynamoDBStreamModel.model_validate(call.event)
    # The poison record ran alone MaximumRetryAttempts + 1 times; the good ones once each.
    alone = [c for c in p.calls if len(c.records) == 1 and not c.ok]
    assert len(alone) == 2
    [message] = got["Messages"]
    record = json.loads(message["Body"])
    DynamoDBStreamLambdaOnFailureDestinationModel.model_validate(record)
    poison_seq = alone[0].records[0]["dynamodb"]["SequenceNumber"]
    info = record["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        poison_seq,
        poison_seq,
        1,
    )
    assert info["streamArn"] == arn and info["shardId"].startswith("shardId-")
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2


def _ok(p: Any, key: str) -> list[int]:
    return [
        int(r["dynamodb"]["NewImage"]["n"]["N"])
        for r in p.ok_records()
        if r["dynamodb"]["Keys"]["pk"]["S"] == key
    ]


async def _sent(forwarder: StreamFailureForwarder) -> bool:
    return forwarder.sent >= 1


async def test_report_batch_item_failures_resumes_from_the_lowest_failed_record(
    tmp_path: Path, ddb: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    src, fn = f"{stack_name}-src", fn_name("Partial")
    arn = await create_table(ddb, src)
    loaded = write_template(
        tmp_path, stack_name, fn, "tests.test_streams_adapter.report_once", arn, BatchSize=10,
        MaximumBatchingWindowInSeconds=1, FunctionResponseTypes=["ReportBatchItemFailures"],
    )  # fmt: skip
    for n in range(1, 5):
        extra = {"fail": {"BOOL": True}} if n == 2 else {}
        await ddb.put_item(TableName=src, Item={"pk": {"S": "a"}, "n": {"N": str(n)}, **extra})
    p = probe(fn)
    async with running(redis_url, loaded.stack, fn), streaming(redis, loaded):
        await p.wait(lambda calls: len(calls) == 2, within=20)
    numbers = [[int(r["dynamodb"]["NewImage"]["n"]["N"]) for r in c.records] for c in p.calls]
    assert numbers == [[1, 2, 3, 4], [2, 3, 4]]  # checkpointed before 2, retried from there
    for call in p.calls:
        DynamoDBStreamModel.model_validate(call.event)


# -- the CLI: a standalone replica ----------------------------------------------------------------


async def test_cli_adapter_dynamodb_runs_as_a_process_and_drains_on_sigterm(
    tmp_path: Path, ddb: Any, redis: Redis, redis_url: str, stack_name: str, aws_env: str
) -> None:
    src, fn = f"{stack_name}-src", fn_name("Cli")
    arn = await create_table(ddb, src)
    loaded = write_template(tmp_path, stack_name, fn, "app.h", arn)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LAMBDABUS_STREAM_POLL_S": "0.05",
        "LAMBDABUS_STREAM_DISCOVER_S": "0.3",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.cli",
        "--template",
        str(loaded.path),
        "--stack-name",
        stack_name,
        "--redis-url",
        redis_url,
        "adapter",
        "dynamodb",
        cwd=ROOT,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        while (line := await asyncio.wait_for(proc.stderr.readline(), 30)) != b"lambdabus: ready\n":
            assert line, "adapter process ended before it was ready"
        await ddb.put_item(TableName=src, Item={"pk": {"S": "x"}})
        await wait_until(count_of(1, redis, stack_name, fn), within=20, what="published")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_cli_adapter_dynamodb_refuses_a_template_without_streams(
    tmp_path: Path, redis_url: str
) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        json.dumps(
            {
                "Transform": "AWS::Serverless-2016-10-31",
                "Resources": {"Q": {"Type": "AWS::SQS::Queue"}},
            }
        )
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adapters.cli",
        "--template",
        str(path),
        "--redis-url",
        redis_url,
        "adapter",
        "dynamodb",
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert err.decode().strip().endswith("no DynamoDB event sources to run")


@pytest.mark.parametrize("value", ["abc", "-1", "1e9"])
async def test_cli_adapter_dynamodb_refuses_bad_settings_in_one_line(
    tmp_path: Path, redis_url: str, value: str
) -> None:
    arn = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"
    loaded = write_template(tmp_path, "st", "Fn", "app.h", arn)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", "--template", str(loaded.path),
        "--redis-url", redis_url, "adapter", "dynamodb", cwd=ROOT,
        env={**os.environ, "LAMBDABUS_STREAM_LEASE_S": value}, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    [line] = err.decode().strip().splitlines()
    assert f"LAMBDABUS_STREAM_LEASE_S: expected seconds between 0 and 3600, got {value!r}" in line


# -- the streams test server: lineage, recoveries, replicas ----------------------------------------


@pytest.fixture
async def streams(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StreamsServer]:
    server = StreamsServer(page_size=2)  # several DescribeStream pages
    url = await server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", url)
    try:
        yield server
    finally:
        await server.stop()


def change(
    server: StreamsServer, table: str, expected: dict[str, list[str]], key: str, i: int
) -> None:
    seq = server.put(table, {"pk": {"S": key}, "n": {"N": str(i)}})
    expected.setdefault(key, []).append(seq)


async def test_splits_and_closes_keep_every_items_changes_in_order(
    tmp_path: Path, streams: StreamsServer, redis: Redis, stack_name: str
) -> None:
    table, fn = f"{stack_name}-t", fn_name("Split")
    arn = streams.create_stream(table, shards=2)
    loaded = write_template(tmp_path, stack_name, fn, "app.h", arn)
    expected: dict[str, list[str]] = {}
    keys = [f"k{i}" for i in range(12)]
    async with streaming(redis, loaded) as adapter:
        await wait_until(lambda: _owns(adapter, 2), what="both shards leased")
        streams.stall(True)  # readers see nothing while the shards change under them
        for i, key in enumerate(keys * 2):
            change(streams, table, expected, key, i)
        first, second = streams.open_shards(table)
        left, _right = streams.split_shard(table, first)
        for i, key in enumerate(keys * 2):
            change(streams, table, expected, key, 100 + i)
        streams.close_shard(table, left)
        streams.split_shard(table, second)
        for i, key in enumerate(keys):
            change(streams, table, expected, key, 200 + i)
        streams.stall(False)
        total = sum(len(v) for v in expected.values())
        await wait_until(count_of(total, redis, stack_name, fn), within=30, what="all published")
        checkpoints = await adapter.leases.checkpoints()
    by_key = await published(redis, stack_name, fn)
    got = {
        json.loads(k)["pk"]["S"]: [e.record["dynamodb"]["SequenceNumber"] for e in v]
        for k, v in by_key.items()
    }
    assert got == expected  # parents read to their end before children: order holds
    closed = [
        s["ShardId"]
        for s in streams.shards(table)
        if "EndingSequenceNumber" in s["SequenceNumberRange"]
    ]
    assert len(closed) == 3 and all(checkpoints.get(s) == "SHARD_END" for s in closed)
    assert adapter.shards_done == 3
    assert streams.calls["DescribeStream"] >= 3  # pages followed


async def _owns(adapter: StreamAdapter, n: int) -> bool:
    return len(adapter.owned) == n


async def test_expired_iterators_throttling_and_trimming_are_recovered_and_reported(
    tmp_path: Path,
    streams: StreamsServer,
    redis: Redis,
    stack_name: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    table, fn = f"{stack_name}-t", fn_name("Recover")
    arn = streams.create_stream(table)
    loaded = write_template(tmp_path, stack_name, fn, "app.h", arn)
    label = f"dynamodb:{fn}.Changes"
    expected: dict[str, list[str]] = {}
    caplog.set_level(logging.INFO, logger="adapters.streams")
    async with streaming(redis, loaded) as adapter:
        for i in range(5):
            change(streams, table, expected, f"k{i}", i)
        await wait_until(count_of(5, redis, stack_name, fn), what="5 published")
        streams.expire_iterators()
        for i in range(5, 10):
            change(streams, table, expected, f"k{i % 5}", i)
        await wait_until(count_of(10, redis, stack_name, fn), what="10 published")
        reason = {"adapter": label, "reason": "expired_iterator"}
        assert sample("lambdabus_stream_recoveries_total", reason) >= 1
        streams.throttle(4)
        for i in range(10, 15):
            change(streams, table, expected, f"k{i % 5}", i)
        await wait_until(count_of(15, redis, stack_name, fn), what="15 published")
        reason = {"adapter": label, "reason": "throttled"}
        assert sample("lambdabus_stream_recoveries_total", reason) >= 1
        streams.stall(True)
        for i in range(15, 20):
            change(streams, table, expected, f"k{i % 5}", i)
        dropped = streams.trim(table, 18)  # the 15 read, and 3 never read
        streams.stall(False)
        await wait_until(count_of(17, redis, stack_name, fn), what="the rest published")
        reason = {"adapter": label, "reason": "trimmed"}
        assert sample("lambdabus_stream_recoveries_total", reason) == 1
    seqs = sorted(
        e.record["dynamodb"]["SequenceNumber"]
        for v in (await published(redis, stack_name, fn)).values()
        for e in v
    )
    lost = set(dropped[15:])
    assert seqs == sorted(s for v in expected.values() for s in v if s not in lost)
    text = caplog.text
    assert "expired" in text and "throttled" in text
    # The warning names what was skipped: after the checkpoint, up to the first record left.
    assert f"between {dropped[14]} and {seqs[-2]}" in text
    assert adapter.counts.duplicates == 0


async def test_two_replicas_share_the_shards_and_one_takes_over_a_dead_ones(
    tmp_path: Path,
    streams: StreamsServer,
    redis: Redis,
    stack_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table, fn = f"{stack_name}-t", fn_name("Replicas")
    arn = streams.create_stream(table, shards=4)
    loaded = write_template(tmp_path, stack_name, fn, "app.h", arn)
    expected: dict[str, list[str]] = {}
    for i in range(40):
        change(streams, table, expected, f"k{i % 16}", i)
    async with (
        streaming(redis, loaded, owner="a", settings=TAKEOVER) as a,
        streaming(redis, loaded, owner="b", settings=TAKEOVER) as b,
    ):
        await wait_until(lambda: _split_evenly(a, b), within=15, what="2 shards each")
        await wait_until(count_of(40, redis, stack_name, fn), what="40 published")
        assert not set(a.owned) & set(b.owned)
        taken = set(a.owned)

        async def nothing(*_: Any) -> None:
            return None

        # a dies: its leases and heartbeat are left to expire, as after a SIGKILL.
        monkeypatch.setattr(a.leases, "release", nothing)
        monkeypatch.setattr(a.leases, "leave", nothing)
        await a.stop(5)
        checkpoints = await b.leases.checkpoints()
        for i in range(40, 60):
            change(streams, table, expected, f"k{i % 16}", i)
        await wait_until(lambda: _owns(b, 4), within=15, what="b took a's shards")
        await wait_until(count_of(60, redis, stack_name, fn), what="60 published")
    resumed = {shard: pos for shard, pos in b.iterators if shard in taken}
    for shard in taken:
        cp = checkpoints.get(shard)
        assert resumed[shard].sequence == cp and resumed[shard].type == (
            "AFTER_SEQUENCE_NUMBER" if cp else "TRIM_HORIZON"
        )
    assert a.counts.duplicates + b.counts.duplicates == 0
    by_key = await published(redis, stack_name, fn)
    got = {
        json.loads(k)["pk"]["S"]: [e.record["dynamodb"]["SequenceNumber"] for e in v]
        for k, v in by_key.items()
    }
    assert got == expected


async def _split_evenly(a: StreamAdapter, b: StreamAdapter) -> bool:
    return len(a.owned) == 2 and len(b.owned) == 2


async def test_reading_holds_while_the_functions_backlog_is_over_the_high_water_mark(
    tmp_path: Path, streams: StreamsServer, redis: Redis, stack_name: str
) -> None:
    table, fn = f"{stack_name}-t", fn_name("Backlog")
    arn = streams.create_stream(table)
    loaded = write_template(tmp_path, stack_name, fn, "app.h", arn)
    expected: dict[str, list[str]] = {}
    [mapping] = mappings_from_template(loaded)
    adapter = StreamAdapter(redis, stack_name, mapping, settings=FAST, high_water=5)
    await adapter.start()
    try:
        for i in range(8):
            change(streams, table, expected, f"k{i}", i)
        await wait_until(count_of(8, redis, stack_name, fn), what="first read published")
        reads = streams.calls["GetRecords"]
        for i in range(8, 12):
            change(streams, table, expected, f"k{i}", i)
        await wait_until(lambda: _paused(adapter), what="reader held")
        held_at = streams.calls["GetRecords"]
        assert held_at <= reads + 1  # at most the read that was in flight
        assert sum(len(v) for v in (await published(redis, stack_name, fn)).values()) == 8
        keys = FunctionKeys(stack_name, fn)
        names: Any = await redis.zrange(keys.partitions, 0, -1)
        for ph in names[:6]:  # a worker ran six partitions: the backlog drops below 5
            await redis.delete(keys.partition_stream(ph.decode()))
            await redis.zrem(keys.partitions, ph)
        await wait_until(count_of(6, redis, stack_name, fn), what="the rest published")
        left = await published(redis, stack_name, fn)
        assert {json.loads(k)["pk"]["S"] for k in left} >= {"k8", "k9", "k10", "k11"}
    finally:
        await adapter.stop(5)


async def _paused(adapter: StreamAdapter) -> bool:
    return adapter.paused


async def test_iterator_age_and_shards_owned_are_exported(
    tmp_path: Path, streams: StreamsServer, redis: Redis, stack_name: str
) -> None:
    table, fn = f"{stack_name}-t", fn_name("Lag")
    arn = streams.create_stream(table, shards=3)
    loaded = write_template(tmp_path, stack_name, fn, "app.h", arn)
    label = {"adapter": f"dynamodb:{fn}.Changes"}
    seen: list[tuple[float, float]] = []

    async def observe(_: Any) -> None:  # between publish and checkpoint
        seen.append((sample("lambdabus_source_lag_seconds", label),
                     sample("lambdabus_stream_shards_owned", label)))  # fmt: skip

    [mapping] = mappings_from_template(loaded)
    later = StreamAdapter(redis, stack_name, mapping, settings=FAST, after_publish=observe,
                          clock=lambda: time.time() + 3600)  # fmt: skip
    await later.start()
    try:
        streams.put(table, {"pk": {"S": "a"}})
        await wait_until(lambda: _acked(later, 1), what="published")
    finally:
        await later.stop(5)
    lag, owned = seen[0]
    assert 3590 < lag < 3700  # IteratorAge: the last record read is an hour old by that clock
    assert owned == 3
    assert sample("lambdabus_stream_records_read_total", label) == 1
