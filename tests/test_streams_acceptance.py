"""Issue 5's acceptance: DynamoDB Streams, ordered, checkpointed, shared between replicas.

Against the streams test server (:mod:`tests.streams_server`, in this process): two
``lambdabus adapter dynamodb`` replicas (subprocesses) and one ``lambdabus worker``
running a replicator (:mod:`tests.handlers_streams`) carry 5,000 changes over 50
keys across four shard generations (splits and closes). One replica is SIGKILLed
while it holds shards, every iterator expires right after, and 300 records are
trimmed before anyone could read them (the server stalls reads meanwhile, as AWS
may). Sequence numbers cross from 21 to 22 digits on the way, so comparing them as
text would show up. Then:

- the replica table equals the source table;
- per key, the handler saw changes in sequence-number order;
- every record that was not trimmed was delivered, and only the trimmed were lost;
- no eventID reached the handler twice (nothing published twice to the bus);
- the surviving replica reported the trim;
- every event validates under powertools' ``DynamoDBStreamModel`` (in the handler).

Progress is awaited by bounded polling of Redis and the adapters' /metrics.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.handlers_streams import DONE, EVENTS, INVALID, REPLICA, SEEN
from tests.procs import ROOT, WorkerProc, eventually, metric
from tests.streams_server import StreamsServer, key_string

pytestmark = pytest.mark.timeout(170)

REGION = "us-east-1"
TABLE = "source"
KEYS = [f"user#{i:02d}" for i in range(50)]
TOTAL = 5000
LOST = 300
"""Records trimmed while no reader could see them."""
WAIT_S = 60.0

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Replicator:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {root}
      Handler: tests.handlers_streams.replicate
      Timeout: 10
      Events:
        Changes:
          Type: DynamoDB
          Properties:
            Stream: {arn}
            StartingPosition: TRIM_HORIZON
            BatchSize: 50
"""


class Feed:
    """Scripted item changes: puts (INSERT/MODIFY) and deletes, every one a record."""

    def __init__(self, server: StreamsServer, seed: int = 5) -> None:
        self.server = server
        self.rng = random.Random(seed)
        self.written: list[str] = []
        self.version = 0

    def change(self, key: str | None = None, *, delete_share: float = 0.1) -> None:
        key = key or self.rng.choice(KEYS)
        present = key_string({"pk": {"S": key}}) in self.server.items(TABLE)
        if present and self.rng.random() < delete_share:
            seq = self.server.delete(TABLE, {"pk": {"S": key}})
        else:
            self.version += 1
            item = {"pk": {"S": key}, "n": {"N": str(self.version)},
                    "tag": {"S": self.rng.choice("abcdef") * self.rng.randint(1, 20)}}  # fmt: skip
            seq = self.server.put(TABLE, item)
        assert seq is not None
        self.written.append(seq)

    def changes(self, n: int) -> None:
        for _ in range(n):
            self.change()


@contextmanager
def processes() -> Iterator[list[WorkerProc]]:
    procs: list[WorkerProc] = []
    try:
        yield procs
    finally:
        for proc in procs:
            alive = proc.popen.poll() is None
            proc.force_close()
            how = "killed at teardown" if alive else f"exit {proc.popen.returncode}"
            print(f"--- {proc.label} pid {proc.pid} ({how}) ---")
            print(proc.output(200))


def spawn(procs: list[WorkerProc], label: str, redis_url: str, template: Path,
          endpoint: str, *command: str) -> WorkerProc:  # fmt: skip
    argv = [sys.executable, "-m", "adapters.cli", "--redis-url", redis_url,
            "--template", str(template), "--stack-name", "streamsacc", *command,
            "--admin-port", "0", "--grace", "5"]  # fmt: skip
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(ROOT),
        PYTHONUNBUFFERED="1",
        TEST_REDIS_URL=redis_url,
        LAMBDABUS_INVOCATION_LOGS="0",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL_DYNAMODB_STREAMS=endpoint,
        LAMBDABUS_STREAM_LEASE_S="3",
        LAMBDABUS_STREAM_POLL_S="0.05",
        LAMBDABUS_STREAM_DISCOVER_S="0.5",
    )
    env.pop("AWS_ENDPOINT_URL", None)
    proc = WorkerProc(argv, env, label)
    procs.append(proc)
    return proc


async def count(redis: Redis, key: str) -> int:
    return int(await redis.get(key) or 0)


async def shards_owned(proc: WorkerProc) -> float:
    return metric(await proc.metrics(), "lambdabus_stream_shards_owned") or 0.0


def generations(server: StreamsServer) -> int:
    parents = {s["ShardId"]: s.get("ParentShardId") for s in server.shards(TABLE)}

    def depth(shard: str | None) -> int:
        return 0 if shard is None else 1 + depth(parents.get(shard))

    return max(depth(s) for s in parents)


async def test_two_replicas_one_killed_deliver_every_change_in_order(
    redis_url: str, redis: Redis, tmp_path: Path
) -> None:
    server = StreamsServer(REGION, page_size=3, first_sequence=10**21 - 2500)
    endpoint = await server.start()
    try:
        await _scenario(server, endpoint, redis_url, redis, tmp_path)
    finally:
        await server.stop()


