"""A pool of long-lived tasks ("lanes") that run queued jobs.

Creating an asyncio task per invocation costs more than a no-op handler does.
A lane runs job after job in one task: a handler that never suspends costs no
task at all, and one that awaits I/O holds its lane, so the lane count is the
per-process concurrency limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Job = tuple[Callable[..., Awaitable[None]], tuple[Any, ...]]


class Lanes:
    def __init__(self, size: int, on_free: Callable[[], None] = lambda: None) -> None:
        self.size = max(1, size)
        self.on_free = on_free
        self.busy = 0
        """Jobs queued or running."""
        self._jobs: deque[Job] = deque()
        self._idle: deque[asyncio.Future[None]] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        self._drained = asyncio.Event()
        self._drained.set()
        self._waking = 0
        """Lanes woken that haven't picked up a job yet: don't wake more for the same work."""

    def submit(self, fn: Callable[..., Awaitable[None]], *args: Any) -> None:
        self._jobs.append((fn, args))
        self.busy += 1
        self._drained.clear()
        if not self._waking:
            self._wake_one()

    def _wake_one(self) -> None:
        """Wake (or start) one lane; a lane that starts a job wakes the next if work is left."""
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._waking += 1
                return
        if len(self._tasks) < self.size:
            self._tasks.append(asyncio.create_task(self._lane(), name="lane"))
            self._waking += 1

    async def _lane(self) -> None:
        jobs = self._jobs
        loop = asyncio.get_running_loop()
        self._waking -= 1
        while True:
            if not jobs:
                waiter = loop.create_future()
                self._idle.append(waiter)
                await waiter
                self._waking -= 1
                continue
            fn, args = jobs.popleft()
            if jobs and not self._waking:
                self._wake_one()  # in case this job suspends, someone takes the next
            try:
                await fn(*args)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # we are being stopped
                # A job leaked a CancelledError it wasn't sent (a handler cancelling its
                # own awaitable): the lane must survive it, or the pool shrinks for good.
                log.exception("job %s raised CancelledError", getattr(fn, "__name__", fn))
            except Exception:
                log.exception("job %s failed", getattr(fn, "__name__", fn))
            finally:
                self.busy -= 1
                if self.busy == 0:
                    self._drained.set()
                self.on_free()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every queued and running job finished; False on timeout."""
        try:
            await asyncio.wait_for(self._drained.wait(), timeout_s)
            return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
