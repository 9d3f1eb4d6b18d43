"""Template ``Parameters``: declared types, defaults, constraints and overrides.

Values are what CloudFormation's ``Ref`` gives: strings (a ``Number`` too —
CloudFormation validates it as a number but hands it on as a string) or, for
the list types, lists of strings. Overrides come from the command line as
strings (``--parameter-overrides Env=prod``), as with ``sam deploy``; naming a
parameter the template doesn't declare is an error, not silently ignored,
because it is almost always a typo.

``AWS::SSM::Parameter::Value<…>`` parameters resolve to the parameter's *name*
(their Default or override): lambdabus doesn't read SSM at load time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .errors import Invalid, did_you_mean, show
from .schema import PARAMETER_SCHEMA
from .shapes import check

SIMPLE_TYPES = frozenset({"String", "Number", "CommaDelimitedList", "List<Number>"})
_NAME = re.compile(r"[A-Za-z0-9]+")


def resolve_parameters(declared: Any, overrides: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """Each parameter's value, from its override or its Default, checked against its rules."""
    if declared is None:
        declared = {}
    if not isinstance(declared, dict):
        raise Invalid("-", f"expected a mapping, got {show(declared)}", "Parameters")
    for name in overrides:
        if name not in declared:
            hint = did_you_mean(str(name), declared)
            raise Invalid(
                str(name), f"no such parameter (given as an override){hint}", "Parameters"
            )
    values: dict[str, str | list[str]] = {}
    for name, spec in declared.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise Invalid(str(name), "a parameter name must be alphanumeric", "Parameters")
        try:
            values[name] = _value(name, spec, overrides)
        except Invalid as exc:
            exc.prop = f"{name}.{exc.prop}" if exc.prop else name
            exc.resource = "Parameters"
            raise
    return values


def _value(name: str, raw_spec: Any, overrides: Mapping[str, Any]) -> str | list[str]:
    spec = check(raw_spec, PARAMETER_SCHEMA, "", lambda path, reason: None)
    kind = spec["Type"]
    if kind not in SIMPLE_TYPES and not kind.startswith(("AWS::", "List<AWS::")):
        raise Invalid("Type", f"unknown parameter type {kind!r}")
    if name in overrides:
        raw = overrides[name]
    elif "Default" in spec:
        raw = spec["Default"]
    else:
        raise Invalid("", "no value: give it a Default or a parameter override")
    text = _text(raw)
    is_list = kind in ("CommaDelimitedList", "List<Number>") or kind.startswith("List<")
    items = text.split(",") if is_list else [text]
    for item in items:
        _check_item(item, kind, spec)
    return items if is_list else text


def _text(raw: Any) -> str:
    """A Default may be written as a YAML number, boolean or list; CloudFormation sees text."""
    if isinstance(raw, list):
        return ",".join(_text(item) for item in raw)
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, str | int | float):
        return str(raw)
    raise Invalid("", f"value must be a string, got {show(raw)}")


def _check_item(item: str, kind: str, spec: Mapping[str, Any]) -> None:
    allowed = spec.get("AllowedValues")
    if allowed is not None and item not in [_text(a) for a in allowed]:
        shown = ", ".join(_text(a) for a in allowed)
        raise Invalid("", f"{item!r} is not one of the AllowedValues ({shown})")
    if kind in ("Number", "List<Number>"):
        try:
            number = float(item)
        except ValueError:
            raise Invalid("", f"{item!r} is not a number") from None
        if "MinValue" in spec and number < spec["MinValue"]:
            raise Invalid("", f"{item} is below MinValue {spec['MinValue']:g}")
        if "MaxValue" in spec and number > spec["MaxValue"]:
            raise Invalid("", f"{item} is above MaxValue {spec['MaxValue']:g}")
        return
    if "MinLength" in spec and len(item) < spec["MinLength"]:
        raise Invalid("", f"{item!r} is shorter than MinLength {spec['MinLength']}")
    if "MaxLength" in spec and len(item) > spec["MaxLength"]:
        raise Invalid("", f"{item!r} is longer than MaxLength {spec['MaxLength']}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None:
        try:
            matched = re.fullmatch(pattern, item)
        except re.error as exc:
            raise Invalid("AllowedPattern", f"not a valid pattern: {exc}") from None
        if not matched:
            raise Invalid("", f"{item!r} does not match AllowedPattern {pattern!r}")
