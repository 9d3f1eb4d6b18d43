"""ReservedConcurrentExecutions across every worker process: leases in Redis.

A lease is a member of the function's lease set scored by its expiry, so a
crashed worker's leases lapse on their own (crash-safe) while live ones are
renewed. Over the limit, invocations wait (and are counted as throttled); the
events stay pending in Redis, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from redis.asyncio import Redis

from . import metrics
from .handler import Outcome
from .keys import FunctionKeys
from .scripts import Scripts

log = logging.getLogger(__name__)


class ConcurrencyLimiter:
    def __init__(self, redis: Redis, keys: FunctionKeys, limit: int, ttl_s: float,
                 owner: str) -> None:  # fmt: skip
        self.redis = redis
        self.keys = keys
        self.limit = limit
        self.ttl_ms = int(ttl_s * 1000)
        self.owner = owner
        self.scripts = Scripts(redis)
        self.held: set[str] = set()
        self._ids = itertools.count()
        self._released = asyncio.Event()
        self._throttled = metrics.THROTTLED.labels(keys.function)
        self._stats = metrics.function_stats(keys.function)

    async def acquire(self, on_long_wait: Callable[[], Awaitable[None]] | None,
                      long_wait_s: float) -> str:  # fmt: skip
        """Wait for a lease; ``on_long_wait`` runs every ``long_wait_s`` of waiting."""
        lease = f"{self.owner}:{next(self._ids)}"
        args: list[int | str] = [self.limit, self.ttl_ms, lease]
        waited = 0.0
        since_callback = 0.0
        throttled = False
        while True:
            if await self.scripts.acquire_leases(keys=[self.keys.concurrency], args=args):
                self.held.add(lease)
                return lease
            if not throttled:
                throttled = True
                self._throttled.inc()
                self._stats.outcomes["throttled"] += 1
            self._released.clear()
            pause = random.uniform(0.005, 0.05)
            try:
                await asyncio.wait_for(self._released.wait(), pause)
            except TimeoutError:
                pass
            waited += pause
            since_callback += pause
            if on_long_wait is not None and since_callback >= long_wait_s:
                since_callback = 0.0
                await on_long_wait()

    async def run(
        self,
        call: Callable[[], Awaitable[Outcome]],
        on_long_wait: Callable[[], Awaitable[None]] | None,
        long_wait_s: float,
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> Outcome:
        """``call`` under a lease, released when it returns — or, for a thread handler
        abandoned at its timeout (it still runs), when that thread finishes (``spawn``
        runs the release on the loop)."""
        lease = await self.acquire(on_long_wait, long_wait_s)
        try:
            outcome = await call()
        except BaseException:
            await asyncio.shield(self.release(lease))
            raise
        if outcome.abandoned is not None:
            loop = asyncio.get_running_loop()
            outcome.abandoned.add_done_callback(
                lambda _: loop.call_soon_threadsafe(spawn, self.release(lease))
            )
        else:
            await self.release(lease)
        return outcome

    async def release(self, lease: str) -> None:
        self.held.discard(lease)
        await self.redis.zrem(self.keys.concurrency, lease)
        self._released.set()

    async def keep_alive(self) -> None:
        """Renew held leases well before they lapse; runs until cancelled."""
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            if self.held:
                try:
                    await self.scripts.renew_leases(
                        keys=[self.keys.concurrency], args=[self.ttl_ms, *self.held]
                    )
                except Exception:
                    log.exception("renewing concurrency leases failed")
