"""``AWS::Serverless::Function`` → :class:`bus.spec.FunctionSpec` and its triggers.

Defaults follow Lambda (``Timeout`` 3 s, ``MemorySize`` 128, two async
retries within six hours); per event type, the trigger gets Lambda's event
source mapping semantics (the table in issue 3's loader contract). Beyond it:

- SQS triggers take their retry limits from the queue, as Lambda does:
  ``RedrivePolicy.maxReceiveCount`` receives (``-1``, until the retention
  period, without one), and remember event ids for the queue's visibility
  timeout plus a margin, its redelivery horizon (:mod:`.triggers`).
- An event with ``Enabled: false`` or ``State: DISABLED`` gets no trigger.
- ``OnFailure`` to another function of the stack sets ``on_failure``; SQS and
  SNS destinations (and ``DeadLetterQueue``) become
  :class:`~adapters.template.loaded.FailureDestination` records.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bus.spec import FunctionSpec, RetryPolicy, Trigger

from . import schema as s
from .errors import Invalid, show
from .event_schema import EVENT_SCHEMAS, UNSUPPORTED_EVENT_TYPES
from .loaded import EventSource, FailureDestination
from .shapes import Warn, check
from .triggers import TRIGGER_BUILDERS, EventSite, arn_of

_NAME = re.compile(r"[A-Za-z0-9]+")
_ENV_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclass
class BuiltFunction:
    spec: FunctionSpec
    events: list[EventSource]
    destinations: list[FailureDestination] = field(default_factory=list)
    group: str | None = None
    async_routes: tuple[str, ...] = ()
    """Api/HttpApi events answered 202 and run asynchronously (``async_routes``)."""


def build_function(
    logical_id: str,
    props: Mapping[str, Any],
    settings: Mapping[str, Any],
    site: EventSite,
    warn: Warn,
) -> BuiltFunction:
    """The function's spec, event sources and failure destinations."""
    handler = _handler(props["Handler"])
    code_path = _code_path(props["CodeUri"], site.base)
    environment = _environment(props.get("Environment", {}).get("Variables", {}))
    destinations: list[FailureDestination] = []
    retry, on_failure = _invoke_config(logical_id, props, site, destinations)
    triggers, events = _events(
        logical_id, props.get("Events") or {}, settings, site, warn, destinations
    )
    timeout = float(props.get("Timeout", 3))
    visibility = settings.get("visibility_timeout_s")
    if visibility is not None and visibility <= timeout:
        raise Invalid(
            "Metadata.lambdabus.visibility_timeout_s",
            f"must be longer than the function's Timeout ({timeout:g} s)",
        )
    tuning = {k: settings[k] for k in ("max_concurrency", "threads", "isolation") if k in settings}
    try:
        spec = FunctionSpec(
            name=logical_id,
            handler=handler,
            timeout_s=timeout,
            memory_mb=props.get("MemorySize", 128),
            environment=environment,
            code_path=code_path,
            deps_path=str(site.base / ".lambdabus" / "deps" / logical_id),
            reserved_concurrency=props.get("ReservedConcurrentExecutions"),
            retry=retry,
            on_failure=on_failure,
            triggers=triggers,
            visibility_timeout_s=visibility,
            **tuning,
        )
    except ValueError as exc:
        raise Invalid("-", str(exc)) from None
    async_routes = tuple(settings.get("async_routes") or ())
    http_events = {e.name for e in events if e.type in ("Api", "HttpApi")}
    for name in async_routes:
        if name not in http_events:
            raise Invalid(
                "Metadata.lambdabus.async_routes", f"{name!r} is not an Api or HttpApi event"
            )
    return BuiltFunction(spec, events, destinations, settings.get("group"), async_routes)


def _handler(handler: str) -> str:
    module, _, function = handler.rpartition(".")
    if not module or not function:
        raise Invalid("Handler", f"expected module.function, got {handler!r}")
    return handler


def _code_path(code_uri: Any, base: Path) -> str:
    if not isinstance(code_uri, str) or re.match(r"^[a-z0-9]+://", code_uri):
        raise Invalid("CodeUri", "only a local folder is supported, not an S3 location")
    folder = (base / code_uri).resolve()
    if not folder.is_dir():
        raise Invalid("CodeUri", f"{code_uri!r} is not a folder (looked for {folder})")
    return str(folder)


