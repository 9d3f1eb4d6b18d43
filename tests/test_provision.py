"""Provisioning (``adapters.provision``) against moto's server over HTTP, and carrier names.

Every AWS-side assertion is a real API call (GetQueueAttributes,
ListSubscriptionsByTopic, GetBucketNotificationConfiguration, DescribeTable…)
against the session's moto server; each test names its stack uniquely, so the
shared server's resources never collide. Deliveries are awaited with bounded
SQS long polls, never sleeps.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote_plus

import pytest
from aiobotocore.session import get_session

from adapters.carriers import carrier_queue_for, carrier_queue_name, notification_id
from adapters.provision import ProvisionError, ProvisionReport, provision
from adapters.provision_diff import merge_policy, subscription_changes
from adapters.provision_model import SubscriptionPlan, grant
from adapters.template import EventSource, LoadedTemplate, load_template
from bus.embedded import free_port

TEMPLATES = Path(__file__).parent / "templates"
ACCOUNT = "123456789012"
SQS_NAME = re.compile(r"[A-Za-z0-9_-]{1,80}")


def load(name: str, stack: str) -> LoadedTemplate:
    return load_template(TEMPLATES / name, stack_name=stack)


def sqs_arn(name: str) -> str:
    return f"arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"


def sns_arn(name: str) -> str:
    return f"arn:aws:sns:us-east-1:{ACCOUNT}:{name}"


@pytest.fixture
async def aws(aws_env: str) -> AsyncIterator[SimpleNamespace]:
    """Clients for checking what provisioning did; they find moto through AWS_ENDPOINT_URL."""
    session = get_session()
    async with AsyncExitStack() as stack:
        clients = {
            service: await stack.enter_async_context(
                session.create_client(service, region_name="us-east-1")
            )
            for service in ("sqs", "sns", "s3", "dynamodb")
        }
        yield SimpleNamespace(**clients)


async def queue_attributes(sqs: Any, name: str) -> dict[str, str]:
    url = (await sqs.get_queue_url(QueueName=name))["QueueUrl"]
    response = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    return dict(response["Attributes"])


async def subscriptions(sns: Any, topic: str) -> dict[str, dict[str, str]]:
    """Endpoint -> the subscription's attributes."""
    listed = await sns.list_subscriptions_by_topic(TopicArn=topic)
    found = {}
    for sub in listed["Subscriptions"]:
        attrs = await sns.get_subscription_attributes(SubscriptionArn=sub["SubscriptionArn"])
        found[sub["Endpoint"]] = attrs["Attributes"]
    return found


async def receive(
    sqs: Any, queue: str, done: Callable[[list[dict[str, Any]]], bool], rounds: int = 5
) -> list[dict[str, Any]]:
    """Message bodies (parsed) received until ``done`` holds or a long poll comes back empty."""
    url = (await sqs.get_queue_url(QueueName=queue))["QueueUrl"]
    bodies: list[dict[str, Any]] = []
    for _ in range(rounds):
        response = await sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        messages = response.get("Messages", [])
        bodies += [json.loads(m["Body"]) for m in messages]
        if done(bodies) or not messages:
            break
    return bodies


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    return text


# --- carrier names (pure) -------------------------------------------------------------------


def test_carrier_name_is_stack_function_event_when_it_fits() -> None:
    assert carrier_queue_name("shop", "Thumbnail", "Upload") == "shop_Thumbnail_Upload"
    assert carrier_queue_name("shop", "Notify", "Ledger", fifo=True) == "shop_Notify_Ledger.fifo"
    assert carrier_queue_name("a-b", "C", "D") == carrier_queue_name("a-b", "C", "D")


