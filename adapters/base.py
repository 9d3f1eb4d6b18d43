"""The base every event-source adapter shares: read, publish, then acknowledge.

An adapter is a small class that knows only its source: how to read a batch
(``steps``), what the batch becomes (:class:`Handoff`: envelopes, targets and
an opaque acknowledgement), and how to acknowledge it at the source
(``acknowledge``). Everything else is here, the same for every source:

- **Publish, then acknowledge.** :meth:`Adapter.handoff` publishes (idempotently,
  see :mod:`bus.publish`) and only then acknowledges. ``acknowledge`` takes a
  :class:`Published` — a receipt only ``handoff`` makes, after the publish
  returned — so an adapter cannot acknowledge what is not on the bus yet
  without forging one. A crash anywhere redelivers; dedupe drops the repeat.
- **Lifecycle.** ``start``/``stop(grace_s)``: stop interrupts reads and pauses at
  once, lets handoffs in flight finish within the grace period, then cancels.
- **Backpressure.** Before each read, polling waits while a target function's
  backlog (its consumer group's ``lag``, read with XINFO GROUPS) is above the
  high-water mark, so a slow function is not buried under a source's backlog:
  the events stay at the source, where they are durable and visible.
- **Errors.** A failing read or handoff is counted
  (``lambdabus_adapter_errors_total{adapter}``) and retried after an
  exponential, jittered pause, reset by the next success.
- **Lag.** ``observe_lag`` sets ``lambdabus_source_lag_seconds{adapter}``.

The ``adapter`` label is the adapter's own name (e.g. ``sqs:Function.Event``):
bounded by the template, never an event id.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bus import metrics
from bus.backlog import ordered_backlog
from bus.envelope import Envelope
from bus.keys import GROUP, FunctionKeys
from bus.publish import Publisher, Target

log = logging.getLogger(__name__)

AckT = TypeVar("AckT")
T = TypeVar("T")

DEFAULT_HIGH_WATER = 10_000
"""Undelivered events per function above which adapters stop reading their source."""
BACKLOG_CHECK_S = 0.5
"""How long a backlog reading is reused, and how often a paused adapter looks again."""
ORDERED_SCAN_LIMIT = 100
"""Partitions sampled for an ordered function's backlog (bounds one check's cost)."""


@dataclass(slots=True)
class Handoff(Generic[AckT]):
    """What one read produced: envelopes for ``targets``, and the source's acknowledgement.

    Events dropped before publishing (filtered out, or not events at all) still belong
    in ``ack``: they are acknowledged with the rest, as Lambda deletes what it filters.
    """

    envelopes: list[Envelope]
    targets: Sequence[Target]
    ack: AckT


class Published(Generic[AckT]):
    """Receipt that a handoff's envelopes are on the bus; only ``Adapter.handoff`` makes one."""

    __slots__ = ("ack", "added")

    def __init__(self, ack: AckT, added: int) -> None:
        self.ack = ack
        self.added = added


@dataclass
class AdapterCounts:
    """What an adapter did since it started (for tests, logs and ``status``)."""

    received: int = 0
    published: int = 0
    """Entries added to function streams."""
    duplicates: int = 0
    """(event, function) pairs the bus had already seen: redeliveries."""
    filtered: int = 0
    rejected: int = 0
    """Source events left at the source because they could not be published."""
    acknowledged: int = 0


class ErrorBackoff:
    """Exponential pause after consecutive failures, jittered over the upper half of the
    bound so that adapters failing together spread out yet a persistent failure never
    spins (a pure step)."""

    def __init__(self, base_s: float = 0.1, cap_s: float = 10.0,
                 rng: random.Random | None = None) -> None:  # fmt: skip
        self.base_s = base_s
        self.cap_s = cap_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay_s(self) -> float:
        self.failures += 1
        bound = min(self.cap_s, self.base_s * 2 ** min(self.failures - 1, 30))
        return self._rng.uniform(bound / 2, bound)

    def reset(self) -> None:
        self.failures = 0


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


