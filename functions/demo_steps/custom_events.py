"""Custom events: PutEvents on the edge, routed by the template's EventBridge rules.

One request with four entries — a big order (matches ``BigOrders``), a small one (no rule
matches it), a malformed one (refused on its own, with AWS's per-entry error) and a refund
(``Refunds`` delivers its InputTransformer output) — then ``OrderEmitter`` publishes an
order from inside a handler with plain boto3, reaching ``OrderEvents`` the same way.
"""

from __future__ import annotations

import json

from . import DemoContext, timed

TITLE = "EventBridge custom events (PutEvents on the edge, pattern routing)"
ORDER = 60


def _entry(detail_type: str, detail: str) -> dict[str, str]:
    return {"Source": "demo.orders", "DetailType": detail_type, "Detail": detail}


async def run(ctx: DemoContext) -> None:
    entries = [
        _entry("order.created", json.dumps({"id": "o-1", "total": 250})),
        _entry("order.created", json.dumps({"id": "o-2", "total": 20})),
        _entry("order.created", '{"id": "o-3", "total": '),
        _entry("refund.requested", json.dumps({"id": "o-1", "amount": 40})),
    ]
    async with ctx.client("events") as events, timed(ctx, "(edge)", "put_events x4") as out:
        response = await events.put_events(Entries=entries)
        out.append(f"FailedEntryCount {response['FailedEntryCount']}")
    for sent, result in zip(entries, response["Entries"], strict=True):
        shown = (f"EventId {result['EventId'][:8]}…" if "EventId" in result
                 else f"{result['ErrorCode']}: {result['ErrorMessage']}")  # fmt: skip
        ctx.row("(edge)", f"{sent['DetailType']} {sent['Detail'][:32]}", shown)
    async with (
        ctx.client("lambda") as client,
        timed(ctx, "OrderEmitter", "invoke {id: o-4, total: 999}") as out,
    ):
        resp = await client.invoke(
            FunctionName="OrderEmitter", Payload=json.dumps({"id": "o-4", "total": 999}).encode()
        )
        out.append(f"{resp['StatusCode']} {(await resp['Payload'].read()).decode()}")
    reports = await ctx.reports({"OrderEvents"}, expected=3)
    if len(reports) < 3:
        ctx.row("OrderEvents", "reports", f"only {len(reports)} of 3 within 60 s")
    if not any("o-2" in r["key"] for r in reports):
        ctx.row("OrderEvents", "order.created o-2 (total 20)", "no report: no rule matched it")
