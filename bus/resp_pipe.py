"""A Redis connection driven by callbacks, for the per-request paths.

redis-py's asyncio connection reads through a StreamReader, a coroutine per
reply and a timeout object per call; on the synchronous-invoke path that
machinery cost more CPU than Redis spends on the commands (``bench/http.py``).
A pipe is an asyncio Protocol with hiredis's parser: a batch of pre-packed
commands (:func:`bus.redis_conn.pack`) is written at once, and the callback
given with it runs inside ``data_received`` once its replies are in, with no
task, future or timer per call.

Every batch gets its replies or, if the connection is lost or a reply is
overdue, a :class:`ConnectionError` per command: a caller is never left
waiting. An error reply saying the server can't serve now (a read-only replica,
a dataset still loading) counts as a lost connection too (see ``_UNUSABLE``).
A pipe does not reconnect by itself; :meth:`RespPipe.connect` again.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import ConnectionError, ResponseError

from .redis_conn import pack

log = logging.getLogger(__name__)

Done = Callable[[list[Any]], None]


def _ssl_context(options: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context redis-py's own connection would use for these options (CA file,
    path or data, client certificate, verification, minimum version, ciphers); making
    the connection object opens nothing."""
    kwargs = {k: v for k, v in options.items() if k != "connection_class"}
    context: ssl.SSLContext = SSLConnection(**kwargs).ssl_context.get()
    return context


