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
from functools import partial
from typing import Any, NamedTuple

import msgpack
from redis.asyncio import Redis
from redis.exceptions import ConnectionError

from .deadlines import Deadlines
from .envelope import Envelope, encode, packb
from .handler import ErrorInfo, Outcome
from .keys import FunctionKeys, reply_stream
from .publish import Publisher, Target
from .redis_conn import connect, pack, pack_xadd
from .resp_pipe import RespPipe
from .spec import DIRECT

log = logging.getLogger(__name__)

SOURCE = "lambdabus:invoke"
READ_BLOCK_S = 1.0
"""How long one read of the reply stream blocks."""
MAX_TIMEOUT_GROUPS = 32
"""Distinct timeouts whose deadline groups are kept while empty (one per route or
function in practice; a caller that varies them makes the idle ones go)."""
TRIM_EVERY = 256
"""Replies read between two trims of the reply stream (sooner when no call waits)."""


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
            return packb((request_id, "success", outcome.result))
        except (TypeError, ValueError, OverflowError) as exc:
            outcome = Outcome("error", error=ErrorInfo("Runtime.MarshalError", str(exc), []))
    error = outcome.error or ErrorInfo("Unknown", "", [])
    return packb((request_id, outcome.status, error.payload()))


class Invoker:
    """Invokes functions of one stack from this process.

    Per call: one future, one deadline (:mod:`.deadlines`) and one packed XADD
    appended to the outbox.
    The outbox goes out as one write per loop iteration on a pipe of its own
    (:mod:`.resp_pipe`), and the reply reader keeps another, issuing its next
    read from the callback that delivered the last one; it trims what it has read
    in the same round trip. A publish failure or the deadline resolves the
    caller's future with the error, so a call costs no task and one wake-up.
    """

    def __init__(self, redis_url: str, stack: str, *, process_id: str | None = None) -> None:
        self.stack = stack
        self.redis: Redis = connect(redis_url, max_connections=8)
        self.reply_key = reply_stream(stack, process_id or f"{os.getpid()}-{os.urandom(4).hex()}")
        self.publisher = Publisher(self.redis, stack)
        self._futures: dict[str, asyncio.Future[InvokeResult]] = {}
        self._outbox: list[tuple[bytes, bytes, asyncio.Future[InvokeResult]]] = []
        self._flush_soon = False
        self._sender = RespPipe(redis_url, timeout_s=10.0, name="invokes")
        self._connecting: asyncio.Task[None] | None = None
        self._reader = RespPipe(redis_url, timeout_s=READ_BLOCK_S + 5, name="replies")
        self._reading = False
        self._read_soon = False
        """A read of the reply stream is about to be written (the outbox can wait for it)."""
        self._reader_retry: asyncio.Task[None] | None = None
        self._untrimmed = 0
        """Replies read since the last trim."""
        self._closed = False
        self._reply_last = b"0-0"
        """How far the reply reader got: a reconnected reader resumes there."""
        self._sync_keys: dict[str, bytes] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadlines: dict[float, Deadlines[asyncio.Future[InvokeResult]]] = {}
        """Per timeout: the calls waiting that long."""

    async def __aenter__(self) -> Invoker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def invoke(self, function: str, payload: Any, *, timeout_s: float = 30.0,
                     request_id: str | None = None) -> InvokeResult:  # fmt: skip
        """RequestResponse: run ``function`` on ``payload`` and return its reply."""
        if self._closed:
            raise InvokeTimeout("the invoker was closed")
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
        loop = self._loop
        if loop is None:  # once: on Python 3.11 each lookup is a system call
            loop = self._loop = asyncio.get_running_loop()
        fut: asyncio.Future[InvokeResult] = loop.create_future()
        self._futures[rid] = fut
        if not self._reading:
            self._start_reading()
        self._outbox.append((stream, data, fut))
        if not self._flush_soon:
            self._flush_soon = True
            loop.call_soon(self._flush)
        deadlines = self._deadlines.get(timeout_s)
        if deadlines is None:
            deadlines = self._new_deadlines(loop, timeout_s)
        deadlines.add(fut, function)
        try:
            return await fut
        finally:
            deadlines.discard(fut)
            if self._futures.get(rid) is fut:
                del self._futures[rid]

    def _new_deadlines(
        self, loop: asyncio.AbstractEventLoop, timeout_s: float
    ) -> Deadlines[asyncio.Future[InvokeResult]]:
        if len(self._deadlines) >= MAX_TIMEOUT_GROUPS:  # callers that vary their timeouts
            for key, idle in list(self._deadlines.items()):
                if not idle:
                    idle.close()
                    del self._deadlines[key]
        made = self._deadlines[timeout_s] = Deadlines(
            loop, timeout_s, partial(_expire, timeout_s=timeout_s)
        )
        return made

    async def invoke_async(self, function: str, payload: Any,
                           request_id: str | None = None) -> str:  # fmt: skip
        """Event invocation type: queue it (retried on failure) and return its request id."""
        rid = request_id or str(uuid.uuid4())
        now = time.time()
        env = Envelope(id=rid, source=SOURCE, type="Invoke", trigger=DIRECT.name,
                       record=payload, time=now, first_seen=now)  # fmt: skip
        await self.publisher.publish([env], [Target(function, DIRECT)])
        return rid

    # -- sending -----------------------------------------------------------------------

    def _flush(self) -> None:
        """Send the outbox as one write (connecting first if need be), unless the reply
        reader is about to write its next read: then it goes out with that."""
        self._flush_soon = False
        if self._read_soon:
            return
        if not self._sender.connected:
            if self._connecting is None and not self._closed:
                self._connecting = asyncio.create_task(self._connect_sender(), name="invokes")
            return  # the outbox goes out once connected
        taken = self._take_outbox()
        if taken is not None:
            self._sender.send(taken[0], len(taken[1]), partial(_published, taken[1]))

    def _take_outbox(self) -> tuple[list[bytes], list[asyncio.Future[InvokeResult]]] | None:
        """The outbox as packed XADDs and their callers' futures; None if nobody waits."""
        # Callers that gave up already: their entries would only be dropped unrun.
        batch = [item for item in self._outbox if not item[2].done()]
        self._outbox = []
        if not batch:
            return None
        chunks: list[bytes] = []
        for stream, data, _ in batch:
            chunks += pack_xadd(stream, b"d", data)
        return chunks, [f for _, _, f in batch]

    async def _connect_sender(self) -> None:
        try:
            await self._sender.connect()
        except Exception as exc:
            outbox, self._outbox = self._outbox, []
            for _, _, fut in outbox:
                if not fut.done():
                    fut.set_exception(exc)
        finally:
            self._connecting = None
        if self._outbox:
            self._flush()

    # -- replies -------------------------------------------------------------------------

    def _start_reading(self) -> None:
        self._reading = True
        self._reader_retry = asyncio.create_task(self._connect_reader(0.0), name="replies")

    async def _connect_reader(self, delay_s: float) -> None:
        """(Re)connect the reply reader, retrying until it works or the invoker closes."""
        while not self._closed:
            await asyncio.sleep(delay_s)
            try:
                await self._reader.connect()
            except Exception as exc:
                log.warning("reading replies failed (%s); retrying", exc)
                delay_s = 0.2
                continue
            self._reader_retry = None
            self._read_next()
            return

    def _read_next(self) -> None:
        """The next XREAD of the reply stream, after the outbox's XADDs in the same write:
        one write and one wake-up for both while calls keep coming."""
        self._read_soon = False
        if self._closed:
            return
        key = self.reply_key.encode()
        last = self._reply_last
        # Trim every few hundred replies, or once the stream went quiet: each XTRIM costs
        # Redis about what a read does, and a few hundred read replies are a few KB.
        trim = self._untrimmed >= TRIM_EVERY or (0 < self._untrimmed and not self._futures)
        if trim:
            self._untrimmed = 0
        chunks = pack("XTRIM", key, "MINID", last) if trim else []
        chunks += pack("XREAD", "COUNT", 1000, "BLOCK", int(READ_BLOCK_S * 1000),
                       "STREAMS", key, last)  # fmt: skip
        reads = 2 if trim else 1
        # Calls waiting for this read go with it, unless its connection is gone: then
        # the sender's (maybe healthy) connection takes them.
        taken = self._take_outbox() if self._reader.connected else None
        if self._outbox and not self._flush_soon:
            self._flush()
        if taken is None:
            self._reader.send(chunks, reads, self._on_replies)
            return
        xadds, futures = taken
        # An XADD's error reaches its caller with the read's answer: at once while replies
        # flow, within READ_BLOCK_S when none do.
        self._reader.send(xadds + chunks, len(futures) + reads,
                          partial(self._on_sent_and_read, futures))  # fmt: skip

    def _on_sent_and_read(self, futures: list[asyncio.Future[InvokeResult]],
                          replies: list[Any]) -> None:  # fmt: skip
        _published(futures, replies[: len(futures)])
        self._on_replies(replies[len(futures) :])

    def _on_replies(self, replies: list[Any]) -> None:
        if self._closed:
            return
        reply = replies[-1]
        if isinstance(reply, Exception):
            log.warning("reading replies failed (%s); retrying", reply)
            if isinstance(reply, ConnectionError):
                self._reader_retry = asyncio.create_task(self._connect_reader(0.2))
            else:  # an error reply (a wrong-type key, OOM on trim): the connection is fine
                loop = self._loop or asyncio.get_running_loop()
                loop.call_later(0.2, lambda: None if self._closed else self._read_next())
            return
        if len(replies) == 2 and isinstance(replies[0], Exception):
            # trimming is housekeeping; the next read retries it
            log.warning("trimming %s failed (%s)", self.reply_key, replies[0])
            self._untrimmed = max(self._untrimmed, TRIM_EVERY)
        try:
            if reply:
                streams: Any = reply.items() if isinstance(reply, dict) else reply
                for _, entries in streams:
                    self._untrimmed += len(entries)
                    for entry_id, fields in entries:
                        self._reply_last = entry_id
                        self._resolve(fields)
        except Exception:  # whatever it was, the reader must go on for the other callers
            log.exception("reading replies on %s", self.reply_key)
        # Next loop iteration: the callers just answered send their next calls by then.
        self._read_soon = True
        (self._loop or asyncio.get_running_loop()).call_soon(self._read_next)

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
        self._closed = True
        for task in (self._reader_retry, self._connecting):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for fut in self._futures.values():  # first: closing the pipes would fail them too
            if not fut.done():
                fut.set_exception(InvokeTimeout("the invoker was closed"))
        for deadlines in self._deadlines.values():
            deadlines.close()
        self._reader.close()
        self._sender.close()
        await self.redis.delete(self.reply_key)
        await self.redis.aclose()


def _published(futures: list[asyncio.Future[InvokeResult]], replies: list[Any]) -> None:
    for reply, fut in zip(replies, futures, strict=True):
        if isinstance(reply, Exception) and not fut.done():
            fut.set_exception(reply)


def _expire(fut: asyncio.Future[InvokeResult], function: str, timeout_s: float) -> None:
    if not fut.done():
        fut.set_exception(InvokeTimeout(f"{function}: no reply within {timeout_s:g} s"))
