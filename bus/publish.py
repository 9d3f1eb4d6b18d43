"""Publishing: route envelopes onto function streams, idempotently, in batches.

One Lua call per function per batch does "seen within the window? else XADD",
so an adapter that crashes after publishing and before acknowledging its source
gets the redelivered events dropped here instead of run twice. Callers must
acknowledge their source only after ``publish`` returned.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from redis.asyncio import Redis

from . import metrics
from .coalesce import Coalescer
from .envelope import MAX_ENTRY_BYTES, Envelope, encode
from .keys import FunctionKeys, partition_hash
from .scripts import Scripts
from .spec import Trigger

CHUNK = 500
"""Events per script call: large enough to amortize the round trip, small enough
not to stall Redis for other clients."""


class EventTooLarge(ValueError):
    """An envelope workers would refuse to decode; the source must reject it instead."""


def checked(payload: bytes, env: Envelope) -> bytes:
    if len(payload) > MAX_ENTRY_BYTES:
        raise EventTooLarge(
            f"event {env.id!r} is {len(payload)} bytes encoded; the limit is {MAX_ENTRY_BYTES}"
        )
    return payload


class ReplicationError(Exception):
    """WAIT-backed publish: fewer replicas than asked for confirmed the write."""


class Target(NamedTuple):
    """One function an event is routed to, through one of its triggers."""

    function: str
    trigger: Trigger


class Publisher:
    """Idempotent, batched publish onto the streams of one stack."""

    def __init__(self, redis: Redis, stack: str, *, wait_replicas: int = 0,
                 wait_timeout_ms: int = 1000) -> None:  # fmt: skip
        self.redis = redis
        self.stack = stack
        self.scripts = Scripts(redis)
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self._keys: dict[str, FunctionKeys] = {}

    def keys(self, function: str) -> FunctionKeys:
        k = self._keys.get(function)
        if k is None:
            k = self._keys[function] = FunctionKeys(self.stack, function)
        return k

    async def publish(self, envelopes: Sequence[Envelope], targets: Iterable[Target]) -> int:
        """Fan each envelope out to every target; returns how many new entries were added."""
        batches: dict[Target, list[Envelope]] = {}
        for target in targets:
            name = target.trigger.name
            batches[target] = [e if e.trigger == name else e._replace(trigger=name)
                               for e in envelopes]  # fmt: skip
        return await self.publish_batches(batches)

    async def publish_batches(self, batches: dict[Target, list[Envelope]]) -> int:
        pipe = self.redis.pipeline(transaction=False)
        calls: list[Target] = []
        for target, envs in batches.items():
            for start in range(0, len(envs), CHUNK):
                await self._queue(pipe, target, envs[start : start + CHUNK])
                calls.append(target)
        if not calls:
            return 0
        if self.wait_replicas:
            pipe.execute_command("WAIT", self.wait_replicas, self.wait_timeout_ms)
        results = await pipe.execute()
        if self.wait_replicas:
            acked = int(results.pop())
            if acked < self.wait_replicas:
                # The entries are on the primary; the caller must not ack its source yet,
                # and redelivery is harmless (dedupe).
                raise ReplicationError(
                    f"publish reached {acked} of {self.wait_replicas} replicas "
                    f"within {self.wait_timeout_ms} ms"
                )
        added = 0
        per_fn: dict[tuple[str, str], int] = defaultdict(int)
        for target, n in zip(calls, results, strict=False):
            added += int(n)
            source = batches[target][0].source if batches[target] else ""
            per_fn[(source, target.function)] += int(n)
        for (source, function), n in per_fn.items():
            if n:
                metrics.EVENTS_PUBLISHED.labels(source, function).inc(n)
        return added

    async def _queue(self, pipe: Any, target: Target, envs: Sequence[Envelope]) -> None:
        keys = self.keys(target.function)
        window_ms = int(target.trigger.dedupe_window_s * 1000)
        if target.trigger.ordered:
            stream_keys: list[str] = []
            ordered_args: list[Any] = []
            for e in envs:
                ph = partition_hash(f"{target.trigger.name}\x00{e.partition or ''}")
                stream_keys.append(keys.partition_stream(ph))
                ordered_args += (e.id, window_ms, checked(encode(e), e), ph)
            await self.scripts.publish_ordered(
                keys=[keys.seen, keys.partitions, *stream_keys], args=ordered_args, client=pipe
            )
        else:
            args: list[Any] = []
            for e in envs:
                args += (e.id, window_ms, checked(encode(e), e))
            await self.scripts.publish(keys=[keys.stream, keys.seen], args=args, client=pipe)


class CoalescingPublisher:
    """Single-event publishes from many concurrent callers, one pipeline per loop turn."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self._coalescer: Coalescer[tuple[Envelope, tuple[Target, ...]]] = Coalescer(self._flush)

    async def publish(self, envelope: Envelope, targets: Iterable[Target]) -> None:
        await self._coalescer.submit((envelope, tuple(targets)))

    async def _flush(self, items: list[tuple[Envelope, tuple[Target, ...]]]) -> None:
        batches: dict[Target, list[Envelope]] = {}
        for envelope, targets in items:
            for target in targets:
                name = target.trigger.name
                env = envelope if envelope.trigger == name else envelope._replace(trigger=name)
                batches.setdefault(target, []).append(env)
        await self.publisher.publish_batches(batches)
