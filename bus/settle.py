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
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from . import metrics
from .envelope import Envelope, encode
from .events import DeadLetter, after_failure, destination_record
from .handler import ErrorInfo
from .keys import GROUP, FunctionKeys, reply_expires
from .publish import Publisher, Target
from .redis_conn import pack, pack_xadd
from .resp_pipe import RespPipe
from .spec import DIRECT, FunctionSpec, Trigger

log = logging.getLogger(__name__)

CLOSE_ATTEMPTS = 3
"""Writes of the last acks a closing worker tries before leaving them to redelivery."""
REPLY_TTL_MS = 120_000
"""A reply stream whose caller went away disappears on its own."""


class Acker:
    """Coalesces acknowledgements (and synchronous replies) into one write per loop
    iteration, on a pipe of its own (:mod:`.resp_pipe`): writes don't wait for the
    previous one's answer, and a write whose connection was lost is sent again."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pipe = RespPipe(redis, timeout_s=10.0, name="acks")
        self._pending: dict[str, list[bytes]] = {}
        self._replies: list[tuple[str, bytes]] = []
        self._closing = False
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight = 0
        self._failures = 0
        self._connecting: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def ack(self, stream: str, entry_id: bytes) -> None:
        ids = self._pending.get(stream)
        if ids is None:
            self._pending[stream] = [entry_id]
        else:
            ids.append(entry_id)
        self._soon()

    def reply(self, reply_to: str, payload: bytes, stream: str, entry_id: bytes) -> None:
        """Send a synchronous reply, then ack its entry, in the next flush."""
        self._replies.append((reply_to, payload))
        self.ack(stream, entry_id)

    def _soon(self) -> None:
        self._idle.clear()
        if not self._scheduled:
            self._scheduled = True
            if self._loop is None:  # once: on Python 3.11 each lookup is a system call
                self._loop = asyncio.get_running_loop()
            self._loop.call_soon(self._write)

    def _write(self) -> None:
        self._scheduled = False
        if not self._pending:
            self._settled()
            return
        if not self._pipe.connected:
            if self._connecting is None:
                self._connecting = asyncio.create_task(self._connect(), name="acker")
            return  # written once connected
        taken = self.take()
        if taken is not None:
            self._pipe.send(*taken)

    def take(self) -> tuple[list[bytes], int, Callable[[list[Any]], None]] | None:
        """What is pending as one write: (chunks, command count, the callback its replies
        must be given to). For a connection about to write anyway (the worker's next
        read): one write and one wake-up instead of two. None if nothing is pending."""
        if not self._pending:
            return None
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
        self._in_flight += 1
        return chunks, count, partial(self._written, batch, replies, len(expiring))

    def _written(self, batch: dict[str, list[bytes]], replies: list[tuple[str, bytes]],
                 n_expiring: int, results: list[Any]) -> None:  # fmt: skip
        self._in_flight -= 1
        lost = next((r for r in results if isinstance(r, RedisConnectionError)), None)
        if lost is None:
            self._failures = 0
            self._report(results, len(replies), n_expiring, batch)
            self._settled()
            return
        # Nothing or all of it may have landed: send it again (a caller ignores a repeated
        # reply; XACK and PEXPIRE are idempotent), unless closing gives up.
        if self._gives_up(lost, sum(map(len, batch.values()))):
            self._settled()
            return
        self._requeue(batch, replies)
        self._idle.clear()
        if self._connecting is None:
            self._connecting = asyncio.create_task(self._connect(), name="acker")

    async def _connect(self) -> None:
        """(Re)connect, backing off while Redis is away, then write what waits."""
        try:
            while True:
                if self._failures:
                    await asyncio.sleep(min(0.05 * 2**self._failures, 2.0))
                try:
                    await self._pipe.connect()
                    break
                except RedisConnectionError as exc:
                    if self._gives_up(exc, sum(map(len, self._pending.values()))):
                        self._pending, self._replies = {}, []
                        break
        finally:
            self._connecting = None
        self._write()  # nothing pending (given up): settles, so close() returns

    def _gives_up(self, exc: Exception, entries: int) -> bool:
        """Count a failed write or connect; True once closing has tried long enough (the
        caller drops what it holds; those ``entries`` are redelivered, being unacked)."""
        self._failures += 1
        if not (self._closing and self._failures >= CLOSE_ATTEMPTS):
            log.warning("writing acks failed (%s); retrying", exc)
            return False
        log.error("acks not written while closing (%s); %d entries will be redelivered",
                  exc, entries)  # fmt: skip
        return True

    def _settled(self) -> None:
        if not self._pending and not self._in_flight and self._connecting is None:
            self._idle.set()

    async def flush(self) -> None:
        """Write everything pending and wait until Redis has answered it."""
        if self._pending:
            self._soon()
        await self._idle.wait()

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
        """Write what is pending and wait for every write in flight (dropping one could
        lose a reply), then close the connection."""
        self._closing = True
        await self.flush()
        self._pipe.close()


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
