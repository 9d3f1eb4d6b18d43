"""Validates orders; a bad one raises, and is retried, then dead-lettered."""

from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("quantity", 0) <= 0:
        raise ValueError(f"order {event.get('id')} has no quantity")
    return {"id": event["id"], "accepted": True}
