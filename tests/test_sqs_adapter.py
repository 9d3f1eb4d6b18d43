"""The SQS adapter against moto's server (over HTTP, via aiobotocore) and a real Redis.

Each test writes a small SAM template, creates its queues in moto as provisioning
would, and runs the template's mappings (``mappings_from_template``) with an
in-process worker for the function. Handlers are the probes of
``tests.handlers_bus`` (plus one here), so tests await calls instead of sleeping.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session
from aws_lambda_powertools.utilities.parser.models import S3Model, SnsModel, SqsModel
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from adapters.base import AdapterGroup, Handoff
from adapters.destinations import Destination, forwarder_routes, forwarders_for, outgoing
from adapters.sqs import (
    Queue,
    SqsAdapter,
    SqsMapping,
    carrier_mappings,
    mappings_from_template,
    services_for,
)
from adapters.sqs_envelopes import s3_envelopes, sns_envelopes
from adapters.sqs_records import sqs_record
from adapters.template import load_template
from adapters.template.loaded import LoadedTemplate
from bus.deadletter import DeadLetters
from bus.envelope import Envelope
from bus.keys import FunctionKeys
from bus.spec import FunctionSpec, Stack, Trigger
from bus.sync import Invoker
from tests.handlers_bus import PROBES, Call, probe, running, wait_until

ROOT = Path(__file__).resolve().parents[1]
REGION, ACCOUNT = "us-east-1", "123456789012"


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def fn_name(prefix: str) -> str:
    """Unique per test: probes and Prometheus metrics are process-global."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def sqs(aws_env: str) -> AsyncIterator[Any]:
    async with get_session().create_client("sqs") as client:
        yield client


def write_template(tmp_path: Path, stack: str, resources: dict[str, Any],
                   functions: dict[str, tuple[str, dict[str, Any]]],
                   extra: dict[str, Any] | None = None) -> LoadedTemplate:  # fmt: skip
    """A SAM template (JSON is YAML) with these resources and (handler, events) functions;
    ``extra`` adds properties to every function."""
    doc: dict[str, Any] = {"Transform": "AWS::Serverless-2016-10-31", "Resources": dict(resources)}
    for name, (handler, events) in functions.items():
        doc["Resources"][name] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {"Handler": handler, "CodeUri": ".", "Timeout": 5, "Events": events,
                           **(extra or {})},
        }  # fmt: skip
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(doc))
    return load_template(path, {}, stack)


def sqs_event(queue: Any, **props: Any) -> dict[str, Any]:
    return {"Q": {"Type": "SQS", "Properties": {"Queue": queue, **props}}}


async def create_queue(sqs: Any, name: str, **attributes: Any) -> str:
    attrs = {k: v if isinstance(v, str) else json.dumps(v) for k, v in attributes.items()}
    return str((await sqs.create_queue(QueueName=name, Attributes=attrs))["QueueUrl"])


async def depth(sqs: Any, url: str) -> int:
    """Messages still in the queue, visible or not."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names))["Attributes"]
    return sum(int(attrs[n]) for n in names)


def adapter_errors(label: str) -> float:
    return REGISTRY.get_sample_value("lambdabus_adapter_errors_total", {"adapter": label}) or 0.0


@asynccontextmanager
async def adapters_for(redis: Redis, loaded: LoadedTemplate, **kwargs: Any,
                       ) -> AsyncIterator[list[SqsAdapter]]:  # fmt: skip
    """The template's SQS mappings, polling with a short long-poll; stopped at the end."""
    kwargs.setdefault("wait_time_s", 1)
    started = [SqsAdapter(redis, loaded.stack.name, m, **kwargs)
               for m in mappings_from_template(loaded)]  # fmt: skip
    try:
        for adapter in started:
            await adapter.start()
        yield started
    finally:
        for adapter in started:
            await adapter.stop(5)


async def drained(sqs: Any, url: str) -> None:
    await wait_until(lambda: _empty(sqs, url), within=15, what="queue drained")


