"""Step Functions: the seed workflow (validate, parallel transforms, Map with retries,
store; failures caught and recorded) started through the edge's Step Functions API."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from . import DemoContext

TITLE = "Step Functions (validate -> parallel -> map with retries -> store)"
ORDER = 80
MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:demo-batch"
GOOD = {"batch": "b-1", "items": [{"sku": "apple", "qty": 3}, {"sku": "pear", "qty": 1},
                                  {"sku": " fig", "qty": 12}]}  # fmt: skip
BAD = {"batch": "b-2", "items": [{"sku": "plum", "qty": 0}]}


async def _finish(sfn: Any, arn: str, timeout_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        desc: dict[str, Any] = await sfn.describe_execution(executionArn=arn)
        if desc["status"] != "RUNNING" or time.monotonic() > deadline:
            return desc
        await asyncio.sleep(0.2)


async def run(ctx: DemoContext) -> None:
    async with ctx.client("stepfunctions") as sfn:
        for name, batch in (("good", GOOD), ("bad", BAD)):
            t = time.perf_counter()
            ex = await sfn.start_execution(stateMachineArn=MACHINE, input=json.dumps(batch))
            desc = await _finish(sfn, ex["executionArn"])
            outcome = desc["status"]
            if "output" in desc:
                outcome += f" {desc['output']}"
            if desc.get("error"):
                outcome += f" {desc['error']}"
            history = await sfn.get_execution_history(executionArn=ex["executionArn"],
                                                      maxResults=1000)  # fmt: skip
            retried = sum(1 for e in history["events"] if e["type"] == "TaskFailed")
            ctx.row("demo-batch", f"StartExecution ({name} batch, {len(batch['items'])} items)",
                    f"{outcome}; {retried} failed attempts retried or caught",
                    f"{(time.perf_counter() - t) * 1000:.0f} ms")  # fmt: skip
    async with ctx.client("events") as events:  # the machine's EventBridgeRule starts it
        detail = {"batch": "b-3", "items": [{"sku": "kiwi", "qty": 5}]}
        await events.put_events(Entries=[{"Source": "demo.batches", "DetailType": "BatchSubmitted",
                                          "Detail": json.dumps(detail)}])  # fmt: skip
        ctx.row("demo-batch", "PutEvents BatchSubmitted (b-3, 1 item)", "sent")
    await ctx.reports({"WorkflowStore", "WorkflowRecordFailure"}, expected=3)
