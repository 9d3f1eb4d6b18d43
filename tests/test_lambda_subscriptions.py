"""``lambda``-protocol SNS subscriptions written on the topic's side (a topic's
``Subscription`` list, an ``AWS::SNS::Subscription``) reach the function as its SNS
events do: the loader makes them SNS events, so provisioning gives them a carrier and
the carrier adapter delivers them (moto over HTTP, real Redis, an in-process worker)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session
from aws_lambda_powertools.utilities.parser.models import SnsModel
from redis.asyncio import Redis

from adapters.carriers import carrier_queue_name
from adapters.provision import provision
from adapters.sqs import services_for
from adapters.template import TemplateError, load_template
from tests.handlers_bus import probe, running

ACCOUNT = "123456789012"


def template(tmp_path: Path, stack: str, extra_events: dict[str, Any] | None = None) -> Path:
    doc = {
        "Transform": "AWS::Serverless-2016-10-31",
        "Resources": {
            "Alerts": {
                "Type": "AWS::SNS::Topic",
                "Properties": {
                    "Subscription": [
                        {"Protocol": "email", "Endpoint": "ops@example.com"},
                        {"Protocol": "lambda", "Endpoint": {"Fn::GetAtt": ["Pager", "Arn"]}},
                        {"Protocol": "lambda",
                         "Endpoint": "arn:aws:lambda:us-east-1:999999999999:function:Other"},
                    ]
                },
            },
            "Severe": {
                "Type": "AWS::SNS::Subscription",
                "Properties": {
                    "TopicArn": {"Ref": "Alerts"},
                    "Protocol": "lambda",
                    "Endpoint": {"Fn::GetAtt": ["Oncall", "Arn"]},
                    "FilterPolicy": {"severity": ["high"]},
                },
            },
            "Pager": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Handler": "tests.handlers_bus.record", "CodeUri": ".",
                               "Events": extra_events or {}},
            },
            "Oncall": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Handler": "tests.handlers_bus.record", "CodeUri": "."},
            },
        },
    }  # fmt: skip
    path = tmp_path / "template.yaml"
    path.write_text(json.dumps(doc))
    return path


def test_subscriptions_of_stack_functions_become_their_sns_events(tmp_path: Path) -> None:
    loaded = load_template(template(tmp_path, "subs"), {}, "subs")
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:subs-Alerts"
    events = {(e.function, e.name): (e.type, e.properties) for e in loaded.events}
    assert events == {
        ("Pager", "AlertsSubscription1"): ("SNS", {"Topic": topic}),
        ("Oncall", "Severe"): ("SNS", {"Topic": topic, "FilterPolicy": {"severity": ["high"]}}),
    }
    assert set(loaded.stack.functions["Pager"].triggers) == {"AlertsSubscription1"}
    assert set(loaded.stack.functions["Oncall"].triggers) == {"Severe"}


def test_an_own_event_named_like_the_subscription_is_a_one_line_error(tmp_path: Path) -> None:
    own = {"AlertsSubscription1": {"Type": "SQS", "Properties": {
        "Queue": f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"}}}  # fmt: skip
    path = template(tmp_path, "subs", own)
    with pytest.raises(TemplateError) as err:
        load_template(path, {}, "subs")
    line = str(err.value)
    assert "\n" not in line
    assert "Pager: Events.AlertsSubscription1: clashes with the SNS event" in line


async def test_published_messages_reach_the_subscribed_functions_through_carriers(
    tmp_path: Path, aws_env: str, redis: Redis, redis_url: str, stack_name: str
) -> None:
    loaded = load_template(template(tmp_path, stack_name), {}, stack_name)
    report = await provision(loaded, endpoint_url=aws_env)
    assert any("Other" in line and "not a function of this stack" in line
               for line in report.lines())  # fmt: skip
    session = get_session()
    async with session.create_client("sqs") as sqs:
        for fn, event in (("Pager", "AlertsSubscription1"), ("Oncall", "Severe")):
            await sqs.get_queue_url(QueueName=carrier_queue_name(stack_name, fn, event))
    pager, oncall = probe("Pager"), probe("Oncall")
    group = services_for(redis, loaded, carriers=True)
    for adapter in group.adapters:
        if hasattr(adapter, "wait_time_s"):
            adapter.wait_time_s = 1
    topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:{stack_name}-Alerts"
    await group.start()
    try:
        async with running(redis_url, loaded.stack, "Pager", "Oncall"), \
                session.create_client("sns") as sns:  # fmt: skip
            high = {"severity": {"DataType": "String", "StringValue": "high"}}
            low = {"severity": {"DataType": "String", "StringValue": "low"}}
            await sns.publish(TopicArn=topic, Message="disk full", MessageAttributes=low)
            await sns.publish(TopicArn=topic, Message="site down", MessageAttributes=high)
            await pager.wait(lambda calls: len(calls) == 2, within=20)
            await oncall.wait(lambda calls: len(calls) == 1, within=20)
    finally:
        await group.stop(5)
    for call in pager.calls + oncall.calls:
        SnsModel.model_validate(call.event)
    assert sorted(c.records[0]["Sns"]["Message"] for c in pager.calls) == [
        "disk full", "site down"]  # fmt: skip
    assert oncall.calls[0].records[0]["Sns"]["Message"] == "site down"


def test_two_subscriptions_with_one_generated_name_are_a_one_line_error(tmp_path: Path) -> None:
    """``AlertsSubscription1`` is both the topic's second inline entry and a resource's
    logical id: neither may silently replace the other."""
    path = template(tmp_path, "subs")
    doc = json.loads(path.read_text())
    doc["Resources"]["Audit"] = {"Type": "AWS::SNS::Topic"}
    doc["Resources"]["AlertsSubscription1"] = {
        "Type": "AWS::SNS::Subscription",
        "Properties": {"TopicArn": {"Ref": "Audit"}, "Protocol": "lambda",
                       "Endpoint": {"Fn::GetAtt": ["Pager", "Arn"]}},
    }  # fmt: skip
    path.write_text(json.dumps(doc))
    with pytest.raises(TemplateError) as err:
        load_template(path, {}, "subs")
    assert "\n" not in str(err.value)
    assert "two lambda subscriptions of Pager are both named AlertsSubscription1" in str(err.value)


def test_a_subscription_to_a_topic_the_function_already_has_is_one_subscription(
    tmp_path: Path,
) -> None:
    """SNS keeps one subscription per topic and endpoint: Pager's own SNS event on Alerts
    and the topic's lambda entry for Pager make one event (and one run per message),
    with a warning naming the one left out."""
    topic = {"Ref": "Alerts"}
    path = template(tmp_path, "subs", {"Own": {"Type": "SNS", "Properties": {"Topic": topic}}})
    loaded = load_template(path, {}, "subs")
    pager = [(e.name, e.type) for e in loaded.events if e.function == "Pager"]
    assert pager == [("Own", "SNS")]
    assert any("Pager: AlertsSubscription1: ignored (it subscribes the function to a topic"
               in w for w in loaded.warnings)  # fmt: skip
