"""A small vocabulary for what a property may hold, and the check that enforces it.

The three tiers of DESIGN.md ("The template (SAM)") are data: a mapping
shape lists the keys it *supports* (``fields``), the keys it accepts and
*ignores* with one warning line each (``ignored``, with the reason), and
keys it *refuses* with a specific reason (``refused``); every other key is an
error naming the nearest known key. Checking happens after intrinsics are
resolved, and coerces the way CloudFormation does: ``"30"`` is a fine
integer (a ``Ref`` to a ``Number`` parameter is a string), ``"true"`` a
fine boolean, ``30`` a fine string.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import Invalid, did_you_mean, show

Kind = Literal["str", "int", "num", "bool", "map", "list", "any", "union"]
Warn = Callable[[str, str], None]
"""Receives (property path, reason) for every ignored key met."""

ONLY_ON_AWS = "only matters on AWS"


@dataclass(frozen=True)
class Shape:
    kind: Kind
    required: bool = False
    fields: Mapping[str, Shape] | None = None
    """For a mapping: the supported keys. ``None``: keys are free (see ``values``)."""
    ignored: Mapping[str, str] = field(default_factory=dict)
    refused: Mapping[str, str] = field(default_factory=dict)
    values: Shape | None = None
    """Shape of each value of a free-keyed mapping, or of each list item."""
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    options: tuple[Shape, ...] = ()

    def known(self) -> list[str]:
        """Every key this mapping shape accepts in any tier (for suggestions)."""
        return [*(self.fields or {}), *self.ignored, *self.refused]


def Str(*choices: str, required: bool = False) -> Shape:
    return Shape("str", required=required, choices=choices)


def Int(low: float | None = None, high: float | None = None, required: bool = False) -> Shape:
    return Shape("int", required=required, low=low, high=high)


def Num(low: float | None = None, high: float | None = None, required: bool = False) -> Shape:
    return Shape("num", required=required, low=low, high=high)


def Bool(required: bool = False) -> Shape:
    return Shape("bool", required=required)


def Map(
    fields: Mapping[str, Shape] | None = None,
    *,
    ignored: Iterable[str] | Mapping[str, str] = (),
    refused: Mapping[str, str] | None = None,
    values: Shape | None = None,
    required: bool = False,
) -> Shape:
    reasons = dict(ignored) if isinstance(ignored, Mapping) else dict.fromkeys(ignored, ONLY_ON_AWS)
    return Shape("map", required, fields, reasons, dict(refused or {}), values)


def List(item: Shape | None = None, required: bool = False) -> Shape:
    return Shape("list", required=required, values=item)


def OneOf(*options: Shape, required: bool = False) -> Shape:
    return Shape("union", required=required, options=options)


def words(text: str) -> tuple[str, ...]:
    """Names written as one space-separated string: long name lists stay readable."""
    return tuple(text.split())


ANY = Shape("any")
REQUIRED_ANY = Shape("any", required=True)


def check(value: Any, shape: Shape, path: str, warn: Warn) -> Any:
    """``value`` coerced to ``shape``; raises :class:`Invalid` naming ``path``."""
    return _CHECKS[shape.kind](value, shape, path, warn)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _check_map(value: Any, shape: Shape, path: str, warn: Warn) -> Any:
    if not isinstance(value, dict):
        raise Invalid(path, f"expected a mapping, got {show(value)}")
    if shape.fields is None:
        if shape.values is None:
            return value
        return {k: check(v, shape.values, _join(path, k), warn) for k, v in value.items()}
    out: dict[str, Any] = {}
    for key, item in value.items():
        where = _join(path, key)
        if key in shape.fields:
            out[key] = check(item, shape.fields[key], where, warn)
        elif key in shape.ignored:
            warn(where, shape.ignored[key])
        elif key in shape.refused:
            raise Invalid(where, shape.refused[key])
        else:
            raise Invalid(where, "unknown property" + did_you_mean(str(key), shape.known()))
    for key, sub in shape.fields.items():
        if sub.required and key not in value:
            raise Invalid(_join(path, key), "required, but missing")
    return out


def _check_list(value: Any, shape: Shape, path: str, warn: Warn) -> Any:
    if not isinstance(value, list):
        raise Invalid(path, f"expected a list, got {show(value)}")
    if shape.values is None:
        return value
    return [check(item, shape.values, f"{path}[{i}]", warn) for i, item in enumerate(value)]


def _check_str(value: Any, shape: Shape, path: str, warn: Warn) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise Invalid(path, f"expected a string, got {show(value)}")
    if shape.choices and value not in shape.choices:
        raise Invalid(path, f"must be one of {', '.join(shape.choices)}; got {value!r}")
    return value


_INTEGER = re.compile(r"[-+]?\d{1,30}")
_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
"""Unambiguous (no nested or adjacent quantifiers over the same digits): linear on any input."""


def _check_int(value: Any, shape: Shape, path: str, warn: Warn) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise Invalid(path, f"expected an integer, got {show(value)}")
    _check_range(value, shape, path)
    return value


def _check_num(value: Any, shape: Shape, path: str, warn: Warn) -> float:
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise Invalid(path, f"expected a number, got {show(value)}")
    _check_range(value, shape, path)
    return float(value)


def _check_range(value: float, shape: Shape, path: str) -> None:
    low, high = shape.low, shape.high
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = (
            f"between {_num(low)} and {_num(high)}"
            if low is not None and high is not None
            else f"at least {_num(low)}"
            if low is not None
            else f"at most {_num(high)}"
        )
        raise Invalid(path, f"must be {bounds}, got {_num(value)}")


def _num(value: float | None) -> str:
    return str(int(value)) if value is not None and float(value).is_integer() else str(value)


def _check_bool(value: Any, shape: Shape, path: str, warn: Warn) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise Invalid(path, f"expected true or false, got {show(value)}")
    return value


def _check_any(value: Any, shape: Shape, path: str, warn: Warn) -> Any:
    return value


def _check_union(value: Any, shape: Shape, path: str, warn: Warn) -> Any:
    """The first option that accepts ``value``; warnings only from the one that did."""
    for option in shape.options:
        pending: list[tuple[str, str]] = []
        try:
            result = check(value, option, path, _collect(pending))
        except Invalid:
            continue
        for where, reason in pending:
            warn(where, reason)
        return result
    wanted = " or ".join(_KIND_NAMES[o.kind] for o in shape.options)
    raise Invalid(path, f"expected {wanted}, got {show(value)}")


def _collect(into: list[tuple[str, str]]) -> Warn:
    return lambda path, reason: into.append((path, reason))


_KIND_NAMES = {
    "str": "a string",
    "int": "an integer",
    "num": "a number",
    "bool": "true or false",
    "map": "a mapping",
    "list": "a list",
    "any": "anything",
    "union": "one of several",
}

_CHECKS: dict[str, Callable[[Any, Shape, str, Warn], Any]] = {
    "map": _check_map,
    "list": _check_list,
    "str": _check_str,
    "int": _check_int,
    "num": _check_num,
    "bool": _check_bool,
    "any": _check_any,
    "union": _check_union,
}
