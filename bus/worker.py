"""The worker: read a function's streams, batch, invoke, settle.

Data path: XREADGROUP (synchronous stream first, then the asynchronous one, in
one call) → decode → batch per trigger → invoke → ack / retry / dead-letter.
Background tasks of the same process move due retries back, reclaim entries of
dead consumers, trim, and keep leases alive (see ``maintenance.py``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Sequence
from typing import Any

import msgpack
from redis.asyncio import Redis

from . import metrics
from .concurrency import ConcurrencyLimiter
from .envelope import Envelope, UndecodableEntry, decode
from .events import build_event, failed_indexes
from .handler import ErrorInfo, Outcome
from .invocation import FunctionInvoker, make_runner, new_request_id
from .keys import GROUP, FunctionKeys
from .lanes import Lanes
from .publish import Publisher
from .reading import read_loop
from .redis_conn import connect, ensure_group, raw_reader
from .runtime_env import function_arn
from .settle import Acker, Settler
from .spec import FunctionSpec, Stack, Trigger
from .sync import encode_reply

log = logging.getLogger(__name__)

Item = tuple[bytes, Envelope]


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"


class Worker:
    """Runs one function of a stack in this process."""

    def __init__(
        self,
        redis_url: str,
        stack: Stack,
        function: str,
        *,
        consumer: str | None = None,
        read_count: int = 500,
        block_ms: int = 1000,
    ) -> None:
        self.redis_url = redis_url
        self.stack = stack
        self.fn: FunctionSpec = stack.function(function)
        self.keys = FunctionKeys(stack.name, function)
        self.consumer = consumer or consumer_name()
        self.read_count = read_count
        self.block_ms = block_ms
        limit = self.fn.max_concurrency
        if self.fn.reserved_concurrency is not None:
            limit = max(1, min(limit, self.fn.reserved_concurrency))
        self.max_inflight = limit
        self.max_batch = max((t.batch_size for t in self.fn.triggers.values()), default=1)
        self.stopping = False
        self.ready = False
        self.slot_freed = asyncio.Event()
        """Set when a lane frees up: a read loop waiting for room reads again."""
        self.lanes = Lanes(limit, on_free=self.slot_freed.set)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._buffers: dict[str, list[Item]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._buffered = 0
        self._max_ages: dict[str, float] = {}
        self.held: dict[str, set[bytes]] = {self.keys.stream: set(), self.keys.sync: set()}
        """Entries this process took and hasn't settled: kept fresh, never reclaimed by us."""
        self._background: list[asyncio.Task[Any]] = []
        self._undecodable = metrics.UNDECODABLE.labels(function)
        self._expired = metrics.EXPIRED.labels(function)
        self._age = metrics.function_stats(function).age

    # -- lifecycle -------------------------------------------------------------

    async def ensure_groups(self) -> None:
        """The consumer group on both streams (created with them if they are gone)."""
        for stream in (self.keys.stream, self.keys.sync):
            await ensure_group(self.redis, stream)

    async def start(self) -> None:
        self.redis: Redis = connect(self.redis_url)
        # Maintenance's reads (XAUTOCLAIM, XPENDING, XRANGE; the blocking read is on a pipe of
        # its own, bus/reading.py): a read timeout notices a half-open connection in seconds.
        self.reader: Redis = raw_reader(self.redis_url, socket_timeout=self.block_ms / 1000 + 5)
        await self.ensure_groups()
        self.publisher = Publisher(self.redis, self.stack.name)
        self.settler = Settler(
            self.redis, self.keys, self.publisher, self.fn, function_arn(self.fn.name)
        )
        self.acker = Acker(self.redis)
        self.runner = make_runner(self.fn)
        self.invoker = FunctionInvoker(self.fn, self.runner, log_stream=self.consumer)
        self.limiter: ConcurrencyLimiter | None = None
        if self.fn.reserved_concurrency is not None:
            self.limiter = ConcurrencyLimiter(
                self.redis, self.keys, self.fn.reserved_concurrency,
                ttl_s=max(30.0, self.fn.timeout_s * 2), owner=self.consumer,
            )  # fmt: skip
            self._background.append(asyncio.create_task(self.limiter.keep_alive()))
        from .maintenance import Maintenance
        from .ordered import OrderedConsumer

        self.maintenance = Maintenance(self)
        self._background += self.maintenance.start()
        ordered = any(t.ordered for t in self.fn.triggers.values())
        self.ordered: OrderedConsumer | None = OrderedConsumer(self) if ordered else None
        if self.ordered is not None:
            self._background.append(asyncio.create_task(self.ordered.run(), name="ordered"))
        self._read_task = asyncio.create_task(read_loop(self), name="reader")
        self.ready = True
        log.info("worker %s of %s/%s started", self.consumer, self.stack.name, self.fn.name)

    async def stop(self, grace_s: float = 30.0) -> bool:
        """Stop reading, finish in-flight work within ``grace_s``; True if all finished."""
        self.stopping = True
        self.ready = False
        deadline = time.monotonic() + grace_s
        self.slot_freed.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._read_task), timeout=grace_s)
        except TimeoutError:
            self._read_task.cancel()
        except Exception:
            log.exception("the read loop of %s had failed", self.keys.stream)
        self._flush_all_buffers()
        remaining = max(0.0, deadline - time.monotonic())
        # Ordered partitions and the lanes drain side by side, sharing the grace period.
        drains: list[Any] = [self.lanes.drain(remaining)]
        if self.ordered is not None:
            drains.append(self.ordered.stop(remaining))
        finished = bool((await asyncio.gather(*drains))[0])
        await self.lanes.close()
        pending = {t for t in self._tasks if not t.done()}
        if pending:
            _, still = await asyncio.wait(pending, timeout=max(0.0, deadline - time.monotonic()))
            finished = finished and not still
            for t in still:
                t.cancel()
        for t in self._background:
            t.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.acker.close()
        try:
            await self.redis.hdel(self.keys.workers, self.consumer)
        except Exception:  # the heartbeat lapses by itself
            log.warning("could not remove the heartbeat of %s", self.consumer)
        await self.runner.close()
        await self.reader.aclose()
        await self.redis.aclose()
        return finished

    # -- dispatching ------------------------------------------------------------

    def handle_reply(self, reply: Any, reclaimed: dict[bytes, int] | None = None) -> None:
        """Dispatch raw XREADGROUP / XAUTOCLAIM entries; ``reclaimed`` maps id → extra attempts."""
        sync_key = self.keys.sync.encode()
        now = time.time()
        for stream, entries in reply.items() if isinstance(reply, dict) else reply:
            is_sync = stream == sync_key
            for entry_id, fields in entries:
                if not fields:  # deleted while pending
                    continue
                try:
                    if fields[0] != b"d":
                        raise UndecodableEntry(f"unexpected entry field {fields[0]!r}")
                    env = decode(fields[1])
                except UndecodableEntry as exc:
                    self._dead_letter_raw(stream.decode(), entry_id, fields, exc)
                    continue
                if reclaimed is not None:
                    env = env.next_attempt(reclaimed.get(entry_id, 1))
                if is_sync:
                    self._dispatch_sync(entry_id, env, reclaimed is not None)
                elif reclaimed is not None and self._exhausted(env):
                    err = ErrorInfo("Runtime.WorkerLost", "the worker running this event died", [])
                    ran = env._replace(attempt=env.attempt - 1)  # this attempt never started
                    self._spawn(self.settler.give_up(
                        stream.decode(), [(entry_id, ran)], err, "RetriesExhausted"))  # fmt: skip
                elif now - (env.first_seen or env.time) >= self._max_age(env.trigger):
                    # Lambda discards an event past MaximumEventAgeInSeconds without running it.
                    err = ErrorInfo("EventAgeExceeded", "event older than its maximum age", [])
                    unrun = env._replace(attempt=env.attempt - 1)
                    self._spawn(self.settler.give_up(
                        stream.decode(), [(entry_id, unrun)], err, "EventAgeExceeded"))  # fmt: skip
                else:
                    self._buffer(entry_id, env)
        self._flush_ready_buffers()

    def _max_age(self, trigger_name: str) -> float:
        age = self._max_ages.get(trigger_name)
        if age is None:
            trigger = self.fn.trigger(trigger_name)
            age = trigger.max_record_age_s or self.fn.retry.max_event_age_s
            age = self._max_ages[trigger_name] = age if age > 0 else float("inf")
        return age

    def _exhausted(self, env: Envelope) -> bool:
        trigger = self.fn.trigger(env.trigger)
        limit = trigger.max_retry_attempts
        if limit is None:
            limit = self.fn.retry.max_retry_attempts
        return limit >= 0 and env.attempt > limit

    def _dead_letter_raw(self, stream: str, entry_id: bytes, fields: Any, exc: Exception) -> None:
        self._undecodable.inc()
        log.error("undecodable entry %s in %s: %s", entry_id, stream, exc)
        raw = msgpack.packb([bytes(f) if isinstance(f, bytes) else f for f in fields])
        err = ErrorInfo("UndecodableEntry", str(exc), [])
        self._spawn(self.settler.dead_letter(stream, [(entry_id, raw)], err, "undecodable"))

    # -- batching --------------------------------------------------------------

    def _buffer(self, entry_id: bytes, env: Envelope) -> None:
        self.held[self.keys.stream].add(entry_id)
        trigger = self.fn.trigger(env.trigger)
        buf = self._buffers.setdefault(trigger.name, [])
        buf.append((entry_id, env))
        self._buffered += 1
        if len(buf) >= trigger.batch_size:
            self._dispatch(trigger, trigger.name)
        elif trigger.batching_window_s > 0 and trigger.name not in self._timers:
            self._timers[trigger.name] = asyncio.get_running_loop().call_later(
                trigger.batching_window_s, self._dispatch, trigger, trigger.name
            )

    def _flush_ready_buffers(self) -> None:
        for name in list(self._buffers):
            trigger = self.fn.trigger(name)
            if trigger.batching_window_s <= 0 or self.stopping:
                self._dispatch(trigger, name)

    def _flush_all_buffers(self) -> None:
        for name in list(self._buffers):
            self._dispatch(self.fn.trigger(name), name)

    def _dispatch(self, trigger: Trigger, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        buf = self._buffers.pop(name, None)
        if not buf:
            return
        self._buffered -= len(buf)
        size = trigger.batch_size
        for start in range(0, len(buf), size):
            self.lanes.submit(self._run_batch, trigger, buf[start : start + size])

    def _spawn(self, coro: Any) -> None:
        """Run a cold-path coroutine (dead-lettering, lease release) in its own task."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    # -- invoking --------------------------------------------------------------

    def invoke_limited(self, event: Any, request_id: str, ids: Sequence[bytes],
                       stream: str) -> Awaitable[Outcome]:  # fmt: skip
        # Not a coroutine itself: without a limit, one frame less per invocation.
        limiter = self.limiter
        if limiter is None:
            return self.invoker.invoke(event, request_id)
        return self._invoke_under_limit(limiter, event, request_id, ids, stream)

    async def _invoke_under_limit(self, limiter: ConcurrencyLimiter, event: Any, request_id: str,
                                  ids: Sequence[bytes], stream: str) -> Outcome:  # fmt: skip

        async def renew_claims() -> None:
            # Keep our waiting entries from looking idle to other workers' reclaimers
            # (partition streams have no group: their lease keeps them).
            if ids:
                await self.redis.xclaim(stream, GROUP, self.consumer, 0, list(ids), justid=True)

        return await limiter.run(
            lambda: self.invoker.invoke(event, request_id),
            renew_claims, self.fn.reclaim_after_s / 3, self._spawn,
        )  # fmt: skip

    async def _run_batch(self, trigger: Trigger, items: list[Item]) -> None:
        try:
            await self._run_batch_held(trigger, items)
        finally:
            held = self.held[self.keys.stream]
            for entry_id, _ in items:
                held.discard(entry_id)

    async def _run_batch_held(self, trigger: Trigger, items: list[Item]) -> None:
        envs = [env for _, env in items]
        event = build_event(trigger.shape, envs, trigger.attempt_path)
        # A single event keeps its id as the request id across retries, as Lambda's
        # asynchronous invocations do (and as the Invoke API's 202 response reported).
        request_id = envs[0].id if trigger.shape == "single" else new_request_id()
        ids = [i for i, _ in items]
        outcome = await self.invoke_limited(event, request_id, ids, self.keys.stream)
        failed: list[int]
        if outcome.status == "success":
            failed = (
                failed_indexes(outcome.result, envs, trigger) if trigger.partial_batch != "none"
                else []
            )  # fmt: skip
        else:
            failed = list(range(len(items)))
        stream = self.keys.stream
        if not failed:
            for entry_id in ids:
                self.acker.ack(stream, entry_id)
            self._observe_age(envs)
            return
        failed_set = set(failed)
        for i, (entry_id, _) in enumerate(items):
            if i not in failed_set:
                self.acker.ack(stream, entry_id)
        error = outcome.error or ErrorInfo(
            "PartialBatchFailure", "reported in batchItemFailures", []
        )
        failures = [items[i] for i in failed]
        if await self.settler.fail(trigger, stream, failures, error, event, request_id):
            self.maintenance.wake_mover.set()

    def _observe_age(self, envs: Sequence[Envelope]) -> None:
        now = time.time()
        observe = self._age.observe
        for env in envs:
            observe(max(0.0, now - env.time))

    # -- synchronous invocations ------------------------------------------------

    def _dispatch_sync(self, entry_id: bytes, env: Envelope, reclaimed: bool) -> None:
        if env.deadline is not None and time.time() > env.deadline:
            self._expired.inc()
            self.acker.ack(self.keys.sync, entry_id)
            return
        if reclaimed:
            # The worker that had it died mid-call; Lambda doesn't retry sync calls either.
            err = ErrorInfo("Runtime.WorkerLost", "the worker running this invocation died", [])
            self._reply(entry_id, env, Outcome("error", error=err))
            return
        self.held[self.keys.sync].add(entry_id)
        self.lanes.submit(self._run_sync, entry_id, env)

    async def _run_sync(self, entry_id: bytes, env: Envelope) -> None:
        try:
            outcome = await self.invoke_limited(env.record, env.id, [entry_id], self.keys.sync)
            self._reply(entry_id, env, outcome)
        finally:
            self.held[self.keys.sync].discard(entry_id)

    def _reply(self, entry_id: bytes, env: Envelope, outcome: Outcome) -> None:
        if env.reply_to:
            self.acker.reply(env.reply_to, encode_reply(env.id, outcome), self.keys.sync, entry_id)
        else:
            self.acker.ack(self.keys.sync, entry_id)
