"""PutEvents on a real EdgeServer (free port) into a real redis-server, driven by boto3.

What lands on a function's stream is read back and validated with aws-lambda-powertools'
``EventBridgeModel``; refusals are checked as botocore sees them (error codes), and each
refused request is shown to publish nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import boto3
import botocore.exceptions
import pytest
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from botocore.config import Config
from redis.asyncio import Redis

from adapters.edge import EdgeServer
from adapters.eventbridge import metrics
from adapters.eventbridge.put_events import (
    MAX_BODY_BYTES,
    MAX_TOTAL_BYTES,
    PutEvents,
    Refused,
    entry_size,
    make_event,
    mount,
)
from adapters.eventbridge.routing import Router, rules_from
from adapters.template.loaded import EventSource
from bus.envelope import MAX_ENTRY_BYTES, Envelope, decode
from bus.keys import FunctionKeys
from bus.publish import Publisher
from bus.spec import FunctionSpec, Stack, Trigger
from bus.worker import Worker
from tests.handlers_edge import inbox, lambda_client, unique

ORDERS_PATTERN = {
    "source": ["demo.orders"],
    "detail-type": ["order.created"],
    "detail": {"total": [{"numeric": [">", 100]}]},
}


def events_client(url: str) -> Any:
    """boto3's EventBridge client on the edge, one request per call (no retries)."""
    return boto3.session.Session().client(
        "events", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1}),
    )  # fmt: skip


def rule(fn: str, name: str, **props: Any) -> EventSource:
    return EventSource(fn, name, "EventBridgeRule", {"Pattern": ORDERS_PATTERN, **props})


def stack_of(name: str, rules: list[EventSource], handlers: dict[str, str]) -> Stack:
    functions = {}
    for fn, handler in handlers.items():
        triggers = {r.name: Trigger(r.name) for r in rules if r.function == fn}
        functions[fn] = FunctionSpec(fn, handler, triggers=triggers)
    return Stack(name, functions)


@asynccontextmanager
async def edge_for(
    redis_url: str, redis: Redis, stack: Stack, rules: list[EventSource], workers: bool = False
) -> AsyncIterator[EdgeServer]:
    started = [Worker(redis_url, stack, fn, block_ms=50) for fn in stack.functions if workers]
    for worker in started:
        await worker.start()
    try:
        edge = EdgeServer(redis_url, stack, port=0)
        mount(edge, rules, stack, redis, "us-east-1")
        async with edge:
            yield edge
    finally:
        for worker in started:
            await worker.stop(5.0)


async def published(redis: Redis, stack: str, fn: str) -> list[Envelope]:
    entries: Any = await redis.xrange(FunctionKeys(stack, fn).stream)
    return [decode(fields[b"d"]) for _, fields in entries]


def counts() -> dict[str, float]:
    return {o: metrics.CUSTOM_EVENTS.labels(o)._value.get() for o in metrics.OUTCOMES}


def delta(before: dict[str, float]) -> dict[str, float]:
    after = counts()
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def order(total: float, **extra: Any) -> dict[str, Any]:
    return {"Source": "demo.orders", "DetailType": "order.created",
            "Detail": json.dumps({"id": "o-1", "total": total}), **extra}  # fmt: skip


