"""SNS's second way in: an HTTP(S) subscription endpoint on the edge port.

``POST /sns/{Function}/{Event}`` — one path per SNS event of the template, so a
subscription names exactly one function's trigger, and the template's ``Topic``
says which topic that path accepts. SNS does not sign with SigV4, so these
paths are ``EdgeServer.public_paths``; SNS's own signature is what is checked:

- body larger than ``max_body_bytes`` → 413; not a JSON object, missing or
  mistyped fields, raw (unsigned) delivery → 400; nothing is read past the limit;
- a ``TopicArn`` other than the event's ``Topic`` → 403 (AWS signs every
  topic's messages, attackers' included, so a valid signature alone is not enough);
- a signing certificate or SubscribeURL off SNS's hosts, or a signature that
  does not verify → 403, with nothing published and no request made to the URL
  (:mod:`adapters.sns_verify`);
- ``SubscriptionConfirmation``: confirmed by one GET of its SubscribeURL, bounded
  by a timeout and without following redirects; 502 if that GET fails, so SNS retries;
- ``Notification``: turned into the record Lambda delivers (``Records[0].Sns``),
  passed through the event's ``FilterPolicy`` (:func:`adapters.patterns.sns_filter_matches`),
  published with the ``MessageId`` as the event id, and answered 200 only after
  publish returned — SNS redelivers anything else, and dedupe drops the repeat;
- ``UnsubscribeConfirmation``: verified, logged, 200.

Outbound requests (certificate, confirmation) go through injected functions;
:class:`SnsHttpClient` is the default. Logs name the message id and topic,
never the signature or the subscription token.

Mounting (``lambdabus dev``), before ``edge.start()``::

    endpoint = SnsHttpEndpoint(loaded.events, loaded.stack, Publisher(redis, stack.name),
                               sns_endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SNS"))
    endpoint.mount(edge)
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bus.envelope import Envelope
from bus.publish import Publisher, Target
from bus.spec import Stack

from .edge import EdgeServer
from .edge.errors import ApiError, aws_error
from .edge.server import BODY_TIMEOUT_S
from .patterns import sns_filter_matches
from .s3_records import iso_time
from .sns_records import sns_record, subscription_arn_of
from .sns_verify import (
    CertificateFetcher,
    Clock,
    SnsMessageError,
    SnsVerificationError,
    SnsVerifier,
    sns_host,
    topic_region,
    utcnow,
)
from .sqs_records import MalformedMessage
from .template.loaded import EventSource

log = logging.getLogger(__name__)

PATH = "/sns/{function}/{event}"
SNS_MESSAGE_LIMIT = 256 * 1024
"""SNS's largest message (body plus attributes)."""
DEFAULT_MAX_BODY_BYTES = 6 * SNS_MESSAGE_LIMIT + 64 * 1024
"""The largest envelope SNS can make of a 256 KiB message: JSON escapes a control
character as six (``\\u0001``), plus room for the envelope's own fields."""
HTTP_TIMEOUT_S = 5.0
MAX_CERTIFICATE_BYTES = 64 * 1024
MAX_CONFIRM_RESPONSE_BYTES = 64 * 1024
READ_CHUNK = 64 * 1024

UrlGetter = Callable[[str], Awaitable[None]]
"""``await confirm(url)``: one GET; raises unless the answer is 200."""
FilterMatcher = Callable[[Mapping[str, Any], Mapping[str, Any] | None, str | None, str], bool]


