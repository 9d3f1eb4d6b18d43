"""The SQS event source: long-poll a queue, publish each message, then delete it.

One :class:`SqsAdapter` per event source mapping, as in Lambda, where the
mappings of one queue compete for its messages (no fan-out across mappings).
Each runs several pollers (ScalingConfig ``MaximumConcurrency``, default 2, at
most :data:`MAX_POLLERS`), each a long poll of up to 10 messages with every
system and message attribute.

Per received batch: a message over SQS's 1 MiB limit, or one that cannot become
a record, is counted as an adapter error and left for the queue's own
RedrivePolicy (on a FIFO queue with the rest of its group, which must not
overtake it). The others become envelopes (id = MessageId, partition =
MessageGroupId on FIFO queues, time = SentTimestamp); FilterCriteria drops the
non-matching ones. The base publishes, and only then DeleteMessageBatch removes
exactly the published and filtered-out messages; while a publish outlasts half
the visibility timeout, ChangeMessageVisibilityBatch keeps them hidden.

Retries are the bus's (the message is deleted by then): the trigger's attempt
limit comes from ``maxReceiveCount``, the worker reports each attempt in
``attributes.ApproximateReceiveCount``, and :mod:`adapters.destinations` sends
exhausted messages to the ``deadLetterTargetArn``. Source lag is the age of the
oldest message of the latest receive (0 when it brought none).

``normalize`` is the one source-specific step: S3 and SNS carrier queues reuse
this poller with :func:`s3_envelopes` and :func:`sns_envelopes`.
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
from bus.spec import Trigger

from .base import DEFAULT_HIGH_WATER, Adapter, AdapterGroup, Handoff, Published
from .patterns import Pattern, compile_pattern, lambda_filter_matches
from .s3_records import iso_time, s3_records
from .sns_records import sns_record
from .sqs_records import MalformedMessage, arn_parts, message_size, sqs_record
from .template.loaded import EventSource, LoadedTemplate

log = logging.getLogger(__name__)

DEFAULT_POLLERS = 2
"""Lambda's minimum (and SAM's default) ScalingConfig.MaximumConcurrency."""
MAX_POLLERS = 16
"""Pollers per mapping; invocation concurrency is the worker's to limit, not the poller's."""
RECEIVE_MAX = 10
LONG_POLL_S = 20
MAX_MESSAGE_BYTES = 1024 * 1024
"""SQS's message size limit (1 MiB since January 2026)."""

Normalizer = Callable[[Mapping[str, Any], "Queue"], list[Envelope]]
"""One received message → its envelopes (``trigger`` is filled in at publish). Raises
:class:`MalformedMessage` to leave the message at the source; [] deletes it unpublished."""


@dataclass(frozen=True)
class Queue:
    """What the poller learned about its queue at start."""

    arn: str
    url: str
    name: str
    region: str
    fifo: bool
    visibility_timeout_s: float
    dead_letter_arn: str | None = None


def _sent_time(record_attributes: Mapping[str, Any]) -> float:
    try:
        return int(record_attributes["SentTimestamp"]) / 1000
    except (KeyError, TypeError, ValueError):
        return time.time()


def _group(message: Mapping[str, Any], queue: Queue) -> str | None:
    return (message.get("Attributes") or {}).get("MessageGroupId") if queue.fifo else None


def sqs_envelopes(message: Mapping[str, Any], queue: Queue) -> list[Envelope]:
    """The SQS event source itself: one Lambda SQS record per message."""
    record = sqs_record(message, queue.arn)
    return [
        Envelope(
            id=record["messageId"], source="aws:sqs", type="aws:sqs", trigger="",
            record=record, time=_sent_time(record["attributes"]), subject=queue.name,
            partition=_group(message, queue), first_seen=time.time(),
        )
    ]  # fmt: skip


