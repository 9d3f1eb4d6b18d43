"""Publishes an ``order.created`` custom event with plain boto3 ``put_events``.

No endpoint in the code: ``lambdabus dev`` sets ``AWS_ENDPOINT_URL_EVENTBRIDGE`` to its
edge, so the event reaches the stack's rules (here: ``OrderEvents``' ``BigOrders``),
exactly as on AWS it would reach the account's default event bus.
"""

import json
from typing import Any

import boto3

events = boto3.client("events")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = {"id": event["id"], "total": event["total"], "by": context.function_name}
    response = events.put_events(Entries=[{
        "Source": "demo.orders", "DetailType": "order.created", "Detail": json.dumps(detail),
    }])  # fmt: skip
    entry = response["Entries"][0]
    return {"failed": response["FailedEntryCount"], "event_id": entry.get("EventId")}
