"""The SNS HTTP(S) subscription endpoint on a real EdgeServer, over real HTTP, into real Redis.

Hostile deliveries point their URLs at a local listener that records every
request; the endpoint's outbound client is the real one (only our self-signed
certificate is served from memory), so a URL wrongly let through would show
up as a hit. Each refusal is checked for its status, an empty function
stream, and zero hits. The happy path runs an in-process Worker and checks
the handler's event against aws-lambda-powertools' SnsModel.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aws_lambda_powertools.utilities.parser.models import SnsModel
from redis.asyncio import Redis

from adapters.edge import EdgeServer
from adapters.sns_http import DEFAULT_MAX_BODY_BYTES, SnsHttpClient, SnsHttpEndpoint
from adapters.template.loaded import EventSource
from bus.envelope import Envelope, decode
from bus.keys import FunctionKeys
from bus.publish import Publisher
from bus.spec import FunctionSpec, Stack, Trigger
from bus.worker import Worker
from tests.conftest import requires_shared
from tests.handlers_edge import inbox, unique
from tests.test_sns_verify import (
    AWS_CERT_URL,
    AWS_SIGNING_DAY,
    CERT_PEM,
    CERT_URL,
    OTHER_KEY,
    SUBSCRIBE_URL,
    SUBSCRIPTION,
    TOPIC,
    aws_certificates,
    aws_message,
    confirmation,
    notification,
    sign,
)

EVENT = "Orders"


class Listener:
    """A local HTTP server standing in for every hostile URL: it records each request."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.status = 200
        self.body = b"<ConfirmSubscriptionResponse/>"
        self.headers: dict[str, str] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(request.path_qs)
        return web.Response(status=self.status, body=self.body, headers=self.headers)


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    recorder = Listener()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    recorder.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield recorder
    finally:
        await runner.cleanup()


class Outbound:
    """The endpoint's outbound calls: our certificate from memory, every other URL through
    the real client, so a hostile URL that got through would really be requested."""

    def __init__(self, certificates: dict[str, bytes] | None = None) -> None:
        self.certificates = certificates if certificates is not None else {CERT_URL: CERT_PEM}
        self.client = SnsHttpClient(timeout_s=2.0)
        self.requested: list[str] = []

    async def fetch_certificate(self, url: str) -> bytes:
        self.requested.append(url)
        if url in self.certificates:
            return self.certificates[url]
        return await self.client.fetch_certificate(url)

    async def confirm(self, url: str) -> None:
        self.requested.append(url)
        await self.client.confirm(url)

    def endpoint_kwargs(self) -> dict[str, Any]:
        return {"fetch_certificate": self.fetch_certificate, "confirm_subscription": self.confirm}


async def our_certificate(url: str) -> bytes:
    return {CERT_URL: CERT_PEM}[url]


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    calls = Outbound()
    try:
        yield calls
    finally:
        await calls.client.close()


def sns_stack(
    stack_name: str, fn: str, topics: dict[str, str] | None = None, **props: Any
) -> tuple[Stack, list[EventSource]]:
    """One function with an SNS event per topic (``{event name: topic ARN}``)."""
    topics = topics or {EVENT: TOPIC}
    triggers = {name: Trigger(name, batch_size=1, shape="records") for name in topics}
    spec = FunctionSpec(fn, "tests.handlers_edge.record", triggers=triggers)
    events = [EventSource(fn, name, "SNS", {"Topic": t, **props}) for name, t in topics.items()]
    return Stack(stack_name, {fn: spec}), events


@asynccontextmanager
async def serving(
    redis_url: str,
    redis: Redis,
    stack: Stack,
    events: list[EventSource],
    *,
    worker: bool = False,
    credentials: dict[str, str] | None = None,
    **endpoint: Any,
) -> AsyncIterator[EdgeServer]:
    """An EdgeServer on a free port with the SNS endpoint mounted as ``dev`` mounts it."""
    workers = [Worker(redis_url, stack, fn, block_ms=50) for fn in stack.functions if worker]
    for w in workers:
        await w.start()
    try:
        edge = EdgeServer(redis_url, stack, port=0, credentials=credentials)
        SnsHttpEndpoint(events, stack, Publisher(redis, stack.name), **endpoint).mount(edge)
        async with edge:
            yield edge
    finally:
        for w in workers:
            await w.stop(5.0)


