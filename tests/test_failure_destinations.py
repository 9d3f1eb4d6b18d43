"""``EventInvokeConfig.DestinationConfig.OnFailure`` to an SQS queue or SNS topic: Lambda's
destination record, sent by the dead-letter forwarder (moto over HTTP, real Redis).

The record is the one an OnFailure *function* gets (``bus.events.destination_record``);
here it travels as the message body, as Lambda sends it to a queue or topic.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiobotocore.session import get_session
from botocore.exceptions import ClientError, EndpointConnectionError
from redis.asyncio import Redis

from adapters.destinations import (
    MAX_SEND_ATTEMPTS,
    DeadLetterForwarder,
    Destination,
    Redrive,
    failure_record,
    forwarder_routes,
    forwarders_for,
)
from bus.embedded import free_port
from bus.envelope import Envelope, encode
from bus.keys import FunctionKeys
from bus.sync import Invoker
from tests.handlers_bus import probe, running, wait_until
from tests.test_sqs_adapter import (
    _receive,
    create_queue,
    fn_name,
    queue_arn,
    write_template,
)


@pytest.fixture
async def sqs(aws_env: str) -> AsyncIterator[Any]:
    async with get_session().create_client("sqs") as client:
        yield client


def letter(reason: str, trace: str = "") -> dict[bytes, bytes]:
    return {
        b"error_type": b"OrderError",
        b"error_message": b"order 3 has no quantity",
        b"traceback": trace.encode(),
        b"reason": reason.encode(),
    }


def test_record_is_lambdas_destination_record_for_the_event_that_failed() -> None:
    trace = (
        "Traceback (most recent call last):\n"
        '  File "/srv/fn/app.py", line 9, in lambda_handler\n'
        "    raise OrderError(msg)\n"
        "OrderError: order 3 has no quantity\n"
    )
    env = Envelope("req-1", "lambdabus:invoke", "Invoke", "$direct", {"id": 3}, 1.0, attempt=2)
    out = failure_record("st", "Orders", "5-0", env, letter("RetriesExhausted", trace))
    assert out is not None
    record = json.loads(out.body)
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": "req-1",
        "functionArn": "arn:aws:lambda:us-east-1:123456789012:function:Orders:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"id": 3}
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    assert record["responsePayload"] == {
        "errorMessage": "order 3 has no quantity",
        "errorType": "OrderError",
        "stackTrace": ['  File "/srv/fn/app.py", line 9, in lambda_handler\n'
                       "    raise OrderError(msg)\n"],
    }  # fmt: skip
    again = failure_record("st", "Orders", "5-0", env, letter("RetriesExhausted", trace))
    assert again is not None and again.dedupe_id == out.dedupe_id
    s3 = Envelope("e", "aws:s3", "ObjectCreated:Put", "Up", {"s3": {"k": 1}}, 1.0)
    aged = failure_record("st", "Thumb", "6-0", s3, letter("EventAgeExceeded"))
    assert aged is not None
    assert json.loads(aged.body)["requestPayload"] == {"Records": [{"s3": {"k": 1}}]}
    assert json.loads(aged.body)["requestContext"]["condition"] == "EventAgeExceeded"
    # Lambda reports only exhausted retries and expired events to OnFailure.
    assert failure_record("st", "Orders", "7-0", env, letter("undecodable")) is None


async def test_on_failure_queue_and_dead_letter_topic_each_get_their_own_message(
    tmp_path: Path, sqs: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn = fn_name("Pay")
    failures, dead_tap = f"{stack_name}-failures", f"{stack_name}-dead-tap"
    failures_url, tap_url = await create_queue(sqs, failures), await create_queue(sqs, dead_tap)
    async with get_session().create_client("sns") as sns:
        topic = (await sns.create_topic(Name=f"{stack_name}-dead"))["TopicArn"]
        await sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(dead_tap))
    extra = {
        "DeadLetterQueue": {"Type": "SNS", "TargetArn": topic},
        "EventInvokeConfig": {
            "MaximumRetryAttempts": 1,
            "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": queue_arn(failures)}},
        },
    }
    loaded = write_template(tmp_path, stack_name, {}, {fn: ("tests.handlers_bus.flaky", {})}, extra)
    [routes] = forwarder_routes(loaded)[fn].values()
    assert set(routes) == {Destination(topic, "event"), Destination(queue_arn(failures), "record")}
    probe(fn, fail_first=1000)
    [forwarder] = forwarders_for(redis, loaded)
    forwarder.poll_s = 0.05
    async with running(redis_url, loaded.stack, fn), Invoker(redis_url, stack_name) as inv:
        await forwarder.start()
        try:
            await inv.invoke_async(fn, {"payment": 42})
            [record_msg] = await wait_until(
                lambda: _receive(sqs, failures_url), within=20, what="OnFailure delivery"
            )
            [dlq_msg] = await wait_until(
                lambda: _receive(sqs, tap_url), within=20, what="DeadLetterQueue delivery"
            )
        finally:
            assert await forwarder.stop(5)
    record = json.loads(record_msg["Body"])
    assert record["requestPayload"] == {"payment": 42}
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responsePayload"]["errorType"] == "FlakyError"
    assert "fails on purpose" in record["responsePayload"]["errorMessage"]
    assert any("handlers_bus.py" in frame for frame in record["responsePayload"]["stackTrace"])
    assert json.loads(json.loads(dlq_msg["Body"])["Message"]) == {"payment": 42}
    assert forwarder.forwarded == 2


async def _letters(redis: Redis, stack: str, fn: str, *envs: Envelope) -> None:
    for e in envs:
        await redis.xadd(FunctionKeys(stack, fn).dead_letters, {
            b"d": encode(e), b"reason": b"RetriesExhausted", b"error_type": b"E",
            b"error_message": b"m", b"traceback": b""})  # fmt: skip


async def test_a_letter_whose_destination_refuses_is_given_up_and_the_next_ones_go(
    sqs: Any, redis: Redis, stack_name: str
) -> None:
    """The SQS source queue of letter 1 is gone (its redrive lookup is refused): after
    MAX_SEND_ATTEMPTS rounds it is skipped, and letter 2 reaches its OnFailure queue."""
    fn = fn_name("Gone")
    gone = await create_queue(sqs, f"{stack_name}-gone")
    failures_url = await create_queue(sqs, f"{stack_name}-onfail")
    await sqs.delete_queue(QueueUrl=gone)
    first = Envelope("m1", "aws:sqs", "x", "Q", {"body": "a"}, 1.0)
    second = Envelope("r2", "lambdabus:invoke", "Invoke", "$direct", {"id": 2}, 1.0)
    await _letters(redis, stack_name, fn, first, second)
    routes: dict[str, list[Any]] = {
        "Q": [Redrive(queue_arn(f"{stack_name}-gone"))],
        "$direct": [Destination(queue_arn(f"{stack_name}-onfail"), "record")],
    }
    forwarder = DeadLetterForwarder(redis, stack_name, fn, routes)
    await forwarder.open(forwarder._exit)
    try:
        for _ in range(MAX_SEND_ATTEMPTS - 1):
            with pytest.raises(ClientError):
                await forwarder.forward_once()
        assert await forwarder.forward_once() == 2  # given up on letter 1, sent letter 2
    finally:
        await forwarder._exit.aclose()
    [message] = await _receive(sqs, failures_url)
    assert json.loads(message["Body"])["requestPayload"] == {"id": 2}


async def test_an_unreachable_destination_never_skips_a_letter(
    redis: Redis, stack_name: str, monkeypatch: pytest.MonkeyPatch, aws_env: str
) -> None:
    """Nothing listens where SQS should be: every round fails and is retried; the letter
    is never counted towards giving up, however long the outage lasts."""
    fn = fn_name("Outage")
    letter = Envelope("r1", "lambdabus:invoke", "Invoke", "$direct", {"id": 1}, 1.0)
    await _letters(redis, stack_name, fn, letter)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    routes: dict[str, list[Any]] = {"$direct": [Destination(queue_arn("nowhere"), "record")]}
    forwarder = DeadLetterForwarder(redis, stack_name, fn, routes)
    await forwarder.open(forwarder._exit)
    try:
        for _ in range(MAX_SEND_ATTEMPTS + 2):
            with pytest.raises(EndpointConnectionError):
                await forwarder.forward_once()
        assert forwarder._failures == {}
        assert await redis.get(FunctionKeys(stack_name, fn).dlq_forwarded) is None
    finally:
        await forwarder._exit.aclose()


class _SlowForwarder(DeadLetterForwarder):
    """Sends take 50 ms (an AWS call) and are counted instead of made."""

    sent: ClassVar[Counter[str]] = Counter()

    async def open(self, exit_stack: Any) -> None:
        return None

    async def _send(self, arn: str, out: Any) -> None:
        await asyncio.sleep(0.05)  # simulated AWS latency: the round outlasts the lease
        self.sent[out.dedupe_id] += 1


async def test_two_forwarder_replicas_never_send_one_letter_twice(
    redis: Redis, stack_name: str
) -> None:
    """A round of 100 letters takes 5 s, five leases of 1 s: the lease is renewed before
    every send, so the other replica never sends what this one does, and the cursor only
    ever moves forward."""
    fn = fn_name("Twice")
    letters = [Envelope(f"e{i}", "aws:s3", "x", "Up", {"k": i}, 1.0) for i in range(100)]
    await _letters(redis, stack_name, fn, *letters)
    routes: dict[str, list[Any]] = {"Up": [Destination(queue_arn("dlq"), "event")]}
    _SlowForwarder.sent.clear()
    a = _SlowForwarder(redis, stack_name, fn, routes, lease_s=1.0, poll_s=0.05)
    b = _SlowForwarder(redis, stack_name, fn, routes, lease_s=1.0, poll_s=0.05)
    await a.start()
    await b.start()
    try:
        await wait_until(lambda: _all_sent(_SlowForwarder.sent, 100), within=60,
                         what="100 letters sent")  # fmt: skip
    finally:
        await a.stop(5)
        await b.stop(5)
    assert sorted(_SlowForwarder.sent.values()) == [1] * 100
    last = (await redis.xrevrange(FunctionKeys(stack_name, fn).dead_letters, count=1))[0][0]
    assert await redis.get(FunctionKeys(stack_name, fn).dlq_forwarded) == last


async def _all_sent(sent: Counter[str], n: int) -> bool:
    return len(sent) >= n