async def _empty(sqs: Any, url: str) -> bool:
    return await depth(sqs, url) == 0


# -- a message reaches the handler as Lambda's event ------------------------------------------


async def test_message_reaches_handler_as_lambdas_sqs_event_then_is_deleted(
    tmp_path: Path, sqs: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn, name = fn_name("Rec"), f"{stack_name}-plain"
    url = await create_queue(sqs, name)
    loaded = write_template(
        tmp_path, stack_name, {}, {fn: ("tests.handlers_bus.record", sqs_event(queue_arn(name)))}
    )
    p = probe(fn)
    async with running(redis_url, loaded.stack, fn), adapters_for(redis, loaded) as [adapter]:
        sent = await sqs.send_message(
            QueueUrl=url, MessageBody='{"order": 1, "note": "ünïcødé"}',
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "order"},
                               "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}},
        )  # fmt: skip
        await p.wait(lambda calls: len(calls) == 1)
        await drained(sqs, url)
    event = p.calls[0].event
    SqsModel.model_validate(event)
    [record] = event["Records"]
    assert record["messageId"] == sent["MessageId"]
    assert record["body"] == '{"order": 1, "note": "ünïcødé"}'
    assert record["md5OfBody"] == sent["MD5OfMessageBody"]
    assert record["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert record["messageAttributes"]["blob"]["binaryValue"] == "AP8="
    assert record["messageAttributes"]["kind"]["stringValue"] == "order"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs", queue_arn(name), REGION)  # fmt: skip
    assert (adapter.counts.published, adapter.counts.acknowledged) == (1, 1)


# -- delete only after publish: SIGKILL between the two ------------------------------------------


async def _line(stream: asyncio.StreamReader, prefix: str, within: float = 30.0) -> str:
    deadline = time.monotonic() + within
    while True:
        raw = await asyncio.wait_for(stream.readline(), max(0.1, deadline - time.monotonic()))
        if not raw:
            raise AssertionError(f"adapter process ended before printing {prefix!r}")
        if raw.decode().startswith(prefix):
            return raw.decode().strip()


async def test_adapter_killed_after_publish_before_delete_runs_the_message_once(
    tmp_path: Path, sqs: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn, name = fn_name("Kill"), f"{stack_name}-kill"
    url = await create_queue(sqs, name, VisibilityTimeout="2")
    resources = {
        "KillQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": name, "VisibilityTimeout": 2},
        }
    }
    loaded = write_template(
        tmp_path,
        stack_name,
        resources,
        {fn: ("tests.handlers_bus.record", sqs_event({"Fn::GetAtt": ["KillQueue", "Arn"]}))},
    )
    p = probe(fn)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.sqs_adapter_proc",
        "--template", str(tmp_path / "template.yaml"),
        "--stack-name", stack_name, "--redis-url", redis_url,
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with running(redis_url, loaded.stack, fn):
            await _line(proc.stdout, "ready")
            sent = await sqs.send_message(QueueUrl=url, MessageBody="exactly once")
            assert await _line(proc.stdout, "published") == f"published {sent['MessageId']}"
            await p.wait(lambda calls: len(calls) == 1)
            proc.kill()  # SIGKILL: published, never deleted
            await proc.wait()
            assert await depth(sqs, url) == 1

            async with adapters_for(redis, loaded) as [second]:
                await wait_until(lambda: _redelivered(second), within=15, what="redelivery")
                await drained(sqs, url)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert len(p.calls) == 1 and p.calls[0].ok
    info: Any = await redis.xinfo_stream(FunctionKeys(stack_name, fn).stream)
    assert info["entries-added"] == 1  # the redelivery never reached the stream


async def _redelivered(adapter: SqsAdapter) -> bool:
    c = adapter.counts
    return c.received == 1 and c.duplicates == 1 and c.acknowledged == 1


# -- FIFO ---------------------------------------------------------------------------------


PARALLEL: dict[str, bool] = {}


