"""What a rule's target receives: the event, ``Input``, ``InputPath`` or ``InputTransformer``.

Compiled once when the template loads (so a bad path or template is a one-line
load error), applied per matched event as pure functions. Paths are evaluated
with jsonpath-ng; EventBridge documents dot notation, dashes, underscores,
array indices and ``*`` wildcards, which it parses. A path with a wildcard
yields the list of its matches, any other path its single value.

``InputTemplate`` follows AWS's "Amazon EventBridge input transformation":

- A template that is JSON once its placeholders are filled is *JSON mode*: a
  placeholder outside quotes becomes the value as JSON (a string quoted), one
  inside a quoted string becomes the value's text — objects and arrays with
  their inner quotes removed, as AWS does. The result is parsed and delivered
  as that JSON value (a quoted template delivers a string).
- Any other template is *text mode*: every placeholder becomes its value's
  text, and the handler receives the resulting string.
- A path that matches nothing leaves its variable undefined: ``null`` outside
  quotes, nothing inside them.
- Predefined variables: ``aws.events.rule-arn``, ``aws.events.rule-name``,
  ``aws.events.event.ingestion-time``, ``aws.events.event`` (the event without
  ``detail``) and ``aws.events.event.json`` (the whole event); the last two only
  as a JSON value, never inside a string.

Deviation, deliberately: AWS does not escape values it puts inside quoted
strings, so a value holding ``"`` yields invalid JSON there; we escape them, so
the output is always valid JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jsonpath_ng import JSONPath
from jsonpath_ng import parse as jsonpath_parse

MAX_PATHS = 100
MAX_PATH_LENGTH = 256
MAX_INPUT_LENGTH = 8192
"""``Input`` and ``InputTemplate``: at most 8192 characters (PutTargets)."""
RESERVED = ("aws.events.rule-arn", "aws.events.rule-name", "aws.events.event.ingestion-time",
            "aws.events.event", "aws.events.event.json")  # fmt: skip
JSON_ONLY = frozenset({"aws.events.event", "aws.events.event.json"})
_KEY = re.compile(r"[A-Za-z0-9_\-]{1,256}")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_UNDEFINED: Any = object()


class InputError(ValueError):
    """A bad target-input setting: ``prop`` names the property, the message says what is wrong."""

    def __init__(self, prop: str, message: str) -> None:
        super().__init__(f"{prop}: {message}")
        self.prop = prop
        self.message = message


@dataclass(frozen=True)
class RuleContext:
    """What the predefined variables say about one delivery."""

    rule_name: str
    rule_arn: str
    ingestion_time: str
    """ISO 8601, when the edge accepted the event."""


@dataclass(frozen=True)
class _Path:
    text: str
    expr: JSONPath
    many: bool

    def value(self, event: Any) -> Any:
        found = [m.value for m in self.expr.find(event)]
        if self.many:
            return found
        return found[0] if found else _UNDEFINED


def compile_path(text: Any, prop: str) -> _Path:
    if not isinstance(text, str) or not text.startswith("$"):
        raise InputError(prop, f"expected a JSON path starting with $, got {text!r}")
    if len(text) > MAX_PATH_LENGTH:
        raise InputError(prop, f"JSON path is {len(text)} characters, over {MAX_PATH_LENGTH}")
    try:
        expr = jsonpath_parse(text)
    except Exception as exc:  # jsonpath-ng raises lexer, parser and plain Exceptions
        raise InputError(prop, f"not a valid JSON path {text!r}: {exc}") from None
    return _Path(text, expr, "*" in text)


@dataclass(frozen=True)
class _Slot:
    name: str
    in_string: bool


@dataclass(frozen=True)
class InputTemplate:
    parts: tuple[str | _Slot, ...]
    json_mode: bool
    paths: Mapping[str, _Path]

    def render(self, event: Mapping[str, Any], ctx: RuleContext) -> Any:
        values = {name: path.value(event) for name, path in self.paths.items()}
        values.update(_reserved(event, ctx))
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(_fill(values.get(part.name, _UNDEFINED), part.in_string, self.json_mode))
        text = "".join(out)
        return json.loads(text) if self.json_mode else text


def _reserved(event: Mapping[str, Any], ctx: RuleContext) -> dict[str, Any]:
    return {
        "aws.events.rule-arn": ctx.rule_arn,
        "aws.events.rule-name": ctx.rule_name,
        "aws.events.event.ingestion-time": ctx.ingestion_time,
        "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
        "aws.events.event.json": event,
    }


def _fill(value: Any, in_string: bool, json_mode: bool) -> str:
    if value is _UNDEFINED:
        return "" if in_string or not json_mode else "null"
    if not in_string and json_mode:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace('"', "")
    else:
        text = json.dumps(value)
    return json.dumps(text, ensure_ascii=False)[1:-1] if json_mode else text


def _split(template: str) -> list[str | _Slot]:
    """Literal text and placeholders, each placeholder knowing whether it sits in quotes."""
    parts: list[str | _Slot] = []
    in_string = escaped = False
    literal: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        m = _PLACEHOLDER.match(template, i) if ch == "<" else None
        if m is not None:
            parts.append("".join(literal))
            literal = []
            parts.append(_Slot(m[1], in_string))
            i = m.end()
            continue
        literal.append(ch)
        if escaped:
            escaped = False
        elif ch == "\\" and in_string:
            escaped = True
        elif ch == '"':
            in_string = not in_string
        i += 1
    parts.append("".join(literal))
    return [p for p in parts if p != ""]


def compile_template(transformer: Any, prop: str = "InputTransformer") -> InputTemplate:
    """Check an ``InputTransformer`` as PutTargets would, and prepare it for rendering."""
    if not isinstance(transformer, Mapping):
        raise InputError(prop, "must be a mapping with InputTemplate and InputPathsMap")
    template = transformer.get("InputTemplate")
    where = f"{prop}.InputTemplate"
    if not isinstance(template, str) or not template:
        raise InputError(where, "a non-empty string is required")
    if len(template) > MAX_INPUT_LENGTH:
        raise InputError(where, f"{len(template)} characters, over {MAX_INPUT_LENGTH}")
    paths_map = transformer.get("InputPathsMap") or {}
    if not isinstance(paths_map, Mapping):
        raise InputError(f"{prop}.InputPathsMap", "must be a mapping of names to JSON paths")
    if len(paths_map) > MAX_PATHS:
        raise InputError(f"{prop}.InputPathsMap", f"{len(paths_map)} variables, over {MAX_PATHS}")
    paths: dict[str, _Path] = {}
    for key, path in paths_map.items():
        at = f"{prop}.InputPathsMap.{key}"
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InputError(at, "variable names are letters, digits, _ and - (1-256 characters)")
        paths[key] = compile_path(path, at)
    parts = _split(template)
    slots = [p for p in parts if isinstance(p, _Slot)]
    for slot in slots:
        if slot.name not in paths and slot.name not in RESERVED:
            raise InputError(where, f"<{slot.name}> is not defined in InputPathsMap")
    dummy = "".join(p if isinstance(p, str) else ("" if p.in_string else "null") for p in parts)
    json_mode = _is_json(dummy)
    if not json_mode and dummy.lstrip()[:1] in ("{", "["):
        raise InputError(
            where, "looks like JSON but is not valid JSON with its placeholders filled"
        )
    for slot in slots:
        if json_mode and slot.in_string and slot.name in JSON_ONLY:
            raise InputError(where, f"<{slot.name}> can only be a JSON value, not inside a string")
    if json_mode:
        _check_no_placeholder_keys(parts, where)
    return InputTemplate(tuple(parts), json_mode, paths)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _check_no_placeholder_keys(parts: list[str | _Slot], where: str) -> None:
    """AWS: "the placeholder cannot be used as an object key"."""
    for i, part in enumerate(parts):
        if isinstance(part, _Slot) and part.in_string:
            rest = "".join(p for p in parts[i + 1 :] if isinstance(p, str))
            closing = _string_end(rest)
            if closing is not None and rest[closing + 1 :].lstrip().startswith(":"):
                raise InputError(where, f"<{part.name}> cannot be used as an object key")


def _string_end(text: str) -> int | None:
    escaped = False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            return i
    return None


@dataclass(frozen=True)
class TargetInput:
    """One target's input setting; ``apply`` gives what the function receives."""

    kind: str
    """``event`` (the whole event), ``Input``, ``InputPath`` or ``InputTransformer``."""
    constant: Any = None
    path: _Path | None = None
    template: InputTemplate | None = None

    def apply(self, event: Mapping[str, Any], ctx: RuleContext) -> Any:
        if self.kind == "Input":
            return self.constant
        if self.path is not None:
            value = self.path.value(event)
            return None if value is _UNDEFINED else value
        if self.template is not None:
            return self.template.render(event, ctx)
        return event


WHOLE_EVENT = TargetInput("event")


def compile_input(props: Mapping[str, Any]) -> TargetInput:
    """The input setting of an ``EventBridgeRule``/``CloudWatchEvent``; at most one is allowed."""
    given = [k for k in ("Input", "InputPath", "InputTransformer") if props.get(k) is not None]
    if len(given) > 1:
        raise InputError(given[1], f"only one of Input, InputPath, InputTransformer; got {given}")
    if not given:
        return WHOLE_EVENT
    kind = given[0]
    value = props[kind]
    if kind == "Input":
        if not isinstance(value, str) or len(value) > MAX_INPUT_LENGTH:
            raise InputError(kind, f"must be JSON text of at most {MAX_INPUT_LENGTH} characters")
        try:
            return TargetInput(kind, constant=json.loads(value))
        except ValueError as exc:
            raise InputError(kind, f"not valid JSON: {exc}") from None
    if kind == "InputPath":
        return TargetInput(kind, path=compile_path(value, kind))
    return TargetInput(kind, template=compile_template(value))
