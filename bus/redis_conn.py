"""Redis connections: one factory, so every process connects the same way."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ConnectionError, ReadOnlyError, ResponseError

from .keys import GROUP

_HiredisReader: type | None
_PushNotification: type | None
try:  # hiredis is a dependency; should a redis-py release rename these, stay correct
    from hiredis import Reader as _HiredisReader
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _NOT_ENOUGH_DATA
except ImportError:  # pragma: no cover
    _HiredisReader = None
    _NOT_ENOUGH_DATA = object()
try:
    from hiredis import PushNotification as _PushNotification
except ImportError:  # pragma: no cover - older hiredis: no RESP3 push type
    _PushNotification = None

DEFAULT_URL = "redis://127.0.0.1:6379/0"


def redis_url(explicit: str | None = None) -> str:
    return explicit or os.environ.get("LAMBDABUS_REDIS_URL") or DEFAULT_URL


def connect(url: str, *, max_connections: int = 16, **kwargs: Any) -> Redis:
    """A client over a bounded, blocking pool: a burst waits for a connection
    instead of opening hundreds. ``socket_timeout=None``: redis-py's default
    timeout handling measured ~40% slower on pipelined writes, and blocking
    reads set their own."""
    kwargs.setdefault("socket_timeout", None)
    if not url.startswith("unix:"):  # a Unix socket has no keepalive (redis-py refuses it)
        kwargs.setdefault("socket_keepalive", True)
    kwargs.setdefault("health_check_interval", 30)
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=None, **kwargs
    )
    return Redis.from_pool(pool)


def _raw(response: Any, **_: Any) -> Any:
    return response


def raw_reader(url: str, **kwargs: Any) -> Redis:
    """A client whose stream reads skip redis-py's per-entry dict building.

    Replies stay as hiredis made them: ``[[stream, [[id, [field, value]], ...]], ...]``.
    """
    r = connect(url, max_connections=2, **kwargs)
    for cmd in ("XREAD", "XREADGROUP", "XAUTOCLAIM", "XPENDING", "XRANGE"):
        r.set_response_callback(cmd, _raw)
    return r


async def ensure_group(redis: Redis, stream: str) -> None:
    """Create the consumer group at id 0, so an existing backlog is delivered and counted."""
    try:
        await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


Arg = bytes | str | int | float


def pack(*args: Arg) -> list[bytes]:
    """One command in RESP, as chunks (a large value is sent as is, never copied).

    The hot paths build their commands with this instead of redis-py's per-command
    packing (argument encoding, isinstance chains, callbacks), which costs more than
    the command itself once Redis answers in microseconds."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif not isinstance(arg, bytes):
            arg = repr(arg).encode()  # int, or float (repr round-trips exactly)
        out.append(b"$%d\r\n" % len(arg))
        out.append(arg)
        out.append(b"\r\n")
    return out


def pack_xadd(key: bytes, field: bytes, value: bytes) -> list[bytes]:
    """``XADD key * field value``, as :func:`pack` would make it, on the per-event paths."""
    return [
        b"*5\r\n$4\r\nXADD\r\n$%d\r\n%b\r\n$1\r\n*\r\n$%d\r\n%b\r\n$%d\r\n"
        % (len(key), key, len(field), field, len(value)),
        value,
        b"\r\n",
    ]