async def fifo_probe(event: Any, context: Any) -> None:
    """Records the call; the first call of group A waits (bounded) for another group's
    call to start — which only happens if groups run in parallel."""
    p = PROBES[context.function_name]
    call = p.begin(event, context)
    groups = {json.loads(r["body"])["g"] for r in call.records}
    if "A" in groups and not any("A" in _groups(c) for c in p.calls[: call.n - 1]):

        def other_started(calls: list[Call]) -> bool:
            return any(_groups(c) - {"A"} for c in calls)

        try:
            await p.wait(other_started, within=10)
            PARALLEL[context.function_name] = True
        except AssertionError:
            PARALLEL[context.function_name] = False
    p.finish(call, True)


def _groups(call: Call) -> set[str]:
    return {json.loads(r["body"])["g"] for r in call.records}


async def test_fifo_keeps_order_per_group_and_runs_groups_in_parallel(
    tmp_path: Path, sqs: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn, name = fn_name("Fifo"), f"{stack_name}-orders.fifo"
    props = {"QueueName": name, "FifoQueue": True, "ContentBasedDeduplication": True}
    url = await create_queue(sqs, name, FifoQueue="true", ContentBasedDeduplication="true")
    loaded = write_template(
        tmp_path, stack_name, {"Orders": {"Type": "AWS::SQS::Queue", "Properties": props}},
        {fn: ("tests.test_sqs_adapter.fifo_probe",
              sqs_event({"Fn::GetAtt": ["Orders", "Arn"]}, BatchSize=2,
                        ScalingConfig={"MaximumConcurrency": 3}))},
    )  # fmt: skip
    assert loaded.stack.function(fn).trigger("Q").ordered
    p = probe(fn)
    per_group = 6
    async with running(redis_url, loaded.stack, fn), adapters_for(redis, loaded) as [adapter]:
        assert len(adapter.steps()) == 3
        for g in "ABC":
            await sqs.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(n), "MessageBody": json.dumps({"g": g, "n": n}), "MessageGroupId": g}
                for n in range(per_group)])  # fmt: skip
        await p.wait(lambda calls: len(p.ok_records()) == 3 * per_group, within=20)
        await drained(sqs, url)
    seen: dict[str, list[int]] = {}
    for record in p.ok_records():
        body = json.loads(record["body"])
        seen.setdefault(body["g"], []).append(body["n"])
        assert record["attributes"]["MessageGroupId"] == body["g"]
    assert seen == {g: list(range(per_group)) for g in "ABC"}
    assert PARALLEL.get(fn) is True, "group A's first batch never overlapped another group's"


# -- RedrivePolicy: attempts, ApproximateReceiveCount, and the DLQ -----------------------------


async def test_max_receive_count_three_attempts_then_dlq_with_body_intact(
    tmp_path: Path, sqs: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn, name, dlq_name = fn_name("Fail"), f"{stack_name}-work", f"{stack_name}-work-dlq"
    dlq_url = await create_queue(sqs, dlq_name)
    redrive = {"deadLetterTargetArn": queue_arn(dlq_name), "maxReceiveCount": 3}
    url = await create_queue(sqs, name, RedrivePolicy=redrive)
    resources = {
        "WorkDlq": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": dlq_name}},
        "Work": {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": name, "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": ["WorkDlq", "Arn"]}, "maxReceiveCount": 3}}},
    }  # fmt: skip
    loaded = write_template(
        tmp_path,
        stack_name,
        resources,
        {fn: ("tests.handlers_bus.flaky", sqs_event({"Fn::GetAtt": ["Work", "Arn"]}))},
    )
    assert loaded.stack.function(fn).trigger("Q").max_retry_attempts == 2
    p = probe(fn, fail_first=1000)
    services = services_for(redis, loaded)  # the adapter and the dead-letter forwarder
    body = '{"payload": "keep me intact ✓", "n": 42}'
    attributes = {"kind": {"DataType": "String", "StringValue": "job"},
                  "raw": {"DataType": "Binary", "BinaryValue": b"\x01\x02"}}  # fmt: skip
    async with running(redis_url, loaded.stack, fn):
        await services.start()
        try:
            await sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes=attributes)
            letters = DeadLetters(redis, stack_name)
            await wait_until(lambda: letters.count(fn), within=20, what="dead-lettered")
            moved = await wait_until(lambda: _receive(sqs, dlq_url), within=10, what="DLQ")
        finally:
            assert await services.stop(5)
    counts = [c.records[0]["attributes"]["ApproximateReceiveCount"] for c in p.calls]
    assert counts == ["1", "2", "3"]
    [message] = moved
    assert message["Body"] == body
    assert message["MessageAttributes"] == {
        "kind": {"DataType": "String", "StringValue": "job"},
        "raw": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
    }
    assert await depth(sqs, url) == 0


async def _receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    response = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                         MessageAttributeNames=["All"])  # fmt: skip
    return list(response.get("Messages") or [])


