"""The DynamoDB Streams event source: walk the shards, lease them, read them in lineage.

One :class:`StreamAdapter` per event source mapping (a function's ``DynamoDB``
event), as in Lambda. Its coordinator loop lists the stream's shards
(DescribeStream, every page), works out which may be read now (parents read to
their end first, see :mod:`.shards`), takes leases on up to its fair share of
them and starts a :class:`.reader.ShardReader` per leased shard; new shards
(splits, the four-hourly rollover) are picked up on the next listing, or at once
when a reader finishes a shard. A lease keeper renews every held lease; a
reader whose lease is lost stops. Several replicas may run the same mapping:
each shard has exactly one reader.

Everything the bus's ordered triggers do happens on the bus: records are
published with partition = the item's key, and the worker runs each item's
changes in order, with BatchSize, MaximumBatchingWindowInSeconds,
BisectBatchOnFunctionError, MaximumRetryAttempts, MaximumRecordAgeInSeconds
and ReportBatchItemFailures (see :mod:`bus.ordered`). FilterCriteria is applied
here; filtered records are checkpointed like published ones.

StartingPosition LATEST is the time of the mapping's first start, kept in Redis
with the shards listed then: their records created before it are skipped (see
:mod:`.reader`), so LATEST means the same after any error, restart or takeover.

Exactly-once hand-off: a shard's checkpoint moves only after its records are
on the bus, so a crash in between re-reads at most one GetRecords result per
shard, and the bus's dedupe (envelope id = eventID) drops the repeats within
the trigger's dedupe window (one hour): a re-read comes within a lease TTL when
another replica takes over, or whenever the adapter restarts, so only an
adapter kept down for over an hour right after such a crash could run a record
twice. (A 24-hour window would cover the stream's retention but cost a
remembered id per record for a day.)

Settings not in SAM come from the environment: ``LAMBDABUS_STREAM_LEASE_S``
(lease TTL, default 10), ``LAMBDABUS_STREAM_POLL_S`` (pause after an empty read,
default 0.25: Lambda polls a shard four times a second) and
``LAMBDABUS_STREAM_DISCOVER_S`` (shard listing interval, default 10).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError
from redis.asyncio import Redis

from bus.envelope import Envelope
from bus.keys import StreamSourceKeys
from bus.publish import Target
from bus.spec import Trigger

from ..base import DEFAULT_HIGH_WATER, Adapter, ErrorBackoff, Handoff, Published
from ..patterns import Pattern, compile_pattern, lambda_filter_matches
from ..settings import seconds_from_env
from . import metrics
from .leases import ShardLeases
from .reader import THROTTLE_CODES, Checkpoint, LeaseLost, ShardReader, error_code
from .shards import (
    SHARD_END,
    MalformedShard,
    Position,
    Shard,
    fair_share,
    latest_cut,
    parse_shard,
    readable,
    start_position,
)

log = logging.getLogger(__name__)

PLACEHOLDER_LABEL = "1970-01-01T00:00:00.000"
"""The stream label a template's ``!GetAtt Table.StreamArn`` gets before provisioning."""
DESCRIBE_PAGE = 100


@dataclass(frozen=True)
class StreamSettings:
    lease_s: float = 10.0
    poll_s: float = 0.25
    discover_s: float = 10.0
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 10.0

    @classmethod
    def from_env(cls) -> StreamSettings:
        return cls(
            lease_s=seconds_from_env("LAMBDABUS_STREAM_LEASE_S", 10.0, most=3600),
            poll_s=seconds_from_env("LAMBDABUS_STREAM_POLL_S", 0.25, most=3600),
            discover_s=seconds_from_env("LAMBDABUS_STREAM_DISCOVER_S", 10.0, most=3600),
        )


@dataclass(frozen=True)
class StreamMapping:
    """One event source mapping: a stream, and the function (trigger) its records go to."""

    function: str
    trigger: Trigger
    stream_arn: str
    starting_position: str = "TRIM_HORIZON"
    filters: tuple[Mapping[str, Any] | str, ...] = ()
    on_failure: str | None = None
    """DestinationConfig.OnFailure: an SQS queue or SNS topic ARN."""

    @property
    def name(self) -> str:
        return f"{self.function}.{self.trigger.name}"

    @property
    def label(self) -> str:
        return f"dynamodb:{self.name}"


@dataclass
class Owned:
    reader: ShardReader
    task: asyncio.Task[None]
    since: float = field(default_factory=time.monotonic)


async def _wait(event: asyncio.Event, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout_s)
    except TimeoutError:
        pass


