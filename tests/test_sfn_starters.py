"""A state machine's Events (Schedule, EventBridgeRule, Api) start executions through a
built-in starter function the loader adds, with the event as the execution's input."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.edge import EdgeServer
from adapters.sfn.api import StepFunctionsApi, execution_id, mount
from adapters.sfn.executor import Executor
from adapters.sfn.machines import register_template_machines
from adapters.sfn.store import ExecutionStore
from adapters.template import TemplateError, load_template
from bus.redis_conn import connect
from bus.sync import Invoker
from bus.worker import Worker

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: orders
      Definition:
        StartAt: Echo
        States:
          Echo: {Type: Pass, Parameters: {"source.$": "$.source", "kind.$": "$.detail-type"},
                 End: true}
      Events:
        Placed:
          Type: EventBridgeRule
          Properties:
            Pattern: {source: [shop]}
        Nightly:
          Type: Schedule
          Properties: {Schedule: rate(1 day)}
        Http:
          Type: Api
          Properties: {Path: /orders, Method: post}
"""


def write(tmp_path: Path, text: str = TEMPLATE) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return path


def test_each_event_of_a_state_machine_triggers_its_starter(tmp_path: Path) -> None:
    loaded = load_template(write(tmp_path), {}, "st")
    starter = loaded.stack.functions["OrdersStarter"]
    assert starter.handler == "sfn_starter.handler"
    assert json.loads(starter.environment["LAMBDABUS_SFN_STARTERS"]) == {
        "OrdersStarter": "arn:aws:states:us-east-1:123456789012:stateMachine:orders"}  # fmt: skip
    kinds = sorted((e.function, e.name, e.type) for e in loaded.events)
    assert kinds == [("OrdersStarter", "Http", "Api"), ("OrdersStarter", "Nightly", "Schedule"),
                     ("OrdersStarter", "Placed", "EventBridgeRule")]  # fmt: skip
    assert ["OrdersStarter"] in loaded.groups


def test_a_name_clash_with_the_starter_is_one_clear_line(tmp_path: Path) -> None:
    clash = TEMPLATE + ("  OrdersStarter:\n    Type: AWS::SQS::Queue\n")
    with pytest.raises(TemplateError) as info:
        load_template(write(tmp_path, clash), {}, "st")
    assert "Orders: Events: needs a function named OrdersStarter" in str(info.value)


@pytest.fixture
async def running(
    tmp_path: Path, redis_url: str, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Invoker, Any]]:
    loaded = load_template(write(tmp_path), {}, stack_name)
    starter = loaded.stack.functions["OrdersStarter"]
    monkeypatch.setenv("LAMBDABUS_SFN_STARTERS", starter.environment["LAMBDABUS_SFN_STARTERS"])
    redis = connect(redis_url)
    store = ExecutionStore(redis, stack_name)
    await register_template_machines(store, loaded)
    edge = EdgeServer(redis_url, loaded.stack, port=0)
    mount(edge, redis, stack_name, "us-east-1")
    worker = Worker(redis_url, loaded.stack, "OrdersStarter", block_ms=50)
    try:
        async with edge, Executor(redis_url, stack_name, claim_idle_ms=2000):
            monkeypatch.setenv("AWS_ENDPOINT_URL_SFN", edge.url)
            await worker.start()
            async with Invoker(redis_url, stack_name) as invoker:
                yield invoker, StepFunctionsApi(store, "us-east-1")
    finally:
        await worker.stop(5.0)
        await redis.aclose()


async def test_an_eventbridge_event_starts_an_execution_with_itself_as_input(
    running: tuple[Invoker, Any],
) -> None:
    invoker, api = running
    event = {"version": "0", "id": "e1", "source": "shop", "detail-type": "OrderPlaced",
             "account": "123456789012", "time": "2024-01-01T00:00:00Z", "region": "us-east-1",
             "resources": [], "detail": {"id": 7}}  # fmt: skip
    from aws_lambda_powertools.utilities.parser.models import EventBridgeModel

    EventBridgeModel.model_validate(event)
    reply = await invoker.invoke("OrdersStarter", event, timeout_s=30)
    assert reply.ok, reply.payload
    arn = reply.payload["executionArn"]
    assert await api.store.wait_done(execution_id(arn), 30)
    desc = await api.describe_execution({"executionArn": arn})
    assert json.loads(desc["input"]) == event
    assert json.loads(desc["output"]) == {"source": "shop", "kind": "OrderPlaced"}


async def test_an_api_event_gets_a_proxy_response_naming_the_execution(
    running: tuple[Invoker, Any],
) -> None:
    invoker, _ = running
    event = {"resource": "/orders", "path": "/orders", "httpMethod": "POST",
             "requestContext": {"requestId": "r1"}, "body": "{}", "source": "api",
             "detail-type": "request"}  # fmt: skip
    reply = await invoker.invoke("OrdersStarter", event, timeout_s=30)
    assert reply.ok and reply.payload["statusCode"] == 200
    assert json.loads(reply.payload["body"])["executionArn"].startswith(
        "arn:aws:states:us-east-1:123456789012:execution:orders:")  # fmt: skip
