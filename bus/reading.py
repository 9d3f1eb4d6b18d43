"""The worker's read loop: XREADGROUP on the synchronous and asynchronous streams.

Reads only as much as there are free lanes for, on a pipe of its own
(:mod:`.resp_pipe`). The Acker's pending acks and replies go out in the same
write as the next read — one write and one wake-up for both — and a read that
fails (Redis restarted, failed over, dropped us) is retried, recreating the
consumer groups if the streams came back empty.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError, RedisError

from .keys import GROUP
from .redis_conn import pack
from .resp_pipe import RespPipe

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger("bus.worker")


async def read_loop(w: Worker) -> None:
    pipe = RespPipe(w.redis_url, timeout_s=w.block_ms / 1000 + 5, name="reads")
    try:
        await _read_from(w, pipe)
    finally:
        pipe.close()


async def _read_from(w: Worker, pipe: RespPipe) -> None:
    head = ("XREADGROUP", "GROUP", GROUP, w.consumer, "COUNT")
    tail = ("BLOCK", w.block_ms, "STREAMS", w.keys.sync, w.keys.stream, ">", ">")
    reads: dict[int, list[bytes]] = {}  # the packed read per COUNT: packing one costs ~4 µs
    while not w.stopping:
        free = w.max_inflight - w.lanes.busy
        if free <= 0:
            w.slot_freed.clear()
            await w.slot_freed.wait()
            continue
        count = min(w.read_count, free * w.max_batch)
        try:
            await pipe.connect()
            read = reads.get(count)
            if read is None:
                read = reads[count] = pack(*head, count, *tail)
            reply = await _read(w, pipe, read)
        except (RedisError, OSError) as exc:
            # Redis restarted, failed over or dropped us: keep trying, recreating the
            # groups if the streams came back empty (NOGROUP).
            log.warning("reading %s failed (%s); retrying", w.keys.stream, exc)
            w.ready = False
            pipe.close()
            await asyncio.sleep(0.5)
            try:
                await w.ensure_groups()
                w.ready = not w.stopping
            except (RedisError, OSError):
                pass
            continue
        if reply:
            try:
                w.handle_reply(reply)
            except Exception:
                # Whatever went wrong stays pending and is reclaimed; keep reading.
                log.exception("dispatching entries of %s failed", w.keys.stream)
            # Let the handlers that don't suspend finish first: their replies and acks
            # then go out in the same write as the next read (see :func:`_read`).
            await asyncio.sleep(0)


async def _read(w: Worker, pipe: RespPipe, read: list[bytes]) -> Any:
    """One XREADGROUP, with whatever the Acker has pending written just before it."""
    taken = w.acker.take()
    if taken is None:
        [reply] = await pipe.call(read, 1)
    else:
        chunks, n, done = taken
        try:
            replies = await pipe.call(chunks + read, n + 1)
        except BaseException:  # cancelled: they may or may not have been written
            done([ConnectionError("the read was cancelled")] * n)  # resent (idempotent)
            raise
        done(replies[:n])
        reply = replies[n]
    if isinstance(reply, Exception):
        raise reply
    return reply
