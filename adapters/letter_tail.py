"""Tailing a function's dead-letter stream: what every forwarder of dead letters shares.

The bus keeps each function's dead letters in one stream (listable, redrivable).
Where AWS would also send them somewhere — a queue's ``deadLetterTargetArn``, a
``DeadLetterQueue``, an ``OnFailure`` destination — a forwarder reads that
stream past a cursor of its own and sends. What they share lives here: one
forwarder per cursor is active at a time (a Redis lease, so replicas don't
multiply the sends); the cursor is stored after each send (at-least-once: a
crash between the two sends again, which FIFO deduplication ids make harmless);
errors are counted and backed off; stop lets the round in flight finish.
Subclasses say what to send (:meth:`LetterTail.handle`) and open their clients
(:meth:`LetterTail.open`). A subclass that sends letters in groups may keep a
group cut off by a full read in memory (:meth:`LetterTail.read_on_after`): the
next read continues after it while the stored cursor stays before it, and an
error drops what was kept (:meth:`LetterTail.rewind`) to re-read it from the
cursor.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from contextlib import AsyncExitStack
from typing import Any

from redis.asyncio import Redis

from bus import metrics
from bus.scripts import HOLD_LOCK, RELEASE_LOCK

from .base import ErrorBackoff

log = logging.getLogger(__name__)

Entry = tuple[bytes, dict[bytes, bytes]]
READ_COUNT = 100
LEASE_S = 30.0


ADVANCE_CURSOR = """
-- KEYS: cursor, lease.  ARGV: owner, entry id.  Moves the cursor, forward only, and only
-- for the lease holder: a replica that lost the lease mid-round can't undo the new
-- holder's progress.  1 if moved.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local cur = redis.call('GET', KEYS[1])
if cur then
  local cm, cs = string.match(cur, '^(%d+)-(%d+)$')
  local nm, ns = string.match(ARGV[2], '^(%d+)-(%d+)$')
  cm, cs, nm, ns = tonumber(cm), tonumber(cs), tonumber(nm), tonumber(ns)
  if cm and nm and (nm < cm or (nm == cm and ns <= cs)) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""


class LeaseLost(Exception):
    """Another replica holds the forwarder's lease now: this round ends here."""


class LetterTail:
    """Reads ``stream`` past ``cursor`` while holding ``lease``; see the module docstring."""

    def __init__(self, redis: Redis, *, stream: str, cursor: str, lease: str, label: str,
                 poll_s: float = 1.0, lease_s: float = LEASE_S) -> None:  # fmt: skip
        self.redis = redis
        self.stream = stream
        self.cursor = cursor
        self.lease = lease
        self.label = label
        self.poll_s = poll_s
        """Pause between reads that found nothing: dead letters are rare, and a blocking
        XREAD per function would hold a pooled connection the adapters publish with."""
        self.lease_s = lease_s
        self.owner = f"{os.uname().nodename}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.stopping = False
        self._stop = asyncio.Event()
        self._acquire = redis.register_script(HOLD_LOCK)
        self._release = redis.register_script(RELEASE_LOCK)
        self._advance = redis.register_script(ADVANCE_CURSOR)
        self._errors = metrics.ADAPTER_ERRORS.labels(label)
        self._exit = AsyncExitStack()
        self._task: asyncio.Task[None] | None = None
        self._next: bytes | None = None
        self.read_full = False
        """Whether the read being handled returned :data:`READ_COUNT` entries (more may
        follow at once) rather than everything there was."""

    async def open(self, exit_stack: AsyncExitStack) -> None:
        """Open the clients the sends need (entered on ``exit_stack``, closed on stop)."""

    async def handle(self, entries: list[Entry]) -> None:
        """Send what ``entries`` call for, calling :meth:`advance` as each is done."""
        raise NotImplementedError

    @property
    def ready(self) -> bool:
        return self._task is not None and not self.stopping

    async def start(self) -> None:
        await self.open(self._exit)
        self._task = asyncio.create_task(self._run(), name=self.label)

    async def stop(self, grace_s: float = 30.0) -> bool:
        self.stopping = True
        self._stop.set()
        finished = True
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=grace_s)
            finished = bool(done)
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self._release(keys=[self.lease], args=[self.owner])
        except Exception:  # the lease lapses by itself
            log.warning("%s: could not release the forwarder lease", self.label)
        await self._exit.aclose()
        return finished

    def read_on_after(self, entry_id: bytes | None) -> None:
        """The subclass holds the entries up to ``entry_id`` in memory, past the stored
        cursor: read on after it (and call :meth:`handle` even when nothing new comes).
        None: read from the stored cursor again."""
        self._next = entry_id

    def rewind(self) -> None:
        """Forget entries held in memory (after an error): they are read again."""
        self._next = None

    async def hold(self) -> None:
        """Renew the lease before a send; raises :class:`LeaseLost` if another replica has
        it (a round that outlasts the lease must not send what the new holder sends)."""
        if not await self._acquire(keys=[self.lease], args=[self.owner, int(self.lease_s * 1000)]):
            raise LeaseLost(self.lease)

    async def advance(self, entry_id: bytes) -> None:
        """Everything up to ``entry_id`` is done: a restart resumes after it. Raises
        :class:`LeaseLost` when the lease went to another replica meanwhile."""
        if not await self._advance(keys=[self.cursor, self.lease], args=[self.owner, entry_id]):
            if await self.redis.get(self.lease) != self.owner.encode():
                raise LeaseLost(self.lease)

    async def forward_once(self) -> int:
        """One XREAD past the cursor, handled; returns how many entries it read."""
        held = self._next is not None
        start: Any = self._next or await self.redis.get(self.cursor) or b"0-0"
        reply: Any = await self.redis.xread({self.stream: start}, count=READ_COUNT)
        entries: list[Entry] = [
            (entry_id, fields)
            for _, batch in (reply.items() if isinstance(reply, dict) else reply or [])
            for entry_id, fields in batch
        ]
        self.read_full = len(entries) >= READ_COUNT
        if entries or held:
            await self.handle(entries)
        return len(entries)

    async def _run(self) -> None:
        backoff = ErrorBackoff()
        while not self.stopping:
            try:
                held = await self._acquire(
                    keys=[self.lease], args=[self.owner, int(self.lease_s * 1000)]
                )
                if not held:
                    await self._pause(min(self.lease_s / 3, 5.0))
                elif not await self.forward_once():
                    await self._pause(self.poll_s)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except LeaseLost:
                self.rewind()
                log.info("%s: another replica took over forwarding", self.label)
            except Exception:
                self.rewind()
                self._errors.inc()
                log.exception("%s: forwarding dead letters failed; retrying", self.label)
                await self._pause(backoff.next_delay_s())

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            pass
