"""Settling entries after an invocation: ack, retry later, or dead-letter.

Acks are buffered and flushed in one XACK per stream by a single task, so a
worker pays one round trip per burst of completions, not one per event. A
retry is XACK + ZADD in one script and a dead letter XACK + XADD in one script,
so a crash between the two halves can't lose or duplicate the event.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import metrics
from .envelope import Envelope, encode
from .events import DeadLetter, after_failure, destination_record
from .handler import ErrorInfo
from .keys import GROUP, FunctionKeys, reply_expires
from .publish import Publisher, Target
from .redis_conn import PinnedConnection, pack, pack_xadd
from .spec import DIRECT, FunctionSpec, Trigger

log = logging.getLogger(__name__)

CLOSE_ATTEMPTS = 3
"""Writes of the last acks a closing worker tries before leaving them to redelivery."""
REPLY_TTL_MS = 120_000
"""A reply stream whose caller went away disappears on its own."""


class Acker:
    """Coalesces acknowledgements (and synchronous replies) into one pipeline per burst."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._conn = PinnedConnection(redis, timeout_s=10.0)
        self._pending: dict[str, list[bytes]] = {}
        self._replies: list[tuple[str, bytes]] = []
        self._closing = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def ack(self, stream: str, entry_id: bytes) -> None:
        ids = self._pending.get(stream)
        if ids is None:
            self._pending[stream] = [entry_id]
        else:
            ids.append(entry_id)
        self._idle.clear()
        self._wake.set()

    def reply(self, reply_to: str, payload: bytes, stream: str, entry_id: bytes) -> None:
        """Send a synchronous reply, then ack its entry, in the next flush."""
        self._replies.append((reply_to, payload))
        self.ack(stream, entry_id)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="acker")

    async def _run(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        failures = 0
        while self._pending:
            batch, self._pending = self._pending, {}
            replies, self._replies = self._replies, []
            chunks: list[bytes] = []  # one write: replies first, then their acks
            for reply_to, payload in replies:
                chunks += pack_xadd(reply_to.encode(), b"r", payload)
            expiring = {r for r, _ in replies if reply_expires(r)}
            for reply_to in expiring:
                chunks += pack("PEXPIRE", reply_to, REPLY_TTL_MS)
            for stream, ids in batch.items():
                chunks += pack("XACK", stream, GROUP, *ids)
            count = len(replies) + len(expiring) + len(batch)
            try:
                results = await asyncio.shield(self._conn.execute(chunks, count))
            except asyncio.CancelledError:
                raise
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                # Nothing or all of it may have landed: send it again (a caller ignores a
                # repeated reply; XACK and PEXPIRE are idempotent), unless closing gives up.
                failures += 1
                self._requeue(batch, replies)
                if self._closing and failures >= CLOSE_ATTEMPTS:
                    log.error("acks not written while closing (%s); %d entries will be "
                              "redelivered", exc, sum(map(len, batch.values())))  # fmt: skip
                    self._pending, self._replies = {}, []
                    break
                log.warning("writing acks failed (%s); retrying", exc)
                await asyncio.sleep(min(0.05 * 2**failures, 2.0))
                continue
            except Exception:
                log.exception("writing acks failed; %d entries will be redelivered",
                              sum(map(len, batch.values())))  # fmt: skip
                continue
            failures = 0
            self._report(results, len(replies), len(expiring), batch)
        self._idle.set()

    def _requeue(self, batch: dict[str, list[bytes]], replies: list[tuple[str, bytes]]) -> None:
        for stream, ids in batch.items():
            self._pending.setdefault(stream, [])[:0] = ids
        self._replies[:0] = replies

    @staticmethod
    def _report(results: list[Any], n_replies: int, n_expiring: int,
                batch: dict[str, list[bytes]]) -> None:  # fmt: skip
        """Log what Redis refused, for what it is: a refused reply is lost (its caller
        times out; its entry is acked all the same), a refused XACK is redelivered."""
        lost = [r for r in results[:n_replies] if isinstance(r, ResponseError)]
        if lost:
            log.error("%d synchronous replies refused by Redis (%s); their callers will time "
                      "out", len(lost), lost[0])  # fmt: skip
        for (stream, ids), r in zip(batch.items(), results[n_replies + n_expiring :],
                                    strict=True):  # fmt: skip
            if isinstance(r, ResponseError):
                log.error("XACK on %s refused (%s); %d entries will be redelivered",
                          stream, r, len(ids))  # fmt: skip

    async def close(self) -> None:
        """Let a flush in flight finish (cancelling it could lose a reply), then flush the rest."""
        self._closing = True
        self._wake.set()
        if self._task:
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()
        await self._conn.close()


class Settler:
    """Retry and dead-letter paths of one function (the cold paths)."""

    def __init__(self, redis: Redis, keys: FunctionKeys, publisher: Publisher,
                 fn: FunctionSpec, function_arn: str) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.publisher = publisher
        self.fn = fn
        self.function_arn = function_arn
        self.scripts = publisher.scripts
        self._retries = metrics.RETRIES.labels(keys.function)

    async def retry_later(
        self, stream: str, items: Sequence[tuple[bytes, Envelope, float]]
    ) -> None:
        """Ack each entry and schedule its next attempt after ``delay_s``, atomically."""
        if not items:
            return
        args: list[Any] = [GROUP]
        for entry_id, env, delay_s in items:
            args += (entry_id, int(delay_s * 1000), encode(env.next_attempt()))
        await asyncio.shield(self.scripts.retry_later(keys=[stream, self.keys.delayed], args=args))
        self._retries.inc(len(items))

    async def dead_letter(
        self,
        stream: str,
        items: Sequence[tuple[bytes | str, Envelope | bytes]],
        error: ErrorInfo | None,
        reason: str,
        *,
        partition_stream: bool = False,
    ) -> None:
        """Move entries to the dead-letter stream; raw bytes for undecodable entries."""
        if not items:
            return
        err = error or ErrorInfo("", "", [])
        args: list[Any] = ["" if partition_stream else GROUP]
        for entry_id, env in items:
            payload = env if isinstance(env, bytes) else encode(env)
            attempts = 0 if isinstance(env, bytes) else env.attempt + 1
            args += (entry_id, payload, err.type, err.message[:4096],
                     (err.text or "".join(err.stack))[-16384:], reason, attempts)  # fmt: skip
        await asyncio.shield(
            self.scripts.dead_letter(keys=[stream, self.keys.dead_letters], args=args)
        )
        metrics.DEAD_LETTERS.labels(self.keys.function, reason).inc(len(items))

    async def fail(
        self, trigger: Trigger, stream: str, items: Sequence[tuple[bytes, Envelope]],
        error: ErrorInfo, event: Any, request_id: str,
    ) -> bool:  # fmt: skip
        """Retry or give up on each failed entry, per the retry policy; True if any retries."""
        now = time.time()
        retries: list[tuple[bytes, Envelope, float]] = []
        dead: dict[str, list[tuple[bytes, Envelope]]] = {}
        for entry_id, env in items:
            decision = after_failure(env, self.fn, trigger, now)
            if isinstance(decision, DeadLetter):
                dead.setdefault(decision.condition, []).append((entry_id, env))
            else:
                retries.append((entry_id, env, decision.delay_s))
        await self.retry_later(stream, retries)
        for condition, group in dead.items():
            await self.give_up(stream, group, error, condition, event, request_id)
        return bool(retries)

    async def give_up(
        self, stream: str, items: Sequence[tuple[bytes, Envelope]], error: ErrorInfo,
        condition: str, event: Any = None, request_id: str | None = None,
    ) -> None:  # fmt: skip
        """Dead-letter, telling the OnFailure function first (``event`` defaults to the
        record itself, for events given up on without running)."""
        if self.fn.on_failure:
            for _, env in items:
                record = destination_record(
                    env, env.record if event is None else event, self.function_arn,
                    request_id or env.id, condition, error,
                )  # fmt: skip
                await self.to_destination(self.fn.on_failure, env, record)
        await self.dead_letter(stream, items, error, condition)

    async def to_destination(self, function: str, env: Envelope, record: Any) -> None:
        """Publish a destination record to another function (deduped by source event)."""
        dest = Envelope(
            id=f"{self.keys.function}:{env.id}:{env.attempt}",
            source="lambdabus:destination",
            type="RetriesExhausted",
            trigger=DIRECT.name,
            record=record,
            time=env.time,
            first_seen=env.first_seen,
            traceparent=env.traceparent,
        )
        await self.publisher.publish([dest], [Target(function, DIRECT)])