async def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """POST as SNS does: text/plain JSON and the x-amz-sns-* headers."""
    sent_headers = {"Content-Type": "text/plain; charset=UTF-8"}
    if isinstance(body, dict):
        sent_headers["x-amz-sns-message-type"] = body.get("Type", "")
        sent_headers["x-amz-sns-topic-arn"] = body.get("TopicArn", "")
        body = json.dumps(body).encode()
    sent_headers.update(headers or {})
    async with aiohttp.ClientSession() as session, session.post(
        url, data=body, headers=sent_headers
    ) as response:  # fmt: skip
        return response.status, await response.text()


async def published(redis: Redis, stack: str, fn: str) -> list[Envelope]:
    entries: Any = await redis.xrange(FunctionKeys(stack, fn).stream)  # redis-py's loose types
    return [decode(fields[b"d"]) for _, fields in entries]


# -- the happy path ----------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
async def test_verified_notification_reaches_the_handler_as_lambdas_sns_record(
    redis_url: str, redis: Redis, stack_name: str, outbound: Outbound, version: str
) -> None:
    fn = unique("sns")
    queue = inbox(fn)
    stack, events = sns_stack(stack_name, fn)
    attributes = {
        "color": {"Type": "String", "Value": "red"},
        "count": {"Type": "Number", "Value": "7"},
        "blob": {"Type": "Binary", "Value": "AAEC"},
    }
    message = sign(notification(MessageAttributes=attributes), version)
    headers = {"x-amz-sns-subscription-arn": SUBSCRIPTION, "x-amz-sns-message-id": "x"}
    async with serving(
        redis_url, redis, stack, events, worker=True, **outbound.endpoint_kwargs()
    ) as edge:
        status, _ = await post(f"{edge.url}/sns/{fn}/{EVENT}", message, headers)
        assert status == 200
        event, _ = await asyncio.wait_for(queue.get(), 10)
    SnsModel.model_validate(event)
    assert event["Records"] == [
        {
            "EventSource": "aws:sns",
            "EventVersion": "1.0",
            "EventSubscriptionArn": SUBSCRIPTION,
            "Sns": {
                "Type": "Notification",
                "MessageId": message["MessageId"],
                "TopicArn": TOPIC,
                "Subject": "Order placed",
                "Message": message["Message"],
                "Timestamp": message["Timestamp"],
                "SignatureVersion": version,
                "Signature": message["Signature"],
                "SigningCertUrl": CERT_URL,
                "UnsubscribeUrl": message["UnsubscribeURL"],
                "MessageAttributes": attributes,
            },
        }
    ]
    assert outbound.requested == [CERT_URL]


@pytest.mark.parametrize("header", [None, SUBSCRIPTION, "arn:aws:sns:us-east-1:1:not-ours:x"])
async def test_redelivery_publishes_once_and_lambda_defaults_fill_what_http_omits(
    redis_url: str, redis: Redis, stack_name: str, outbound: Outbound, header: str | None
) -> None:
    fn = unique("sns")
    stack, events = sns_stack(stack_name, fn)
    message = sign(notification(Subject=None, UnsubscribeURL=None), "2")
    headers = {"x-amz-sns-subscription-arn": header} if header else {}
    async with serving(redis_url, redis, stack, events, **outbound.endpoint_kwargs()) as edge:
        for _ in range(2):  # SNS retries when it did not see our 200
            assert (await post(f"{edge.url}/sns/{fn}/{EVENT}", message, headers))[0] == 200
    (env,) = await published(redis, stack_name, fn)
    assert (env.id, env.source, env.type, env.trigger) == (
        message["MessageId"], "aws:sns", "Notification", EVENT,
    )  # fmt: skip
    assert env.time == datetime(2026, 5, 1, 12, 34, 56, 789000, tzinfo=UTC).timestamp()
    sns = env.record["Sns"]
    assert sns["Subject"] is None and sns["MessageAttributes"] == {}
    subscription = env.record["EventSubscriptionArn"]
    if header == SUBSCRIPTION:
        assert subscription == SUBSCRIPTION
    else:  # none, or one of another topic (headers are unsigned): derived from the topic
        assert subscription.startswith(f"{TOPIC}:") and subscription != header
    assert sns["UnsubscribeUrl"] == (
        "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
        + subscription.replace(":", "%3A")
    )
    SnsModel.model_validate({"Records": [env.record]})
    assert outbound.requested == [CERT_URL]  # cached for the redelivery