# -- batching -----------------------------------------------------------------------------


async def test_batch_size_and_batching_window_make_one_invocation_of_several_records(
    tmp_path: Path, sqs: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn, name = fn_name("Batch"), f"{stack_name}-batch"
    url = await create_queue(sqs, name)
    loaded = write_template(tmp_path, stack_name, {}, {fn: ("tests.handlers_bus.record",
        sqs_event(queue_arn(name), BatchSize=5, MaximumBatchingWindowInSeconds=3))})  # fmt: skip
    p = probe(fn)
    async with running(redis_url, loaded.stack, fn), adapters_for(redis, loaded):
        await sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"m{i}"} for i in range(5)])  # fmt: skip
        await p.wait(lambda calls: len(p.ok_records()) == 5, within=15)
    assert [len(c.records) for c in p.calls] == [5]
    SqsModel.model_validate(p.calls[0].event)


# -- FilterCriteria -------------------------------------------------------------------------


async def test_filter_criteria_drop_exactly_the_non_matching_messages_and_delete_them(
    tmp_path: Path, sqs: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn, name = fn_name("Filt"), f"{stack_name}-filtered"
    url = await create_queue(sqs, name)
    criteria = {"Filters": [
        {"Pattern": json.dumps({"body": {"kind": ["keep"], "n": [{"numeric": [">", 1]}]}})},
        {"Pattern": {"messageAttributes": {"force": {"stringValue": ["yes"]}}}},
    ]}  # fmt: skip
    loaded = write_template(tmp_path, stack_name, {}, {fn: ("tests.handlers_bus.record",
        sqs_event(queue_arn(name), FilterCriteria=criteria))})  # fmt: skip
    p = probe(fn)
    bodies = [
        ('{"kind": "keep", "n": 2}', True),
        ('{"kind": "keep", "n": 1}', False),     # numeric condition fails
        ('{"kind": "drop", "n": 5}', False),
        ("plain text, not JSON", False),         # object pattern vs text body: dropped
        ('{"kind": "keep", "n": 7}', True),
    ]  # fmt: skip
    async with running(redis_url, loaded.stack, fn), adapters_for(redis, loaded) as [adapter]:
        for body, _ in bodies:
            await sqs.send_message(QueueUrl=url, MessageBody=body)
        await sqs.send_message(QueueUrl=url, MessageBody="forced", MessageAttributes={
            "force": {"DataType": "String", "StringValue": "yes"}})  # fmt: skip
        await drained(sqs, url)
        await p.wait(lambda calls: len(p.ok_records()) == 3)
        await wait_until(lambda: _equals(adapter.counts.acknowledged, 6), what="all deleted")
    assert sorted(r["body"] for r in p.ok_records()) == sorted(
        [b for b, keep in bodies if keep] + ["forced"])  # fmt: skip
    assert adapter.counts.filtered == 3


async def _equals(value: int, expected: int) -> bool:
    return value == expected


# -- backpressure ---------------------------------------------------------------------------


async def test_polling_pauses_while_the_functions_backlog_is_above_high_water(
    tmp_path: Path, sqs: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn, name = fn_name("Slow"), f"{stack_name}-backlog"
    url = await create_queue(sqs, name)
    loaded = write_template(tmp_path, stack_name, {}, {fn: ("tests.handlers_bus.record",
        sqs_event(queue_arn(name), BatchSize=10))})  # fmt: skip
    p = probe(fn)
    total = 40
    for start in range(0, total, 10):
        await sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, start + 10)])  # fmt: skip
    async with adapters_for(redis, loaded, high_water=5) as [adapter]:
        await wait_until(lambda: _paused(adapter), what="backpressure")
        # No worker yet: what was published sits in the stream, the rest stays in SQS.
        assert 5 < adapter.counts.published < total
        assert adapter.counts.acknowledged == adapter.counts.received
        assert await depth(sqs, url) == total - adapter.counts.received
        async with running(redis_url, loaded.stack, fn):
            await p.wait(lambda calls: len(p.ok_records()) == total, within=20)
            await drained(sqs, url)
    assert len({r["messageId"] for r in p.ok_records()}) == total


