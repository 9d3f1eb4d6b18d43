"""The durable workflow executor: advances executions from one Redis work stream.

Everything that can move an execution — its start, a task's result (workers
reply onto the work stream itself: ``reply_to`` names it), a due timer, a
SendTaskSuccess, a StopExecution — is an entry on the stack's work stream,
read through one consumer group by any number of executors. An executor groups
a batch's entries by execution, applies them with the engine, commits the new
document with its commands (store.commit), carries the commands out, and only
then acknowledges the entries. An executor killed anywhere leaves its entries
pending; another one reclaims them (XAUTOCLAIM) and redoes what was not
committed. A result for a token already settled changes nothing.

What an entry means is work_entries.py, what one commit changes is
execution_update.py, and due timers reach the stream through timer_pump.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from bus.keys import GROUP
from bus.redis_conn import connect, ensure_group, raw_reader

from . import metrics
from .commands import CommandIssuer
from .engine import MAX_STATES_PER_TRANSITION, Engine
from .execution_update import apply_batch
from .store import ExecutionStore
from .timer_pump import pump_due_timers
from .work_entries import decode_entry

log = logging.getLogger(__name__)

MAX_DELIVERIES = 10
"""A work entry delivered more often than this is poison: logged, counted and dropped."""

ORPHAN_AFTER_S = 5.0
"""Outbox commands older than this (or than the reclaim idle time) lost their executor."""
ADOPT_POLLS, ADOPT_POLL_S = 40, 0.05
"""How long to wait for another executor to empty its outbox before deferring the work."""


def _is_nogroup(exc: Exception) -> bool:
    return "NOGROUP" in str(exc)


class Executor:
    """One executor process's share of a stack's workflow executions."""

    def __init__(self, redis_url: str, stack: str, *, consumer: str | None = None,
                 claim_idle_ms: int = 30_000, timer_poll_s: float = 0.05,
                 functions: set[str] | None = None, batch: int = 500,
                 clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.stack = stack
        self.redis: Redis = connect(redis_url, max_connections=16)
        self.reader: Redis = raw_reader(redis_url)
        self.store = ExecutionStore(self.redis, stack)
        self.keys = self.store.keys
        self.consumer = consumer or f"{os.uname().nodename}-{os.getpid()}"
        self.claim_idle_ms = claim_idle_ms
        self.timer_poll_s = timer_poll_s
        self.functions = functions
        self.commands = CommandIssuer(self.redis, stack, functions)
        self.batch = batch
        self.clock = clock
        self._engines: dict[str, Engine] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._held: set[Any] = set()
        self._busy = 0
        self._idle = asyncio.Event()
        self._locks: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        await ensure_group(self.redis, self.keys.work)
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="sfn-read"),
            asyncio.create_task(
                pump_due_timers(
                    self.redis, self.keys, self.clock, self.timer_poll_s, self._stopping
                ),
                name="sfn-timers",
            ),
            asyncio.create_task(self._reclaim_loop(), name="sfn-reclaim"),
        ]

    async def stop(self, grace_s: float = 10.0) -> bool:
        """Stop reading, let the batch in flight finish within ``grace_s``, then cancel;
        whatever was cut short stays pending and another executor reclaims it."""
        self._stopping.set()
        clean = True
        if self._busy:
            try:
                await asyncio.wait_for(self._idle.wait(), grace_s)
            except TimeoutError:
                clean = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.reader.aclose()
        await self.redis.aclose()
        return clean

    async def __aenter__(self) -> Executor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- loops -----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                reply = await self.reader.xreadgroup(
                    GROUP, self.consumer, {self.keys.work: ">"}, count=self.batch, block=1000
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reading the work stream failed (%s); retrying", exc)
                await self._recover(exc)
                await asyncio.sleep(0.5)
                continue
            if self._stopping.is_set():
                break  # read after the stop: left pending, another executor reclaims them
            streams: Any = reply.items() if isinstance(reply, dict) else reply or []
            for _, entries in streams:
                try:
                    await self.process(entries)
                except asyncio.CancelledError:
                    raise
                except Exception:  # left pending: reclaimed and tried again
                    log.exception("advancing executions failed; the work will be retried")

    async def _reclaim_loop(self) -> None:
        """Take over entries a dead executor left pending (looped until the cursor is 0-0)."""
        interval = max(0.05, self.claim_idle_ms / 2000)
        while not self._stopping.is_set():
            await asyncio.sleep(interval)
            cursor: Any = "0-0"
            try:
                await self._drop_poison()
                while True:
                    reply = await self.reader.xautoclaim(
                        self.keys.work, GROUP, self.consumer, self.claim_idle_ms,
                        start_id=cursor, count=self.batch,
                    )  # fmt: skip
                    cursor, entries = reply[0], reply[1]
                    if entries:
                        metrics.RECLAIMED.inc(len(entries))
                        await self.process(entries)
                    if cursor in (b"0-0", "0-0"):
                        break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reclaiming work failed (%s)", exc)
                await self._recover(exc)

    async def _recover(self, exc: Exception) -> None:
        """The consumer group is gone (Redis restarted empty, the stream was deleted):
        create it again, as the function workers do."""
        if not _is_nogroup(exc):
            return
        try:
            await ensure_group(self.redis, self.keys.work)
        except Exception as again:  # retried on the next failure
            log.warning("recreating the work stream's group failed (%s)", again)

    async def _drop_poison(self) -> None:
        """Dead-letter entries delivered more than MAX_DELIVERIES times: log, count, drop,
        so one entry that always fails can't be retried forever."""
        pending = await self.redis.xpending_range(
            self.keys.work, GROUP, min="-", max="+", count=self.batch, idle=self.claim_idle_ms
        )
        ids = [p["message_id"] for p in pending
               if int(p["times_delivered"]) > MAX_DELIVERIES
               and p["message_id"] not in self._held]  # fmt: skip
        if not ids:
            return
        for entry_id in ids:
            log.error("work entry %s delivered more than %d times: dropped", entry_id,
                      MAX_DELIVERIES)  # fmt: skip
        metrics.DEAD_LETTERED.inc(len(ids))
        pipe = self.redis.pipeline(transaction=False)
        pipe.xack(self.keys.work, GROUP, *ids)
        pipe.xdel(self.keys.work, *ids)
        await pipe.execute()

    # -- one batch -------------------------------------------------------------------------

    async def process(self, entries: list[Any]) -> None:
        """Advance the executions a batch of entries is about; ack what was carried out.

        Entries already being processed here (a slow batch the reclaim loop sees as
        idle) are skipped; an execution that could not be advanced now leaves its
        entries pending, to be reclaimed and tried again.
        """
        self._busy += 1
        self._idle.clear()
        try:
            await self._process(entries)
        finally:
            self._busy -= 1
            if not self._busy:
                self._idle.set()

    async def _process(self, entries: list[Any]) -> None:
        by_execution: dict[str, list[dict[str, Any]]] = {}
        entry_ids: dict[str, list[Any]] = {}
        orphans: list[Any] = []
        for entry_id, fields in entries:
            if entry_id in self._held:
                continue
            event = decode_entry(fields) if fields else None
            if event is None:  # deleted meanwhile, or malformed: nothing to do
                orphans.append(entry_id)
                continue
            eid = event.pop("e")
            by_execution.setdefault(eid, []).append(event)
            entry_ids.setdefault(eid, []).append(entry_id)
            self._held.add(entry_id)
        try:
            done = await asyncio.gather(*(self.advance(eid, evs)
                                          for eid, evs in by_execution.items()),
                                        return_exceptions=True)  # fmt: skip
            ids = list(orphans)
            for eid, ok in zip(by_execution, done, strict=True):
                if isinstance(ok, asyncio.CancelledError):
                    raise ok
                if isinstance(ok, BaseException):  # left pending: retried, then dead-lettered
                    log.error("advancing execution %s failed: %r", eid, ok)
                elif ok:
                    ids += entry_ids[eid]
            if ids:
                pipe = self.redis.pipeline(transaction=False)
                pipe.xack(self.keys.work, GROUP, *ids)
                pipe.xdel(self.keys.work, *ids)
                await pipe.execute()
        finally:
            for ids_of in entry_ids.values():
                self._held.difference_update(ids_of)

    async def engine(self, meta: dict[str, Any]) -> Engine | None:
        """The engine of the definition the execution started with (cached by its hash)."""
        digest = meta["definition"]
        key = f"{digest}:{meta['machine_arn']}"
        engine = self._engines.get(key)
        if engine is None:
            text = await self.store.get_definition(digest)
            if text is None:
                return None
            engine = Engine(json.loads(text), {"Id": meta["machine_arn"],
                                               "Name": meta["machine_name"]})  # fmt: skip
            if len(self._engines) > 256:
                self._engines.clear()
            self._engines[key] = engine
        return engine

    async def advance(self, eid: str, events: list[dict[str, Any]]) -> bool:
        """Apply ``events`` to one execution, commit, then carry out what it asks for.

        Returns False when the events must wait: the outbox holds commands another
        executor committed moments ago and may be issuing right now; issuing them here
        too would run a task twice. Older ones are orphans of a dead executor: issued.
        """
        lock = self._locks.setdefault(eid, asyncio.Lock())
        try:
            async with lock:
                return await self._advance(eid, events)
        finally:
            if not lock.locked() and self._locks.get(eid) is lock:
                del self._locks[eid]

    async def _advance(self, eid: str, events: list[dict[str, Any]]) -> bool:
        if not await self._adopt_orphans(eid):
            return False
        doc = await self.store.load(eid)
        if doc is None:
            return True
        engine = await self.engine(doc["meta"])
        if engine is None:
            log.error("execution %s: its definition is gone", eid)
            return True
        now = self.clock()
        made: list[Any] = []

        def update(d: dict[str, Any]) -> Any:
            made[:] = [self._apply(engine, d, events, now)]
            return made[0]

        result = await self.store.commit(eid, update)
        if result is None:
            return True
        new_doc, outbox = result
        metrics.observe(new_doc["meta"], made[0][1])
        await self._issue(eid, outbox)
        return True

    async def _adopt_orphans(self, eid: str) -> bool:
        """Issue outbox commands a dead executor committed; False if a live one may still be.

        A live executor empties what it committed within milliseconds, so a young
        entry is waited for briefly; one older than ``orphan_after_s`` is an orphan.
        """
        orphan_after_s = min(ORPHAN_AFTER_S, self.claim_idle_ms / 1000)
        for _ in range(ADOPT_POLLS):
            leftover = await self.store.outbox(eid)
            if not leftover:
                return True
            now = await self.store.server_time()  # "at" is Redis time too: no clock skew
            if all(cmd.get("at", 0) < now - orphan_after_s for cmd in leftover.values()):
                await self._issue(eid, leftover)
                return True
            await asyncio.sleep(ADOPT_POLL_S)
        return False

    def _apply(self, engine: Engine, doc: dict[str, Any], events: list[dict[str, Any]],
               now: float) -> Any:  # fmt: skip
        """One commit's change (execution_update.py), within this module's budget of states."""
        return apply_batch(engine, doc, events, now, MAX_STATES_PER_TRANSITION)

    # -- commands --------------------------------------------------------------------------

    async def _issue(self, eid: str, outbox: dict[str, dict[str, Any]]) -> None:
        await self.commands.issue(eid, outbox)
