"""Pure steps between envelopes and handlers: the Lambda event, partial batch
responses, retry decisions and destination records. No I/O."""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from typing import Any, Literal, NamedTuple

from .backoff import compute_backoff_s
from .envelope import Envelope
from .handler import ErrorInfo
from .spec import EventShape, FunctionSpec, Trigger


def build_event(
    shape: EventShape, envelopes: Sequence[Envelope], attempt_path: tuple[str, ...] = ()
) -> Any:
    """``{"Records": [...]}`` for S3/SQS/SNS/DynamoDB-style batches, else the record itself."""
    if shape == "records":
        if attempt_path:
            return {"Records": [with_attempt(e.record, e.attempt, attempt_path)
                                for e in envelopes]}  # fmt: skip
        return {"Records": [e.record for e in envelopes]}
    return envelopes[0].record


def with_attempt(record: Any, attempt: int, path: tuple[str, ...]) -> Any:
    """The record reporting delivery number ``attempt + 1`` at ``path`` (copied, not mutated)."""
    if attempt == 0 or not isinstance(record, dict):
        return record
    head, *rest = path
    inner = record.get(head)
    if rest:
        return {**record, head: with_attempt(inner if isinstance(inner, dict) else {},
                                             attempt, tuple(rest))}  # fmt: skip
    return {**record, head: str(attempt + 1)}


def _item_id(env: Envelope, path: tuple[str, ...]) -> Any:
    if not path:
        return env.id
    value: Any = env.record
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def failed_indexes(response: Any, envelopes: Sequence[Envelope], trigger: Trigger) -> list[int]:
    """Indexes of the batch to retry under ReportBatchItemFailures, as Lambda reads it.

    An empty or missing list means success; a response Lambda would call invalid
    (an identifier that is null, empty or not in the batch) fails the whole batch.
    With checkpoint semantics everything from the lowest failed item on is retried.
    """
    everything = list(range(len(envelopes)))
    if response is None:
        return []
    if not isinstance(response, dict):
        return everything
    failures = response.get("batchItemFailures")
    if failures is None or failures == []:
        return []
    if not isinstance(failures, list):
        return everything
    index: dict[Hashable, int] = {}
    for i, e in enumerate(envelopes):
        ident = _item_id(e, trigger.item_id_path)
        if isinstance(ident, Hashable):
            index.setdefault(ident, i)
    failed: set[int] = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if ident in (None, "") or not isinstance(ident, Hashable) or ident not in index:
            return everything
        failed.add(index[ident])
    if trigger.partial_batch == "checkpoint" or trigger.ordered:
        return list(range(min(failed), len(envelopes)))
    return sorted(failed)


class Retry(NamedTuple):
    delay_s: float


class DeadLetter(NamedTuple):
    condition: Literal["RetriesExhausted", "EventAgeExceeded"]


def after_failure(
    env: Envelope, fn: FunctionSpec, trigger: Trigger, now: float | None = None
) -> Retry | DeadLetter:
    """What to do with an event whose invocation failed on attempt ``env.attempt``."""
    now = time.time() if now is None else now
    max_retries = (
        trigger.max_retry_attempts
        if trigger.max_retry_attempts is not None
        else fn.retry.max_retry_attempts
    )
    max_age = trigger.max_record_age_s or fn.retry.max_event_age_s
    if max_age > 0 and now - (env.first_seen or env.time) >= max_age:
        return DeadLetter("EventAgeExceeded")
    if max_retries >= 0 and env.attempt >= max_retries:
        return DeadLetter("RetriesExhausted")
    return Retry(
        compute_backoff_s(env.attempt + 1, fn.retry.backoff_base_s, fn.retry.backoff_cap_s)
    )


def destination_record(
    env: Envelope,
    event: Any,
    function_arn: str,
    request_id: str,
    condition: str,
    error: ErrorInfo | None,
) -> dict[str, Any]:
    """The record Lambda sends to an OnFailure destination of an asynchronous invocation."""
    now = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return {
        "version": "1.0",
        "timestamp": f"{ts}.{int(now * 1000) % 1000:03d}Z",
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": env.attempt + 1,
        },
        "requestPayload": event,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": error.payload() if error else None,
    }
