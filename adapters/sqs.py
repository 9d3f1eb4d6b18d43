"""The SQS event source: long-poll a queue, publish each message, then delete it.

One :class:`SqsAdapter` per event source mapping (:mod:`adapters.sqs_mappings`).
Each runs several pollers (ScalingConfig ``MaximumConcurrency``, default 2, at
most :data:`MAX_POLLERS`), each a long poll of up to 10 messages with every
system and message attribute.

Per received batch: a message over SQS's 1 MiB limit, or one that cannot become
a record, is counted as an adapter error and left for the queue's own
RedrivePolicy (on a FIFO queue with the rest of its group, which must not
overtake it). The others become envelopes (:mod:`adapters.sqs_envelopes`);
FilterCriteria drops the non-matching ones. The base publishes, and only then
DeleteMessageBatch removes exactly the published and filtered-out messages;
while a publish outlasts half the visibility timeout,
ChangeMessageVisibilityBatch keeps them hidden.

Retries are the bus's (the message is deleted by then): the trigger's attempt
limit comes from ``maxReceiveCount``, the worker reports each attempt in
``attributes.ApproximateReceiveCount``, and :mod:`adapters.destinations` sends
exhausted messages to the ``deadLetterTargetArn``. Source lag is the age of the
oldest message of the latest receive (0 when it brought none).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    asynccontextmanager,
    nullcontext,
)
from dataclasses import dataclass
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from redis.asyncio import Redis

from bus.envelope import Envelope
from bus.publish import Target

from .base import DEFAULT_HIGH_WATER, Adapter, AdapterGroup, Handoff, Published
from .patterns import Pattern, compile_pattern, lambda_filter_matches
from .sqs_envelopes import Queue, message_group, sent_time
from .sqs_mappings import SqsMapping, carrier_mappings, mappings_from_template
from .sqs_records import MalformedMessage, arn_parts, message_size
from .template.loaded import LoadedTemplate

__all__ = [
    "MAX_POLLERS",
    "Queue",
    "Receipts",
    "SqsAdapter",
    "SqsMapping",
    "carrier_mappings",
    "mappings_from_template",
    "services_for",
]

log = logging.getLogger(__name__)

MAX_POLLERS = 16
"""Pollers per mapping; invocation concurrency is the worker's to limit, not the poller's."""
RECEIVE_MAX = 10
LONG_POLL_S = 20
MAX_MESSAGE_BYTES = 1024 * 1024
"""SQS's message size limit (1 MiB since January 2026)."""


@dataclass(slots=True)
class Receipts:
    """What a handoff deletes: the receipt handles of published and filtered-out messages."""

    queue: Queue
    handles: list[str]
    received_at: float
    """``time.monotonic()`` at receive: the visibility timeout runs from there."""


