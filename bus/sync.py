"""Synchronous invocation, caller side: publish with ``reply_to``, await a future.

One reader task per process reads the process's reply stream and resolves every
waiting future, and publishes are coalesced into one write per batch, so a
thousand calls in flight cost two Redis connections, not a thousand.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from typing import Any, NamedTuple

import msgpack
from redis.asyncio import Redis

from .envelope import Envelope, encode
from .handler import ErrorInfo, Outcome
from .keys import FunctionKeys, reply_stream
from .publish import Publisher, Target
from .redis_conn import PinnedConnection, connect, first_error, pack, pack_xadd, raw_reader
from .spec import DIRECT

log = logging.getLogger(__name__)

SOURCE = "lambdabus:invoke"
READ_BLOCK_S = 1.0
"""How long one read of the reply stream blocks."""


class InvokeResult(NamedTuple):
    request_id: str
    status: str
    """``success``, ``error`` or ``timeout`` (the handler's); a Lambda FunctionError otherwise."""
    payload: Any

    @property
    def ok(self) -> bool:
        return self.status == "success"


class InvokeTimeout(TimeoutError):
    """No reply before the caller's deadline (the call may still run, or be dropped)."""


def encode_reply(request_id: str, outcome: Outcome) -> bytes:
    if outcome.status == "success":
        try:
            return msgpack.packb([request_id, "success", outcome.result], use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            outcome = Outcome("error", error=ErrorInfo("Runtime.MarshalError", str(exc), []))
    error = outcome.error or ErrorInfo("Unknown", "", [])
    return msgpack.packb([request_id, outcome.status, error.payload()], use_bin_type=True)


class Invoker:
    """Invokes functions of one stack from this process.

    Per call: one future, one timer and one packed XADD appended to the outbox.
    The outbox goes out as one write on a connection the sender task keeps, and
    the reply reader keeps its own; the reader trims what it has read in the same
    round trip as its next read. A publish failure or the deadline resolves the
    caller's future with the error, so a call costs no task and one wake-up.
    """

    def __init__(self, redis_url: str, stack: str, *, process_id: str | None = None) -> None:
        self.stack = stack
        self.redis: Redis = connect(redis_url, max_connections=8)
        self.reader: Redis = raw_reader(redis_url)
        self.reply_key = reply_stream(stack, process_id or f"{os.getpid()}-{os.urandom(4).hex()}")
        self.publisher = Publisher(self.redis, stack)
        self._futures: dict[str, asyncio.Future[InvokeResult]] = {}
        self._outbox: list[tuple[bytes, bytes, asyncio.Future[InvokeResult]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._send_conn = PinnedConnection(self.redis, timeout_s=10.0)
        self._reply_last = b"0-0"
        """How far the reply reader got: a restarted reader resumes there."""
        self._reader_task: asyncio.Task[None] | None = None
        self._sync_keys: dict[str, bytes] = {}

    async def __aenter__(self) -> Invoker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def invoke(self, function: str, payload: Any, *, timeout_s: float = 30.0,
                     request_id: str | None = None) -> InvokeResult:  # fmt: skip
        """RequestResponse: run ``function`` on ``payload`` and return its reply."""
        rid = request_id or str(uuid.uuid4())
        now = time.time()
        env = Envelope(
            id=rid, source=SOURCE, type="Invoke", trigger=DIRECT.name, record=payload,
            time=now, first_seen=now, deadline=now + timeout_s, reply_to=self.reply_key,
        )  # fmt: skip
        data = encode(env)  # before any bookkeeping: an unencodable payload just raises
        stream = self._sync_keys.get(function)
        if stream is None:
            stream = self._sync_keys[function] = FunctionKeys(self.stack, function).sync.encode()
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[InvokeResult] = loop.create_future()
        self._futures[rid] = fut
        if self._reader_task is None or self._reader_task.done():
            self._reader_task = asyncio.create_task(self._read_replies(), name="replies")
        self._outbox.append((stream, data, fut))
        if self._sender is None:
            self._sender = asyncio.create_task(self._send(), name="invokes")
        timer = loop.call_at(loop.time() + timeout_s, _expire, fut, function, timeout_s)
        try:
            return await fut
        finally:
            timer.cancel()
            if self._futures.get(rid) is fut:
                del self._futures[rid]

    async def invoke_async(self, function: str, payload: Any,
                           request_id: str | None = None) -> str:  # fmt: skip
        """Event invocation type: queue it (retried on failure) and return its request id."""
        rid = request_id or str(uuid.uuid4())
        now = time.time()
        env = Envelope(id=rid, source=SOURCE, type="Invoke", trigger=DIRECT.name,
                       record=payload, time=now, first_seen=now)  # fmt: skip
        await self.publisher.publish([env], [Target(function, DIRECT)])
        return rid

    async def _send(self) -> None:
        """Send the outbox, one write per batch, until it stays empty."""
        try:
            while self._outbox:
                # Callers that gave up already: their entries would only be dropped unrun.
                batch = [item for item in self._outbox if not item[2].done()]
                self._outbox = []
                if not batch:
                    continue
                chunks: list[bytes] = []
                for stream, data, _ in batch:
                    chunks += pack_xadd(stream, b"d", data)
                try:
                    replies = await self._send_conn.execute(chunks, len(batch))
                except Exception as exc:
                    replies = [exc] * len(batch)
                for reply, (_, _, fut) in zip(replies, batch, strict=True):
                    if isinstance(reply, Exception) and not fut.done():
                        fut.set_exception(reply)
        finally:
            self._sender = None

    async def _read_replies(self) -> None:
        conn = PinnedConnection(self.reader, timeout_s=READ_BLOCK_S + 5)
        key = self.reply_key.encode()
        trim = False
        try:
            while True:
                last = self._reply_last
                chunks = pack("XTRIM", key, "MINID", last) if trim else []
                chunks += pack("XREAD", "COUNT", 1000, "BLOCK", int(READ_BLOCK_S * 1000),
                               "STREAMS", key, last)  # fmt: skip
                try:
                    replies = await conn.execute(chunks, 2 if trim else 1)
                    first_error(replies[-1:])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("reading replies failed (%s); retrying", exc)
                    await asyncio.sleep(0.2)
                    continue
                if trim and isinstance(replies[0], Exception):
                    # trimming is housekeeping; the next read retries it
                    log.warning("trimming %s failed (%s)", self.reply_key, replies[0])
                reply = replies[-1]
                trim = bool(reply)
                if not reply:
                    continue
                streams: Any = reply.items() if isinstance(reply, dict) else reply
                for _, entries in streams:
                    for entry_id, fields in entries:
                        self._reply_last = entry_id
                        self._resolve(fields)
        finally:
            await conn.close()

    def _resolve(self, fields: list[bytes]) -> None:
        try:
            rid, status, payload = msgpack.unpackb(fields[1], raw=False, strict_map_key=False)
        except Exception:
            log.error("malformed reply on %s dropped", self.reply_key)
            return
        if not isinstance(rid, str):  # not ours: a bad entry must not stop the reader
            log.error("reply with a %s request id on %s dropped", type(rid).__name__,
                      self.reply_key)  # fmt: skip
            return
        fut = self._futures.get(rid)
        if fut is not None and not fut.done():
            fut.set_result(InvokeResult(rid, status, payload))

    async def close(self) -> None:
        for task in (self._reader_task, self._sender):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(InvokeTimeout("the invoker was closed"))
        await self._send_conn.close()
        await self.redis.delete(self.reply_key)
        await self.reader.aclose()
        await self.redis.aclose()


def _expire(fut: asyncio.Future[InvokeResult], function: str, timeout_s: float) -> None:
    if not fut.done():
        fut.set_exception(InvokeTimeout(f"{function}: no reply within {timeout_s:g} s"))
