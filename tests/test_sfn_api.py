"""The Step Functions API on the edge, driven by boto3's own ``stepfunctions`` client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from prometheus_client import REGISTRY

from adapters.edge import EdgeServer
from adapters.sfn.api import execution_id, mount
from adapters.sfn.definition import MAX_INPUT_BYTES
from adapters.sfn.executor import Executor
from adapters.sfn.store import ExecutionStore
from bus.redis_conn import connect
from tests import handlers_sfn as handlers

ROLE = "arn:aws:iam::123456789012:role/sfn"
ECHO = {"StartAt": "Add", "States": {
    "Add": {"Type": "Pass", "Parameters": {"sum.$": "States.MathAdd($.a, $.b)"}, "Next": "Done"},
    "Done": {"Type": "Succeed"}}}  # fmt: skip
CALLBACK = {"StartAt": "Ask", "States": {"Ask": {
    "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
    "Parameters": {"FunctionName": "callback", "Payload": {"token.$": "$$.Task.Token"}},
    "HeartbeatSeconds": 600, "ResultPath": "$.answer", "End": True}}}  # fmt: skip


@pytest.fixture
async def sfn(redis_url: str, stack_name: str,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:  # fmt: skip
    """A boto3 stepfunctions client on an edge with the API, an executor and the workers."""
    monkeypatch.setenv("SFN_TEST_STACK", stack_name)
    handlers.reset()
    st = handlers.stack()
    redis = connect(redis_url)
    edge = EdgeServer(redis_url, st, port=0)
    mount(edge, redis, stack_name, "us-east-1")
    try:
        async with (
            handlers.workers(redis_url, st),
            edge,
            Executor(redis_url, stack_name, functions=set(st.functions), claim_idle_ms=2000),
        ):
            yield boto3.session.Session().client(
                "stepfunctions", endpoint_url=edge.url, region_name="us-east-1",
                aws_access_key_id="test", aws_secret_access_key="test",
                config=Config(inject_host_prefix=False, retries={"total_max_attempts": 1}),
            )  # fmt: skip
    finally:
        await redis.aclose()


async def call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, **kwargs)


@pytest.fixture
async def store(redis_url: str, stack_name: str) -> AsyncIterator[ExecutionStore]:
    redis = connect(redis_url)
    try:
        yield ExecutionStore(redis, stack_name)
    finally:
        await redis.aclose()


async def finished(sfn: Any, store: ExecutionStore, arn: str) -> dict[str, Any]:
    """DescribeExecution once the executor has marked the execution done."""
    assert await store.wait_done(execution_id(arn), 30), "execution did not finish"
    return dict(await call(sfn.describe_execution, executionArn=arn))


def code_of(info: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[str, str]:
    err: Any = info.value.response["Error"]
    return err["Code"], err["Message"]


async def test_create_start_describe_history_and_list(sfn: Any, store: ExecutionStore) -> None:
    sm = await call(sfn.create_state_machine, name="adder", definition=json.dumps(ECHO),
                    roleArn=ROLE)  # fmt: skip
    arn = sm["stateMachineArn"]
    assert arn == "arn:aws:states:us-east-1:123456789012:stateMachine:adder"
    described = await call(sfn.describe_state_machine, stateMachineArn=arn)
    assert json.loads(described["definition"]) == ECHO and described["type"] == "STANDARD"
    names = [m["name"] for m in (await call(sfn.list_state_machines))["stateMachines"]]
    assert names == ["adder"]
    ex = await call(sfn.start_execution, stateMachineArn=arn, name="first",
                    input=json.dumps({"a": 2, "b": 3}))  # fmt: skip
    desc = await finished(sfn, store, ex["executionArn"])
    assert desc["status"] == "SUCCEEDED" and json.loads(desc["output"]) == {"sum": 5}
    assert desc["stopDate"] >= desc["startDate"]
    events = (await call(sfn.get_execution_history, executionArn=ex["executionArn"]))["events"]
    assert [e["type"] for e in events] == [
        "ExecutionStarted", "PassStateEntered", "PassStateExited", "SucceedStateEntered",
        "SucceedStateExited", "ExecutionSucceeded"]  # fmt: skip
    assert events[1]["stateEnteredEventDetails"]["name"] == "Add"
    sample = REGISTRY.get_sample_value
    assert sample("lambdabus_sfn_executions_total", {"state_machine": "adder",
                                                     "outcome": "succeeded"}) == 1  # fmt: skip
    assert sample("lambdabus_sfn_state_transitions_total", {"state_machine": "adder"}) == 2
    assert sample("lambdabus_sfn_execution_duration_seconds_count",
                  {"state_machine": "adder"}) == 1  # fmt: skip
    listed = (await call(sfn.list_executions, stateMachineArn=arn))["executions"]
    assert [(e["name"], e["status"]) for e in listed] == [("first", "SUCCEEDED")]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await call(sfn.start_execution, stateMachineArn=arn, name="first", input="{}")
    assert code_of(info)[0] == "ExecutionAlreadyExists"


async def test_start_sync_execution_on_an_express_machine(sfn: Any) -> None:
    express = await call(sfn.create_state_machine, name="quick", definition=json.dumps(ECHO),
                         roleArn=ROLE, type="EXPRESS")  # fmt: skip
    out = await call(sfn.start_sync_execution, stateMachineArn=express["stateMachineArn"],
                     input=json.dumps({"a": 1, "b": 1}))  # fmt: skip
    assert out["status"] == "SUCCEEDED" and json.loads(out["output"]) == {"sum": 2}
    standard = await call(sfn.create_state_machine, name="slow", definition=json.dumps(ECHO),
                          roleArn=ROLE)  # fmt: skip
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await call(sfn.start_sync_execution, stateMachineArn=standard["stateMachineArn"])
    assert code_of(info)[0] == "StateMachineTypeNotSupported"


async def test_send_task_success_completes_a_waiting_task(sfn: Any, store: ExecutionStore) -> None:
    sm = await call(sfn.create_state_machine, name="asks", definition=json.dumps(CALLBACK),
                    roleArn=ROLE)  # fmt: skip
    ex = await call(sfn.start_execution, stateMachineArn=sm["stateMachineArn"],
                    input=json.dumps({"q": "?"}))  # fmt: skip
    assert handlers.TOKENS is not None
    token = await asyncio.wait_for(handlers.TOKENS.get(), 30)
    # Deleting the machine doesn't strand its running execution (its definition is kept).
    await call(sfn.delete_state_machine, stateMachineArn=sm["stateMachineArn"])
    await call(sfn.send_task_heartbeat, taskToken=token)
    await call(sfn.send_task_success, taskToken=token, output=json.dumps({"yes": True}))
    desc = await finished(sfn, store, ex["executionArn"])
    assert json.loads(desc["output"]) == {"q": "?", "answer": {"yes": True}}
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await call(sfn.send_task_success, taskToken=token, output="{}")
    assert code_of(info)[0] == "TaskDoesNotExist"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await call(sfn.send_task_failure, taskToken="garbage", error="E")
    assert code_of(info)[0] == "InvalidToken"


async def test_stop_execution_aborts_it(sfn: Any, store: ExecutionStore) -> None:
    sm = await call(sfn.create_state_machine, name="stoppable", definition=json.dumps(CALLBACK),
                    roleArn=ROLE)  # fmt: skip
    ex = await call(sfn.start_execution, stateMachineArn=sm["stateMachineArn"])
    assert handlers.TOKENS is not None
    await asyncio.wait_for(handlers.TOKENS.get(), 30)  # it is waiting on its task now
    await call(sfn.stop_execution, executionArn=ex["executionArn"], error="Op", cause="enough")
    desc = await finished(sfn, store, ex["executionArn"])
    assert (desc["status"], desc["error"], desc["cause"]) == ("ABORTED", "Op", "enough")


async def test_bad_input_is_refused_as_aws_does(sfn: Any) -> None:
    bad = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "Gone"}}}
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await call(sfn.create_state_machine, name="bad", definition=json.dumps(bad), roleArn=ROLE)
    code, message = code_of(info)
    assert code == "InvalidDefinition" and "State 'A'" in message and "Gone" in message
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await call(sfn.create_state_machine, name="bad name!", definition=json.dumps(ECHO),
                   roleArn=ROLE)  # fmt: skip
    assert code_of(info)[0] == "InvalidName"
    sm = await call(sfn.create_state_machine, name="ok", definition=json.dumps(ECHO),
                    roleArn=ROLE)  # fmt: skip
    arn = sm["stateMachineArn"]
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await call(sfn.start_execution, stateMachineArn=arn,
                   input=json.dumps({"x": "a" * MAX_INPUT_BYTES}))  # fmt: skip
    code, message = code_of(info)
    assert code == "ValidationException" and "262144" in message
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await call(sfn.start_execution, stateMachineArn=arn, input="{not json")
    assert code_of(info)[0] == "InvalidExecutionInput"
    with pytest.raises(botocore.exceptions.ClientError) as info:
        await call(sfn.describe_execution,
                   executionArn=arn.replace("stateMachine", "execution") + ":nope")  # fmt: skip
    assert code_of(info)[0] == "ExecutionDoesNotExist"
    assert (await call(sfn.list_executions, stateMachineArn=arn))["executions"] == []