def _environment(variables: Mapping[str, Any]) -> dict[str, str]:
    """Lambda's variables are strings; YAML booleans become ``true``/``false`` as on AWS."""
    env: dict[str, str] = {}
    for key, value in variables.items():
        if not _ENV_NAME.fullmatch(key):
            raise Invalid(f"Environment.Variables.{key}", "not a valid environment variable name")
        env[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return env


def _invoke_config(
    logical_id: str,
    props: Mapping[str, Any],
    site: EventSite,
    destinations: list[FailureDestination],
) -> tuple[RetryPolicy, str | None]:
    config = props.get("EventInvokeConfig", {})
    retry = RetryPolicy(
        max_retry_attempts=config.get("MaximumRetryAttempts", RetryPolicy.max_retry_attempts),
        max_event_age_s=float(config.get("MaximumEventAgeInSeconds", RetryPolicy.max_event_age_s)),
    )
    on_failure = None
    where = "EventInvokeConfig.DestinationConfig.OnFailure"
    target = config.get("DestinationConfig", {}).get("OnFailure")
    if target is not None:
        kind, arn = target["Type"], target.get("Destination")
        if kind in ("EventBridge", "S3"):
            raise Invalid(f"{where}.Type", f"{kind} destinations are not supported by lambdabus")
        if arn is None:
            raise Invalid(
                f"{where}.Destination",
                "required: lambdabus does not create the queue or topic SAM would",
            )
        on_failure = site.table.find(arn, [s.FUNCTION], site.ctx)
        if on_failure is None:
            if kind == "Lambda":
                raise Invalid(f"{where}.Destination", f"{arn!r} is not a function of this stack")
            arn_of(arn, kind.lower(), f"{where}.Destination", f"an {kind} ARN")
            destinations.append(FailureDestination(logical_id, kind, arn, "EventInvokeConfig"))
    dlq = props.get("DeadLetterQueue")
    if dlq is not None:
        arn = arn_of(
            dlq["TargetArn"],
            dlq["Type"].lower(),
            "DeadLetterQueue.TargetArn",
            f"an {dlq['Type']} ARN",
        )
        destinations.append(FailureDestination(logical_id, dlq["Type"], arn, "DeadLetterQueue"))
    return retry, on_failure


def _events(
    logical_id: str,
    events: Mapping[str, Any],
    settings: Mapping[str, Any],
    site: EventSite,
    warn: Warn,
    destinations: list[FailureDestination],
) -> tuple[dict[str, Trigger], list[EventSource]]:
    triggers: dict[str, Trigger] = {}
    sources: list[EventSource] = []
    dedupe = settings.get("dedupe_window_s")
    for name, event in events.items():
        where = f"Events.{name}"
        kind, props = _event(name, event, warn)
        build = TRIGGER_BUILDERS[kind]
        try:
            made = build(name, props, site, f"{where}.Properties", logical_id)
        except ValueError as exc:
            raise Invalid(where, str(exc)) from None
        if made is None:
            continue
        trigger, props, destination = made
        if dedupe is not None:
            trigger = replace(trigger, dedupe_window_s=float(dedupe))
        triggers[name] = trigger
        sources.append(EventSource(logical_id, name, kind, props))
        if destination is not None:
            destinations.append(destination)
    return triggers, sources


def _event(name: str, event: Any, warn: Warn) -> tuple[str, dict[str, Any]]:
    """The event's type and checked properties, or an error naming what is wrong."""
    where = f"Events.{name}"
    if not _NAME.fullmatch(name):
        raise Invalid(where, "an event's name must be alphanumeric")
    if not isinstance(event, dict):
        raise Invalid(where, "expected a mapping with Type and Properties")
    for key in event:
        if key not in ("Type", "Properties"):
            raise Invalid(f"{where}.{key}", "unknown property (an event has Type and Properties)")
    kind = event.get("Type")
    if kind is None:
        raise Invalid(f"{where}.Type", "required, but missing")
    if not isinstance(kind, str):
        raise Invalid(f"{where}.Type", f"expected a string, got {show(kind)}")
    if kind in UNSUPPORTED_EVENT_TYPES:
        raise Invalid(f"{where}.Type", f"event type {kind} is not supported by lambdabus")
    if kind not in EVENT_SCHEMAS:
        raise Invalid(f"{where}.Type", f"unknown event type {kind!r}")
    props = check(event.get("Properties", {}), EVENT_SCHEMAS[kind], f"{where}.Properties", warn)
    return kind, props