async def _paused(adapter: SqsAdapter) -> bool:
    """Every poller held by backpressure (so none is mid-handoff)."""
    return adapter.held_loops == len(adapter.steps())


# -- visibility while a publish is slow ---------------------------------------------------------


async def test_visibility_is_extended_while_publishing_takes_long(
    tmp_path: Path, sqs: Any, redis: Redis, stack_name: str
) -> None:
    name = f"{stack_name}-slowpub"
    url = await create_queue(sqs, name, VisibilityTimeout="2")
    loaded = write_template(tmp_path, stack_name, {}, {"Fn": ("tests.handlers_bus.record",
        sqs_event(queue_arn(name)))})  # fmt: skip
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(_: Handoff[Any]) -> None:
        entered.set()
        await release.wait()

    async with adapters_for(redis, loaded, after_publish=slow) as [adapter]:
        await sqs.send_message(QueueUrl=url, MessageBody="slow")
        await asyncio.wait_for(entered.wait(), 10)
        # Two visibility timeouts pass while the handoff is held: nobody may see the message.
        deadline = time.monotonic() + 4.5
        while time.monotonic() < deadline:
            assert await _receive(sqs, url) == []
        release.set()
        await drained(sqs, url)
    assert adapter.counts.received == 1 and adapter.counts.acknowledged == 1


# -- bad input ------------------------------------------------------------------------------


def carrier_stack(name: str, triggers: dict[str, Trigger]) -> Stack:
    """Functions fed by carrier queues, one trigger each (as the template loader makes)."""
    return Stack(name, {fn: FunctionSpec(fn, "tests.handlers_bus.record", triggers={t.name: t})
                        for fn, t in triggers.items()})  # fmt: skip


@asynccontextmanager
async def carriers(redis: Redis, stack: str, *mappings: SqsMapping) -> AsyncIterator[AdapterGroup]:
    group = AdapterGroup([SqsAdapter(redis, stack, m, wait_time_s=1) for m in mappings])
    await group.start()
    try:
        yield group
    finally:
        await group.stop(5)


async def test_unreadable_carrier_message_is_counted_and_left_for_redrive(
    sqs: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn, name = fn_name("S3c"), f"{stack_name}-s3carrier"
    url = await create_queue(sqs, name)
    trigger = Trigger("Upload", shape="records")
    mapping = SqsMapping(fn, trigger, queue_arn(name), normalize=s3_envelopes, kind="s3")
    good = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": "2026-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
               "bucket": {"name": "b", "arn": "arn:aws:s3:::b"},
               "object": {"key": "photos/cat%2B1.jpg", "size": 3, "eTag": "e"}}}]}  # fmt: skip
    p = probe(fn)
    before = adapter_errors(mapping.label)
    async with (
        running(redis_url, carrier_stack(stack_name, {fn: trigger}), fn),
        carriers(redis, stack_name, mapping) as group,
    ):
        [adapter] = group.adapters
        assert isinstance(adapter, SqsAdapter)
        await sqs.send_message(QueueUrl=url, MessageBody="{not json")
        await sqs.send_message(QueueUrl=url, MessageBody=json.dumps(good))
        await p.wait(lambda calls: len(calls) == 1)
        await wait_until(lambda: _equals(adapter.counts.acknowledged, 1), what="good deleted")
    assert adapter_errors(mapping.label) >= before + 1
    assert adapter.counts.rejected >= 1
    assert await depth(sqs, url) == 1  # the unreadable one waits for the queue's redrive
    S3Model.model_validate(p.calls[0].event)
    assert p.calls[0].records[0]["s3"]["object"]["key"] == "photos/cat%2B1.jpg"


