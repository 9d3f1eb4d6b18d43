"""Dead letters forwarded to the SQS queues and SNS topics a template names.

The bus keeps every dead letter in the function's own dead-letter stream
(listable, redrivable). Where AWS would also move the event somewhere, this
forwarder sends it there:

- an SQS event source's queue with a RedrivePolicy: the original body and
  message attributes go to its ``deadLetterTargetArn``, as SQS's redrive
  would (looked up from the queue when forwarding, so a queue outside the
  template works too; a queue without a RedrivePolicy forwards nothing);
- a function's ``DeadLetterQueue`` (SQS or SNS), for its asynchronous triggers:
  the Lambda event as the body, with the ``RequestID``, ``ErrorCode`` and
  ``ErrorMessage`` attributes Lambda adds;
- a function's ``EventInvokeConfig.DestinationConfig.OnFailure`` SQS queue or
  SNS topic, for its asynchronous triggers: Lambda's destination record
  (``requestContext``, ``requestPayload``, ``responsePayload``…) as the body.
  With both configured, both get the event, as on Lambda.

Tailing, the cursor, the lease and backoff are :mod:`adapters.letter_tail`'s
(at-least-once); FIFO queues and topics get a MessageDeduplicationId derived
from the letter, so there a resend is dropped within SQS's five-minute
deduplication interval. A letter that fails :data:`MAX_SEND_ATTEMPTS` times is
skipped with an error; it stays in the bus's dead-letter stream.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from aiobotocore.session import get_session
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable
from redis.asyncio import Redis

from bus.envelope import Envelope, UndecodableEntry, decode
from bus.events import destination_record
from bus.handler import ErrorInfo
from bus.keys import FunctionKeys
from bus.runtime_env import function_arn
from bus.spec import DIRECT

from .letter_tail import LEASE_S, Entry, LetterTail
from .sqs_records import api_message_attributes, arn_parts
from .template.loaded import LoadedTemplate

log = logging.getLogger(__name__)

Payload = Literal["source", "event", "record"]
"""What a destination gets: the source message (SQS redrive), the Lambda event (a
``DeadLetterQueue``) or Lambda's destination record (an ``OnFailure`` destination)."""
RECORD_SOURCES = frozenset({"aws:sqs", "aws:sns", "aws:s3", "aws:dynamodb", "aws:kinesis"})
"""Sources whose Lambda event is ``{"Records": [...]}``."""
ASYNC_EVENT_TYPES = frozenset(
    {"S3", "SNS", "Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent"}
)
"""Event types Lambda invokes asynchronously: the ones a ``DeadLetterQueue`` covers."""
MAX_SEND_ATTEMPTS = 5
REDRIVE_TTL_S = 60.0


@dataclass(frozen=True)
class Destination:
    """An SQS queue or SNS topic ARN, and what to send there."""

    arn: str
    payload: Payload = "event"


@dataclass(frozen=True)
class Redrive:
    """The ``deadLetterTargetArn`` of this source queue's RedrivePolicy, whatever it is now."""

    queue_arn: str


Route = Destination | Redrive
FAILURE_CONDITIONS = frozenset({"RetriesExhausted", "EventAgeExceeded"})
"""Dead-letter reasons Lambda reports to an OnFailure destination (not, say, undecodable)."""


@dataclass(frozen=True)
class Outgoing:
    """One message to send: body, attributes in the SendMessage/Publish casing, FIFO ids."""

    body: str
    attributes: dict[str, Any]
    group_id: str
    dedupe_id: str


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def outgoing(stack: str, function: str, letter_id: str, env: Envelope, error_message: str,
             payload: Payload) -> Outgoing:  # fmt: skip
    """What a dead letter becomes at its destination (pure)."""
    record = env.record if isinstance(env.record, dict) else {}
    letter = f"{stack}\0{function}\0{letter_id}"
    dedupe = hashlib.sha256(letter.encode()).hexdigest()
    group = str((record.get("attributes") or {}).get("MessageGroupId") or env.partition
                or function)[:128]  # fmt: skip
    if payload == "source" and env.source == "aws:sqs" and isinstance(record.get("body"), str):
        attributes = api_message_attributes(record.get("messageAttributes") or {})
        return Outgoing(record["body"], attributes, group, dedupe)
    event = {"Records": [env.record]} if env.source in RECORD_SOURCES else env.record
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, letter))
    attributes = {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": (error_message or "-")[:1024]},
    }
    return Outgoing(json.dumps(event, default=_jsonable), attributes, group, dedupe)


