"""Checks and normalisation that need more than one property of a resource.

The shapes in :mod:`adapters.template.schema` check each property alone; what
AWS would reject only by looking at several (a FIFO queue whose name lacks
``.fifo``, a key attribute without a definition, a provisioned table without
throughput) is caught here, so it fails at load time with one line instead of
at provisioning time with a service error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import schema as s
from .errors import Invalid, show
from .event_schema import EVENT_SCHEMAS, STATE_MACHINE_EVENT_TYPES
from .shapes import Warn, check
from .yaml_load import load_file

Finisher = Callable[[dict[str, Any], Path, Warn], dict[str, Any]]


def finish(resource_type: str, props: dict[str, Any], base: Path, warn: Warn) -> dict[str, Any]:
    """``props`` after the checks and normalisation of ``resource_type`` (if any)."""
    finisher = _FINISHERS.get(resource_type)
    return finisher(props, base, warn) if finisher else props


def _fifo_name(
    props: dict[str, Any], name_key: str, fifo_key: str, extras: tuple[str, ...]
) -> None:
    fifo = props.get(fifo_key, False)
    name = props.get(name_key)
    if name is not None and fifo and not name.endswith(".fifo"):
        raise Invalid(name_key, f"a FIFO name must end in .fifo, got {name!r}")
    if name is not None and not fifo and name.endswith(".fifo"):
        raise Invalid(fifo_key, f"must be true for a name ending in .fifo ({name!r})")
    for key in extras:
        if key in props and not fifo:
            raise Invalid(key, f"only applies when {fifo_key} is true")


def _json(props: dict[str, Any], key: str) -> None:
    """CloudFormation takes some JSON properties as a mapping or as a JSON string."""
    value = props.get(key)
    if isinstance(value, str):
        try:
            props[key] = json.loads(value)
        except ValueError as exc:
            raise Invalid(key, f"not valid JSON: {exc}") from None


def _queue(props: dict[str, Any], base: Path, warn: Warn) -> dict[str, Any]:
    extras = ("ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit")
    _fifo_name(props, "QueueName", "FifoQueue", extras)
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):
        _json(props, key)
    if "RedrivePolicy" in props:
        props["RedrivePolicy"] = check(
            props["RedrivePolicy"], s.REDRIVE_POLICY, "RedrivePolicy", warn
        )
    return props


def _topic(props: dict[str, Any], base: Path, warn: Warn) -> dict[str, Any]:
    _fifo_name(props, "TopicName", "FifoTopic", ("ContentBasedDeduplication",))
    return props


def _subscription(props: dict[str, Any], base: Path, warn: Warn) -> dict[str, Any]:
    for key in ("FilterPolicy", "RedrivePolicy"):
        _json(props, key)
    raw_protocols = ("sqs", "http", "https", "firehose")
    if props.get("RawMessageDelivery") and props["Protocol"] not in raw_protocols:
        raise Invalid("RawMessageDelivery", f"only for {', '.join(raw_protocols)} subscriptions")
    return props


def _key_names(keys: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(i, k["AttributeName"]) for i, k in enumerate(keys)]


def _table(props: dict[str, Any], base: Path, warn: Warn) -> dict[str, Any]:
    defined = {a["AttributeName"] for a in props["AttributeDefinitions"]}
    keyed = [("KeySchema", props["KeySchema"])]
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        for i, index in enumerate(props.get(kind, [])):
            keyed.append((f"{kind}[{i}].KeySchema", index["KeySchema"]))
    for where, keys in keyed:
        kinds = [k["KeyType"] for k in keys]
        if kinds not in (["HASH"], ["HASH", "RANGE"]):
            raise Invalid(where, "needs a HASH key, optionally followed by a RANGE key")
        for i, name in _key_names(keys):
            if name not in defined:
                raise Invalid(
                    f"{where}[{i}].AttributeName", f"{name!r} is not in AttributeDefinitions"
                )
    provisioned = props.get("BillingMode", "PROVISIONED") == "PROVISIONED"
    if provisioned and "ProvisionedThroughput" not in props:
        raise Invalid("ProvisionedThroughput", "required unless BillingMode is PAY_PER_REQUEST")
    return props


def _simple_table(props: dict[str, Any], base: Path, warn: Warn) -> dict[str, Any]:
    props.setdefault("PrimaryKey", {"Name": "id", "Type": "String"})
    return props


def _http_api(props: dict[str, Any], base: Path, warn: Warn) -> dict[str, Any]:
    props.setdefault("StageName", "$default")
    return props


def _definition_from(props: dict[str, Any], base: Path, sources: tuple[str, ...]) -> Any:
    given = [key for key in sources if key in props]
    if len(given) != 1:
        raise Invalid(sources[0], f"give exactly one of {', '.join(sources)}")
    key = given[0]
    value = props[key]
    if key == "DefinitionString":
        try:
            return json.loads(value)
        except ValueError as exc:
            raise Invalid(key, f"not valid JSON: {exc}") from None
    if key == "DefinitionUri":
        if re.match(r"^[a-z0-9]+://", value):
            raise Invalid(key, "only a local file is supported, not a remote location")
        try:
            return load_file(base / value)
        except Invalid as exc:
            raise Invalid(key, f"{value}: {exc.prop}: {exc.problem}") from None
    return value


def _substitute(value: Any, substitutions: dict[str, str]) -> Any:
    """Replace ``${name}`` in every string of a definition, as DefinitionSubstitutions does."""
    if isinstance(value, str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: substitutions.get(m[1], m[0]), value)
    if isinstance(value, list):
        return [_substitute(v, substitutions) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, substitutions) for k, v in value.items()}
    return value


def _state_machine(sources: tuple[str, ...]) -> Finisher:
    def finish(props: dict[str, Any], base: Path, warn: Warn) -> dict[str, Any]:
        definition = _definition_from(props, base, sources)
        if not isinstance(definition, dict) or "States" not in definition:
            raise Invalid(
                sources[0], f"expected a state machine with States, got {show(definition)}"
            )
        props["Definition"] = _substitute(definition, props.get("DefinitionSubstitutions", {}))
        from ..sfn.definition import DefinitionError, validate

        try:
            validate(props["Definition"])
        except DefinitionError as exc:
            raise Invalid(sources[0], str(exc)) from None
        events = props.get("Events", {})
        for name, event in events.items():
            events[name] = state_machine_event(name, event, warn)
        return props

    return finish


def state_machine_event(name: str, event: Any, warn: Warn) -> dict[str, Any]:
    """A state machine's event source, checked like a function's; the executor starts it."""
    where = f"Events.{name}"
    if not isinstance(event, dict) or not isinstance(event.get("Type"), str):
        raise Invalid(where, "expected a mapping with Type and Properties")
    kind = event["Type"]
    if kind not in STATE_MACHINE_EVENT_TYPES:
        raise Invalid(
            f"{where}.Type", f"{kind!r} is not an event type lambdabus runs for state machines"
        )
    properties = check(
        event.get("Properties", {}), EVENT_SCHEMAS[kind], f"{where}.Properties", warn
    )
    if kind in ("Schedule", "ScheduleV2"):
        from ..schedule.spec import check_properties

        problem = check_properties(kind, properties)
        if problem is not None:
            raise Invalid(f"{where}.Properties.{problem[0]}", problem[1])
    return {"Type": kind, "Properties": properties}


_FINISHERS: dict[str, Finisher] = {
    s.QUEUE: _queue,
    s.TOPIC: _topic,
    s.SUBSCRIPTION: _subscription,
    s.TABLE: _table,
    s.SIMPLE_TABLE: _simple_table,
    s.HTTP_API: _http_api,
    s.SAM_STATE_MACHINE: _state_machine(("Definition", "DefinitionUri")),
    s.SFN_STATE_MACHINE: _state_machine(("Definition", "DefinitionString")),
}