def test_long_carrier_names_stay_valid_stable_and_distinct() -> None:
    stack, function = "s" + "x" * 127, "F" * 200
    events = [f"{'E' * 100}{i}" for i in range(50)]
    for fifo in (False, True):
        names = [carrier_queue_name(stack, function, e, fifo=fifo) for e in events]
        assert len(set(names)) == len(names)
        for name, event in zip(names, events, strict=True):
            base = name.removesuffix(".fifo")
            assert name.endswith(".fifo") == fifo
            assert len(name) <= 80 and SQS_NAME.fullmatch(base), name
            assert name == carrier_queue_name(stack, function, event, fifo=fifo)


def test_carrier_names_of_odd_parts_are_valid_and_never_collide() -> None:
    triples = [
        ("a-b", "c", "d"),
        ("a", "b-c", "d"),
        ("a_b", "c", "d"),
        ("a", "b_c", "d"),
        ("a", "b", "c_d"),
        ("a.b", "c", "d"),
        ("a b", "c", "d"),
        ("a", "b", "c"),
    ]
    names = [carrier_queue_name(*t) for t in triples]
    assert len(set(names)) == len(names)
    assert all(SQS_NAME.fullmatch(n) for n in names)


def test_carrier_queue_for_each_source() -> None:
    s3 = EventSource("Thumb", "Upload", "S3", {"Bucket": "b", "Events": ["s3:ObjectCreated:*"]})
    fifo = EventSource("Fn", "Ev", "SNS", {"Topic": sns_arn("ledger.fifo")})
    own = EventSource(
        "Fn", "Own", "SNS", {"Topic": sns_arn("t"), "SqsSubscription": {"QueueArn": sqs_arn("q")}}
    )
    sqs = EventSource("Fn", "Jobs", "SQS", {"Queue": sqs_arn("jobs")})
    assert carrier_queue_for("st", s3) == "st_Thumb_Upload"
    assert carrier_queue_for("st", fifo) == "st_Fn_Ev.fifo"
    assert carrier_queue_for("st", own) == "q"
    assert carrier_queue_for("st", sqs) is None
    assert notification_id("Thumb", "Upload") == "lambdabus-Thumb-Upload"


# --- comparisons (pure) ---------------------------------------------------------------------


def test_policy_merge_keeps_other_statements_and_is_quiet_when_equal() -> None:
    ours = grant("s3", sqs_arn("q"), "arn:aws:s3:::bucket")
    theirs = {"Sid": "Admin", "Effect": "Allow", "Principal": "*", "Action": "sqs:*"}
    first = merge_policy(json.dumps({"Statement": [theirs]}), [ours])
    assert first is not None
    assert json.loads(first)["Statement"] == [theirs, ours]
    # Echoed back in another spelling (upper-case action, one-item lists): still equal.
    echoed = json.loads(first)
    echoed["Statement"][1]["Action"] = ["SQS:SendMessage"]
    assert merge_policy(json.dumps(echoed), [ours]) is None
    assert merge_policy(None, []) is None


def test_subscription_filter_removed_from_template_is_removed() -> None:
    plan = SubscriptionPlan("l", sns_arn("t"), "sqs", sqs_arn("q"), raw=False)
    current = {"FilterPolicy": '{"kind": ["order"]}', "RawMessageDelivery": "true"}
    assert subscription_changes(plan, current) == [
        ("FilterPolicy", "{}"),
        ("RawMessageDelivery", "false"),
    ]
    assert subscription_changes(plan, {"FilterPolicy": "{}", "RawMessageDelivery": "false"}) == []


# --- against moto ---------------------------------------------------------------------------