class SqsAdapter(Adapter[Receipts]):
    """Polls one queue for one mapping; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        stack: str,
        mapping: SqsMapping,
        *,
        wait_time_s: int = LONG_POLL_S,
        high_water: int = DEFAULT_HIGH_WATER,
        after_publish: Callable[[Handoff[Any]], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(redis, stack, mapping.label, high_water=high_water,
                         after_publish=after_publish)  # fmt: skip
        self.mapping = mapping
        self.target = Target(mapping.function, mapping.trigger)
        self.wait_time_s = wait_time_s
        self.filters: list[Pattern] = [compile_pattern(p) for p in mapping.filters]
        self.queue: Queue | None = None
        self._resolving = asyncio.Lock()
        self._fifo_receive = asyncio.Lock()
        self._exit = AsyncExitStack()
        self.sqs: Any = None

    async def open(self) -> None:
        pollers = max(1, min(self.mapping.pollers, MAX_POLLERS))
        config = AioConfig(max_pool_connections=pollers + 4,
                           read_timeout=self.wait_time_s + 30)  # fmt: skip
        self.sqs = await self._exit.enter_async_context(
            get_session().create_client("sqs", config=config)
        )

    async def close(self) -> None:
        await self._exit.aclose()

    def steps(self) -> list[Callable[[], Awaitable[None]]]:
        return [self.poll] * max(1, min(self.mapping.pollers, MAX_POLLERS))

    def watched(self) -> Sequence[Target]:
        return (self.target,)

    async def resolve(self) -> Queue:
        """Look the queue up once (retried by the loop until it exists)."""
        async with self._resolving:
            if self.queue is None:
                self.queue = await self._lookup()
            return self.queue

    async def _lookup(self) -> Queue:
        region, account, name = arn_parts(self.mapping.queue_arn)
        found = await self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
        url = found["QueueUrl"]
        attrs = await self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        attrs = attrs["Attributes"]
        redrive = attrs.get("RedrivePolicy")
        dlq = json.loads(redrive).get("deadLetterTargetArn") if redrive else None
        return Queue(
            arn=attrs.get("QueueArn", self.mapping.queue_arn), url=url, name=name, region=region,
            fifo=attrs.get("FifoQueue") == "true" or name.endswith(".fifo"),
            visibility_timeout_s=float(attrs.get("VisibilityTimeout", 30)), dead_letter_arn=dlq,
        )  # fmt: skip

    async def poll(self) -> None:
        """One long poll, then one handoff of whatever it brought."""
        queue = await self.resolve()
        # FIFO: one receive at a time, so each sees the groups the previous one took as in
        # flight. SQS guarantees that across concurrent receives too; moto (5.2) does not.
        # Handoffs still overlap, which is where the time goes.
        async with self._fifo_receive if queue.fifo else nullcontext():
            messages = await self.interruptible(self._receive(queue))
        if messages is None:  # stopping
            return
        self.counts.received += len(messages)
        now_ms = time.time() * 1000
        sent = [sent_time(m.get("Attributes") or {}) * 1000 for m in messages]
        self.observe_lag((now_ms - min(sent)) / 1000 if sent else 0.0)
        if messages:
            await self.handoff(self.prepare(queue, messages, time.monotonic()))

    async def _receive(self, queue: Queue) -> list[dict[str, Any]]:
        response = await self.sqs.receive_message(
            QueueUrl=queue.url,
            MaxNumberOfMessages=RECEIVE_MAX,
            WaitTimeSeconds=self.wait_time_s,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages") or [])

    def prepare(
        self, queue: Queue, messages: Sequence[Mapping[str, Any]], received_at: float
    ) -> Handoff[Receipts]:
        """Normalize and filter a received batch; reject what can't be published."""
        envelopes: list[Envelope] = []
        handles: list[str] = []
        blocked: set[str | None] = set()
        for message in messages:
            group = message_group(message, queue)
            if queue.fifo and group in blocked:
                continue  # behind a rejected message of its group: keep FIFO order
            try:
                handle = str(message["ReceiptHandle"])
                size = message_size(message)
                if size > MAX_MESSAGE_BYTES:
                    raise MalformedMessage(f"{size} bytes, over SQS's {MAX_MESSAGE_BYTES}")
                made = self.mapping.normalize(message, queue)
            except Exception as exc:  # one bad message must not hold up the others
                self.count_error()
                self.counts.rejected += 1
                blocked.add(group)
                log.warning("%s: left message %s in %s for its redrive policy: %s", self.label,
                            message.get("MessageId"), queue.name, exc)  # fmt: skip
                continue
            kept = [e for e in made if self._passes(e)]
            self.counts.filtered += len(made) - len(kept)
            envelopes += kept
            handles.append(handle)
        return Handoff(envelopes, [self.target], Receipts(queue, handles, received_at))

    def _passes(self, envelope: Envelope) -> bool:
        if not self.filters or not isinstance(envelope.record, Mapping):
            return True
        return lambda_filter_matches(self.filters, envelope.record, body_field="body")

    def holding(self, ack: Receipts) -> AbstractAsyncContextManager[Any]:
        return self._keep_invisible(ack)

    @asynccontextmanager
    async def _keep_invisible(self, receipts: Receipts) -> AsyncIterator[None]:
        """While the publish runs, re-arm the visibility timeout every half of it."""
        if receipts.queue.visibility_timeout_s <= 0 or not receipts.handles:
            yield
            return
        keeper = asyncio.create_task(self._extend_visibility(receipts))
        try:
            yield
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _extend_visibility(self, receipts: Receipts) -> None:
        timeout_s = receipts.queue.visibility_timeout_s
        half = max(0.5, timeout_s / 2)
        due = receipts.received_at + half
        while True:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = time.monotonic() + half
            try:
                await self._per_batch(self.sqs.change_message_visibility_batch, receipts,
                                      VisibilityTimeout=int(timeout_s))  # fmt: skip
            except Exception:  # try again at the next half; the publish goes on
                self.count_error()
                log.exception("%s: extending visibility failed", self.label)

    async def acknowledge(self, published: Published[Receipts]) -> None:
        """DeleteMessageBatch for exactly the published and filtered-out messages. A failed
        delete is redelivered later and dropped by dedupe (within the dedupe window)."""
        receipts = published.ack
        failed = await self._per_batch(self.sqs.delete_message_batch, receipts)
        self.counts.acknowledged += len(receipts.handles) - failed

    async def _per_batch(self, call: Any, receipts: Receipts, **entry: Any) -> int:
        """``call`` (a ``*Batch`` API) over the receipt handles, 10 per request; returns how
        many entries failed (counted as errors and logged)."""
        failed = 0
        for start in range(0, len(receipts.handles), RECEIVE_MAX):
            chunk = receipts.handles[start : start + RECEIVE_MAX]
            entries = [{"Id": str(i), "ReceiptHandle": h, **entry} for i, h in enumerate(chunk)]
            response = await call(QueueUrl=receipts.queue.url, Entries=entries)
            if response.get("Failed"):
                failed += len(response["Failed"])
                self.count_error(len(response["Failed"]))
                log.warning("%s: %s", self.label, response["Failed"])
        return failed


def services_for(
    redis: Redis, loaded: LoadedTemplate, *, carriers: bool = False,
    high_water: int = DEFAULT_HIGH_WATER,
) -> AdapterGroup:  # fmt: skip
    """What ``lambdabus adapter sqs`` (and ``dev``) runs: an adapter per SQS mapping (and,
    with ``carriers``, per S3/SNS carrier queue) plus the dead-letter forwarders. Drive it
    with :func:`bus.lifecycle.serve` (``group.start``, ``group.stop``, ``group.ready``)."""
    from .destinations import forwarders_for

    mappings = mappings_from_template(loaded) + (carrier_mappings(loaded) if carriers else [])
    group = AdapterGroup([SqsAdapter(redis, loaded.stack.name, m, high_water=high_water)
                          for m in mappings])  # fmt: skip
    group.adapters += forwarders_for(redis, loaded)
    return group