class _Protocol(asyncio.Protocol):
    """Feeds hiredis and completes batches in the order they were written."""

    def __init__(self, pipe: RespPipe) -> None:
        self.pipe = pipe
        self.reader = hiredis.Reader(replyError=ResponseError)
        self.transport: asyncio.Transport | None = None
        self.pending: collections.deque[tuple[int, Done, list[Any], float]] = collections.deque()
        """Batches written and not yet answered, oldest first, with their deadlines."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's isn't a subclass

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        pending = self.pending
        gets = self.reader.gets
        while pending:
            count, done, replies, _ = pending[0]
            while len(replies) < count:
                reply = gets()
                if reply is False:
                    return
                if not isinstance(reply, hiredis.PushNotification):  # RESP3 push: not ours
                    replies.append(reply)
            pending.popleft()
            unusable = _unusable(replies)
            if unusable is not None:  # as if the connection were lost, and drop it
                where = self.pipe._where()
                replies = [ConnectionError(f"{where}: {r}") if _is_unusable(r) else r
                           for r in replies]  # fmt: skip
            self.pipe._call(done, replies)
            if unusable is not None:
                self.pipe._drop(self, ConnectionError(f"{self.pipe._where()}: {unusable}"))
                return
            if self.pipe._proto is not self:  # the callback closed the pipe
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.pipe._lost(self, exc)


class RespPipe:
    """One Redis connection for batches of pre-packed commands (see module docstring)."""

    def __init__(self, url: str | Redis, *, timeout_s: float = 10.0, name: str = "") -> None:
        """``url``: where to connect, or a redis-py client to connect as (same server,
        database and credentials). ``timeout_s`` bounds how long a batch may wait for its
        replies (a blocking read's own BLOCK time must fit in it): past it the
        connection is dropped, as a peer that vanished without closing would otherwise
        hold callers for hours."""
        self.timeout_s = timeout_s
        self.name = name
        if isinstance(url, str):
            self._options: dict[str, Any] = dict(parse_url(url))
        else:
            pool = url.connection_pool
            self._options = dict(pool.connection_kwargs, connection_class=pool.connection_class)
        self._proto: _Protocol | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """Looked up once: on Python 3.11 each get_running_loop() is a system call."""

    @property
    def connected(self) -> bool:
        return self._proto is not None

    async def connect(self) -> None:
        """Open the connection (AUTH and SELECT as the URL says); raises ConnectionError."""
        if self._proto is not None:
            return
        loop = self._loop = asyncio.get_running_loop()
        opts = self._options
        cls = opts.get("connection_class")
        proto = _Protocol(self)
        try:
            async with asyncio.timeout(self.timeout_s):
                if cls is UnixDomainSocketConnection:
                    await loop.create_unix_connection(lambda: proto, opts["path"])
                else:
                    context = _ssl_context(opts) if cls is SSLConnection else None
                    host = opts.get("host", "localhost")
                    await loop.create_connection(
                        lambda: proto, host, opts.get("port", 6379), ssl=context
                    )
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(f"connecting to {self._where()}: {exc!r}") from exc
        self._proto = proto
        handshake: list[list[bytes]] = []
        if opts.get("password") is not None:
            user = opts.get("username")
            handshake.append(pack("AUTH", *([user] if user else []), opts["password"]))
        if opts.get("db"):
            handshake.append(pack("SELECT", int(opts["db"])))
        if opts.get("client_name"):
            handshake.append(pack("CLIENT", "SETNAME", opts["client_name"]))
        if handshake:
            replies = await self.call([c for cmd in handshake for c in cmd], len(handshake))
            for reply in replies:
                if isinstance(reply, Exception):
                    self.close()
                    raise ConnectionError(f"{self._where()}: {reply}")

    def send(self, chunks: list[bytes], count: int, done: Done) -> None:
        """Write ``count`` commands; ``done(replies)`` runs once all are in, each an
        error reply as its ResponseError, or a ConnectionError per command if the
        connection is lost first (or isn't open: then ``done`` runs soon, not now)."""
        proto = self._proto
        if proto is None or proto.transport is None or proto.transport.is_closing():
            error = ConnectionError(f"not connected to {self._where()}")
            asyncio.get_running_loop().call_soon(done, [error] * count)
            return
        proto.pending.append((count, done, [], time.monotonic() + self.timeout_s))
        if self._watchdog is None:
            self._arm()
        proto.transport.writelines(chunks)

    async def call(self, chunks: list[bytes], count: int) -> list[Any]:
        """:meth:`send`, awaited (for cold paths and tests)."""
        loop = self._loop or asyncio.get_running_loop()
        fut: asyncio.Future[list[Any]] = loop.create_future()

        def done(replies: list[Any]) -> None:
            if not fut.done():
                fut.set_result(replies)

        self.send(chunks, count, done)
        return await fut

    def close(self) -> None:
        """Drop the connection; batches still waiting get ConnectionErrors."""
        if self._proto is not None:
            self._drop(self._proto, ConnectionError(f"connection to {self._where()} closed"))

    # -- internals ---------------------------------------------------------------------

    def _where(self) -> str:
        opts = self._options
        where = opts.get("path") or f"{opts.get('host', 'localhost')}:{opts.get('port', 6379)}"
        return f"{self.name} ({where})" if self.name else str(where)

    def _call(self, done: Done, replies: list[Any]) -> None:
        try:
            done(replies)
        except Exception:  # a callback's bug must not break the connection for the others
            log.exception("a reply callback on %s failed", self._where())

    def _lost(self, proto: _Protocol, exc: Exception | None) -> None:
        why = f": {exc}" if exc else ""
        self._drop(proto, ConnectionError(f"connection to {self._where()} lost{why}"))

    def _drop(self, proto: _Protocol, error: Exception) -> None:
        """Detach ``proto`` (if it is still ours), close its connection and fail what it
        still owed."""
        if self._proto is proto:
            self._proto = None
        if proto.transport is not None and not proto.transport.is_closing():
            proto.transport.abort()
        old = proto.pending
        pending, proto.pending = list(old), collections.deque()
        old.clear()  # a data_received in progress holds it: it must complete nothing more
        for count, done, replies, _ in pending:
            self._call(done, replies + [error] * (count - len(replies)))

    def _arm(self) -> None:
        loop = self._loop or asyncio.get_running_loop()
        self._watchdog = loop.call_later(self.timeout_s / 4, self._check)

    def _check(self) -> None:
        """Drop the connection if the oldest batch is overdue; one timer per pipe, not
        one per call."""
        self._watchdog = None
        proto = self._proto
        if proto is None or not proto.pending:
            return
        if time.monotonic() > proto.pending[0][3]:
            self._drop(proto, ConnectionError(f"no reply from {self._where()} in time"))
            return
        self._arm()


_UNUSABLE = ("READONLY", "LOADING", "MASTERDOWN", "ERR max number of clients")
"""Error replies that say this connection's server can't serve us now (a demoted
primary, a dataset still loading, a full server): like a lost connection, the
batch is answered with ConnectionErrors (its writer may retry it) and the
connection dropped, so the next connect finds a server that can."""


def _is_unusable(reply: Any) -> bool:
    return isinstance(reply, ResponseError) and str(reply).startswith(_UNUSABLE)


def _unusable(replies: list[Any]) -> ResponseError | None:
    for reply in replies:  # a plain loop, the type test inline: this runs for every batch
        if isinstance(reply, ResponseError) and _is_unusable(reply):
            return reply
    return None
