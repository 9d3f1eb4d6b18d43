"""Reading one shard: GetRecords until the shard ends, publish, then checkpoint.

A reader owns its shard's lease (see :mod:`.leases`). It starts after the
checkpoint (AFTER_SEQUENCE_NUMBER), or at TRIM_HORIZON for a shard never read
(:func:`.shards.start_position`). StartingPosition LATEST is durable: it is the
mapping's first start time, kept in Redis, and a reader of a shard listed then
skips (and checkpoints past) the records created before it
(``not_before``), so a failure, restart or takeover before the shard's first
checkpoint loses nothing written after the start. The price is reading such a
shard's older records once, to skip them; and the cut compares Redis's clock with
AWS's creation times, so a skew between the two moves it by as much.

Each GetRecords result becomes one handoff: its records are published to the
ordered trigger (envelope id = eventID, so a re-read after a crash publishes
nothing twice) and only then the checkpoint moves to the last record. A closed
shard read to its end (no NextShardIterator) is checkpointed ``SHARD_END`` and
released, which lets its children be read.

Recovery, always from the checkpoint and never silently (an iterator is only
given up when the error says it is bad; other errors retry the same one):
- ExpiredIteratorException (iterators live 15 minutes): a new iterator after
  the checkpoint; counted (``lambdabus_stream_recoveries_total{reason=
  "expired_iterator"}``) and logged.
- TrimmedDataAccessException (records are kept 24 hours): restart at
  TRIM_HORIZON; counted, and a warning names the sequence numbers between the
  checkpoint and the first record still there, which were lost.
- Throttling (LimitExceededException and friends): an exponential, jittered
  pause; botocore's own retries are off for this client so every throttle is
  seen, counted and backed off here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bus.envelope import MAX_ENTRY_BYTES, Envelope, encode

from ..base import ErrorBackoff, Handoff
from . import metrics
from .records import MalformedRecord, envelope, lambda_record
from .shards import SHARD_END, Position, Shard, created_since

if TYPE_CHECKING:
    from .adapter import StreamAdapter

log = logging.getLogger(__name__)

GET_RECORDS_LIMIT = 1000
THROTTLE_CODES = frozenset(
    {
        "LimitExceededException",
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
    }
)

RESTARTS = frozenset({"ExpiredIteratorException", "TrimmedDataAccessException"})
BAD_ITERATOR = RESTARTS | {"ValidationException", "ResourceNotFoundException"}
"""Errors after which the iterator is not used again (it expired, points at trimmed
records, or is invalid); after any other error the same iterator is retried."""
ITERATOR_RETRIES = 5
"""Consecutive failures after which even an unexplained error gets a fresh iterator
(from the checkpoint, so nothing is skipped)."""


class LeaseLost(Exception):
    """The shard's lease is someone else's now; stop reading it."""


@dataclass(frozen=True)
class Checkpoint:
    """What a handoff acknowledges: the shard's position after it."""

    shard: str
    sequence: str
    """Last published record's sequence number, or SHARD_END."""


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


