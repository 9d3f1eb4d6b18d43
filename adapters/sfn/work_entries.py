"""What an entry on the work stream means: one event for one execution.

Workers reply onto the work stream itself (``reply_to`` names it), so a task's
result arrives as a function reply (``r``) and becomes ``task_succeeded``, or
``task_failed`` with the error and cause Step Functions reports for a Lambda
function. Everything else (a start, a due timer, SendTask*, StopExecution) is
an ``ev`` entry, already an event.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import msgpack

from .store import dumps

log = logging.getLogger(__name__)


def execution_of(token: str) -> str:
    """Tokens are ``<execution id>.<sequence>[.<secret>]``."""
    return token.split(".", 1)[0]


def _marshal_error(payload: Any, request_id: str) -> tuple[str, str] | None:
    """A result that is not JSON fails the task as Lambda's runtime does."""
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as exc:
        msg = f"Unable to marshal response: {exc}"
        return "Runtime.MarshalError", json.dumps({"errorMessage": msg,
            "errorType": "Runtime.MarshalError", "requestId": request_id,
            "stackTrace": []})  # fmt: skip
    return None


def lambda_error(payload: Any, request_id: str) -> tuple[str, str]:
    """A function's exception as Step Functions reports it: error = type, cause = JSON."""
    if not isinstance(payload, dict):
        return "Lambda.Unknown", dumps(payload)
    error = str(payload.get("errorType") or "Lambda.Unknown")
    cause = {"errorMessage": payload.get("errorMessage", ""), "errorType": error,
             "requestId": request_id, "stackTrace": payload.get("stackTrace", [])}  # fmt: skip
    return error, json.dumps(cause)


def decode_entry(fields: list[Any]) -> dict[str, Any] | None:
    """The event an entry's fields carry, with its execution id under ``e``; None if malformed."""
    pairs = dict(zip(fields[::2], fields[1::2], strict=False))
    try:
        if b"ev" in pairs:
            event: dict[str, Any] = json.loads(pairs[b"ev"])
            return event
        if b"r" in pairs:
            rid, status, payload = msgpack.unpackb(pairs[b"r"], raw=False,
                                                   strict_map_key=False)  # fmt: skip
            marshal = _marshal_error(payload, rid) if status == "success" else None
            if status == "success" and marshal is None:
                return {"e": execution_of(rid), "type": "task_succeeded", "token": rid,
                        "result": payload}  # fmt: skip
            error, cause = marshal or lambda_error(payload, rid)
            return {"e": execution_of(rid), "type": "task_failed", "token": rid,
                    "error": error, "cause": cause}  # fmt: skip
    except Exception:
        pass
    log.error("malformed work entry dropped")
    return None
