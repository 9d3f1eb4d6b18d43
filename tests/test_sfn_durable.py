"""Durable executions on a real redis-server with real workers: an executor SIGKILLed
in the middle of a Map of 100 Tasks, Retry with backoff then Catch on a named exception,
and a heartbeat timeout on a task token that never comes back."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import warnings
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.sfn.api import StepFunctionsApi, execution_id
from adapters.sfn.executor import Executor
from adapters.sfn.store import ExecutionStore
from bus.redis_conn import connect
from tests import handlers_sfn as handlers

MAP_OF_100 = {
    "StartAt": "Items",
    "States": {
        "Items": {"Type": "Pass", "Parameters": {"items.$": "States.ArrayRange(0, 99, 1)"},
                  "Next": "Map"},
        "Map": {"Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 10,
                "ItemSelector": {"i.$": "$$.Map.Item.Value"},
                "ItemProcessor": {"StartAt": "Work", "States": {"Work": {
                    "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "item", "Payload.$": "$"},
                    "ResultSelector": {"square.$": "$.Payload.square"},
                    "OutputPath": "$.square", "End": True}}},
                "End": True},
    },
}  # fmt: skip


@pytest.fixture
async def api(redis_url: str, stack_name: str,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[StepFunctionsApi]:  # fmt: skip
    monkeypatch.setenv("SFN_TEST_STACK", stack_name)
    handlers.reset()
    redis = connect(redis_url)
    try:
        yield StepFunctionsApi(ExecutionStore(redis, stack_name), "us-east-1")
    finally:
        await redis.aclose()


def fast_clock(factor: float = 20.0) -> Any:
    """Virtual time running ``factor`` times faster: backoffs and heartbeats stay short."""
    base = time.time()
    return lambda: base + (time.time() - base) * factor


async def run(api: StepFunctionsApi, definition: dict[str, Any], data: Any,
              wait_s: float = 30.0) -> dict[str, Any]:  # fmt: skip
    name = f"m{time.monotonic_ns()}"
    arn = (await api.create_state_machine({"name": name, "definition": json.dumps(definition)}))[
        "stateMachineArn"
    ]
    ex = await api.start_execution({"stateMachineArn": arn, "input": json.dumps(data)})
    assert await api.store.wait_done(execution_id(ex["executionArn"]), wait_s)
    return await api.describe_execution({"executionArn": ex["executionArn"]})


async def test_map_of_100_survives_sigkill_of_its_executor(
    api: StepFunctionsApi, redis_url: str, stack_name: str
) -> None:
    st = handlers.stack()
    completed_at_kill: list[int] = []
    async with handlers.workers(redis_url, st):
        first = handlers.executor_proc(redis_url, stack_name)
        second = None
        try:
            await first.wait_ready()
            arn = (await api.create_state_machine({"name": "hundred",
                                                   "definition": json.dumps(MAP_OF_100)}))[
                "stateMachineArn"
            ]  # fmt: skip
            halfway = handlers.reached(30)
            ex = await api.start_execution({"stateMachineArn": arn, "input": "{}"})
            eid = execution_id(ex["executionArn"])
            await asyncio.wait_for(halfway.wait(), 30)
            await first.kill()
            doc = await api.store.load(eid)
            assert doc is not None and doc["engine"]["status"] == "RUNNING"
            results = doc["engine"]["frames"]["root"]["fan"]["results"]
            completed_at_kill = [i for i, r in enumerate(results) if r is not None]
            assert 0 < len(completed_at_kill) < 100, "the kill must land mid-Map"
            second = handlers.executor_proc(redis_url, stack_name)
            await second.wait_ready()
            assert await api.store.wait_done(eid, 60), "the execution did not finish"
        finally:
            first.force_close()
            if second is not None:
                second.force_close()
    desc = await api.describe_execution({"executionArn": ex["executionArn"]})
    assert desc["status"] == "SUCCEEDED"
    assert json.loads(desc["output"]) == [i * i for i in range(100)]
    assert sorted(k for k in handlers.CALLS if isinstance(k, int)) == list(range(100))
    duplicates = {i: n for i, n in handlers.CALLS.items() if n > 1}
    print(f"map-of-100 after SIGKILL: {len(completed_at_kill)} items recorded before the kill, "
          f"{len(duplicates)} at-least-once duplicates: {duplicates}")  # fmt: skip
    if duplicates:
        warnings.warn(f"at-least-once duplicates after SIGKILL: {duplicates}", stacklevel=1)
    assert all(handlers.CALLS[i] == 1 for i in completed_at_kill), (
        "a state recorded as completed ran again"
    )


async def test_retry_with_backoff_then_catch_on_a_named_exception(
    api: StepFunctionsApi, redis_url: str, stack_name: str
) -> None:
    definition = {"StartAt": "Charge", "States": {
        "Charge": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:"
                   "flaky", "Retry": [{"ErrorEquals": ["FlakyError"], "IntervalSeconds": 2,
                                       "MaxAttempts": 2, "BackoffRate": 2.0}],
                   "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure",
                              "Next": "Recorded"}], "End": True},
        "Recorded": {"Type": "Pass", "End": True}}}  # fmt: skip
    async with handlers.workers(redis_url, handlers.stack()):
        async with Executor(redis_url, stack_name, clock=fast_clock(), claim_idle_ms=2000):
            desc = await run(api, definition, {"order": 7})
            history = (await api.get_execution_history(
                {"executionArn": desc["executionArn"]}))["events"]  # fmt: skip
    assert desc["status"] == "SUCCEEDED"
    out = json.loads(desc["output"])
    assert out["order"] == 7 and out["failure"]["Error"] == "FlakyError"
    cause = json.loads(out["failure"]["Cause"])
    assert cause["errorType"] == "FlakyError"
    assert cause["errorMessage"] == "attempt 3 for order 7"
    assert isinstance(cause["stackTrace"], list)
    assert handlers.CALLS["flaky"] == 3
    # Workers replied onto the work stream; unlike a caller's reply stream it has no TTL,
    # so results sent while every executor is down stay (with the consumer group).
    assert await api.store.redis.ttl(api.store.keys.work) == -1
    failed = [e["timestamp"] for e in history if e["type"] == "TaskFailed"]
    assert len(failed) == 3
    gaps = [b - a for a, b in itertools.pairwise(failed)]
    assert gaps[0] >= 2.0 and gaps[1] >= 4.0, gaps  # virtual seconds: 2, then 2 * 2.0


async def test_heartbeat_timeout_on_a_token_that_never_returns(
    api: StepFunctionsApi, redis_url: str, stack_name: str
) -> None:
    definition = {"StartAt": "Wait", "States": {
        "Wait": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                 "Parameters": {"FunctionName": "waiter", "Payload": {"token.$": "$$.Task.Token"}},
                 "HeartbeatSeconds": 5,
                 "Catch": [{"ErrorEquals": ["States.Timeout"], "Next": "TimedOut"}],
                 "End": True},
        "TimedOut": {"Type": "Pass", "End": True}}}  # fmt: skip
    async with handlers.workers(redis_url, handlers.stack()):
        async with Executor(redis_url, stack_name, clock=fast_clock(), claim_idle_ms=2000):
            desc = await run(api, definition, {})
    assert handlers.TOKENS is not None
    token = handlers.TOKENS.get_nowait()
    assert desc["status"] == "SUCCEEDED"
    assert json.loads(desc["output"]) == {"Error": "States.HeartbeatTimeout", "Cause": None}
    keys = api.store.keys.execution(execution_id(desc["executionArn"]))
    assert await api.store.redis.ttl(keys["doc"]) > 89 * 86400  # kept 90 days, then gone
    assert await api.store.redis.exists(keys["outbox"]) == 0
    from adapters.edge.json_api import JsonApiError

    with pytest.raises(JsonApiError) as info:
        await api.send_task_success({"taskToken": token, "output": "{}"})
    assert info.value.code == "TaskDoesNotExist"


async def test_executor_process_drains_and_exits_0_on_sigterm(
    redis_url: str, stack_name: str
) -> None:
    proc = handlers.executor_proc(redis_url, stack_name)
    try:
        await proc.wait_ready()
        assert await proc.stop() == 0
    finally:
        proc.force_close()


async def test_two_executors_share_one_map_without_running_an_item_twice(
    api: StepFunctionsApi, redis_url: str, stack_name: str
) -> None:
    async with handlers.workers(redis_url, handlers.stack()):
        async with (
            Executor(redis_url, stack_name, consumer="a", claim_idle_ms=2000),
            Executor(redis_url, stack_name, consumer="b", claim_idle_ms=2000),
        ):
            desc = await run(api, MAP_OF_100, {}, wait_s=60)
    assert desc["status"] == "SUCCEEDED"
    assert json.loads(desc["output"]) == [i * i for i in range(100)]
    assert {i: handlers.CALLS[i] for i in range(100)} == dict.fromkeys(range(100), 1)
