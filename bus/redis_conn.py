"""Redis connections: one factory, so every process connects the same way."""

from __future__ import annotations

import os
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ResponseError

from .keys import GROUP

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
