"""Synchronous invocation, caller side: publish with ``reply_to``, await a future.

One reader task per process reads the process's reply stream and resolves every
waiting future, and publishes are coalesced into one pipeline per loop turn, so
a thousand calls in flight cost two Redis connections, not a thousand.
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

from .coalesce import Coalescer
from .envelope import Envelope, encode
from .handler import ErrorInfo, Outcome
from .keys import FunctionKeys, reply_stream
from .publish import Publisher, Target
from .redis_conn import connect, raw_reader
from .spec import DIRECT

log = logging.getLogger(__name__)

SOURCE = "lambdabus:invoke"


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
    """Invokes functions of one stack from this process."""

    def __init__(self, redis_url: str, stack: str, *, process_id: str | None = None) -> None:
        self.stack = stack
        self.redis: Redis = connect(redis_url, max_connections=8)
        self.reader: Redis = raw_reader(redis_url)
        self.reply_key = reply_stream(stack, process_id or f"{os.getpid()}-{os.urandom(4).hex()}")
        self.publisher = Publisher(self.redis, stack)
        self._futures: dict[str, asyncio.Future[InvokeResult]] = {}
        self._outbox: Coalescer[tuple[str, bytes]] = Coalescer(self._send_batch)
        self._reader_task: asyncio.Task[None] | None = None
        self._keys: dict[str, FunctionKeys] = {}

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
        fut: asyncio.Future[InvokeResult] = asyncio.get_running_loop().create_future()
        self._futures[rid] = fut
        if self._reader_task is None or self._reader_task.done():
            self._reader_task = asyncio.create_task(self._read_replies(), name="replies")
        try:
            keys = self._keys.get(function) or self._keys.setdefault(
                function, FunctionKeys(self.stack, function)
            )
            await self._outbox.submit((keys.sync, encode(env)))
            async with asyncio.timeout(timeout_s):
                return await fut
        except TimeoutError:
            raise InvokeTimeout(f"{function}: no reply within {timeout_s:g} s") from None
        finally:
            self._futures.pop(rid, None)

    async def invoke_async(self, function: str, payload: Any,
                           request_id: str | None = None) -> str:  # fmt: skip
        """Event invocation type: queue it (retried on failure) and return its request id."""
        rid = request_id or str(uuid.uuid4())
        now = time.time()
        env = Envelope(id=rid, source=SOURCE, type="Invoke", trigger=DIRECT.name,
                       record=payload, time=now, first_seen=now)  # fmt: skip
        await self.publisher.publish([env], [Target(function, DIRECT)])
        return rid

    async def _send_batch(self, items: list[tuple[str, bytes]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for stream, payload in items:
            pipe.xadd(stream, {"d": payload})
        await pipe.execute()

    async def _read_replies(self) -> None:
        last = b"0-0"
        while True:
            try:
                reply = await self.reader.xread({self.reply_key: last}, count=1000, block=1000)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reading replies failed (%s); retrying", exc)
                await asyncio.sleep(0.2)
                continue
            if not reply:
                continue
            streams: Any = reply.items() if isinstance(reply, dict) else reply
            for _, entries in streams:
                for entry_id, fields in entries:
                    last = entry_id
                    self._resolve(fields)
            try:
                await self.redis.xtrim(self.reply_key, minid=last, approximate=False)
            except Exception as exc:  # trimming is housekeeping; the next read retries it
                log.warning("trimming %s failed (%s)", self.reply_key, exc)

    def _resolve(self, fields: list[bytes]) -> None:
        try:
            rid, status, payload = msgpack.unpackb(fields[1], raw=False, strict_map_key=False)
        except Exception:
            log.error("malformed reply on %s dropped", self.reply_key)
            return
        fut = self._futures.get(rid)
        if fut is not None and not fut.done():
            fut.set_result(InvokeResult(rid, status, payload))

    async def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
        for fut in self._futures.values():
            if not fut.done():
                fut.set_exception(InvokeTimeout("the invoker was closed"))
        await self.redis.delete(self.reply_key)
        await self.reader.aclose()
        await self.redis.aclose()