class Backlog:
    """Read-only view of how many events wait undelivered in a function's streams.

    ``lag`` from XINFO GROUPS; Redis reports it as NULL after deletions, and then
    the stream's length (an upper bound: it includes pending entries) stands in.
    Ordered triggers keep one stream per partition without a consumer group; their
    length is summed over a sample of :data:`ORDERED_SCAN_LIMIT` partitions and scaled
    to all of them, as the backlog gauge does (:func:`bus.backlog.ordered_backlog`).
    """

    def __init__(self, redis: Redis, stack: str, ttl_s: float = BACKLOG_CHECK_S) -> None:
        self.redis = redis
        self.stack = stack
        self.ttl_s = ttl_s
        self._cache: dict[tuple[str, bool], tuple[float, int]] = {}

    async def depth(self, function: str, ordered: bool = False) -> int:
        key = (function, ordered)
        cached = self._cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        keys = FunctionKeys(self.stack, function)
        depth = await self._stream_lag(keys.stream)
        if ordered:
            depth += await self._partitions(keys)
        self._cache[key] = (now, depth)
        return depth

    def forget(self, function: str) -> None:
        """Drop cached readings after a publish to ``function``: its backlog just grew."""
        self._cache.pop((function, False), None)
        self._cache.pop((function, True), None)

    async def _stream_lag(self, stream: str) -> int:
        try:
            groups = await self.redis.xinfo_groups(stream)
        except ResponseError as exc:  # no such key: nothing waits yet
            if "no such key" in str(exc).lower():
                return 0
            raise
        for group in groups:
            if _text(group.get("name")) == GROUP:
                lag = group.get("lag")
                return int(lag) if lag is not None else int(await self.redis.xlen(stream))
        return int(await self.redis.xlen(stream))

    async def _partitions(self, keys: FunctionKeys) -> int:
        return await ordered_backlog(self.redis, keys, ORDERED_SCAN_LIMIT)


