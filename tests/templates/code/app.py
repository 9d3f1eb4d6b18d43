"""Handlers named by the template fixtures; the loader only checks the folder exists."""

from typing import Any


def handler(event: Any, context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": "ok"}
