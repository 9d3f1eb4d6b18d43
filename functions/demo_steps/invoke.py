"""Lambda's Invoke API on the edge: sync calls, a sync error, async retries and OnFailure."""

from __future__ import annotations

import json
from typing import Any

from . import DemoContext, timed

TITLE = "Lambda Invoke API (edge)"
ORDER = 10


async def run(ctx: DemoContext) -> None:
    async with ctx.client("lambda") as client:

        async def invoke(name: str, payload: Any, kind: str = "RequestResponse") -> None:
            async with timed(ctx, name, f"{kind} {json.dumps(payload)}") as out:
                resp = await client.invoke(
                    FunctionName=name, InvocationType=kind, Payload=json.dumps(payload).encode()
                )
                body = await resp["Payload"].read()
                shown: Any = json.loads(body) if body else ""
                if resp.get("FunctionError") and isinstance(shown, dict):
                    shown = (
                        f"FunctionError {resp['FunctionError']}: "
                        f"{shown['errorType']}: {shown['errorMessage']}"
                    )
                out.append(f"{resp['StatusCode']} {shown}")

        await invoke("Greet", {"name": "Ada"})
        await invoke("Greet", {"name": "Grace"})
        await invoke("Orders", {"id": 1, "quantity": 3})
        await invoke("Orders", {"id": 2, "quantity": 0})  # raises: a synchronous error
        await invoke("Flaky", {"job": "nightly-report"}, "Event")  # fails twice, then succeeds
        await invoke("Orders", {"id": 3, "quantity": 0}, "Event")  # retried, then OnFailure
    await ctx.reports({"Flaky", "OrdersFailed"}, expected=2)