def s3_envelopes(message: Mapping[str, Any], queue: Queue) -> list[Envelope]:
    """An S3 carrier queue: one Lambda S3 record per notification record."""
    body, carrier_id = message.get("Body"), message.get("MessageId")
    if not isinstance(body, str) or not isinstance(carrier_id, str):
        raise MalformedMessage("carrier message lacks MessageId or Body")
    now = time.time()
    return [
        Envelope(
            id=event_id, source="aws:s3", type=record["eventName"], trigger="", record=record,
            time=iso_time(record["eventTime"]), subject=record["s3"]["object"]["key"],
            partition=_group(message, queue), first_seen=now,
        )
        for event_id, record in s3_records(body, carrier_id, queue.region)
    ]  # fmt: skip


def sns_envelopes(message: Mapping[str, Any], queue: Queue) -> list[Envelope]:
    """An SNS carrier queue (raw delivery off): one Lambda SNS record per notification."""
    body = message.get("Body")
    if not isinstance(body, str):
        raise MalformedMessage("carrier message lacks a Body")
    made = sns_record(body)
    if made is None:
        return []
    event_id, record = made
    sns = record["Sns"]
    return [
        Envelope(
            id=event_id, source="aws:sns", type="Notification", trigger="", record=record,
            time=iso_time(sns["Timestamp"]), subject=arn_parts(sns["TopicArn"])[2],
            partition=_group(message, queue), first_seen=time.time(),
        )
    ]  # fmt: skip


@dataclass(frozen=True)
class SqsMapping:
    """One event source mapping: a queue, and the function (trigger) its messages go to."""

    function: str
    trigger: Trigger
    queue_arn: str
    filters: tuple[Mapping[str, Any] | str, ...] = ()
    """FilterCriteria patterns (``Filters[].Pattern``), as written in the template."""
    pollers: int = DEFAULT_POLLERS
    normalize: Normalizer = sqs_envelopes
    kind: str = "sqs"
    """``sqs``, or ``s3``/``sns`` for carrier queues; the first part of the metrics label."""

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.function}.{self.trigger.name}"


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
        sent = [_sent_time(m.get("Attributes") or {}) * 1000 for m in messages]
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
            group = _group(message, queue)
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


# -- wiring from a template ---------------------------------------------------------------


def mappings_from_template(loaded: LoadedTemplate) -> list[SqsMapping]:
    """Every enabled ``SQS`` event of the template, as Lambda would map it."""
    mappings = []
    for source in loaded.events:
        trigger = _trigger(loaded, source)
        if source.type != "SQS" or trigger is None:
            continue
        props = source.properties
        filters = props.get("FilterCriteria", {}).get("Filters", [])
        mappings.append(SqsMapping(
            function=source.function, trigger=trigger, queue_arn=str(props["Queue"]),
            filters=tuple(f["Pattern"] for f in filters if "Pattern" in f),
            pollers=int(props.get("ScalingConfig", {}).get("MaximumConcurrency", DEFAULT_POLLERS)),
        ))  # fmt: skip
    return mappings


def carrier_mappings(loaded: LoadedTemplate) -> list[SqsMapping]:
    """The S3 and SNS events of the template, read from their carrier queues
    (named by :func:`adapters.carriers.carrier_queue_for`, created by provisioning)."""
    from .carriers import carrier_queue_for
    from .template.models import ACCOUNT_ID

    mappings = []
    for source in loaded.events:
        trigger = _trigger(loaded, source)
        name = carrier_queue_for(loaded.stack.name, source) if trigger else None
        if trigger is None or name is None:
            continue
        own = source.properties.get("SqsSubscription")
        arn = own.get("QueueArn") if isinstance(own, dict) else None
        normalize = s3_envelopes if source.type == "S3" else sns_envelopes
        mappings.append(SqsMapping(
            function=source.function, trigger=trigger, normalize=normalize,
            queue_arn=str(arn or f"arn:aws:sqs:{loaded.region}:{ACCOUNT_ID}:{name}"),
            kind=source.type.lower(),
        ))  # fmt: skip
    return mappings


def _trigger(loaded: LoadedTemplate, source: EventSource) -> Trigger | None:
    fn = loaded.stack.functions.get(source.function)
    return fn.triggers.get(source.name) if fn is not None else None


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
