"""One mechanism for "many callers, one round trip": the items submitted during a
loop turn are handed to one batch call, and every caller awaits its outcome.

A thousand concurrent invokes, or an HTTP front end publishing one event per
request, would otherwise cost a round trip and a pooled connection each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Coalescer(Generic[T]):
    def __init__(self, flush: Callable[[list[T]], Awaitable[object]]) -> None:
        self._flush_batch = flush
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Queue ``item`` for the next batch; returns once that batch was sent."""
        self._items.append(item)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        await fut

    async def _run(self) -> None:
        try:
            while self._waiters:
                await asyncio.sleep(0)  # let the other callers of this turn enqueue
                items, self._items = self._items, []
                waiters, self._waiters = self._waiters, []
                try:
                    await self._flush_batch(items)
                except Exception as exc:
                    for w in waiters:
                        if not w.done():
                            w.set_exception(exc)
                else:
                    for w in waiters:
                        if not w.done():
                            w.set_result(None)
        finally:
            self._task = None