_ERROR_FIELDS = (b"error_type", b"error_message", b"traceback")


_THROTTLING = frozenset({"Throttling", "ThrottlingException", "RequestThrottled",
                         "TooManyRequestsException", "RequestLimitExceeded"})  # fmt: skip


_UNREACHABLE = (EndpointUnreachable, HTTPClientError, OSError, TimeoutError, aiohttp.ClientError)


def transient(exc: BaseException) -> bool:
    """Whether AWS (or the way to it) was unavailable, rather than refusing the request:
    worth retrying for as long as it lasts."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or exc.response.get("Error", {}).get("Code") in _THROTTLING
    return isinstance(exc, _UNREACHABLE)


def failure_record(stack: str, function: str, letter_id: str, env: Envelope,
                   fields: dict[bytes, bytes]) -> Outgoing | None:  # fmt: skip
    """Lambda's OnFailure destination record for a dead letter (pure); None for letters
    Lambda would not report there."""
    reason = fields.get(b"reason", b"").decode(errors="replace")
    if reason not in FAILURE_CONDITIONS:
        return None
    error = ErrorInfo.from_record(
        *(fields.get(k, b"").decode(errors="replace") for k in _ERROR_FIELDS)
    )
    event = {"Records": [env.record]} if env.source in RECORD_SOURCES else env.record
    record = destination_record(env, event, function_arn(function), env.id, reason, error)
    dedupe = hashlib.sha256(f"{stack}\0{function}\0{letter_id}\0record".encode()).hexdigest()
    return Outgoing(json.dumps(record, default=_jsonable), {}, function[:128], dedupe)


def forwarder_routes(loaded: LoadedTemplate) -> dict[str, dict[str, list[Route]]]:
    """Function → trigger → where its dead letters go, from a loaded template."""
    routes: dict[str, dict[str, list[Route]]] = {}
    for source in loaded.events:
        fn = loaded.stack.functions.get(source.function)
        if fn is not None and source.type == "SQS" and source.name in fn.triggers:
            routes.setdefault(source.function, {})[source.name] = [
                Redrive(str(source.properties["Queue"]))
            ]
    kinds: dict[str, Payload] = {"DeadLetterQueue": "event", "EventInvokeConfig": "record"}
    for dest in loaded.destinations:
        payload = kinds.get(dest.source)
        if payload is None:
            continue  # a stream source's OnFailure: its adapter reports those
        mine = routes.setdefault(dest.function, {})
        for source in loaded.events:
            if source.function == dest.function and source.type in ASYNC_EVENT_TYPES:
                mine.setdefault(source.name, []).append(Destination(dest.arn, payload))
        mine.setdefault(DIRECT.name, []).append(Destination(dest.arn, payload))
    return routes


def forwarders_for(redis: Redis, loaded: LoadedTemplate) -> list[DeadLetterForwarder]:
    return [
        DeadLetterForwarder(redis, loaded.stack.name, fn, routes)
        for fn, routes in forwarder_routes(loaded).items()
    ]


class DeadLetterForwarder(LetterTail):
    """Tails one function's dead-letter stream and sends each letter to its routes."""

    def __init__(self, redis: Redis, stack: str, function: str, routes: dict[str, list[Route]],
                 *, poll_s: float = 1.0, lease_s: float = LEASE_S) -> None:  # fmt: skip
        keys = FunctionKeys(stack, function)
        super().__init__(
            redis, stream=keys.dead_letters, cursor=keys.dlq_forwarded,
            lease=keys.dlq_forwarder_lease, label=f"dlq:{function}", poll_s=poll_s,
            lease_s=lease_s,
        )  # fmt: skip
        self.stack = stack
        self.function = function
        self.routes = routes
        self.forwarded = 0
        self._failures: dict[bytes, int] = {}
        self._redrive: dict[str, tuple[float, Destination | None]] = {}
        self._urls: dict[str, str] = {}
        self.sqs: Any = None
        self.sns: Any = None

    async def open(self, exit_stack: AsyncExitStack) -> None:
        session = get_session()
        self.sqs = await exit_stack.enter_async_context(session.create_client("sqs"))
        self.sns = await exit_stack.enter_async_context(session.create_client("sns"))

    async def handle(self, entries: list[Entry]) -> None:
        for entry_id, fields in entries:
            if self.stopping:
                return
            await self.hold()
            self.forwarded += await self._forward_one(entry_id, fields)
            await self.advance(entry_id)

    async def _forward_one(self, entry_id: bytes, fields: dict[bytes, bytes]) -> int:
        """Send one letter to each of its trigger's routes; returns how many sends it took.

        Outages (connection errors, throttling, 5xx) are retried with backoff for as long
        as they last, never skipping the letter. A refusal (a deleted queue, denied
        access, a malformed message) is retried :data:`MAX_SEND_ATTEMPTS` times, every
        route of the letter again (FIFO and dedupe ids make the repeats harmless), and
        then the letter is given up on, so one bad destination never holds up the rest.
        """
        try:
            env = decode(fields.get(b"d", b""))
        except UndecodableEntry:
            return 0  # kept in the stream for `lambdabus dlq`; nothing to send
        letter_id = entry_id.decode()
        try:
            sends = await self._messages(letter_id, env, fields)
            for arn, out in sends:
                await self._send(arn, out)
        except Exception as exc:
            if transient(exc):
                raise
            tries = self._failures[entry_id] = self._failures.get(entry_id, 0) + 1
            if tries < MAX_SEND_ATTEMPTS:
                raise
            del self._failures[entry_id]
            self._errors.inc()
            log.exception("giving up forwarding dead letter %s of %s (it stays in the "
                          "dead-letter stream)", letter_id, self.function)  # fmt: skip
            return 0
        self._failures.pop(entry_id, None)
        return len(sends)

    async def _messages(self, letter_id: str, env: Envelope,
                        fields: dict[bytes, bytes]) -> list[tuple[str, Outgoing]]:  # fmt: skip
        """(destination ARN, message) for each route of the letter's trigger."""
        sends: list[tuple[str, Outgoing]] = []
        for route in self.routes.get(env.trigger, []):
            dest = await self._destination(route)
            if dest is None:
                continue
            if dest.payload == "record":
                out = failure_record(self.stack, self.function, letter_id, env, fields)
            else:
                message = fields.get(b"error_message", b"").decode(errors="replace")
                out = outgoing(self.stack, self.function, letter_id, env, message, dest.payload)
            if out is not None:
                sends.append((dest.arn, out))
        return sends

    async def _destination(self, route: Route) -> Destination | None:
        if isinstance(route, Destination):
            return route
        cached = self._redrive.get(route.queue_arn)
        if cached is not None and time.monotonic() - cached[0] < REDRIVE_TTL_S:
            return cached[1]
        url = await self._queue_url(route.queue_arn)
        attrs = await self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
        policy = attrs.get("Attributes", {}).get("RedrivePolicy")
        target = json.loads(policy).get("deadLetterTargetArn") if policy else None
        dest = Destination(str(target), "source") if target else None
        self._redrive[route.queue_arn] = (time.monotonic(), dest)
        return dest

    async def _queue_url(self, arn: str) -> str:
        url = self._urls.get(arn)
        if url is None:
            _, account, name = arn_parts(arn)
            response = await self.sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)
            url = self._urls[arn] = str(response["QueueUrl"])
        return url

    async def _send(self, arn: str, out: Outgoing) -> None:
        fifo: dict[str, str] = {}
        if arn.endswith(".fifo"):
            fifo = {"MessageGroupId": out.group_id, "MessageDeduplicationId": out.dedupe_id}
        if ":sns:" in arn:
            await self.sns.publish(TopicArn=arn, Message=out.body,
                                   MessageAttributes=out.attributes, **fifo)  # fmt: skip
            return
        extra: dict[str, Any] = {"MessageAttributes": out.attributes} if out.attributes else {}
        await self.sqs.send_message(QueueUrl=await self._queue_url(arn), MessageBody=out.body,
                                    **extra, **fifo)  # fmt: skip
