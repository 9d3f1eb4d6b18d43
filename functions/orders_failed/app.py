"""The Orders function's OnFailure destination: receives Lambda's destination record."""

import os
import time
from typing import Any

import redis

STORE_URL = os.environ.get("DEMO_STORE_URL", "")
_store = redis.Redis.from_url(STORE_URL) if STORE_URL else None


def lambda_handler(event: dict[str, Any], context: Any) -> None:
    order = event["requestPayload"]
    ctx = event["requestContext"]
    outcome = (f"{ctx['condition']} after {ctx['approximateInvokeCount']} attempts: "
               f"{event['responsePayload']['errorMessage']}")  # fmt: skip
    print(f"order {order.get('id')} failed: {outcome}")
    if _store is not None:
        _store.xadd("demo:results", {"function": context.function_name,
                                     "key": str(order.get("id")), "outcome": outcome,
                                     "at": repr(time.time())})  # fmt: skip
