"""A worker's background duties: move due retries back, reclaim from dead
consumers, trim acknowledged entries, and publish backlog gauges.

Each is safe with any number of workers doing the same: the mover is one Lua
script, reclaim is XAUTOCLAIM (a claim moves an entry to exactly one consumer),
and trimming only removes entries below everything still pending or undelivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from . import metrics
from .backlog import ordered_backlog
from .keys import GROUP

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger(__name__)

MOVE_LIMIT = 500
HOUSEKEEPING_S = 5.0
STALE_CONSUMER_MS = 3_600_000


def next_id(entry_id: str) -> str:
    """The smallest stream id greater than ``entry_id``."""
    ms, _, seq = entry_id.partition("-")
    if int(seq or 0) >= 2**64 - 1:
        return f"{int(ms) + 1}-0"
    return f"{ms}-{int(seq or 0) + 1}"


def stream_id_key(entry_id: bytes | str) -> tuple[int, int]:
    """Stream ids order numerically, not as strings ("5-10" comes after "5-9")."""
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def safe_minid(last_delivered: str, oldest_pending: str | None) -> str:
    """Everything below this id was delivered and acknowledged, so XTRIM MINID can drop it."""
    return oldest_pending if oldest_pending else next_id(last_delivered)


def _s(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Maintenance:
    def __init__(self, worker: Worker) -> None:
        self.w = worker
        fn = worker.fn.name
        self._reclaimed = metrics.RECLAIMED.labels(fn)
        self._reclaim_deleted = metrics.RECLAIM_DELETED.labels(fn)
        self.wake_mover = asyncio.Event()

    def start(self) -> list[asyncio.Task[Any]]:
        return [
            asyncio.create_task(
                self._loop(self.move_due, "moving due retries", self.wake_mover), name="mover"
            ),
            asyncio.create_task(self._loop(self.reclaim, "reclaiming"), name="reclaimer"),
            asyncio.create_task(self._loop(self.housekeeping, "housekeeping"), name="housekeeping"),
        ]

    async def _loop(self, step: Any, what: str, wake: asyncio.Event | None = None) -> None:
        while True:
            try:
                pause = await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed", what)
                pause = 1.0
            if pause:
                if wake is None:
                    await asyncio.sleep(pause)
                else:  # this process scheduled a retry: look again sooner
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), pause)
                    except TimeoutError:
                        pass

    async def move_due(self) -> float:
        """Move retries whose time has come back onto the stream; returns the pause."""
        keys = self.w.keys
        moved, wait_ms = await self.w.publisher.scripts.move_due(
            keys=[keys.delayed, keys.stream], args=[MOVE_LIMIT]
        )
        if int(moved) >= MOVE_LIMIT:
            return 0.0
        wait_s = int(wait_ms) / 1000 if int(wait_ms) >= 0 else 1.0
        return min(max(wait_s, 0.01), 0.25)

    async def reclaim(self) -> float:
        """XAUTOCLAIM entries idle past the visibility timeout; a reclaim is an attempt."""
        w = self.w
        min_idle_ms = int(w.fn.reclaim_after_s * 1000)
        await self.renew_held()
        for stream in (w.keys.sync, w.keys.stream):
            start: Any = "0-0"
            while not w.stopping:
                room = (w.max_inflight - w.lanes.busy) * w.max_batch
                if room <= 0:  # take over only what we can start now
                    break
                cursor, entries, deleted = await w.reader.execute_command(
                    "XAUTOCLAIM", stream, GROUP, w.consumer, min_idle_ms, start,
                    "COUNT", min(100, room),
                )  # fmt: skip
                if deleted:
                    self._reclaim_deleted.inc(len(deleted))
                    log.warning("%d pending entries of %s were deleted before reclaim",
                                len(deleted), stream)  # fmt: skip
                if entries:
                    await self._take_over(stream, entries)
                if cursor in (b"0-0", "0-0"):
                    break
                start = cursor
        return max(0.2, min(w.fn.reclaim_after_s / 4, 5.0))

    async def renew_held(self) -> None:
        """Reset the idle time of entries waiting here (queued, batching, throttled), so
        no reclaimer — ours included — mistakes them for a dead consumer's (XCLAIM JUSTID
        doesn't count as a delivery)."""
        w = self.w
        for stream, ids in w.held.items():
            if ids:
                batch: list[Any] = list(ids)
                for start in range(0, len(batch), 1000):
                    await w.redis.xclaim(stream, GROUP, w.consumer, 0,
                                         batch[start : start + 1000], justid=True)  # fmt: skip

    async def _take_over(self, stream: str, entries: list[Any]) -> None:
        w = self.w
        held = w.held.get(stream, set())
        live = [e for e in entries if e[1] and e[0] not in held]
        if not live:
            return
        wanted = {e[0] for e in live}
        ids = sorted(wanted, key=stream_id_key)
        # Delivery counts (XAUTOCLAIM just added one) tell how often each entry was tried.
        extra: dict[bytes, int] = {}
        start: Any = ids[0]
        while True:
            pend = await w.reader.execute_command(
                "XPENDING", stream, GROUP, start, ids[-1], 1000, w.consumer
            )
            for p in pend:
                if p[0] in wanted:
                    extra[p[0]] = max(1, int(p[3]) - 1)
            if len(pend) < 1000:
                break
            start = "(" + (pend[-1][0].decode() if isinstance(pend[-1][0], bytes) else pend[-1][0])
        self._reclaimed.inc(len(live))
        log.warning("reclaimed %d entries of %s from dead or stuck consumers", len(live), stream)
        w.handle_reply([(stream.encode(), live)], reclaimed=extra)

    async def housekeeping(self) -> float:
        w = self.w
        backlog = pending = 0
        for stream in (w.keys.stream, w.keys.sync):
            lag, pend = await self.trim(stream)
            backlog += lag
            pending += pend
        if any(t.ordered for t in w.fn.triggers.values()):
            backlog += await self.ordered_backlog()
        fn = w.fn.name
        metrics.BACKLOG.labels(fn).set(backlog)
        metrics.PENDING.labels(fn).set(pending)
        metrics.DELAYED.labels(fn).set(await w.redis.zcard(w.keys.delayed))
        metrics.DEAD_LETTER_DEPTH.labels(fn).set(await w.redis.xlen(w.keys.dead_letters))
        await self.forget_stale_consumers(w.keys.stream)
        await self.heartbeat()
        return HOUSEKEEPING_S

    async def ordered_backlog(self) -> int:
        return await ordered_backlog(self.w.redis, self.w.keys)

    async def heartbeat(self) -> None:
        """Tell ``lambdabus status`` this worker lives and how much it runs now."""
        w = self.w
        stamp = f"{w.invoker.inflight}:{int(time.time() * 1000)}"
        pipe = w.redis.pipeline(transaction=False)
        pipe.hset(w.keys.workers, w.consumer, stamp)
        pipe.pexpire(w.keys.workers, 60_000)
        await pipe.execute()

    async def trim(self, stream: str) -> tuple[int, int]:
        """Drop acknowledged entries (MINID, never MAXLEN); returns (lag, pending)."""
        groups = await self.w.redis.xinfo_groups(stream)
        group = next((g for g in groups if _s(g.get("name")) == GROUP), None)
        if group is None:
            return 0, 0
        pending = int(group.get("pending") or 0)
        last = _s(group.get("last-delivered-id") or "0-0")
        oldest: str | None = None
        if pending:
            summary = await self.w.redis.xpending(stream, GROUP)
            oldest = _s(summary["min"]) if summary.get("min") else None
        if last != "0-0" or oldest:
            await self.w.redis.xtrim(stream, minid=safe_minid(last, oldest), approximate=False)
        lag = group.get("lag")
        if lag is None:  # NULL after deletions or trimming: count what is past last-delivered
            rest: Any = await self.w.redis.xrange(stream, min=next_id(last), count=10_000)
            lag = len(rest)
        return int(lag), pending

    async def forget_stale_consumers(self, stream: str) -> None:
        """Delete consumers (dead processes) that hold nothing and were idle for an hour."""
        for c in await self.w.redis.xinfo_consumers(stream, GROUP):
            name = _s(c.get("name"))
            if name != self.w.consumer and not int(c.get("pending") or 0) and int(
                c.get("idle") or 0) > STALE_CONSUMER_MS:  # fmt: skip
                await self.w.redis.xgroup_delconsumer(stream, GROUP, name)