@dataclass
class ShardReader:
    adapter: StreamAdapter
    shard: Shard
    position: Position
    clock: Callable[[], float] = time.time
    released: asyncio.Event = field(default_factory=asyncio.Event)
    """Set to make the reader stop after its current handoff (lease lost or handed over)."""
    checkpoint: str | None = None
    not_before: float | None = None
    """StartingPosition LATEST: skip records created before this (epoch seconds)."""
    iterator_age_s: float = 0.0
    _trimmed_after: str | None = None

    @property
    def label(self) -> str:
        return self.adapter.label

    async def run(self) -> None:
        """Read until the shard ends, the reader is released, or the adapter stops."""
        a = self.adapter
        backoff = ErrorBackoff(a.settings.backoff_base_s, a.settings.backoff_cap_s)
        iterator: str | None = None
        while not a.stopping and not self.released.is_set():
            try:
                await a.wait_for_room()
                if a.stopping or self.released.is_set():
                    return
                if iterator is None:
                    iterator = await self._iterator()
                    if iterator is None:  # the shard is gone: nothing left to read
                        await self._finish([])
                        return
                response = await a.interruptible(
                    a.streams.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
                )
                if response is None:  # stopping
                    return
                backoff.reset()
                records = list(response.get("Records") or [])
                following = response.get("NextShardIterator")
                if following is None:
                    await self._finish(records)
                    return
                if records:
                    await self._publish(records, None)
                else:
                    self.iterator_age_s = 0.0
                    a.lag_changed()
                iterator = following
                if not records:
                    await a.pause(a.settings.poll_s)
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                log.warning("%s: lost the lease of %s; another replica continues it",
                            self.label, self.shard.id)  # fmt: skip
                return
            except Exception as exc:
                if error_code(exc) in BAD_ITERATOR or backoff.failures + 1 >= ITERATOR_RETRIES:
                    iterator = None
                if not self._recover(exc):
                    a.count_error()
                    log.exception("%s: reading %s failed; retrying from the checkpoint",
                                  self.label, self.shard.id)  # fmt: skip
                delay = backoff.next_delay_s()
                if backoff.failures == 1 and error_code(exc) in RESTARTS:
                    delay = 0.0  # a fresh iterator at once; again and again only with backoff
                await a.pause(delay)

    def _recover(self, exc: BaseException) -> bool:
        """Count and log a recoverable error; False for anything unexpected."""
        code = error_code(exc)
        if code == "ExpiredIteratorException":
            metrics.RECOVERIES.labels(self.label, "expired_iterator").inc()
            log.info("%s: iterator of %s expired; resuming after %s", self.label,
                     self.shard.id, self.checkpoint or self.position.type)  # fmt: skip
            self.position = self._after_checkpoint()
            return True
        if code == "TrimmedDataAccessException":
            metrics.RECOVERIES.labels(self.label, "trimmed").inc()
            self._trimmed_after = self.checkpoint or self.position.type
            log.warning("%s: records of %s after %s were trimmed before they were read; "
                        "skipping to TRIM_HORIZON", self.label, self.shard.id,
                        self._trimmed_after)  # fmt: skip
            self.position = Position("TRIM_HORIZON")
            return True
        if code in THROTTLE_CODES:
            metrics.RECOVERIES.labels(self.label, "throttled").inc()
            log.info("%s: throttled reading %s; backing off", self.label, self.shard.id)
            self.position = self._after_checkpoint()
            return True
        return False

    def _after_checkpoint(self) -> Position:
        if self.checkpoint and self.checkpoint != SHARD_END:
            return Position("AFTER_SEQUENCE_NUMBER", self.checkpoint)
        return self.position

    async def _iterator(self) -> str | None:
        a = self.adapter
        try:
            response = await a.streams.get_shard_iterator(
                StreamArn=a.stream_arn, ShardId=self.shard.id, **self.position.args()
            )
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            metrics.RECOVERIES.labels(self.label, "shard_gone").inc()
            log.warning("%s: shard %s no longer exists (trimmed); records after %s in it "
                        "were never read", self.label, self.shard.id,
                        self.checkpoint or self.position.type)  # fmt: skip
            return None
        a.iterators.append((self.shard.id, self.position))
        iterator = response.get("ShardIterator")
        return str(iterator) if iterator else None

    async def _finish(self, records: list[dict[str, Any]]) -> None:
        """The shard is read to its end: publish the rest, checkpoint SHARD_END."""
        await self._publish(records, SHARD_END)
        log.info("%s: shard %s read to its end", self.label, self.shard.id)
        self.iterator_age_s = 0.0
        self.adapter.lag_changed()

    async def _publish(self, records: list[dict[str, Any]], final: str | None) -> None:
        a = self.adapter
        now = self.clock()
        envelopes: list[Envelope] = []
        last = self.checkpoint
        early = 0
        for raw in records:
            seq = str((raw.get("dynamodb") or {}).get("SequenceNumber") or "")
            if seq:
                last = seq
            try:
                env = envelope(lambda_record(raw, a.stream_arn), self.shard.id, now)
                if len(encode(env)) > MAX_ENTRY_BYTES:
                    raise MalformedRecord(f"over the bus's {MAX_ENTRY_BYTES}-byte entry limit")
            except (MalformedRecord, TypeError, ValueError, OverflowError) as exc:
                reason = "too_large" if "entry limit" in str(exc) else "malformed"
                metrics.SKIPPED.labels(self.label, reason).inc()
                a.count_error()
                log.error("%s: skipped record %s of %s: %s", self.label, seq or "?",
                          self.shard.id, exc)  # fmt: skip
                continue
            if self.not_before is not None and not created_since(env.time, self.not_before):
                early += 1
                continue
            envelopes.append(env)
        if early:
            a.skipped_before_start += early
            log.info("%s: skipped %d records of %s created before the mapping started "
                     "(StartingPosition LATEST)", self.label, early, self.shard.id)  # fmt: skip
        if self._trimmed_after is not None and envelopes:
            first = envelopes[0].record["dynamodb"]["SequenceNumber"]
            log.warning(
                "%s: records of %s between %s and %s (exclusive) were trimmed and skipped",
                self.label,
                self.shard.id,
                self._trimmed_after,
                first,
            )
            self._trimmed_after = None
        a.counts.received += len(records)
        metrics.RECORDS_READ.labels(self.label).inc(len(records))
        kept = [e for e in envelopes if a.passes(e)]
        a.counts.filtered += len(envelopes) - len(kept)
        if envelopes:
            self.iterator_age_s = max(0.0, now - envelopes[-1].time)
            a.lag_changed()
        position = final or last
        if position is None:
            return
        await a.handoff(Handoff(kept, [a.target], Checkpoint(self.shard.id, position)))
        self.checkpoint = position if position != SHARD_END else self.checkpoint
        if position != SHARD_END:
            self.position = Position("AFTER_SEQUENCE_NUMBER", position)