@requires_shared
async def test_aws_signed_messages_are_published_with_the_clock_pinned(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    sha1, sha256, lambda_spelling = (
        aws_message(name)
        for name in (
            "aws-sdk-ruby__message_SHA1.json",
            "aws-sdk-ruby__message_SHA256.json",
            "aws-sdk-ruby__lambda_message.json",
        )
    )
    fn = unique("sns")
    stack, events = sns_stack(
        stack_name, fn, {"First": sha1["TopicArn"], "Second": sha256["TopicArn"]}
    )
    certs = aws_certificates()
    async with serving(
        redis_url, redis, stack, events, fetch_certificate=certs, clock=lambda: AWS_SIGNING_DAY
    ) as edge:
        for event, message in (("First", sha1), ("Second", sha256), ("First", lambda_spelling)):
            assert (await post(f"{edge.url}/sns/{fn}/{event}", message))[0] == 200
    envs = await published(redis, stack_name, fn)
    # The SHA1 message and its Lambda-spelled copy share a MessageId: one event.
    assert [(e.trigger, e.id) for e in envs] == [
        ("First", sha1["MessageId"]), ("Second", sha256["MessageId"]),
    ]  # fmt: skip
    SnsModel.model_validate({"Records": [e.record for e in envs]})
    assert envs[0].record["Sns"]["SigningCertUrl"] == AWS_CERT_URL
    assert certs.fetched == [AWS_CERT_URL]


async def test_subscription_is_confirmed_by_one_get_of_an_allowed_subscribe_url(
    redis_url: str, redis: Redis, stack_name: str, listener: Listener
) -> None:
    fn = unique("sns")
    stack, events = sns_stack(stack_name, fn)
    url = f"{listener.url}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=2336412f"
    message = sign(confirmation(SubscribeURL=url))
    async with serving(  # the listener plays the configured (moto) endpoint; default client
        redis_url, redis, stack, events, sns_endpoint_url=listener.url,
        fetch_certificate=our_certificate,
    ) as edge:  # fmt: skip
        status, text = await post(f"{edge.url}/sns/{fn}/{EVENT}", message)
        assert (status, text) == (200, "confirmed\n")
        listener.status = 500
        status, _ = await post(f"{edge.url}/sns/{fn}/{EVENT}", message)
        assert status == 502  # SNS retries the confirmation
    assert listener.hits == [url.removeprefix(listener.url)] * 2
    assert await published(redis, stack_name, fn) == []


async def test_unsubscribe_confirmation_is_acknowledged_without_requests(
    redis_url: str, redis: Redis, stack_name: str, outbound: Outbound
) -> None:
    fn = unique("sns")
    stack, events = sns_stack(stack_name, fn)
    message = sign(confirmation("UnsubscribeConfirmation"), "2")
    async with serving(redis_url, redis, stack, events, **outbound.endpoint_kwargs()) as edge:
        assert (await post(f"{edge.url}/sns/{fn}/{EVENT}", message))[0] == 200
    assert outbound.requested == [CERT_URL]
    assert await published(redis, stack_name, fn) == []


@pytest.mark.parametrize(
    ("props", "passing", "failing"),
    [
        (
            {"FilterPolicy": {"color": ["red"]}},
            {"MessageAttributes": {"color": {"Type": "String", "Value": "red"}}},
            {"MessageAttributes": {"color": {"Type": "String", "Value": "blue"}}},
        ),
        (
            {"FilterPolicy": {"order": [{"numeric": [">", 10]}]},
             "FilterPolicyScope": "MessageBody"},
            {"Message": '{"order": 17}'},
            {"Message": '{"order": 3}'},
        ),
    ],
    ids=["attributes", "body"],
)  # fmt: skip
async def test_filter_policy_drops_exactly_the_messages_sns_would_not_deliver(
    redis_url: str,
    redis: Redis,
    stack_name: str,
    outbound: Outbound,
    props: dict[str, Any],
    passing: dict[str, Any],
    failing: dict[str, Any],
) -> None:
    fn = unique("sns")
    stack, events = sns_stack(stack_name, fn, **props)
    kept = sign(notification(MessageId="kept", **passing))
    dropped = sign(notification(MessageId="dropped", **failing))
    async with serving(redis_url, redis, stack, events, **outbound.endpoint_kwargs()) as edge:
        assert await post(f"{edge.url}/sns/{fn}/{EVENT}", dropped) == (200, "filtered\n")
        assert await post(f"{edge.url}/sns/{fn}/{EVENT}", kept) == (200, "ok\n")
    assert [e.id for e in await published(redis, stack_name, fn)] == ["kept"]


async def test_sns_paths_skip_sigv4_and_nothing_else_does(
    redis_url: str, redis: Redis, stack_name: str, outbound: Outbound
) -> None:
    fn = unique("sns")
    stack, events = sns_stack(stack_name, fn)
    async with serving(
        redis_url, redis, stack, events, credentials={"AKIDEXAMPLE": "secret"},
        **outbound.endpoint_kwargs(),
    ) as edge:  # fmt: skip
        assert (await post(f"{edge.url}/sns/{fn}/{EVENT}", sign(notification())))[0] == 200
        assert (await post(f"{edge.url}/sns/{fn}/Other", sign(notification())))[0] == 403
        invoke = f"{edge.url}/2015-03-31/functions/{fn}/invocations"
        assert (await post(invoke, b"{}"))[0] == 403
    assert len(await published(redis, stack_name, fn)) == 1


async def test_a_path_without_an_sns_event_is_not_found(
    redis_url: str, redis: Redis, stack_name: str, outbound: Outbound
) -> None:
    fn = unique("sns")
    stack, events = sns_stack(stack_name, fn)
    async with serving(redis_url, redis, stack, events, **outbound.endpoint_kwargs()) as edge:
        for path in (f"/sns/{fn}/Other", f"/sns/nobody/{EVENT}"):
            assert (await post(edge.url + path, sign(notification())))[0] == 404
    assert outbound.requested == []


# -- hostile and malformed deliveries ----------------------------------------------------


@dataclass
class Case:
    body: Any
    status: int
    endpoint: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


PEM_NAME = "SimpleNotificationService-0123abcd.pem"


def disguised(url: str) -> str:
    """``url`` dressed as SNS's host through userinfo: the host is still ``url``'s."""
    return url.replace("//", "//sns.us-east-1.amazonaws.com@")


CASES: dict[str, Callable[[str, int], Case]] = {
    "forged-signature": lambda url, port: Case(sign(notification(), key=OTHER_KEY), 403),
    "tampered-after-signing": lambda url, port: Case(
        {**sign(notification(), "2"), "Message": "pay attacker"}, 403
    ),
    "subject-added-after-signing": lambda url, port: Case(
        {**sign(notification(Subject=None)), "Subject": "urgent"}, 403
    ),
    "cert-on-a-non-sns-host": lambda url, port: Case(
        sign(notification(), cert_url=f"{url}/{PEM_NAME}"), 403
    ),
    "cert-over-http": lambda url, port: Case(
        sign(notification(), cert_url=f"{url}/{PEM_NAME}"),
        403,
        {"sns_endpoint_url": url.replace("http://", "https://")},
    ),
    "cert-with-userinfo": lambda url, port: Case(
        sign(notification(), cert_url=disguised(url) + "/a.pem"),
        403,
        {"sns_endpoint_url": url},
    ),
    "cert-on-another-port": lambda url, port: Case(
        sign(notification(), cert_url=f"{url}/{PEM_NAME}"),
        403,
        {"sns_endpoint_url": f"http://127.0.0.1:{port}"},
    ),
    "cert-odd-path": lambda url, port: Case(
        sign(notification(), cert_url=f"{url}/certs/../{PEM_NAME}"), 403, {"sns_endpoint_url": url}
    ),
    "cert-with-query": lambda url, port: Case(
        sign(notification(), cert_url=f"{url}/{PEM_NAME}?go=1"), 403, {"sns_endpoint_url": url}
    ),
    "cert-not-pem": lambda url, port: Case(
        sign(notification(), cert_url=f"{url}/cert.txt"), 403, {"sns_endpoint_url": url}
    ),
    "subscribe-url-off-sns": lambda url, port: Case(
        sign(confirmation(SubscribeURL=f"{url}/?Action=ConfirmSubscription&Token=t")), 403
    ),
    "subscribe-url-with-userinfo": lambda url, port: Case(
        sign(confirmation(SubscribeURL=disguised(url) + "/?Action=ConfirmSubscription")), 403
    ),
    "subscribe-url-forged-signature": lambda url, port: Case(
        sign(confirmation(SubscribeURL=SUBSCRIBE_URL), key=OTHER_KEY), 403
    ),
    "another-topic": lambda url, port: Case(
        sign(notification(TopicArn="arn:aws:sns:us-east-1:123456789012:other")), 403
    ),
    "malformed-json": lambda url, port: Case(b'{"Type": "Notification", "Message": ', 400),
    "not-utf8": lambda url, port: Case(b'{"Type": "\xff"}', 400),
    "not-an-object": lambda url, port: Case(b'["Notification"]', 400),
    "missing-message-id": lambda url, port: Case(
        {k: v for k, v in sign(notification()).items() if k != "MessageId"}, 400
    ),
    "missing-signature": lambda url, port: Case(
        {k: v for k, v in sign(notification()).items() if k != "Signature"}, 400
    ),
    "mistyped-attributes": lambda url, port: Case(
        sign(notification(MessageAttributes={"a": {"Type": "String", "Value": 1}})), 400
    ),
    "duplicate-key": lambda url, port: Case(
        json.dumps(sign(notification()))[:-1].encode() + b', "Message": "other"}', 400
    ),
    "header-disagrees": lambda url, port: Case(
        sign(confirmation()), 400, headers={"x-amz-sns-message-type": "Notification"}
    ),
    "raw-delivery": lambda url, port: Case(
        sign(notification()), 400, headers={"x-amz-sns-rawdelivery": "true"}
    ),
    "oversized": lambda url, port: Case(b"{" + b" " * DEFAULT_MAX_BODY_BYTES + b"}", 413),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_hostile_or_malformed_delivery_is_refused_with_nothing_published_or_fetched(
    redis_url: str,
    redis: Redis,
    stack_name: str,
    listener: Listener,
    outbound: Outbound,
    case: str,
) -> None:
    other_port = int(listener.url.rsplit(":", 1)[1]) + 1
    made = CASES[case](listener.url, other_port)
    fn = unique("sns")
    stack, events = sns_stack(stack_name, fn)
    async with serving(
        redis_url, redis, stack, events, **outbound.endpoint_kwargs(), **made.endpoint
    ) as edge:
        status, text = await post(f"{edge.url}/sns/{fn}/{EVENT}", made.body, made.headers)
        assert status == made.status, text
        # The endpoint still serves the next, genuine delivery on the same server.
        assert (await post(f"{edge.url}/sns/{fn}/{EVENT}", sign(notification())))[0] == 200
    assert [e.id for e in await published(redis, stack_name, fn)] == [notification()["MessageId"]]
    assert set(outbound.requested) <= {CERT_URL}
    assert listener.hits == []


async def test_oversized_chunked_body_is_refused_while_it_streams(
    redis_url: str, redis: Redis, stack_name: str, outbound: Outbound
) -> None:
    fn = unique("sns")
    stack, events = sns_stack(stack_name, fn)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield b" " * 16384

    async with serving(
        redis_url, redis, stack, events, max_body_bytes=65536, **outbound.endpoint_kwargs()
    ) as edge:
        status, _ = await post(f"{edge.url}/sns/{fn}/{EVENT}", chunks())
    assert status == 413
    assert await published(redis, stack_name, fn) == []
    assert outbound.requested == []


async def test_default_client_reads_whole_bodies_within_bounds_and_never_follows_redirects(
    listener: Listener,
) -> None:
    client = SnsHttpClient(timeout_s=2.0)
    try:
        listener.body = CERT_PEM * 4  # several reads' worth
        assert await client.fetch_certificate(f"{listener.url}/a.pem") == CERT_PEM * 4
        listener.body = b"x" * (64 * 1024 + 1)
        with pytest.raises(RuntimeError, match="larger than"):
            await client.fetch_certificate(f"{listener.url}/b.pem")
        listener.status, listener.body = 302, b""
        listener.headers = {"Location": f"{listener.url}/elsewhere.pem"}
        with pytest.raises(RuntimeError, match="302"):
            await client.confirm(f"{listener.url}/?Action=ConfirmSubscription")
    finally:
        await client.close()
    assert listener.hits == ["/a.pem", "/b.pem", "/?Action=ConfirmSubscription"]
