"""The seed data-processing workflow's steps (statemachine.asl.json runs them).

validate -> Parallel(totals, normalize) -> Map(price each item, retried when the
pricing service is flaky) -> store; any failure is caught and recorded. Each
step is a plain Lambda handler; the demo's reports go to ``demo:results``.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis

STORE_URL = os.environ.get("DEMO_STORE_URL", "")
_store = redis.Redis.from_url(STORE_URL) if STORE_URL else None
_priced_once: set[str] = set()


class InvalidBatch(Exception):
    """The batch can't be processed; the workflow's Catch records it."""


class PricingUnavailable(Exception):
    """A transient failure; the workflow's Retry tries the item again."""


def _report(context: Any, key: str, outcome: str) -> None:
    if _store is not None:
        _store.xadd("demo:results", {"function": context.function_name, "key": key,
                                     "outcome": outcome, "at": repr(time.time())})  # fmt: skip


def validate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    items = event.get("items")
    if not isinstance(event.get("batch"), str) or not isinstance(items, list) or not items:
        raise InvalidBatch("a batch needs a 'batch' id and a non-empty 'items' list")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("qty"), int) or item["qty"] <= 0:
            raise InvalidBatch(f"item {item!r} needs a positive integer qty")
    return {"batch": event["batch"], "items": items}


def totals(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"lines": len(event["items"]), "units": sum(i["qty"] for i in event["items"])}


def normalize(event: dict[str, Any], context: Any) -> list[str]:
    return sorted({str(i["sku"]).strip().upper() for i in event["items"]})


def price(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sku = str(event["sku"]).strip().upper()
    if sku not in _priced_once:  # the first call for each item fails: Retry handles it
        _priced_once.add(sku)
        raise PricingUnavailable(f"pricing service busy for {sku}")
    unit = round(1 + (sum(map(ord, sku)) % 50) / 10, 2)
    return {"sku": sku, "qty": event["qty"], "unit": unit, "amount": round(unit * event["qty"], 2)}


def store(event: dict[str, Any], context: Any) -> dict[str, Any]:
    total = round(sum(line["amount"] for line in event["priced"]), 2)
    _report(context, f"batch {event['batch']}",
            f"stored {event['summary'][0]['lines']} lines, total {total}")  # fmt: skip
    return {"batch": event["batch"], "total": total}


def record_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    error = event.get("failure", {})
    _report(context, f"batch {event.get('batch')}",
            f"failed: {error.get('Error')}")  # fmt: skip
    return {"batch": event.get("batch"), "recorded": error.get("Error")}
