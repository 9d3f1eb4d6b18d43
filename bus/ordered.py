"""Ordered triggers (DynamoDB Streams, SQS FIFO): one owner per partition, in order.

Each ordering key has its own stream and an entry in the function's partition
index. A worker owns a partition through a lease (SET NX PX, renewed while it
works), runs its batches one after another, and retries a failing batch in
place, so a failure blocks only its own partition. Entries are deleted once
processed; a new owner after a crash starts at the first unprocessed entry, so
a handover cannot reorder. Retry counts survive a handover in the partition
state hash.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from .backoff import compute_backoff_s
from .envelope import Envelope, UndecodableEntry, decode
from .events import build_event, destination_record, failed_indexes
from .handler import ErrorInfo
from .invocation import new_request_id
from .spec import Trigger

if TYPE_CHECKING:
    from .worker import Worker

log = logging.getLogger(__name__)

Item = tuple[bytes, Envelope]
LEASE_MIN_S = 10.0


class LeaseLost(Exception):
    pass


class OrderedConsumer:
    def __init__(self, worker: Worker) -> None:
        self.w = worker
        self.keys = worker.keys
        self.lease_s = max(LEASE_MIN_S, worker.fn.timeout_s * 2)
        self.owned: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    async def run(self) -> None:
        pause = 0.01
        while not self._stopping:
            try:
                found = await self._acquire_partitions()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scanning partitions failed")
                found = False
            pause = 0.01 if found else min(pause * 2, 0.2)
            await asyncio.sleep(pause)

    async def _acquire_partitions(self) -> bool:
        capacity = self.w.max_inflight - len(self.owned)
        if capacity <= 0:
            return False
        # The oldest partitions first, plus a random sample: with many replicas the head
        # may be all leased (busy or failing partitions), and later ones must not starve.
        pipe = self.w.redis.pipeline(transaction=False)
        pipe.zrange(self.keys.partitions, 0, capacity * 2)
        pipe.zrandmember(self.keys.partitions, capacity * 2)
        head, sample = await pipe.execute()
        candidates: Any = list(dict.fromkeys([*head, *(sample or [])]))
        found = False
        for raw in candidates:
            if self._stopping:  # stop() already took the list of partitions to wait for
                break
            ph = raw.decode()
            if ph in self.owned or len(self.owned) >= self.w.max_inflight:
                continue
            lock = self.keys.partition_lease(ph)
            if await self.w.redis.set(lock, self.w.consumer, nx=True, px=int(self.lease_s * 1000)):
                found = True
                task = asyncio.create_task(self._own(ph), name=f"partition-{ph}")
                self.owned[ph] = task
                task.add_done_callback(self._forget(ph))
        return found

    def _forget(self, ph: str) -> Any:
        def done(_: asyncio.Task[None]) -> None:
            self.owned.pop(ph, None)

        return done

    async def stop(self, grace_s: float) -> None:
        self._stopping = True
        tasks = list(self.owned.values())
        if tasks:
            _, still = await asyncio.wait(tasks, timeout=grace_s)
            for t in still:
                t.cancel()
            await asyncio.gather(*still, return_exceptions=True)

    async def _own(self, ph: str) -> None:
        lock = self.keys.partition_lease(ph)
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep_lease(lock, lost))
        try:
            while not self._stopping and not lost.is_set():
                items = await self._read(ph)
                if items is None:
                    break
                if items:
                    await self._process(ph, items, lost)
        except LeaseLost:
            log.warning("lost the lease on partition %s; another worker continues it", ph)
        except Exception:
            log.exception("partition %s failed; another worker will take it over", ph)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            await self.w.publisher.scripts.release_lock(keys=[lock], args=[self.w.consumer])

    async def _keep_lease(self, lock: str, lost: asyncio.Event) -> None:
        ttl_ms = int(self.lease_s * 1000)
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                ok = await self.w.publisher.scripts.renew_lock(
                    keys=[lock], args=[self.w.consumer, ttl_ms]
                )
            except Exception as exc:
                # Can't tell if we still hold it: once it may have lapsed, stop working on it.
                log.warning("renewing the lease %s failed (%s)", lock, exc)
                if time.monotonic() - renewed > self.lease_s * 0.8:
                    lost.set()
                    return
                continue
            if not ok:
                lost.set()
                return
            renewed = time.monotonic()

    async def _read(self, ph: str) -> list[Item] | None:
        """The next batch of the partition; None when it is drained (and released)."""
        stream = self.keys.partition_stream(ph)
        while True:
            raw = await self.w.reader.execute_command("XRANGE", stream, "-", "+", "COUNT", 1000)
            if not raw:
                left = await self._commit(ph, [])
                return None if left == 0 else []
            items: list[Item] = []
            for entry_id, fields in raw:
                try:
                    items.append((entry_id, decode(fields[1])))
                except (UndecodableEntry, IndexError) as exc:
                    err = ErrorInfo("UndecodableEntry", str(exc), [])
                    await self.w.settler.dead_letter(
                        stream, [(entry_id, bytes(fields[1]) if len(fields) > 1 else b"")],
                        err, "undecodable", partition_stream=True,
                    )  # fmt: skip
            if not items:
                continue
            trigger = self.w.fn.trigger(items[0][1].trigger)
            batch = items[: trigger.batch_size]
            age = time.time() - batch[0][1].first_seen
            wait = trigger.batching_window_s - age
            if len(batch) < trigger.batch_size and wait > 0 and not self._stopping:
                await asyncio.sleep(min(wait, 0.05))
                continue
            return batch

    async def _commit(self, ph: str, ids: list[bytes]) -> int:
        left = await self.w.publisher.scripts.commit_partition(
            keys=[self.keys.partition_stream(ph), self.keys.partition_lease(ph),
                  self.keys.partitions, self.keys.partition_state()],
            args=[self.w.consumer, ph, *ids],
        )  # fmt: skip
        if int(left) < 0:
            raise LeaseLost(ph)
        return int(left)

    async def _attempts(self, ph: str, head: bytes) -> int:
        state: Any = await self.w.redis.hget(self.keys.partition_state(), ph)
        if state:
            sid, _, n = state.decode().rpartition(":")
            if sid == head.decode():
                return int(n)
        return 0

    async def _process(self, ph: str, items: list[Item], lost: asyncio.Event) -> None:
        """Run a batch until it is processed or dead-lettered, retrying in place."""
        trigger = self.w.fn.trigger(items[0][1].trigger)
        work = [items]
        attempt = await self._attempts(ph, items[0][0])
        while work and not lost.is_set():
            batch = work[0]
            envs = [env._replace(attempt=attempt) for _, env in batch]
            event = build_event(trigger.shape, envs, trigger.attempt_path)
            request_id = new_request_id()
            # Through the function's ReservedConcurrentExecutions, like every invocation.
            outcome = await self.w.invoke_limited(event, request_id, [], "")
            if outcome.status == "success":
                failed = failed_indexes(outcome.result, envs, trigger) \
                    if trigger.partial_batch != "none" else []  # fmt: skip
            else:
                failed = list(range(len(batch)))
            if not failed:
                await self._commit(ph, [i for i, _ in batch])
                self.w._observe_age(envs)
                work.pop(0)
                attempt = 0
                continue
            first = failed[0]
            if first > 0:  # checkpoint before the lowest failed record
                await self._commit(ph, [i for i, _ in batch[:first]])
                batch = work[0] = batch[first:]
            error = outcome.error or ErrorInfo("PartialBatchFailure", "batchItemFailures", [])
            if trigger.bisect_on_error and len(batch) > 1 and outcome.status != "success":
                # Split and retry the halves at once; splitting doesn't use up the retry
                # quota, so a poison record ends up alone and only it is given up on.
                mid = len(batch) // 2
                work[0:1] = [batch[:mid], batch[mid:]]
                continue
            attempt += 1
            condition = self._give_up(trigger, batch, attempt)
            if condition is not None:
                await self._dead_letter(ph, batch, error, event, request_id, attempt, condition)
                work.pop(0)
                attempt = 0
                continue
            await self.w.redis.hset(
                self.keys.partition_state(), ph, f"{batch[0][0].decode()}:{attempt}"
            )
            fnr = self.w.fn.retry
            delay = compute_backoff_s(attempt, fnr.backoff_base_s, fnr.backoff_cap_s)
            if self._stopping:
                return
            await asyncio.sleep(delay)

    def _give_up(self, trigger: Trigger, batch: list[Item], attempt: int) -> str | None:
        """Why to give up on the batch now (Lambda's condition), or None to retry it."""
        limit = trigger.max_retry_attempts
        if limit is None:
            limit = self.w.fn.retry.max_retry_attempts
        if limit >= 0 and attempt > limit:
            return "RetriesExhausted"
        max_age = trigger.max_record_age_s  # -1 (or unset) as in Lambda: no age limit
        if max_age and max_age > 0 and time.time() - batch[0][1].time >= max_age:
            return "EventAgeExceeded"
        return None

    async def _dead_letter(self, ph: str, batch: list[Item], error: ErrorInfo, event: Any,
                           request_id: str, attempt: int, condition: str) -> None:  # fmt: skip
        envs = [env._replace(attempt=attempt - 1) for _, env in batch]
        if self.w.fn.on_failure:
            record = destination_record(envs[0], event, self.w.invoker.arn, request_id,
                                        condition, error)  # fmt: skip
            await self.w.settler.to_destination(self.w.fn.on_failure, envs[0], record)
        stream = self.keys.partition_stream(ph)
        await self.w.settler.dead_letter(
            stream, [(i, e) for (i, _), e in zip(batch, envs, strict=True)], error,
            condition, partition_stream=True,
        )  # fmt: skip
        await self._commit(ph, [])