class Adapter(ABC, Generic[AckT]):
    """One source, read by one or more loops (``steps``), published, then acknowledged."""

    def __init__(
        self,
        redis: Redis,
        stack: str,
        label: str,
        *,
        high_water: int = DEFAULT_HIGH_WATER,
        after_publish: Callable[[Handoff[Any]], Awaitable[None]] | None = None,
    ) -> None:
        self.redis = redis
        self.stack = stack
        self.label = label
        self.publisher = Publisher(redis, stack)
        self.backlog = Backlog(redis, stack)
        self.high_water = high_water
        self.after_publish = after_publish
        """Runs between publish and acknowledge (instrumentation, crash tests)."""
        self.counts = AdapterCounts()
        self.held_loops = 0
        """Loops backpressure holds now (each is then between reads, never mid-handoff)."""
        self.stopping = False
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._errors = metrics.ADAPTER_ERRORS.labels(label)
        self._lag = metrics.SOURCE_LAG.labels(label)

    # -- what a source implements ---------------------------------------------------

    async def open(self) -> None:
        """Acquire the source's clients (before the loops start)."""

    async def close(self) -> None:
        """Release them (after the loops ended)."""

    @abstractmethod
    def steps(self) -> list[Callable[[], Awaitable[None]]]:
        """One coroutine function per loop; each call reads once and hands off."""

    def watched(self) -> Sequence[Target]:
        """Targets whose backlog pauses reading (default: none)."""
        return ()

    @abstractmethod
    async def acknowledge(self, published: Published[AckT]) -> None:
        """Acknowledge a handoff at the source; only ever called after its publish."""

    def holding(self, ack: AckT) -> AbstractAsyncContextManager[Any]:
        """Entered around publishing (e.g. to keep SQS messages invisible meanwhile)."""
        return nullcontext()

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return bool(self._tasks) and not self.stopping

    async def start(self) -> None:
        await self.open()
        self._tasks = [
            asyncio.create_task(self._loop(step), name=f"{self.label}#{i}")
            for i, step in enumerate(self.steps())
        ]
        log.info("adapter %s started (%d loops)", self.label, len(self._tasks))

    async def stop(self, grace_s: float = 30.0) -> bool:
        """Stop reading; handoffs in flight get ``grace_s``. True if all finished."""
        self.stopping = True
        self._stop.set()
        finished = True
        if self._tasks:
            _, still = await asyncio.wait(self._tasks, timeout=grace_s)
            finished = not still
            for task in still:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.close()
        return finished

    async def _loop(self, step: Callable[[], Awaitable[None]]) -> None:
        backoff = ErrorBackoff()
        while not self.stopping:
            try:
                await self.wait_for_room()
                if self.stopping:
                    return
                await step()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.count_error()
                log.exception("adapter %s failed; retrying", self.label)
                await self.pause(backoff.next_delay_s())

    # -- services for sources -------------------------------------------------------------

    async def handoff(self, handoff: Handoff[AckT]) -> None:
        """Publish, then acknowledge: the only path to ``acknowledge``."""
        async with self.holding(handoff.ack):
            added = 0
            if handoff.envelopes and handoff.targets:
                added = await self.publisher.publish(handoff.envelopes, handoff.targets)
                for target in handoff.targets:
                    self.backlog.forget(target.function)
            self.counts.published += added
            self.counts.duplicates += len(handoff.envelopes) * len(handoff.targets) - added
            if self.after_publish is not None:
                await self.after_publish(handoff)
        # Shielded: once started, a stop's cancellation must not cut the acknowledgement off.
        await asyncio.shield(self.acknowledge(Published(handoff.ack, added)))

    async def interruptible(self, aw: Awaitable[T]) -> T | None:
        """``await aw`` unless the adapter stops first (then None; ``aw`` is cancelled).
        For reads only: a read cut short loses nothing, the source redelivers."""
        task = asyncio.ensure_future(aw)
        stopped = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return None if task.cancelled() else task.result()

    async def pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the adapter stops."""
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=max(0.0, seconds))
        except TimeoutError:
            pass

    async def wait_for_room(self) -> None:
        """Hold this loop while any watched function's backlog is above the high-water mark."""
        targets = self.watched()
        held = False
        try:
            while targets and not self.stopping:
                over = [
                    t.function for t in targets
                    if await self.backlog.depth(t.function, t.trigger.ordered) > self.high_water
                ]  # fmt: skip
                if not over:
                    return
                if not held:
                    held = True
                    self.held_loops += 1
                    if self.held_loops == 1:
                        log.warning("adapter %s paused: backlog of %s above %d",
                                    self.label, ", ".join(over), self.high_water)  # fmt: skip
                await self.pause(BACKLOG_CHECK_S)
        finally:
            if held:
                self.held_loops -= 1
                if self.held_loops == 0:
                    log.info("adapter %s resumed", self.label)

    @property
    def paused(self) -> bool:
        """True while backpressure holds any of this adapter's loops."""
        return self.held_loops > 0

    def observe_lag(self, seconds: float) -> None:
        self._lag.set(max(0.0, seconds))

    def count_error(self, n: int = 1) -> None:
        self._errors.inc(n)


class Service(Protocol):
    """What a process runs alongside others: adapters, dead-letter forwarders."""

    async def start(self) -> None: ...

    async def stop(self, grace_s: float = 30.0) -> bool: ...

    @property
    def ready(self) -> bool: ...


@dataclass
class AdapterGroup:
    """Several services started and stopped together (one process runs many mappings)."""

    adapters: list[Service] = field(default_factory=list)

    async def start(self) -> None:
        for adapter in self.adapters:
            await adapter.start()

    async def stop(self, grace_s: float = 30.0) -> bool:
        results = await asyncio.gather(*(a.stop(grace_s) for a in self.adapters))
        return all(results)

    @property
    def ready(self) -> bool:
        return all(a.ready for a in self.adapters)