class StreamAdapter(Adapter[Checkpoint]):
    """Reads one stream for one mapping; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        stack: str,
        mapping: StreamMapping,
        *,
        settings: StreamSettings | None = None,
        owner: str | None = None,
        high_water: int = DEFAULT_HIGH_WATER,
        after_publish: Callable[[Handoff[Any]], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(redis, stack, mapping.label, high_water=high_water,
                         after_publish=after_publish)  # fmt: skip
        self.mapping = mapping
        self.settings = settings or StreamSettings.from_env()
        self.target = Target(mapping.function, mapping.trigger)
        self.filters: list[Pattern] = [compile_pattern(p) for p in mapping.filters]
        self.owner = owner or f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.keys = StreamSourceKeys(stack, mapping.name)
        self.leases = ShardLeases(redis, self.keys, self.owner, self.settings.lease_s)
        self.clock = clock
        self.stream_arn = mapping.stream_arn
        self.owned: dict[str, Owned] = {}
        self.shards_done = 0
        self.iterators: deque[tuple[str, Position]] = deque(maxlen=100)
        """The latest GetShardIterator calls (shard, position): for logs and tests."""
        self._resolved = False
        self._initial: set[str] | None = None
        self._started_s = 0.0
        """The mapping's first start (Redis time): StartingPosition LATEST's cut."""
        self.skipped_before_start = 0
        """Records of initial shards skipped as older than a LATEST mapping's start."""
        self._rescan = asyncio.Event()
        self._listing_backoff = ErrorBackoff(self.settings.backoff_base_s,
                                             self.settings.backoff_cap_s)  # fmt: skip
        self._keeper: asyncio.Task[None] | None = None
        self._exit = AsyncExitStack()
        self._owned_gauge = metrics.SHARDS_OWNED.labels(self.label)
        self.streams: Any = None

    # -- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        # botocore's retries off: throttling is backed off (and counted) by the reader.
        config = AioConfig(retries={"total_max_attempts": 1, "mode": "standard"},
                           max_pool_connections=64, read_timeout=30)  # fmt: skip
        self.streams = await self._exit.enter_async_context(
            get_session().create_client("dynamodbstreams", config=config)
        )

    async def start(self) -> None:
        await super().start()
        self._keeper = asyncio.create_task(self._keep_leases(), name=f"{self.label}#leases")

    async def stop(self, grace_s: float = 30.0) -> bool:
        self.stopping = True
        self._stop.set()
        finished = True
        tasks = [o.task for o in self.owned.values()]
        if tasks:
            _, still = await asyncio.wait(tasks, timeout=grace_s)
            finished = not still
            for task in still:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return await super().stop(grace_s) and finished

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        late = [o.task for o in self.owned.values()]  # started while stop() was waiting
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        for shard_id in list(self.owned):
            await self._release(shard_id)
        try:
            await self.leases.leave()
        except Exception:  # the heartbeat lapses by itself
            log.warning("%s: could not leave the readers set", self.label)
        await self._exit.aclose()

    def steps(self) -> list[Callable[[], Awaitable[None]]]:
        return [self.coordinate]

    def watched(self) -> Sequence[Target]:
        """Readers hold before each GetRecords while the function's backlog is over the
        high-water mark (the records wait in the stream); leases are renewed meanwhile."""
        return (self.target,)

    # -- the coordinator ---------------------------------------------------------------

    async def coordinate(self) -> None:
        """List shards, take the readable ones up to the fair share, then wait."""
        self._rescan.clear()  # a reader finishing from here on wakes the wait below
        try:
            await self.resolve()
            shards = await self.describe()
        except ClientError as exc:
            if error_code(exc) not in THROTTLE_CODES:
                raise
            metrics.RECOVERIES.labels(self.label, "throttled").inc()
            log.info("%s: throttled listing shards; backing off", self.label)
            await self.pause(self._listing_backoff.next_delay_s())
            return
        self._listing_backoff.reset()
        readers = await self.leases.heartbeat()
        checkpoints = await self.leases.checkpoints()
        if self._initial is None:
            self._started_s, self._initial = await self.leases.initial(s.id for s in shards)
        unfinished = [s for s in shards if checkpoints.get(s.id) != SHARD_END]
        share = fair_share(len(unfinished), readers)
        self._hand_back_excess(share)
        for shard in readable(shards, checkpoints):
            if len(self.owned) >= share or self.stopping:
                break
            if shard.id in self.owned or not await self.leases.acquire(shard.id):
                continue
            # Re-read after taking the lease: the previous owner may have moved it since.
            checkpoint = (await self.leases.checkpoints()).get(shard.id)
            if checkpoint == SHARD_END:
                await self.leases.release(shard.id)
                continue
            self._own(shard, checkpoint)
        self._owned_gauge.set(len(self.owned))
        await self.interruptible(_wait(self._rescan, self.settings.discover_s))

    def _own(self, shard: Shard, checkpoint: str | None) -> None:
        assert self._initial is not None
        position = start_position(checkpoint)
        cut = latest_cut(self.mapping.starting_position, shard.id in self._initial,
                         self._started_s)  # fmt: skip
        reader = ShardReader(self, shard, position, clock=self.clock, checkpoint=checkpoint,
                             not_before=cut)  # fmt: skip
        task = asyncio.create_task(self._read(reader), name=f"{self.label}:{shard.id}")
        self.owned[shard.id] = Owned(reader, task)
        log.info("%s: reading %s from %s", self.label, shard.id,
                 position.sequence or position.type)  # fmt: skip

    def _hand_back_excess(self, share: int) -> None:
        """More replicas than when we took our shards: let the newest ones go."""
        excess = len(self.owned) - share
        for shard_id, owned in sorted(self.owned.items(), key=lambda kv: -kv[1].since):
            if excess <= 0:
                break
            if not owned.reader.released.is_set():
                owned.reader.released.set()
                excess -= 1
                log.info("%s: handing %s over to another replica", self.label, shard_id)

    async def _read(self, reader: ShardReader) -> None:
        shard_id = reader.shard.id
        try:
            await reader.run()
        finally:
            self.owned.pop(shard_id, None)
            self._owned_gauge.set(len(self.owned))
            self.lag_changed()
            await asyncio.shield(self._release(shard_id))
            if not self.stopping:
                self._rescan.set()

    async def _release(self, shard_id: str) -> None:
        try:
            await self.leases.release(shard_id)
        except Exception:  # it lapses by itself after the TTL
            log.warning("%s: could not release the lease of %s", self.label, shard_id)

    async def _keep_leases(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_s / 3)
            try:
                lost = await self.leases.renew(list(self.owned))
                await self.leases.heartbeat()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Can't tell whether they are still ours; checkpoints are guarded anyway.
                self.count_error()
                log.exception("%s: renewing leases failed", self.label)
                continue
            for shard_id in lost:
                owned = self.owned.get(shard_id)
                if owned is not None:
                    log.warning("%s: the lease of %s was taken over; stopping its reader",
                                self.label, shard_id)  # fmt: skip
                    owned.reader.released.set()

    # -- the stream ---------------------------------------------------------------------

    async def resolve(self) -> None:
        """Find the stream. A template's placeholder ARN (``!GetAtt T.StreamArn`` before AWS
        named the stream) becomes its table's latest stream."""
        if self._resolved:
            return
        if self._placeholder():
            table = self.stream_arn.split(":", 5)[5].split("/")[1]
            found = await self.streams.list_streams(TableName=table)
            arns = sorted(s["StreamArn"] for s in found.get("Streams") or [])
            if not arns:
                raise LookupError(f"table {table} has no stream (StreamSpecification?)")
            self.stream_arn = arns[-1]
        await self.streams.describe_stream(StreamArn=self.stream_arn, Limit=1)
        self._resolved = True

    def _placeholder(self) -> bool:
        return self.stream_arn.endswith(f"/stream/{PLACEHOLDER_LABEL}")

    async def describe(self) -> list[Shard]:
        """Every shard of the stream, following DescribeStream's pages."""
        shards: list[Shard] = []
        start: str | None = None
        for _ in range(100_000):  # bounded: a server that never ends its pages can't spin
            args: dict[str, Any] = {"StreamArn": self.stream_arn, "Limit": DESCRIBE_PAGE}
            if start:
                args["ExclusiveStartShardId"] = start
            description = (await self.streams.describe_stream(**args))["StreamDescription"]
            for raw in description.get("Shards") or []:
                try:
                    shards.append(parse_shard(raw))
                except MalformedShard as exc:  # the others are still read
                    self.count_error()
                    log.error("%s: ignoring a shard DescribeStream listed: %s", self.label, exc)
            start = description.get("LastEvaluatedShardId")
            if not start:
                break
        return shards

    # -- hand-off ------------------------------------------------------------------------

    def passes(self, env: Envelope) -> bool:
        if not self.filters or not isinstance(env.record, Mapping):
            return True
        return lambda_filter_matches(self.filters, env.record, body_field=None)

    async def acknowledge(self, published: Published[Checkpoint]) -> None:
        """The checkpoint, only after the publish; refused when the lease is not ours."""
        cp = published.ack
        if not await self.leases.checkpoint(cp.shard, cp.sequence):
            raise LeaseLost(cp.shard)
        self.counts.acknowledged += 1
        if cp.sequence == SHARD_END:
            self.shards_done += 1

    def lag_changed(self) -> None:
        """IteratorAge: the oldest of the owned shards' last-read record ages."""
        ages = [o.reader.iterator_age_s for o in self.owned.values()]
        self.observe_lag(max(ages, default=0.0))