async def _wire(stack_name: str, s3_queue: str, sns_queue: str) -> tuple[str, str]:
    """What provisioning does for carriers: a bucket notifying one queue, a topic feeding
    the other (raw delivery off). Returns (bucket, topic ARN)."""
    session, bucket = get_session(), f"{stack_name}-bucket"
    async with session.create_client("s3") as s3, session.create_client("sns") as sns:
        await s3.create_bucket(Bucket=bucket)
        config = {"QueueConfigurations": [
            {"QueueArn": queue_arn(s3_queue), "Events": ["s3:ObjectCreated:*"]}]}  # fmt: skip
        await s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=config
        )
        topic = str((await sns.create_topic(Name=f"{stack_name}-topic"))["TopicArn"])
        await sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(sns_queue))
    return bucket, topic


async def test_s3_and_sns_events_arrive_through_their_carrier_queues(
    sqs: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    """Real moto wiring (bucket notification, topic subscription) into the carrier poller."""
    s3fn, snsfn = fn_name("Up"), fn_name("Note")
    t_s3, t_sns = Trigger("Upload", shape="records"), Trigger("Note", shape="records")
    s3_q, sns_q = f"{stack_name}-s3c", f"{stack_name}-snsc"
    await create_queue(sqs, s3_q)
    await create_queue(sqs, sns_q)
    bucket, topic = await _wire(stack_name, s3_q, sns_q)
    ps3, psns = probe(s3fn), probe(snsfn)
    session = get_session()
    async with (
        session.create_client("s3") as s3,
        session.create_client("sns") as sns,
        running(redis_url, carrier_stack(stack_name, {s3fn: t_s3, snsfn: t_sns}), s3fn, snsfn),
        carriers(redis, stack_name,
                 SqsMapping(s3fn, t_s3, queue_arn(s3_q), normalize=s3_envelopes, kind="s3"),
                 SqsMapping(snsfn, t_sns, queue_arn(sns_q), normalize=sns_envelopes, kind="sns")),
    ):  # fmt: skip
        for _ in range(2):  # the same key twice: two events
            await s3.put_object(Bucket=bucket, Key="in/a b.png", Body=b"png")
        attrs = {"k": {"DataType": "String", "StringValue": "v"}}
        await sns.publish(TopicArn=topic, Message="hello", Subject="greeting",
                          MessageAttributes=attrs)  # fmt: skip
        await ps3.wait(lambda calls: len(calls) == 2)
        await psns.wait(lambda calls: len(calls) == 1)
    for call in ps3.calls:
        S3Model.model_validate(call.event)
    # URL-encoded as moto's S3 sends it (real S3 leaves the "/"): kept as the source sent it.
    assert [c.records[0]["s3"]["object"]["key"] for c in ps3.calls] == ["in%2Fa+b.png"] * 2
    SnsModel.model_validate(psns.calls[0].event)
    sns_rec = psns.calls[0].records[0]["Sns"]
    assert (sns_rec["Message"], sns_rec["Subject"], sns_rec["TopicArn"]) == (
        "hello", "greeting", topic)  # fmt: skip
    assert sns_rec["MessageAttributes"] == {"k": {"Type": "String", "Value": "v"}}


def test_oversized_messages_are_rejected_not_published() -> None:
    """SQS itself refuses to store more than 1 MiB, so this bound is checked without moto."""
    mapping = SqsMapping("F", Trigger("Q", shape="records"), queue_arn("q"))
    adapter = SqsAdapter(Redis(), "s", mapping)
    queue = Queue(queue_arn("q"), "http://q", "q", REGION, False, 30.0)

    def message(i: int, size: int) -> dict[str, Any]:
        return {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": "x" * size,
                "Attributes": {"SentTimestamp": "1"}}  # fmt: skip

    handoff = adapter.prepare(queue, [message(0, 10), message(1, 1024 * 1024 + 1),
                                      message(2, 1024 * 1024)], time.monotonic())  # fmt: skip
    assert [e.id for e in handoff.envelopes] == ["m0", "m2"]
    assert handoff.ack.handles == ["r0", "r2"]  # the big one is left for SQS's redrive
    assert adapter.counts.rejected == 1


def test_fifo_message_behind_a_rejected_one_of_its_group_is_held_back() -> None:
    mapping = SqsMapping("F", Trigger("Q", shape="records", ordered=True), queue_arn("q.fifo"))
    adapter = SqsAdapter(Redis(), "s", mapping)
    queue = Queue(queue_arn("q.fifo"), "http://q", "q.fifo", REGION, True, 30.0)
    big = 1024 * 1024 + 1

    def message(i: int, group: str, size: int = 3) -> dict[str, Any]:
        return {"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": "x" * size,
                "Attributes": {"SentTimestamp": "1", "MessageGroupId": group}}  # fmt: skip

    batch = [message(0, "a"), message(1, "b", big), message(2, "b"), message(3, "a")]
    handoff = adapter.prepare(queue, batch, time.monotonic())
    assert [(e.id, e.partition) for e in handoff.envelopes] == [("m0", "a"), ("m3", "a")]
    assert handoff.ack.handles == ["r0", "r3"]


def test_template_mappings_carry_lambdas_settings_and_carrier_queues(
    tmp_path: Path, stack_name: str
) -> None:
    resources = {
        "Photos": {"Type": "AWS::S3::Bucket", "Properties": {}},
        "Alerts": {"Type": "AWS::SNS::Topic", "Properties": {}},
        "Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 45}},
    }
    events = {
        "Upload": {"Type": "S3", "Properties": {"Bucket": {"Ref": "Photos"},
                                                "Events": "s3:ObjectCreated:*"}},
        "Alert": {"Type": "SNS", "Properties": {"Topic": {"Ref": "Alerts"}}},
        "Job": {"Type": "SQS", "Properties": {
            "Queue": {"Fn::GetAtt": ["Jobs", "Arn"]}, "BatchSize": 7,
            "ScalingConfig": {"MaximumConcurrency": 40},
            "FilterCriteria": {"Filters": [{"Pattern": '{"body": {"a": [1]}}'}]}}},
        "Off": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["Jobs", "Arn"]},
                                             "Enabled": False}},
    }  # fmt: skip
    loaded = write_template(tmp_path, stack_name, resources,
                            {"Worker": ("tests.handlers_bus.record", events)})  # fmt: skip
    [job] = mappings_from_template(loaded)  # the disabled mapping is not polled
    assert (job.function, job.trigger.name, job.trigger.batch_size) == ("Worker", "Job", 7)
    assert job.queue_arn == queue_arn(f"{stack_name}-Jobs")
    assert job.trigger.dedupe_window_s == 45 + 300  # visibility timeout plus margin
    assert job.filters == ('{"body": {"a": [1]}}',)
    assert len(SqsAdapter(Redis(), stack_name, job).steps()) == 16  # MAX_POLLERS
    carriers = {m.trigger.name: m for m in carrier_mappings(loaded)}
    assert set(carriers) == {"Upload", "Alert"}
    assert carriers["Upload"].normalize is s3_envelopes
    assert carriers["Alert"].normalize is sns_envelopes
    assert carriers["Upload"].queue_arn == queue_arn(f"{stack_name}_Worker_Upload")
    assert carriers["Alert"].label == "sns:Worker.Alert"