async def test_provision_creates_every_resource_and_the_wiring(
    aws: SimpleNamespace, stack_name: str
) -> None:
    st = stack_name
    report = await provision(load("provision_full.yaml", st))
    assert report.changed() and not report.updated
    assert f"AWS::SQS::Queue OrdersQueue ({st}-OrdersQueue.fifo): created" in report.created
    assert len(report.created) == 10, report.created

    orders = await queue_attributes(aws.sqs, f"{st}-OrdersQueue.fifo")
    assert orders["FifoQueue"] == "true" and orders["ContentBasedDeduplication"] == "true"
    assert orders["VisibilityTimeout"] == "60"
    assert json.loads(orders["RedrivePolicy"]) == {
        "deadLetterTargetArn": sqs_arn(f"{st}-OrdersDeadLetters.fifo"),
        "maxReceiveCount": 3,
    }
    dlq = await queue_attributes(aws.sqs, f"{st}-OrdersDeadLetters.fifo")
    assert dlq["MessageRetentionPeriod"] == "1209600"
    await queue_attributes(aws.sqs, f"{st}-FailuresQueue")  # the OnFailure destination

    topic = sns_arn(f"{st}-Notices")
    carrier = carrier_queue_name(st, "Notify", "Notice")
    subs = await subscriptions(aws.sns, topic)
    assert list(subs) == [sqs_arn(carrier)]
    sub = subs[sqs_arn(carrier)]
    assert sub["Protocol"] == "sqs" and sub["RawMessageDelivery"] == "false"
    assert json.loads(sub["FilterPolicy"]) == {"kind": ["order"]}
    policy = json.loads((await queue_attributes(aws.sqs, carrier))["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == topic

    bucket = f"{st}-uploads"
    s3_carrier = carrier_queue_name(st, "Thumbnail", "Upload")
    config = await aws.s3.get_bucket_notification_configuration(Bucket=bucket)
    [queue_config] = config["QueueConfigurations"]
    assert queue_config["Id"] == "lambdabus-Thumbnail-Upload"
    assert queue_config["QueueArn"] == sqs_arn(s3_carrier)
    assert queue_config["Events"] == ["s3:ObjectCreated:*"]
    rules = queue_config["Filter"]["Key"]["FilterRules"]
    assert {r["Name"]: r["Value"] for r in rules} == {"prefix": "incoming/", "suffix": ".jpg"}
    s3_policy = json.loads((await queue_attributes(aws.sqs, s3_carrier))["Policy"])
    assert s3_policy["Statement"][0]["Principal"] == {"Service": "s3.amazonaws.com"}
    assert (await aws.s3.get_bucket_versioning(Bucket=bucket))["Status"] == "Enabled"

    table = (await aws.dynamodb.describe_table(TableName=f"{st}-OrdersTable"))["Table"]
    assert table["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = await aws.dynamodb.describe_time_to_live(TableName=f"{st}-OrdersTable")
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires"


async def test_second_run_reports_no_changes(aws_env: str, stack_name: str) -> None:
    loaded = load("provision_full.yaml", stack_name)
    first = await provision(loaded)
    second = await provision(loaded, endpoint_url=aws_env, region="us-east-1")
    assert isinstance(second, ProvisionReport)
    assert not second.changed(), second.lines()
    assert len(second.kept) == len(first.created)
    assert all(line.endswith(": kept") or ": kept (" in line for line in second.kept)


async def test_s3_upload_reaches_the_carrier_only_when_the_filter_matches(
    aws: SimpleNamespace, stack_name: str
) -> None:
    await provision(load("provision_full.yaml", stack_name))
    bucket, carrier = f"{stack_name}-uploads", carrier_queue_name(stack_name, "Thumbnail", "Upload")
    for key in ("other/a.jpg", "incoming/a.png", "incoming/cat.jpg"):
        await aws.s3.put_object(Bucket=bucket, Key=key, Body=b"x")

    def keys(bodies: list[dict[str, Any]]) -> list[str]:
        records = [r for b in bodies for r in b.get("Records", [])]
        return [unquote_plus(r["s3"]["object"]["key"]) for r in records]

    bodies = await receive(aws.sqs, carrier, lambda got: "incoming/cat.jpg" in keys(got))
    bodies += await receive(aws.sqs, carrier, lambda got: False, rounds=1)
    assert keys(bodies) == ["incoming/cat.jpg"]
    [record] = [r for b in bodies for r in b.get("Records", [])]
    assert record["eventName"].startswith("ObjectCreated:")
    assert record["s3"]["configurationId"] == notification_id("Thumbnail", "Upload")
    assert all(b.get("Event") == "s3:TestEvent" for b in bodies if "Records" not in b)


async def test_sns_publish_reaches_the_carrier_as_an_sns_envelope(
    aws: SimpleNamespace, stack_name: str
) -> None:
    await provision(load("provision_full.yaml", stack_name))
    topic, carrier = (
        sns_arn(f"{stack_name}-Notices"),
        carrier_queue_name(stack_name, "Notify", "Notice"),
    )

    async def publish(message: str, kind: str) -> None:
        attributes = {"kind": {"DataType": "String", "StringValue": kind}}
        await aws.sns.publish(TopicArn=topic, Message=message, MessageAttributes=attributes)

    await publish("filtered out", "refund")
    await publish("hello", "order")
    bodies = await receive(aws.sqs, carrier, lambda got: any(b.get("Message") for b in got))
    bodies += await receive(aws.sqs, carrier, lambda got: False, rounds=1)
    [envelope] = bodies
    assert envelope["Type"] == "Notification"
    assert envelope["TopicArn"] == topic and envelope["Message"] == "hello"
    assert envelope["MessageId"] and envelope["Timestamp"] and envelope["SignatureVersion"]
    assert envelope["MessageAttributes"]["kind"] == {"Type": "String", "Value": "order"}


async def test_changed_template_updates_the_queue_and_enables_the_stream(
    aws: SimpleNamespace, stack_name: str
) -> None:
    await provision(load("provision_update_v1.yaml", stack_name))
    report = await provision(load("provision_update_v2.yaml", stack_name))
    assert report.updated == [
        f"AWS::SQS::Queue Jobs ({stack_name}-Jobs): updated (VisibilityTimeout 30 -> 90)",
        f"AWS::DynamoDB::Table Items ({stack_name}-Items): updated (stream NEW_IMAGE on)",
    ]
    assert not report.created and report.changed()
    jobs = await queue_attributes(aws.sqs, f"{stack_name}-Jobs")
    assert jobs["VisibilityTimeout"] == "90"
    table = (await aws.dynamodb.describe_table(TableName=f"{stack_name}-Items"))["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert not (await provision(load("provision_update_v2.yaml", stack_name))).changed()


async def test_drift_is_corrected_in_place(aws: SimpleNamespace, stack_name: str) -> None:
    loaded = load("provision_full.yaml", stack_name)
    await provision(loaded)
    carrier = carrier_queue_name(stack_name, "Notify", "Notice")
    url = (await aws.sqs.get_queue_url(QueueName=carrier))["QueueUrl"]
    await aws.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    [sub] = (await aws.sns.list_subscriptions_by_topic(TopicArn=sns_arn(f"{stack_name}-Notices")))[
        "Subscriptions"
    ]
    await aws.sns.set_subscription_attributes(
        SubscriptionArn=sub["SubscriptionArn"],
        AttributeName="RawMessageDelivery",
        AttributeValue="true",
    )
    report = await provision(loaded)
    assert sorted(report.updated) == sorted(
        [
            f"AWS::SQS::Queue Notify.Notice carrier ({carrier}): updated (Policy)",
            f"AWS::SNS::Subscription Notify.Notice ({stack_name}-Notices -> {carrier}):"
            " updated (RawMessageDelivery)",
        ]
    )
    assert not (await provision(loaded)).changed()


async def test_wiring_written_as_resources(aws: SimpleNamespace, stack_name: str) -> None:
    st = stack_name
    loaded = load("provision_wiring.yaml", st)
    report = await provision(loaded)
    assert report.skipped == [
        "AWS::SNS::Subscription Alerts.Subscription[2] (email ops@example.com): skipped"
        " (lambdabus does not deliver email subscriptions)"
    ]
    alerts = await subscriptions(aws.sns, sns_arn(f"{st}-Alerts"))
    pager = carrier_queue_name(st, "Pager", "AlertsSubscription1")
    assert set(alerts) == {sqs_arn(f"{st}-{q}") for q in ("Inbox", "Archive", "Copies")} | {
        sqs_arn(pager)
    }
    archive = alerts[sqs_arn(f"{st}-Archive")]
    assert archive["RawMessageDelivery"] == "true"
    assert archive["FilterPolicyScope"] == "MessageBody"
    assert alerts[sqs_arn(pager)]["RawMessageDelivery"] == "false"

    ledger_carrier = carrier_queue_name(st, "Bookkeeper", "Entries", fifo=True)
    assert (await queue_attributes(aws.sqs, ledger_carrier))["FifoQueue"] == "true"
    assert list(await subscriptions(aws.sns, sns_arn(f"{st}-Ledger.fifo"))) == [
        sqs_arn(ledger_carrier)
    ]

    inbox = json.loads((await queue_attributes(aws.sqs, f"{st}-Inbox"))["Policy"])
    services = sorted(s["Principal"]["Service"] for s in inbox["Statement"])
    assert services == ["s3.amazonaws.com", "sns.amazonaws.com"]
    config = await aws.s3.get_bucket_notification_configuration(Bucket=f"{st}-drops")
    [queue_config] = config["QueueConfigurations"]
    assert queue_config["Id"] == "Drops-Queue0" and queue_config["QueueArn"] == sqs_arn(
        f"{st}-Inbox"
    )
    assert queue_config["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "logs/"}]
    [topic_config] = config["TopicConfigurations"]
    assert topic_config["TopicArn"] == sns_arn(f"{st}-Alerts")
    attrs = (await aws.sns.get_topic_attributes(TopicArn=sns_arn(f"{st}-Alerts")))["Attributes"]
    statements = json.loads(attrs["Policy"])["Statement"]
    assert statements[0]["Sid"] == "__default_statement_ID"  # the topic owner's, kept
    assert statements[1]["Principal"] == {"Service": "s3.amazonaws.com"}

    sessions = (await aws.dynamodb.describe_table(TableName=f"{st}-Sessions"))["Table"]
    assert sessions["KeySchema"] == [{"AttributeName": "sid", "KeyType": "HASH"}]
    assert sessions["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    again = await provision(loaded)
    assert not again.changed() and again.skipped == report.skipped


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("provision_missing_queue.yaml", r"AWS::SQS::Queue \S+-nobody-made-this .*does not exist"),
        ("provision_missing_topic.yaml", r"AWS::SNS::Topic \S+-no-such-topic .*does not exist"),
    ],
)
async def test_missing_external_resource_is_one_line_and_nothing_is_created(
    aws: SimpleNamespace, stack_name: str, template: str, expected: str
) -> None:
    with pytest.raises(ProvisionError) as caught:
        await provision(load(template, stack_name))
    assert re.match(expected, one_line(caught.value)), str(caught.value)
    listed = await aws.sqs.list_queues(QueueNamePrefix=stack_name)
    assert not listed.get("QueueUrls")


async def test_dynamodb_event_on_a_table_without_stream_is_refused(
    aws: SimpleNamespace, stack_name: str
) -> None:
    with pytest.raises(ProvisionError) as caught:
        await provision(load("provision_no_stream.yaml", stack_name))
    assert "Sync.Changes" in one_line(caught.value) and "StreamSpecification" in str(caught.value)
    tables = await aws.dynamodb.list_tables()
    assert f"{stack_name}-Plain" not in tables["TableNames"]


async def test_unreachable_endpoint_is_one_line(
    aws_env: str, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    loaded = load("provision_update_v1.yaml", stack_name)
    with pytest.raises(ProvisionError) as caught:
        await provision(loaded, endpoint_url=f"http://127.0.0.1:{free_port()}")
    assert one_line(caught.value).startswith(f"AWS::SQS::Queue Jobs ({stack_name}-Jobs): ")
    assert "Could not connect" in str(caught.value)
