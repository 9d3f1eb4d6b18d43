"""The seed workflow of template.yaml (functions/workflow/) end to end: the template's
state machine registered, its steps run by real workers, driven by the durable executor."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.sfn.api import StepFunctionsApi, execution_id
from adapters.sfn.executor import Executor
from adapters.sfn.machines import register_template_machines, template_machines
from adapters.sfn.store import ExecutionStore
from adapters.template import load_template
from bus.redis_conn import connect
from bus.spec import Stack
from bus.worker import Worker

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def workflow(redis_url: str, stack_name: str) -> AsyncIterator[StepFunctionsApi]:
    loaded = load_template(ROOT / "template.yaml", {}, stack_name)
    fns = {n: f for n, f in loaded.stack.functions.items() if n.startswith("Workflow")}
    stack = Stack(stack_name, fns)
    redis = connect(redis_url)
    store = ExecutionStore(redis, stack_name)
    await register_template_machines(store, loaded)
    workers = [Worker(redis_url, stack, name, block_ms=50) for name in fns]
    base = time.time()
    executor = Executor(redis_url, stack_name, functions=set(fns), claim_idle_ms=2000,
                        clock=lambda: base + (time.time() - base) * 20)  # fmt: skip
    try:
        for w in workers:
            await w.start()
        async with executor:
            yield StepFunctionsApi(store, "us-east-1")
    finally:
        for w in workers:
            await w.stop(5.0)
        await redis.aclose()


async def run(api: StepFunctionsApi, batch: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    ex = await api.start_execution({"stateMachineArn": api.machine_arn("demo-batch"),
                                    "input": json.dumps(batch)})  # fmt: skip
    assert await api.store.wait_done(execution_id(ex["executionArn"]), 60)
    desc = await api.describe_execution({"executionArn": ex["executionArn"]})
    history = await api.get_execution_history({"executionArn": ex["executionArn"]})
    return desc, history["events"]


def test_the_template_declares_the_workflow_with_its_functions_substituted() -> None:
    loaded = load_template(ROOT / "template.yaml", {}, "demo")
    (machine,) = [m for m in template_machines(loaded) if m["name"] == "demo-batch"]
    states = json.loads(machine["definition"])["States"]
    assert states["Validate"]["Resource"].endswith(":function:WorkflowValidate")
    price = states["PriceItems"]["ItemProcessor"]["States"]["Price"]
    assert price["Parameters"]["FunctionName"].endswith(":function:WorkflowPrice")


async def test_a_good_batch_is_validated_transformed_priced_with_retries_and_stored(
    workflow: StepFunctionsApi,
) -> None:
    batch = {"batch": "b1", "items": [{"sku": "apple", "qty": 2}, {"sku": " fig", "qty": 1}]}
    desc, events = await run(workflow, batch)
    assert desc["status"] == "SUCCEEDED", desc
    out = json.loads(desc["output"])
    assert out["batch"] == "b1" and out["total"] > 0
    entered = [e["stateEnteredEventDetails"]["name"] for e in events
               if e["type"].endswith("StateEntered")]  # fmt: skip
    assert entered[:3] == ["Validate", "Transform", "Totals"] or entered[:3] == [
        "Validate", "Transform", "Normalize"]  # fmt: skip
    assert entered.count("Price") == 2 and entered[-1] == "Store"
    retried = [e for e in events if e["type"] == "TaskFailed"]
    assert len(retried) == 2  # each item's first pricing attempt fails, Retry runs it again
    assert all(e["taskFailedEventDetails"]["error"] == "PricingUnavailable" for e in retried)


async def test_a_bad_batch_is_caught_recorded_and_fails(workflow: StepFunctionsApi) -> None:
    desc, events = await run(workflow, {"batch": "b2", "items": [{"sku": "x", "qty": 0}]})
    assert (desc["status"], desc["error"]) == ("FAILED", "BatchRejected")
    entered = [e["stateEnteredEventDetails"]["name"] for e in events
               if e["type"].endswith("StateEntered")]  # fmt: skip
    assert entered == ["Validate", "RecordFailure", "Failed"]
    failed = next(e for e in events if e["type"] == "TaskFailed")
    assert failed["taskFailedEventDetails"]["error"] == "InvalidBatch"
    assert json.loads(failed["taskFailedEventDetails"]["cause"])["errorType"] == "InvalidBatch"