async def put(url: str, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.to_thread(lambda: events_client(url).put_events(Entries=entries))


async def refused(url: str, call: Callable[[Any], Any]) -> dict[str, Any]:
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await asyncio.to_thread(lambda: call(events_client(url)))
    return info.value.response


async def test_accepted_matched_unmatched_and_malformed(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = unique("Big")
    rules = [rule(fn, "BigOrders")]
    stack = stack_of(stack_name, rules, {fn: "tests.handlers_edge.record"})
    before = counts()
    async with edge_for(redis_url, redis, stack, rules) as edge:
        when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        response = await put(edge.url, [
            order(250, Resources=["arn:aws:demo:us-east-1:123456789012:order/o-1"], Time=when),
            order(99),  # accepted, matches no rule
            order(300) | {"Detail": "{not json"},
        ])  # fmt: skip
    assert response["FailedEntryCount"] == 1
    big, small, bad = response["Entries"]
    assert set(big) == {"EventId"} and set(small) == {"EventId"}
    assert bad == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    assert big["EventId"] != small["EventId"]
    (env,) = await published(redis, stack_name, fn)
    model = EventBridgeModel.model_validate(env.record)
    assert model.id == big["EventId"]
    assert model.source == "demo.orders" and model.detail_type == "order.created"
    assert model.detail == {"id": "o-1", "total": 250}
    assert model.resources == ["arn:aws:demo:us-east-1:123456789012:order/o-1"]
    assert env.record["time"] == "2026-01-02T03:04:05Z"
    assert (env.record["version"], env.record["region"]) == ("0", "us-east-1")
    assert (env.source, env.type, env.subject, env.trigger) == (
        "aws:events", "order.created", "demo.orders", "BigOrders")  # fmt: skip
    assert delta(before) == {"accepted": 2, "matched": 1, "unmatched": 1, "rejected": 1}


async def test_per_entry_errors_and_named_buses(
    redis_url: str, redis: Redis, stack_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    default_fn, bus_fn = unique("Default"), unique("OnBus")
    rules = [rule(default_fn, "Any"), rule(bus_fn, "Any", EventBusName="orders")]
    stack = stack_of(stack_name, rules, {default_fn: "tests.handlers_edge.record",
                                         bus_fn: "tests.handlers_edge.record"})  # fmt: skip
    bus_arn = "arn:aws:events:us-east-1:123456789012:event-bus/orders"
    async with edge_for(redis_url, redis, stack, rules) as edge:
        response = await put(edge.url, [
            {"DetailType": "order.created", "Detail": "{}"},
            {"Source": "demo.orders", "Detail": "{}"},
            {"Source": "demo.orders", "DetailType": "order.created"},
            order(500) | {"Detail": "[1, 2]"},
            order(500, EventBusName="nope"),
            order(500, EventBusName="orders"),
            order(600, EventBusName=bus_arn),
            order(700),
            order(800) | {"Source": "aws.ec2"},
        ])  # fmt: skip
    results = response["Entries"]
    assert response["FailedEntryCount"] == 5
    assert results[8] == {"ErrorCode": "NotAuthorizedForSourceException",
                          "ErrorMessage": "Not authorized for the source."}  # fmt: skip
    assert [r.get("ErrorCode") for r in results[:5]] == [
        "InvalidArgument", "InvalidArgument", "InvalidArgument", "MalformedDetail", None,
    ]  # fmt: skip
    assert results[0]["ErrorMessage"] == (
        "Parameter Source is not valid. Reason: Source is a required argument."
    )
    assert "DetailType is a required argument" in results[1]["ErrorMessage"]
    assert "Detail is a required argument" in results[2]["ErrorMessage"]
    # A bus no rule names: accepted and matched by nothing, as AWS does, with a warning.
    assert "EventId" in results[4]
    assert "no rule uses event bus 'nope'" in caplog.text
    on_bus = await published(redis, stack_name, bus_fn)
    assert [e.record["id"] for e in on_bus] == [results[5]["EventId"], results[6]["EventId"]]
    on_default = await published(redis, stack_name, default_fn)
    assert [e.record["id"] for e in on_default] == [results[7]["EventId"]]
    for env in on_bus + on_default:
        EventBridgeModel.model_validate(env.record)


async def test_two_rules_deliver_twice_and_input_transformer_applies(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = unique("Twice")
    transformer = {
        "InputPathsMap": {"total": "$.detail.total"},
        "InputTemplate": '{"total": <total>, "rule": <aws.events.rule-arn>}',
    }
    rules = [rule(fn, "Whole"), rule(fn, "Shaped", InputTransformer=transformer)]
    stack = stack_of(stack_name, rules, {fn: "tests.handlers_edge.record"})
    async with edge_for(redis_url, redis, stack, rules) as edge:
        (result,) = (await put(edge.url, [order(101)]))["Entries"]
    whole, shaped = sorted(await published(redis, stack_name, fn), key=lambda e: e.trigger)[::-1]
    assert whole.trigger == "Whole" and shaped.trigger == "Shaped"
    assert whole.record["id"] == result["EventId"]
    assert shaped.record == {
        "total": 101,
        "rule": f"arn:aws:events:us-east-1:123456789012:rule/{fn}Shaped",
    }
    assert whole.id != shaped.id and result["EventId"] in whole.id


async def test_more_than_ten_entries_are_refused(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = unique("Ten")
    rules = [rule(fn, "R")]
    stack = stack_of(stack_name, rules, {fn: "tests.handlers_edge.record"})
    async with edge_for(redis_url, redis, stack, rules) as edge:
        error = await refused(edge.url, lambda c: c.put_events(Entries=[order(500)] * 11))
        ten = await put(edge.url, [order(500)] * 10)
    assert error["Error"]["Code"] == "ValidationException"
    assert "Member must have length less than or equal to 10" in error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert ten["FailedEntryCount"] == 0
    assert len(await published(redis, stack_name, fn)) == 10  # the refused 11 added none


def sized(total: int, n: int = 2) -> list[dict[str, Any]]:
    """``n`` entries (with Time) whose sizes, as AWS counts them, sum to ``total``."""
    entries = []
    for i in range(n):
        share = total // n + (total % n if i == 0 else 0)
        base = {"Source": "demo.orders", "DetailType": "order.created", "Time": 1767225600,
                "Resources": ["r"], "Detail": '{"p":""}'}  # fmt: skip
        pad = share - entry_size(base)
        entries.append(
            base
            | {
                "Detail": json.dumps(
                    {"p": "é" * (pad // 2) + "x" * (pad % 2)},
                    ensure_ascii=False,
                    separators=(",", ":"),
                )
            }
        )
    assert sum(entry_size(e) for e in entries) == total
    return entries


async def test_size_limit_as_aws_computes_it(redis_url: str, redis: Redis, stack_name: str) -> None:
    fn = unique("Size")
    rules = [rule(fn, "R", Pattern={"source": ["demo.orders"]})]
    stack = stack_of(stack_name, rules, {fn: "tests.handlers_edge.record"})
    async with edge_for(redis_url, redis, stack, rules) as edge:
        at_limit = await put(edge.url, sized(MAX_TOTAL_BYTES))
        over = await refused(edge.url, lambda c: c.put_events(Entries=sized(MAX_TOTAL_BYTES + 1)))
    assert at_limit["FailedEntryCount"] == 0
    assert over["Error"]["Code"] == "ValidationException"
    assert over["Error"]["Message"] == "Total size of the entries in the request is over the limit."
    stored = await published(redis, stack_name, fn)
    assert len(stored) == 2  # only the accepted request's entries
    assert sum(len(json.dumps(e.record["detail"], ensure_ascii=False).encode()) for e in stored) > (
        MAX_TOTAL_BYTES - 200
    )


async def raw_post(url: str, body: bytes, target: str = "AWSEvents.PutEvents") -> tuple[int, Any]:
    headers = {"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"}
    async with aiohttp.ClientSession() as session, session.post(
        url + "/", data=body, headers=headers
    ) as response:  # fmt: skip
        return response.status, json.loads(await response.read())


async def test_malformed_requests_and_unknown_operations(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = unique("Bad")
    rules = [rule(fn, "R")]
    stack = stack_of(stack_name, rules, {fn: "tests.handlers_edge.record"})
    async with edge_for(redis_url, redis, stack, rules) as edge:
        cases = {
            "not json": await raw_post(edge.url, b"{nope"),
            "no entries": await raw_post(edge.url, b"{}"),
            "empty": await raw_post(edge.url, b'{"Entries": []}'),
            "entries not a list": await raw_post(edge.url, b'{"Entries": {"a": 1}}'),
            "entry not an object": await raw_post(edge.url, b'{"Entries": ["x"]}'),
            "source a number": await raw_post(
                edge.url, b'{"Entries": [{"Source": 5, "DetailType": "t", "Detail": "{}"}]}'
            ),
            "resources not strings": await raw_post(
                edge.url,
                b'{"Entries": [{"Source": "s", "DetailType": "t", "Detail": "{}", '
                b'"Resources": [1]}]}',
            ),
            "too big to read": await raw_post(edge.url, b" " * (MAX_BODY_BYTES + 1)),
            "unknown operation": await raw_post(edge.url, b"{}", "AWSEvents.PutRule"),
        }
        put_rule = await refused(edge.url, lambda c: c.put_rule(Name="r", EventPattern="{}"))
    codes = {name: (status, body["__type"]) for name, (status, body) in cases.items()}
    assert codes == {
        "not json": (400, "SerializationException"),
        "no entries": (400, "ValidationException"),
        "empty": (400, "ValidationException"),
        "entries not a list": (400, "SerializationException"),
        "entry not an object": (400, "SerializationException"),
        "source a number": (400, "SerializationException"),
        "resources not strings": (400, "SerializationException"),
        "too big to read": (413, "RequestEntityTooLargeException"),
        "unknown operation": (400, "UnknownOperationException"),
    }
    assert put_rule["Error"]["Code"] == "UnknownOperationException"
    assert await published(redis, stack_name, fn) == []


async def test_bad_time_and_unencodable_detail_are_per_entry(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = unique("Odd")
    rules = [rule(fn, "R", Pattern={"source": ["demo.orders"]})]
    stack = stack_of(stack_name, rules, {fn: "tests.handlers_edge.record"})
    body = {"Entries": [
        order(1, Time="not a time"),
        order(1) | {"Detail": '{"n": 18446744073709551616}'},  # past msgpack's 64 bits
        order(1, Time="2026-03-04T05:06:07+01:00"),
        order(1) | {"Detail": '{"a": ' + "[" * 50_000 + "]" * 50_000 + "}"},  # too deep to parse
    ]}  # fmt: skip
    async with edge_for(redis_url, redis, stack, rules) as edge:
        status, response = await raw_post(edge.url, json.dumps(body).encode())
    assert status == 200 and response["FailedEntryCount"] == 3
    assert [r.get("ErrorCode") for r in response["Entries"]] == [
        "InvalidArgument", "InvalidArgument", None, "MalformedDetail"]  # fmt: skip
    (env,) = await published(redis, stack_name, fn)
    assert env.record["time"] == "2026-03-04T04:06:07Z"


async def test_an_input_transformer_rendering_past_the_bus_limit_fails_only_its_entry(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = unique("Huge")
    copies = 10  # ten copies of a ~0.9 MB event render past the bus's 8 MB envelope limit
    transformer = {"InputTemplate": "[" + ", ".join(["<aws.events.event.json>"] * copies) + "]"}
    rules = [rule(fn, "Whole"), rule(fn, "Copies", InputTransformer=transformer)]
    stack = stack_of(stack_name, rules, {fn: "tests.handlers_edge.record"})
    padding = "x" * (MAX_ENTRY_BYTES // copies + 100_000)
    huge = order(500) | {"Detail": json.dumps({"id": "o-huge", "total": 500, "pad": padding})}
    assert entry_size(huge) <= MAX_TOTAL_BYTES - 1000  # the entry itself is within AWS limits
    before = counts()
    async with edge_for(redis_url, redis, stack, rules) as edge:
        response = await put(edge.url, [order(150), huge, order(50)])
    assert response["FailedEntryCount"] == 1
    normal, refused_entry, unmatched = response["Entries"]
    assert set(normal) == {"EventId"} and set(unmatched) == {"EventId"}
    assert refused_entry["ErrorCode"] == "InvalidArgument"
    assert "transformed input" in refused_entry["ErrorMessage"]
    assert "too large" in refused_entry["ErrorMessage"]
    assert "rule Copies" in refused_entry["ErrorMessage"]
    # The normal entry went to both rules; nothing of the refused entry reached the bus,
    # not even its envelope for the rule without a transformer.
    envs = await published(redis, stack_name, fn)
    assert sorted(e.trigger for e in envs) == ["Copies", "Whole"]
    (whole,) = [e for e in envs if e.trigger == "Whole"]
    (copied,) = [e for e in envs if e.trigger == "Copies"]
    assert EventBridgeModel.model_validate(whole.record).id == normal["EventId"]
    assert len(copied.record) == copies
    for event in copied.record:
        assert EventBridgeModel.model_validate(event).id == normal["EventId"]
    assert delta(before) == {"accepted": 2, "matched": 1, "unmatched": 1, "rejected": 1}


async def test_publish_failures_are_internal_failures(stack_name: str) -> None:
    fn = unique("Down")
    rules = [rule(fn, "R")]
    stack = stack_of(stack_name, rules, {fn: "tests.handlers_edge.record"})
    with socket.socket() as probe:  # a port nothing listens on: Redis is down
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    down = Redis.from_url(f"redis://127.0.0.1:{port}", socket_connect_timeout=1)
    operation = PutEvents(
        Router(rules_from(rules, stack, "us-east-1")), Publisher(down, stack_name), "us-east-1"
    )
    try:
        request: Any = None  # the operation does not read the HTTP request
        body = {"Entries": [order(500), order(5), order(1) | {"Detail": "[]"}]}
        response = await operation(body, request)
    finally:
        await down.aclose()
    assert response["FailedEntryCount"] == 3
    assert [r.get("ErrorCode") for r in response["Entries"]] == [
        "InternalFailure", "InternalFailure", "MalformedDetail"]  # fmt: skip


# -- through workers: a handler's own put_events reaches another function -----------------


def emit(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An unmodified handler: no endpoint given, AWS_ENDPOINT_URL_EVENTBRIDGE routes it."""
    client = boto3.client("events")
    return client.put_events(Entries=[{
        "Source": "demo.orders", "DetailType": "order.created",
        "Detail": json.dumps({"id": event["id"], "total": event["total"]}),
    }])  # fmt: skip


async def test_a_handlers_put_events_reaches_another_function(
    redis_url: str, redis: Redis, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    emitter, receiver = unique("Emitter"), unique("Receiver")
    rules = [rule(receiver, "BigOrders")]
    stack = stack_of(stack_name, rules, {emitter: f"{__name__}.emit",
                                         receiver: "tests.handlers_edge.record"})  # fmt: skip
    received = inbox(receiver)
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    async with edge_for(redis_url, redis, stack, rules, workers=True) as edge:
        monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", edge.url)
        client = lambda_client(edge.url)
        for order_id, total in (("small", 5), ("big", 500)):
            payload = json.dumps({"id": order_id, "total": total}).encode()
            await asyncio.to_thread(lambda p=payload: client.invoke(  # type: ignore[misc]
                FunctionName=emitter, InvocationType="Event", Payload=p))  # fmt: skip
        event, _ = await asyncio.wait_for(received.get(), 30)
    assert os.environ["AWS_ENDPOINT_URL_EVENTBRIDGE"] == edge.url
    model = EventBridgeModel.model_validate(event)
    assert model.detail == {"id": "big", "total": 500}
    assert received.empty()  # the small order matched no rule


async def test_signatures_are_checked_when_credentials_are_set(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    fn = unique("Signed")
    rules = [rule(fn, "R")]
    stack = stack_of(stack_name, rules, {fn: "tests.handlers_edge.record"})
    edge = EdgeServer(redis_url, stack, port=0, credentials={"AKIDEVENTS": "s3cret"})
    mount(edge, rules, stack, redis, "us-east-1")

    def client(secret: str) -> Any:
        return boto3.session.Session().client(
            "events", endpoint_url=edge.url, region_name="us-east-1",
            aws_access_key_id="AKIDEVENTS", aws_secret_access_key=secret,
            config=Config(retries={"total_max_attempts": 1}),
        )  # fmt: skip

    async with edge:
        good = await asyncio.to_thread(lambda: client("s3cret").put_events(Entries=[order(500)]))
        with pytest.raises(botocore.exceptions.ClientError) as info:
            await asyncio.to_thread(lambda: client("wrong").put_events(Entries=[order(600)]))
    assert good["FailedEntryCount"] == 0
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert [e.record["detail"]["total"] for e in await published(redis, stack_name, fn)] == [500]


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_numbers_in_detail_are_malformed(constant: str) -> None:
    entry = {"Source": "demo", "DetailType": "t", "Detail": f'{{"x": {constant}}}'}
    refused = make_event(entry, "id", 0.0, "us-east-1")
    assert isinstance(refused, Refused)
    assert refused.result()["ErrorCode"] == "MalformedDetail"