async def _scenario(server: StreamsServer, endpoint: str, redis_url: str, redis: Redis,
                    tmp_path: Path) -> None:  # fmt: skip
    arn = server.create_stream(TABLE, shards=2)
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE.format(root=ROOT, arn=arn))
    feed = Feed(server)
    with processes() as procs:
        worker = spawn(procs, "worker", redis_url, template, endpoint,
                       "worker", "--function", "Replicator")  # fmt: skip
        a = spawn(procs, "adapter-a", redis_url, template, endpoint, "adapter", "dynamodb")
        b = spawn(procs, "adapter-b", redis_url, template, endpoint, "adapter", "dynamodb")
        for proc in (worker, a, b):
            await proc.wait_ready()

        # generation 0: two shards
        feed.changes(1200)
        await eventually(lambda: _at_least(redis, 600), "600 changes handled", WAIT_S)

        # generation 1: both split; A is killed while it holds shards, then every
        # iterator expires
        for shard in server.open_shards(TABLE):
            server.split_shard(TABLE, shard)
        feed.changes(1000)
        await eventually(lambda: _both_read(a, b), "both replicas hold shards", WAIT_S)
        assert await a.kill() == -signal.SIGKILL
        print(f"killed A at {await count(redis, DONE)} of {len(feed.written)} handled")
        await eventually(lambda: _expire(server), "a reader meets an expired iterator", WAIT_S)

        # generation 2: one closed, one split
        first, second = server.open_shards(TABLE)[:2]
        server.close_shard(TABLE, first)
        server.split_shard(TABLE, second)
        feed.changes(1000)

        # the trim: once everything so far is handled, hold readers back, write, and
        # trim the oldest LOST of the new records (all older ones are gone too)
        before = len(feed.written)
        await eventually(lambda: _at_least(redis, before), f"{before} changes handled", WAIT_S)
        server.stall()
        feed.changes(600)
        trimmed = server.trim(TABLE, before + LOST)
        server.stall(False)
        unread = set(feed.written[before : before + LOST])
        assert set(trimmed[before:]) == unread

        # generation 3: two more splits; every key changes again after the trim
        for shard in server.open_shards(TABLE)[-2:]:  # the newest: a fourth generation
            server.split_shard(TABLE, shard)
        for key in KEYS:
            feed.change(key, delete_share=0.0)
        feed.changes(TOTAL - len(feed.written))
        assert len(feed.written) == TOTAL and generations(server) == 4

        expected = TOTAL - LOST
        await eventually(lambda: _delivered(redis, expected), f"{expected} events", WAIT_S)
        samples = await b.metrics()
        print("server calls", dict(server.calls), "errors", dict(server.errors))
        read = metric(samples, "lambdabus_stream_records_read_total") or 0
        published = metric(samples, "lambdabus_events_published_total") or 0
        print(f"survivor read {read:.0f} records, published {published:.0f}")
        assert (metric(samples, "lambdabus_stream_recoveries_total", reason="trimmed") or 0) >= 1
        assert await b.stop() == 0  # hands everything back: no late re-read can follow
        assert await worker.stop() == 0
        await _check(server, feed, redis, unread, b)


async def _both_read(a: WorkerProc, b: WorkerProc) -> bool:
    return await shards_owned(a) > 0 and await shards_owned(b) > 0


async def _expire(server: StreamsServer) -> bool:
    """Expire every iterator until a reader has used one issued before (a reader between
    shards holds none, and fresh iterators would not expire)."""
    if server.errors["ExpiredIteratorException"]:
        return True
    server.expire_iterators()
    return False


async def _at_least(redis: Redis, n: int) -> bool:
    return await count(redis, DONE) >= n


async def _delivered(redis: Redis, n: int) -> bool:
    return int(await redis.hlen(EVENTS)) >= n


async def _check(server: StreamsServer, feed: Feed, redis: Redis, unread: set[str],
                 survivor: WorkerProc) -> None:  # fmt: skip
    assert await redis.lrange(INVALID, 0, -1) == []

    # the replica table equals the source table
    rows = (await redis.hgetall(REPLICA)).items()
    replica = {k.decode() if isinstance(k, bytes) else k: json.loads(v) for k, v in rows}
    assert replica == server.items(TABLE)

    # per key, in sequence-number order; nothing lost but the trimmed
    delivered: list[int] = []
    for key in (
        server.items(TABLE).keys() | replica.keys() | {key_string({"pk": {"S": k}}) for k in KEYS}
    ):
        seen = [int(s) for s in await redis.lrange(SEEN + key, 0, -1)]
        assert seen == sorted(set(seen)), f"{key}: out of order or repeated: {seen}"
        delivered += seen
    written = {int(s) for s in feed.written}
    lost = written - set(delivered)
    assert set(delivered) <= written
    beyond = sorted(lost - {int(s) for s in unread})
    assert not beyond, f"{len(beyond)} lost that were not trimmed, e.g. {beyond[:5]}"
    assert lost == {int(s) for s in unread}

    # nothing twice
    times = [int(v) for v in (await redis.hgetall(EVENTS)).values()]
    assert len(times) == TOTAL - len(unread) and set(times) == {1}
    assert await count(redis, DONE) == len(times)

    # the server saw what the scenario did, and the survivor reported the trim
    assert server.errors["ExpiredIteratorException"] >= 1
    assert server.errors["TrimmedDataAccessException"] >= 1
    assert "trimmed" in survivor.output(10_000)
