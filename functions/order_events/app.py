"""Receives custom ``order.created`` / ``refund.requested`` events routed by EventBridge rules.

Rule ``BigOrders`` delivers the whole EventBridge event (orders over 100); rule
``Refunds`` delivers what its InputTransformer makes of one. Reports to the demo.
"""

import os
import time
from typing import Any

import redis

STORE_URL = os.environ.get("DEMO_STORE_URL", "")
_store = redis.Redis.from_url(STORE_URL) if STORE_URL else None


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "detail-type" in event:  # the EventBridge event itself
        detail = event["detail"]
        key = f"{event['detail-type']} {detail['id']}"
        outcome = (f"big order, total {detail['total']}, from {detail.get('by', 'put_events')} "
                   f"(event {event['id'][:8]})")  # fmt: skip
    else:  # the Refunds rule's InputTransformer output
        key = f"refund {event['order']}"
        outcome = f"transformed input: amount {event['amount']}, rule {event['rule']}"
    if _store is not None:
        _store.xadd("demo:results", {"function": context.function_name, "key": key,
                                     "outcome": outcome, "at": repr(time.time())})  # fmt: skip
    return {"key": key}
