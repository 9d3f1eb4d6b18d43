"""One SAM event → one :class:`bus.spec.Trigger`, with Lambda's semantics per source.

Each builder also checks what only makes sense across resources (an SQS
event names a queue ARN, an S3 event a bucket of this template, two routes
don't collide) and returns the event's properties normalised for adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus.spec import Trigger

from . import schema as s
from .errors import Invalid
from .intrinsics import Context
from .loaded import FailureDestination
from .models import ResourceTable

SQS_DEDUPE_MARGIN_S = 300.0
"""Added to a queue's visibility timeout (its redelivery horizon) for the dedupe window."""
SQS_DEFAULT_VISIBILITY_S = 30
STREAM_RETENTION_S = 86400.0
"""DynamoDB Streams keeps records 24 hours."""
SQS_DEFAULT_RETENTION_S = 345600
HTTP_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"})


@dataclass
class EventSite:
    """What building triggers needs from the rest of the template."""

    ctx: Context
    table: ResourceTable
    base: Path
    """The template's folder, absolute."""
    resources: Mapping[str, Mapping[str, Any]]
    """Resolved properties of every resource in the stack, by logical id."""
    routes: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """(API id, METHOD, path) -> ``Function.Event`` that serves it."""


Made = tuple[Trigger, dict[str, Any], FailureDestination | None] | None
Builder = Callable[[str, dict[str, Any], EventSite, str, str], Made]


def arn_of(value: Any, service: str, where: str, what: str) -> str:
    """``value`` if it is an ARN of ``service``; the usual mistake is a ``!Ref`` (a URL)."""
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != service:
        raise Invalid(where, f"expected {what}, got {value!r}")
    return str(value)


def _disabled(props: Mapping[str, Any]) -> bool:
    return props.get("Enabled") is False or props.get("State") == "DISABLED"


def _reports_items(props: Mapping[str, Any]) -> bool:
    return "ReportBatchItemFailures" in props.get("FunctionResponseTypes", [])


def _sqs(name: str, props: dict[str, Any], site: EventSite, where: str, fn: str) -> Made:
    arn = arn_of(props["Queue"], "sqs", f"{where}.Queue", "an SQS queue ARN (!GetAtt Q.Arn)")
    batch, window = props.get("BatchSize", 10), props.get("MaximumBatchingWindowInSeconds", 0)
    if batch > 10 and window < 1:
        raise Invalid(
            f"{where}.MaximumBatchingWindowInSeconds",
            "must be at least 1 when BatchSize is over 10 (as in Lambda)",
        )
    queue_id = site.table.find(arn, [s.QUEUE], site.ctx)
    queue = site.resources.get(queue_id, {}) if queue_id else {}
    fifo = bool(queue.get("FifoQueue")) or arn.endswith(".fifo")
    if fifo and batch > 10:
        raise Invalid(f"{where}.BatchSize", f"at most 10 for a FIFO queue, got {batch}")
    if _disabled(props):
        return None
    redrive = queue.get("RedrivePolicy")
    visibility = queue.get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY_S)
    trigger = Trigger(
        name,
        batch_size=batch,
        batching_window_s=float(window),
        shape="records",
        ordered=fifo,
        partial_batch="items" if _reports_items(props) else "none",
        item_id_path=("messageId",),
        attempt_path=("attributes", "ApproximateReceiveCount"),
        max_retry_attempts=redrive["maxReceiveCount"] - 1 if redrive else -1,
        max_record_age_s=float(queue.get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION_S)),
        dedupe_window_s=float(visibility) + SQS_DEDUPE_MARGIN_S,
    )
    return trigger, props, None


def _sns(name: str, props: dict[str, Any], site: EventSite, where: str, fn: str) -> Made:
    arn_of(props["Topic"], "sns", f"{where}.Topic", "an SNS topic ARN (!Ref Topic)")
    return Trigger(name, batch_size=1, shape="records"), props, None


def _s3(name: str, props: dict[str, Any], site: EventSite, where: str, fn: str) -> Made:
    bucket = props["Bucket"]
    if site.table.find(bucket, [s.BUCKET], site.ctx) is None:
        raise Invalid(
            f"{where}.Bucket",
            f"{bucket!r} is not a bucket of this template"
            " (SAM needs !Ref to an AWS::S3::Bucket here)",
        )
    events = props["Events"] if isinstance(props["Events"], list) else [props["Events"]]
    for i, event in enumerate(events):
        if not event.startswith("s3:"):
            raise Invalid(
                f"{where}.Events[{i}]",
                f"expected an S3 event like s3:ObjectCreated:*, got {event!r}",
            )
    return Trigger(name, batch_size=1, shape="records"), {**props, "Events": events}, None