async def test_dead_letter_queue_topic_gets_lambdas_dlq_message(
    tmp_path: Path, sqs: Any, redis: Redis, redis_url: str, stack_name: str
) -> None:
    """A function's DeadLetterQueue (here an SNS topic) gets each failed asynchronous
    event as Lambda sends it: the event as the message, the error in attributes."""
    fn, tap = fn_name("Async"), f"{stack_name}-tap"
    tap_url = await create_queue(sqs, tap)
    async with get_session().create_client("sns") as sns:
        topic = (await sns.create_topic(Name=f"{stack_name}-dead"))["TopicArn"]
        await sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn(tap))
    extra = {"DeadLetterQueue": {"Type": "SNS", "TargetArn": topic},
             "EventInvokeConfig": {"MaximumRetryAttempts": 0}}  # fmt: skip
    loaded = write_template(tmp_path, stack_name, {}, {fn: ("tests.handlers_bus.flaky", {})},
                            extra)  # fmt: skip
    assert forwarder_routes(loaded) == {fn: {"$direct": [Destination(topic, "event")]}}
    probe(fn, fail_first=1000)
    [forwarder] = forwarders_for(redis, loaded)
    forwarder.poll_s = 0.05
    async with running(redis_url, loaded.stack, fn), Invoker(redis_url, stack_name) as inv:
        await forwarder.start()
        try:
            await inv.invoke_async(fn, {"order": 7, "note": "ünïcødé"})
            [message] = await wait_until(
                lambda: _receive(sqs, tap_url), within=15, what="DLQ topic delivery"
            )
        finally:
            assert await forwarder.stop(5)
    notification = json.loads(message["Body"])
    assert json.loads(notification["Message"]) == {"order": 7, "note": "ünïcødé"}
    attrs = notification["MessageAttributes"]
    assert attrs["ErrorCode"] == {"Type": "Number", "Value": "200"}
    assert "fails on purpose" in attrs["ErrorMessage"]["Value"]
    assert attrs["RequestID"]["Type"] == "String"
    assert forwarder.forwarded == 1