class SnsHttpClient:
    """Default outbound HTTP for the endpoint: one aiohttp session, bounded everywhere.

    No redirects (a 302 to another host would defeat the host checks), a total
    timeout per request, and responses read only up to a small limit. TLS is
    verified against the system's trust store, which is what makes an
    ``https://sns.<region>.amazonaws.com`` certificate trustworthy.
    """

    def __init__(self, timeout_s: float = HTTP_TIMEOUT_S) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self._session

    async def _get(self, url: str, limit: int) -> bytes:
        async with self._client().get(url, allow_redirects=False) as response:
            if response.status != 200:
                raise RuntimeError(f"GET answered {response.status}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise RuntimeError(f"response larger than {limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks)

    async def fetch_certificate(self, url: str) -> bytes:
        return await self._get(url, MAX_CERTIFICATE_BYTES)

    async def confirm(self, url: str) -> None:
        await self._get(url, MAX_CONFIRM_RESPONSE_BYTES)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(frozen=True)
class SnsRoute:
    """One SNS event of a function, served at ``/sns/{function}/{event}``."""

    target: Target
    topic_arn: str
    filter_policy: Mapping[str, Any] | None = None
    filter_scope: str = "MessageAttributes"

    @property
    def path(self) -> str:
        return f"/sns/{self.target.function}/{self.target.trigger.name}"


def sns_routes(events: Iterable[EventSource], stack: Stack) -> list[SnsRoute]:
    """The template's SNS events whose function runs in ``stack`` with that trigger."""
    routes = []
    for ev in events:
        spec = stack.functions.get(ev.function)
        trigger = spec.triggers.get(ev.name) if spec is not None else None
        if ev.type != "SNS" or trigger is None:
            continue
        routes.append(
            SnsRoute(
                Target(ev.function, trigger),
                ev.properties["Topic"],
                ev.properties.get("FilterPolicy") or None,
                ev.properties.get("FilterPolicyScope", "MessageAttributes"),
            )
        )
    return routes


class SnsHttpEndpoint:
    """The ``/sns/`` routes: verify, confirm, filter, publish (see the module docstring)."""

    def __init__(
        self,
        events: Iterable[EventSource],
        stack: Stack,
        publisher: Publisher,
        *,
        sns_endpoint_url: str | None = None,
        fetch_certificate: CertificateFetcher | None = None,
        confirm_subscription: UrlGetter | None = None,
        clock: Clock = utcnow,
        filter_matches: FilterMatcher = sns_filter_matches,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        """``sns_endpoint_url``: the SNS endpoint in use when it is not AWS (moto in
        ``dev``); its origin is trusted for certificates and SubscribeURLs. Outbound
        calls default to an :class:`SnsHttpClient` closed with the app."""
        self.publisher = publisher
        self.filter_matches = filter_matches
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = BODY_TIMEOUT_S
        """The edge's when mounted (see ``EdgeServer.body_timeout_s``)."""
        self._client = SnsHttpClient()
        self.verifier = SnsVerifier(
            fetch_certificate or self._client.fetch_certificate,
            endpoint_url=sns_endpoint_url,
            clock=clock,
        )
        self.confirm_subscription = confirm_subscription or self._client.confirm
        self.routes = {route.path: route for route in sns_routes(events, stack)}
        for route in self.routes.values():
            if route.filter_policy:  # a bad policy fails at start-up, not per message
                filter_matches(route.filter_policy, {}, "{}", route.filter_scope)

    @property
    def paths(self) -> list[str]:
        return list(self.routes)

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_post(PATH, self.handle)

    def mount(self, server: EdgeServer) -> None:
        """Add the routes to the edge app, exempt them from SigV4, close the client with it."""
        self.register(server.app.router)
        server.public_paths.update(self.paths)
        server.streamed_paths.update(self.paths)  # read here, bounded by our own limit
        self.body_timeout_s = server.body_timeout_s
        server.app.on_cleanup.append(self._cleanup)

    async def _cleanup(self, app: web.Application) -> None:
        await self._client.close()

    async def handle(self, request: web.Request) -> web.Response:
        route = self.routes.get(
            f"/sns/{request.match_info['function']}/{request.match_info['event']}"
        )
        if route is None:
            return aws_error(404, "NotFound", "No SNS event is served at this path")
        try:
            message = _parse(await _read_body(request, self.max_body_bytes, self.body_timeout_s))
            kind = _message_type(message, request.headers)
            if message.get("TopicArn") != route.topic_arn:
                raise ApiError(403, "TopicNotSubscribed", "This path serves another topic")
            if kind == "SubscriptionConfirmation":  # refuse before fetching anything
                self.verifier.check_url(message.get("SubscribeURL"), route.topic_arn, "subscribe")
            await self.verifier.verify(message)
        except SnsMessageError as exc:
            return _refuse(request, 400, "InvalidMessage", str(exc))
        except SnsVerificationError as exc:
            return _refuse(request, 403, "SignatureVerificationFailed", str(exc))
        except ApiError as exc:
            return _refuse(request, exc.status, exc.code, exc.message)
        if kind == "Notification":
            return await self._deliver(route, message, request)
        if kind == "SubscriptionConfirmation":
            return await self._confirm(route, message)
        log.info("SNS unsubscribed %s from %s", route.path, route.topic_arn)
        return web.Response(text="ok\n")

    async def _confirm(self, route: SnsRoute, message: Mapping[str, Any]) -> web.Response:
        try:
            await self.confirm_subscription(message["SubscribeURL"])
        except Exception as exc:  # the type only: messages may quote the URL and its Token
            log.warning(
                "confirming %s for %s failed: %s", route.topic_arn, route.path, type(exc).__name__
            )
            return aws_error(502, "ConfirmationFailed", "Could not confirm the subscription")
        log.info("SNS subscription of %s to %s confirmed", route.path, route.topic_arn)
        return web.Response(text="confirmed\n")

    async def _deliver(
        self, route: SnsRoute, message: Mapping[str, Any], request: web.Request
    ) -> web.Response:
        try:
            record = _lambda_record(message, request.headers)
            sent = iso_time(message["Timestamp"])
        except (SnsMessageError, MalformedMessage) as exc:
            return _refuse(request, 400, "InvalidMessage", str(exc))
        sns = record["Sns"]
        if route.filter_policy and not self.filter_matches(
            route.filter_policy, sns["MessageAttributes"], sns["Message"], route.filter_scope
        ):
            return web.Response(text="filtered\n")  # SNS would not have delivered it
        env = Envelope(
            id=sns["MessageId"], source="aws:sns", type="Notification",
            trigger=route.target.trigger.name, record=record, time=sent,
            subject=sns["TopicArn"], first_seen=time.time(),
        )  # fmt: skip
        added = await self.publisher.publish([env], [route.target])
        log.debug("SNS %s -> %s (%s)", env.id, route.path, "new" if added else "seen")
        return web.Response(text="ok\n")


def _refuse(request: web.Request, status: int, code: str, message: str) -> web.Response:
    log.info("refused SNS delivery to %s from %s: %s", request.path, request.remote, message)
    return aws_error(status, code, message)


async def _read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The body, or 413 as soon as it is known to exceed ``limit`` (declared or streamed),
    or 408 if it hasn't all arrived ``timeout_s`` after we started reading."""
    too_large = ApiError(413, "RequestEntityTooLarge", f"Body larger than {limit} bytes")
    if (request.content_length or 0) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while chunk := await request.content.read(READ_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)
    except TimeoutError:
        message = f"Request body incomplete after {timeout_s:g} s"
        raise ApiError(408, "RequestTimeoutException", message) from None
    return b"".join(chunks)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Refuse repeated keys: parsers disagree on which one wins, signatures must not."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise SnsMessageError("a field appears twice")
    return obj


def _parse(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body, object_pairs_hook=_no_duplicates)
    except SnsMessageError:
        raise
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError too
        raise SnsMessageError("body is not JSON") from None
    if not isinstance(message, dict):
        raise SnsMessageError("body is not a JSON object")
    return message


def _message_type(message: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    if headers.get("x-amz-sns-rawdelivery", "").lower() == "true":
        raise SnsMessageError("raw message delivery is unsigned; turn RawMessageDelivery off")
    kind = message.get("Type")
    if not isinstance(kind, str):
        raise SnsMessageError("field Type is missing")
    declared = headers.get("x-amz-sns-message-type")
    if declared is not None and declared != kind:
        raise SnsMessageError("x-amz-sns-message-type disagrees with the body's Type")
    return kind


def _subscription_arn(message: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """SNS's ``x-amz-sns-subscription-arn`` header, if it names a subscription of the
    verified topic (headers are not signed)."""
    arn = headers.get("x-amz-sns-subscription-arn")
    topic = str(message["TopicArn"])
    if arn and arn.startswith(topic + ":") and len(arn) <= len(topic) + 80:
        return arn
    return None


def _lambda_record(message: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """The Lambda SNS record of a verified Notification, by the same converter as the
    SQS-carried way (:func:`adapters.sns_records.sns_record`), so both ways agree.

    What that converter reads is normalised first: a message in Lambda's spelling
    (``SigningCertUrl``, ``UnsubscribeUrl``) is accepted as SNS's, and a missing
    UnsubscribeURL (HTTP deliveries always carry one) is built the way SNS builds it,
    as Lambda's record and Powertools' SnsModel require it."""
    doc = dict(message)
    doc.setdefault("SigningCertURL", doc.pop("SigningCertUrl", None))
    doc.setdefault("UnsubscribeURL", doc.pop("UnsubscribeUrl", None))
    subscription = _subscription_arn(message, headers)
    if not isinstance(doc["UnsubscribeURL"], str):
        subscription = subscription or subscription_arn_of(doc)
        host = sns_host(*topic_region(doc["TopicArn"]))
        query = urlencode({"Action": "Unsubscribe", "SubscriptionArn": subscription})
        doc["UnsubscribeURL"] = f"https://{host}/?{query}"
    made = sns_record(json.dumps({k: v for k, v in doc.items() if v is not None}), subscription)
    if made is None:  # only for subscription control messages, which never get here
        raise SnsMessageError("not a Notification")
    return made[1]