class PinnedConnection:
    """One connection taken from a client's pool and kept by one task, which sends
    pre-packed commands on it back to back (see :func:`pack`).

    For the per-request paths (synchronous invokes, their replies, the worker's
    reads): a pooled pipeline costs a pool checkout with its locks and timers, a
    retry wrapper and per-command bookkeeping, several times what Redis spends.
    As with the client's own commands: an idle connection is health-checked, a
    connection error disconnects and is retried per the client's Retry policy
    (none by default: the call fails, the next one reconnects). A call made while
    another is still running (a cancelled caller's shielded call) borrows a pooled
    connection instead, so replies never interleave."""

    def __init__(self, redis: Redis, *, timeout_s: float = 30.0) -> None:
        """``timeout_s`` bounds one call, write and replies: a peer that vanished without
        closing (a dropped NAT entry, a failover behind one address) is noticed then,
        not when the kernel gives up hours later; the connection is dropped and the
        next call reconnects."""
        self.redis = redis
        self.timeout_s = timeout_s
        self._conn: Any = None
        self._busy = False

    async def execute(self, chunks: list[bytes], count: int) -> list[Any]:
        """Send ``count`` packed commands, return their replies in order; an error reply
        is returned as its ResponseError, not raised (the other replies still count)."""
        if self._busy:  # a call left running (shielded, cancelled caller): don't interleave
            pool = self.redis.connection_pool
            conn = await pool.get_connection()
            try:
                return await self._bounded(conn, chunks, count)
            finally:
                await pool.release(conn)
        self._busy = True
        try:
            conn = self._conn
            if conn is None:
                conn = self._conn = await self.redis.connection_pool.get_connection()
            return await self._bounded(conn, chunks, count)
        finally:
            self._busy = False

    async def _bounded(self, conn: Any, chunks: list[bytes], count: int) -> list[Any]:
        reader = getattr(conn, "_reader", None)
        if reader is not None and reader.at_eof():  # closed by the server while idle
            await conn.disconnect(nowait=True)  # (nothing sent yet: reconnecting is safe)
        try:
            async with asyncio.timeout(self.timeout_s):  # a cancel inside disconnects
                replies = await self._execute(conn, chunks, count)
        except TimeoutError:
            await conn.disconnect(nowait=True)
            raise ConnectionError(f"no reply within {self.timeout_s:g} s") from None
        if any(isinstance(r, ReadOnlyError) for r in replies):
            await conn.disconnect(nowait=True)  # a demoted primary: find the new one
        return replies

    @staticmethod
    async def _execute(conn: Any, chunks: list[bytes], count: int) -> list[Any]:

        async def attempt() -> list[Any]:
            writer = getattr(conn, "_writer", None)
            if writer is None or not conn.socket_timeout or _health_check_due(conn):
                # redis-py's own send: connects, and PINGs a connection idle for long
                await conn.send_packed_command(chunks, check_health=True)
            else:
                # With a socket timeout redis-py wraps every write in wait_for (a task per
                # write). A few hundred bytes to a connected socket go straight into the
                # kernel's buffer; the reply's read keeps the timeout, which is what notices
                # a dead peer.
                try:
                    writer.writelines(chunks)
                    await writer.drain()
                except OSError as exc:
                    await conn.disconnect(nowait=True)
                    raise ConnectionError(f"Error while writing to socket: {exc}") from exc
                except BaseException:  # cancelled mid-write: the replies would be read by
                    await conn.disconnect(nowait=True)  # the next call; as redis-py does
                    raise
            replies: list[Any] = []
            gets = _buffered_replies(conn)
            while len(replies) < count:
                reply = gets() if gets is not None else _NOT_ENOUGH_DATA
                if reply is _NOT_ENOUGH_DATA:  # wait for more through redis-py's own read
                    try:
                        reply = await conn.read_response()
                    except ResponseError as exc:
                        reply = exc
                elif isinstance(reply, ConnectionError):  # e.g. LOADING: as read_response does
                    raise reply
                elif _is_push(reply):  # RESP3 push frames are not replies (redis-py skips them)
                    continue
                replies.append(reply)
            return replies

        async def failed(_: Exception) -> None:
            await conn.disconnect()

        replies: list[Any] = await conn.retry.call_with_retry(attempt, failed)
        return replies

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self.redis.connection_pool.release(conn)


def _is_push(reply: Any) -> bool:
    return _PushNotification is not None and isinstance(reply, _PushNotification)


def _health_check_due(conn: Any) -> bool:
    interval = getattr(conn, "health_check_interval", 0)
    return bool(interval) and asyncio.get_running_loop().time() > conn.next_health_check


def _buffered_replies(conn: Any) -> Callable[[], Any] | None:
    """hiredis's ``gets`` of ``conn``: the next reply already received, or
    ``_NOT_ENOUGH_DATA``. Reading the replies of a batch this way skips redis-py's
    per-reply wrapper; None (use ``read_response``) for any other parser."""
    reader: Any = getattr(getattr(conn, "_parser", None), "_reader", None)
    if _HiredisReader is None or not isinstance(reader, _HiredisReader):
        return None
    return getattr(reader, "gets", None)


def first_error(replies: list[Any]) -> None:
    """Raise the first error reply of :meth:`PinnedConnection.execute`, if any."""
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise reply
