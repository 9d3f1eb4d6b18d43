"""Deadlines of calls that all wait the same time, on one loop timer.

Every synchronous call has a deadline on the caller's side and a timeout on the
handler's. A ``loop.call_at`` each costs a libuv timer and a handle to make and
to cancel: with one call per HTTP request, those two timers were about 5% of
the CPU a request cost end to end (``bench/http.py``'s stack). Calls that wait
the same time expire in the order they started, so one timer, armed for the
oldest, serves them all, and adding or removing a call is a dict operation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)

EARLY_S = 0.001
"""A deadline this close counts as passed: loops may run a timer a little early."""


class Deadlines(Generic[K]):
    """``expire(key, info)`` for each key added and not discarded within ``wait_s``."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, wait_s: float, expire: Callable[[K, Any], object]
    ) -> None:
        self.loop = loop
        self.wait_s = wait_s
        self.expire = expire
        self._due: dict[K, tuple[float, Any]] = {}
        """Key -> (deadline on the loop's clock, info), oldest first."""
        self._timer: asyncio.TimerHandle | None = None
        self._firing = False

    def __len__(self) -> int:
        return len(self._due)

    def add(self, key: K, info: Any = None) -> None:
        """Start ``key``'s wait (again, if it was waiting: it moves to the back)."""
        when = self.loop.time() + self.wait_s
        due = self._due
        if key in due:
            del due[key]
        due[key] = (when, info)
        if self._timer is None and not self._firing:
            self._timer = self.loop.call_at(when, self._fire)

    def discard(self, key: K) -> None:
        self._due.pop(key, None)

    def close(self) -> None:
        """Drop every deadline unexpired."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._due.clear()

    def _fire(self) -> None:
        self._timer = None
        due = self._due
        now = self.loop.time() + EARLY_S
        passed = []
        for key, (when, _) in due.items():
            if when > now:
                break
            passed.append(key)
        self._firing = True  # expiries may add and discard calls: arm once, after them
        try:
            for key in passed:
                entry = due.get(key)
                if entry is None or entry[0] > now:  # discarded or re-added by an expiry
                    continue
                del due[key]
                try:
                    self.expire(key, entry[1])
                except Exception:
                    log.exception("expiring %r failed", key)
        finally:
            self._firing = False
            if due:
                self._timer = self.loop.call_at(next(iter(due.values()))[0], self._fire)