def _dynamodb(name: str, props: dict[str, Any], site: EventSite, where: str, fn: str) -> Made:
    stream = props["Stream"]
    arn_of(stream, "dynamodb", f"{where}.Stream", "a stream ARN (!GetAtt Table.StreamArn)")
    if "/stream/" not in stream:
        raise Invalid(
            f"{where}.Stream", f"expected a stream ARN (!GetAtt Table.StreamArn), got {stream!r}"
        )
    start = props.get("StartingPosition")
    if start not in ("TRIM_HORIZON", "LATEST"):
        raise Invalid(
            f"{where}.StartingPosition",
            f"DynamoDB streams start at TRIM_HORIZON or LATEST, got {start!r}",
        )
    age = props.get("MaximumRecordAgeInSeconds", -1)
    if 0 <= age < 60:
        raise Invalid(f"{where}.MaximumRecordAgeInSeconds", f"must be -1 or at least 60, got {age}")
    destination = None
    target = props.get("DestinationConfig", {}).get("OnFailure")
    if target is not None:
        kind = target.get("Type") or ("SNS" if ":sns:" in target["Destination"] else "SQS")
        arn = arn_of(
            target["Destination"],
            kind.lower(),
            f"{where}.DestinationConfig.OnFailure.Destination",
            f"an {kind} ARN",
        )
        destination = FailureDestination(fn, kind, arn, f"Events.{name}")
    if _disabled(props):
        return None
    trigger = Trigger(
        name,
        batch_size=props.get("BatchSize", 100),
        batching_window_s=float(props.get("MaximumBatchingWindowInSeconds", 0)),
        shape="records",
        ordered=True,
        partial_batch="checkpoint" if _reports_items(props) else "none",
        item_id_path=("dynamodb", "SequenceNumber"),
        bisect_on_error=props.get("BisectBatchOnFunctionError", False),
        max_retry_attempts=props.get("MaximumRetryAttempts", -1),
        # -1 as in Lambda: until the record leaves the stream (24 hours).
        max_record_age_s=STREAM_RETENTION_S if age == -1 else float(age),
    )
    return trigger, props, destination


def _route(
    name: str, props: dict[str, Any], site: EventSite, where: str, fn: str, rest: bool
) -> Made:
    """Api and HttpApi events: the API they belong to, and a route no one else serves."""
    api_key, api_type, implicit = (
        ("RestApiId", s.API, "ServerlessRestApi")
        if rest
        else ("ApiId", s.HTTP_API, "ServerlessHttpApi")
    )
    if api_key in props:
        if site.table.find(props[api_key], [api_type], site.ctx) is None:
            raise Invalid(
                f"{where}.{api_key}", f"{props[api_key]!r} is not an {api_type} of this template"
            )
        api = props[api_key]
    else:
        api = site.table.ref(implicit, site.ctx)
    method = str(props.get("Method", "ANY")).upper()
    path = props.get("Path", "$default")
    if method not in HTTP_METHODS:
        raise Invalid(f"{where}.Method", f"not an HTTP method: {props.get('Method')!r}")
    if not (path.startswith("/") or (path == "$default" and not rest)):
        raise Invalid(f"{where}.Path", f"must start with /, got {path!r}")
    owner = site.routes.setdefault((api, method, path), f"{fn}.{name}")
    if owner != f"{fn}.{name}":
        raise Invalid(f"{where}.Path", f"{method} {path} is already served by {owner}")
    return Trigger(name), {**props, api_key: api, "Method": method, "Path": path}, None


def _api(name: str, props: dict[str, Any], site: EventSite, where: str, fn: str) -> Made:
    return _route(name, props, site, where, fn, rest=True)


def _http_api(name: str, props: dict[str, Any], site: EventSite, where: str, fn: str) -> Made:
    return _route(name, props, site, where, fn, rest=False)


def _scheduled(key: str) -> Builder:
    def build(name: str, props: dict[str, Any], site: EventSite, where: str, fn: str) -> Made:
        from ..schedule.spec import check_properties

        problem = check_properties("Schedule" if key == "Schedule" else "ScheduleV2", props)
        if problem is not None:
            raise Invalid(f"{where}.{problem[0]}", problem[1])
        # RetryPolicy governs delivering the event (the scheduler retries a failed publish);
        # the function's errors are retried by its EventInvokeConfig, as Lambda's are.
        return None if _disabled(props) else (Trigger(name), props, None)

    return build


def _rule(name: str, props: dict[str, Any], site: EventSite, where: str, fn: str) -> Made:
    from ..eventbridge.routing import RuleError, check_rule  # lazy: it imports this package

    try:  # Pattern and target input compile at load, as PutRule/PutTargets check them
        check_rule(props)
    except RuleError as exc:
        raise Invalid(f"{where}.{exc.prop}", exc.message) from None
    return None if _disabled(props) else (Trigger(name), props, None)


TRIGGER_BUILDERS: dict[str, Builder] = {
    "SQS": _sqs,
    "SNS": _sns,
    "S3": _s3,
    "DynamoDB": _dynamodb,
    "Api": _api,
    "HttpApi": _http_api,
    "Schedule": _scheduled("Schedule"),
    "ScheduleV2": _scheduled("ScheduleExpression"),
    "EventBridgeRule": _rule,
    "CloudWatchEvent": _rule,
}