def test_dead_letters_become_the_messages_their_destination_expects() -> None:
    record = sqs_record(
        {"MessageId": "m1", "ReceiptHandle": "r", "Body": "original", "MD5OfBody": "x",
         "Attributes": {"MessageGroupId": "g7", "SentTimestamp": "1"},
         "MessageAttributes": {"k": {"DataType": "Binary", "BinaryValue": b"\x00"}}},
        queue_arn("q.fifo"),
    )  # fmt: skip
    env = Envelope("m1", "aws:sqs", "aws:sqs", "Q", record, 1.0, partition="g7")
    redriven = outgoing("st", "Fn", "1-0", env, "boom", "source")
    assert (redriven.body, redriven.group_id) == ("original", "g7")
    assert redriven.attributes == {"k": {"DataType": "Binary", "BinaryValue": b"\x00"}}
    assert redriven.dedupe_id == outgoing("st", "Fn", "1-0", env, "other", "source").dedupe_id
    assert redriven.dedupe_id != outgoing("st", "Fn", "1-1", env, "boom", "source").dedupe_id
    # Lambda's DeadLetterQueue format: the whole event, error details in attributes.
    as_event = outgoing("st", "Fn", "1-0", env, "", "event")
    assert json.loads(as_event.body) == {"Records": [record]}
    assert as_event.attributes["ErrorMessage"]["StringValue"] == "-"
    s3 = Envelope("e", "aws:s3", "ObjectCreated:Put", "U", {"s3": {"b": b"\x01"}}, 1.0)
    assert json.loads(outgoing("st", "Fn", "2-0", s3, "x", "source").body) == {
        "Records": [{"s3": {"b": "AQ=="}}]
    }
    direct = Envelope("e", "lambdabus:invoke", "Invoke", "$direct", {"a": 1}, 1.0)
    assert json.loads(outgoing("st", "Fn", "3-0", direct, "x", "event").body) == {"a": 1}
    assert outgoing("st", "Fn", "3-0", direct, "x", "event").group_id == "Fn"
