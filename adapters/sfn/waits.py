"""When a Wait state ends, and a Task's timeout and heartbeat, from literals or paths."""

from __future__ import annotations

from typing import Any

from . import paths
from .choice import parse_timestamp
from .dataflow import Scope
from .errors import QUERY_EVALUATION, RUNTIME, StatesError
from .intrinsics import java_str


def _runtime(msg: str) -> StatesError:
    return StatesError(RUNTIME, msg, runtime=True)


def _seconds(value: Any, what: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise _runtime(f"The {what} cannot be parsed as a long value: {java_str(value)}")
    if value < 0:
        raise _runtime(f"The {what} references a negative value: {java_str(value)}")
    return int(value)


def due_time(spec: dict[str, Any], scope: Scope, effective: Any, now: float) -> float:
    """Epoch seconds at which the Wait state moves on (may be in the past)."""
    if "Seconds" in spec:
        value = scope.expr(spec["Seconds"], "Seconds") if scope.jsonata else spec["Seconds"]
        return now + _seconds(value, "Seconds parameter")
    if "Timestamp" in spec:
        value = scope.expr(spec["Timestamp"], "Timestamp") if scope.jsonata else spec["Timestamp"]
        ts = parse_timestamp(value)
        if ts is None:
            error = QUERY_EVALUATION if scope.jsonata else RUNTIME
            raise StatesError(error, "The Timestamp parameter does not reference a valid "
                              f"ISO-8601 extended offset date-time format string: {value}",
                              runtime=True)  # fmt: skip
        return ts.timestamp()
    if "SecondsPath" in spec:
        path = spec["SecondsPath"]
        value = paths.require(path, effective, scope.context, scope.variables)
        return now + _checked(value, path)
    path = spec["TimestampPath"]
    value = paths.require(path, effective, scope.context, scope.variables)
    ts = parse_timestamp(value)
    if ts is None:
        raise _runtime(
            "The TimestampPath parameter does not reference a valid ISO-8601 "
            f"extended offset date-time format string: {path} == {java_str(value)}"
        )
    return ts.timestamp()


def _checked(value: Any, path: str) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise _runtime(
            "The SecondsPath parameter cannot be parsed as a long value: "
            f"{path} == {java_str(value)}"
        )
    if value < 0:
        raise _runtime(
            f"The SecondsPath parameter references a negative value: {path} == {java_str(value)}"
        )
    return int(value)


def seconds_field(spec: dict[str, Any], scope: Scope, effective: Any, name: str) -> float | None:
    """TimeoutSeconds / HeartbeatSeconds (or their ``...Path`` forms); None when unset."""
    if name in spec:
        value = scope.expr(spec[name], name) if scope.jsonata else spec[name]
    elif f"{name}Path" in spec:
        value = paths.require(spec[f"{name}Path"], effective, scope.context, scope.variables)
    else:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise _runtime(f"The {name} value {java_str(value)} is not a positive integer")
    return float(value)
