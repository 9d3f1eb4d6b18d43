"""Event patterns: Lambda event filtering, EventBridge rules and SNS filter policies.

AWS gives all three one rule language, so one matcher serves them. ``compile_pattern``
validates once, like EventBridge's rule compiler, raising :class:`PatternError` with the
offending path; ``Pattern.matches`` then costs O(pattern size) per event (times the
length of any event array it walks). Semantics, per the EventBridge and Lambda docs and
the Event Ruler README: fields AND, a leaf array ORs its values, an event array matches
if any element does, and a sub-pattern over an array of objects must match within one
element. Exact numbers compare numerically (300 == 3.0e2) and never equal strings or
booleans; null and "" differ. ``exists`` looks at leaves only: a null leaf exists, an
object or an empty array does not. Other operators need a present leaf of their type,
except ``anything-but``, which matches any present leaf (null, other types) outside it.
"""

from __future__ import annotations

import base64
import binascii
import functools
import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "Pattern",
    "PatternError",
    "compile_pattern",
    "lambda_filter_matches",
    "sns_filter_matches",
]

MAX_PATTERN_LENGTH = 4096  # Lambda Filter.Pattern and EventBridge EventPattern: 4096 characters
SNS_MAX_POLICY_LENGTH = 256 * 1024  # "The maximum size of a filter policy is 256 KB"
MAX_DEPTH = 32  # objects nested in objects or $or: a local guard, not an AWS limit

_MISSING: Any = object()
_Pred = Callable[[Any], bool]
_KINDS = {
    type(None): "null",
    bool: "a boolean",
    str: "a string",
    list: "an array",
    tuple: "an array",
}


class PatternError(ValueError):
    """An invalid pattern; the one-line message starts with the path of the offending part."""


def _err(path: str, message: str) -> PatternError:
    return PatternError(f"{path or '<root>'}: {message}")


def _join(path: str, key: str) -> str:
    shown = key if key.isprintable() and key else json.dumps(key)
    return f"{path}.{shown}" if path else shown


def _kind(value: Any) -> str:
    if _is_num(value):
        return "a number"
    return _KINDS.get(type(value)) or ("an object" if isinstance(value, Mapping) else repr(value))


def _is_num(v: Any) -> bool:
    return type(v) is int or type(v) is float  # bool is not a number here


def _loads(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return _MISSING


def _flatten(value: Any, leaves: list[Any], objects: list[Any]) -> None:
    """Split a (nested) event array into its scalar leaves and its objects."""
    for item in value:
        if isinstance(item, list | tuple):
            _flatten(item, leaves, objects)
        else:
            (objects if isinstance(item, Mapping) else leaves).append(item)


class _Leaf:
    __slots__ = ("absent", "bools", "null", "nums", "preds", "present", "strs")

    def __init__(self) -> None:
        self.strs: set[str] = set()
        self.nums: set[int | float] = set()  # hash(300) == hash(300.0): numeric equality
        self.bools: set[bool] = set()
        self.null = self.present = self.absent = False  # [null], exists true, exists false
        self.preds: list[_Pred] = []

    def match(self, value: Any) -> bool:
        values: list[Any] = []
        if isinstance(value, list | tuple):
            _flatten(value, values, [])
        elif value is not _MISSING and not isinstance(value, Mapping):
            values.append(value)
        if not values:
            return self.absent
        return self.present or any(self._one(v) for v in values)

    def _one(self, v: Any) -> bool:
        if isinstance(v, str):
            hit = v in self.strs
        elif isinstance(v, bool):
            hit = v in self.bools
        else:
            hit = v in self.nums if _is_num(v) else v is None and self.null
        return hit or any(pred(v) for pred in self.preds)


class _Obj:
    __slots__ = ("fields", "ors")

    def __init__(self, fields: list[tuple[str, _Obj | _Leaf]], ors: list[list[_Obj]]) -> None:
        self.fields = tuple(fields)
        self.ors = tuple(tuple(branches) for branches in ors)

    def match(self, value: Any) -> bool:
        if isinstance(value, list | tuple):
            objects: list[Any] = []
            _flatten(value, [], objects)
            if objects:  # array consistency: the whole sub-pattern within one element
                return any(self.match(obj) for obj in objects)
        if not isinstance(value, Mapping):
            value = {}
        if not all(child.match(value.get(key, _MISSING)) for key, child in self.fields):
            return False
        return all(any(b.match(value) for b in branches) for branches in self.ors)

    def shapes(self, key: str) -> set[str]:
        found = {"object" if isinstance(c, _Obj) else "leaf" for k, c in self.fields if k == key}
        return found.union(*(b.shapes(key) for bs in self.ors for b in bs))

    def nested(self) -> bool:
        return any(isinstance(c, _Obj) for _, c in self.fields) or any(
            b.nested() for bs in self.ors for b in bs
        )


class Pattern:
    """A compiled pattern; immutable, so safe to share between threads."""

    __slots__ = ("_root", "source")

    def __init__(self, root: _Obj, source: Mapping[str, Any]) -> None:
        self._root, self.source = root, source

    def matches(self, event: Mapping[str, Any]) -> bool:
        return self._root.match(event)

    def field_shapes(self, key: str) -> frozenset[str]:
        """How the top level (with its ``$or`` branches) uses ``key``: "object" and/or "leaf"."""
        return frozenset(self._root.shapes(key))


def compile_pattern(
    pattern: Mapping[str, Any] | str, *, max_length: int = MAX_PATTERN_LENGTH
) -> Pattern:
    """Validate ``pattern`` (a dict or its JSON text) and compile it for matching."""
    if isinstance(pattern, str):
        if len(pattern) > max_length:
            raise _err("", f"pattern is {len(pattern)} characters, over the {max_length} limit")
        try:
            pattern = json.loads(pattern)
        except (ValueError, RecursionError) as exc:
            raise _err("", f"not valid JSON: {exc}") from None
    if not isinstance(pattern, Mapping):
        raise _err("", f"a pattern must be a JSON object, got {_kind(pattern)}")
    root = _compile_obj(pattern, "", 1, in_or=False)
    size = len(json.dumps(pattern, separators=(",", ":"), ensure_ascii=False, default=dict))
    if size > max_length:
        raise _err("", f"pattern is {size} characters, over the {max_length} limit")
    return Pattern(root, pattern)


def _compile_obj(node: Mapping[str, Any], path: str, depth: int, in_or: bool) -> _Obj:
    if depth > MAX_DEPTH:
        raise _err(path, f"nested deeper than {MAX_DEPTH} levels")
    if not node:
        raise _err(path, "empty objects are not allowed")
    fields: list[tuple[str, _Obj | _Leaf]] = []
    ors: list[list[_Obj]] = []
    for key, value in node.items():
        if not isinstance(key, str):
            raise _err(path, f"field names must be strings, got {key!r}")
        sub = _join(path, key)
        if key == "$or":
            ors.append(_compile_or(value, sub, depth))
        elif in_or and (key in _BUILDERS or key == "exists"):
            raise _err(sub, f"{key!r} is an operator, so cannot be a field name inside $or")
        elif isinstance(value, Mapping):
            fields.append((key, _compile_obj(value, sub, depth + 1, in_or)))
        elif isinstance(value, list | tuple):
            fields.append((key, _compile_leaf(value, sub)))
        else:
            raise _err(sub, f"must be an object or an array, got {_kind(value)}")
    return _Obj(fields, ors)


def _compile_or(value: Any, path: str, depth: int) -> list[_Obj]:
    if not isinstance(value, list | tuple) or len(value) < 2:
        raise _err(path, "$or must be an array of at least 2 objects")
    branches = []
    for i, branch in enumerate(value):
        if not isinstance(branch, Mapping):
            raise _err(f"{path}[{i}]", f"$or array elements must be objects, got {_kind(branch)}")
        branches.append(_compile_obj(branch, f"{path}[{i}]", depth + 1, in_or=True))
    return branches


def _compile_leaf(items: Sequence[Any], path: str) -> _Leaf:
    if not items:
        raise _err(path, "empty arrays are not allowed")
    leaf = _Leaf()
    for i, item in enumerate(items):
        if item is None:
            leaf.null = True
        elif isinstance(item, bool):
            leaf.bools.add(item)
        elif isinstance(item, str):
            leaf.strs.add(item)
        elif _is_num(item):
            leaf.nums.add(item)
        elif isinstance(item, Mapping):
            _compile_operator(item, f"{path}[{i}]", leaf)
        else:
            raise _err(f"{path}[{i}]", "values must be strings, numbers, true, false, null or {}")
    return leaf


def _single(obj: Mapping[str, Any], path: str, what: str) -> tuple[str, Any]:
    if len(obj) != 1:
        raise _err(path, f"{what} must have exactly one key, got {len(obj)}")
    ((key, value),) = obj.items()
    return str(key), value


def _compile_operator(item: Mapping[str, Any], path: str, leaf: _Leaf) -> None:
    op, arg = _single(item, path, "a match expression")
    if op == "exists":
        if not isinstance(arg, bool):
            raise _err(_join(path, op), f"exists takes true or false, got {_kind(arg)}")
        leaf.present, leaf.absent = leaf.present or arg, leaf.absent or not arg
    elif op in _BUILDERS:
        leaf.preds.append(_BUILDERS[op](arg, _join(path, op)))
    else:
        known = ", ".join(sorted([*_BUILDERS, "exists"]))
        raise _err(path, f"unrecognized match type {op!r} (known: {known})")


def _string(arg: Any, path: str, what: str) -> str:
    if not isinstance(arg, str):
        raise _err(path, f"{what} takes a string, got {_kind(arg)}")
    return arg


def _affix(op: str, arg: Any, path: str) -> _Pred:
    test = str.startswith if op == "prefix" else str.endswith
    if isinstance(arg, Mapping):
        inner, val = _single(arg, path, op)
        if inner != "equals-ignore-case":
            raise _err(_join(path, inner), f"{op} supports only equals-ignore-case inside")
        folded = _string(val, _join(path, inner), "equals-ignore-case").lower()
        return lambda v: isinstance(v, str) and test(v.lower(), folded)
    text = _string(arg, path, op)
    return lambda v: isinstance(v, str) and test(v, text)


def _ignore_case(arg: Any, path: str) -> _Pred:
    folded = _string(arg, path, "equals-ignore-case").lower()
    return lambda v: isinstance(v, str) and v.lower() == folded


def _wildcard_parts(arg: Any, path: str) -> tuple[str, ...]:
    """The literal pieces between ``*``s (``\\*`` and ``\\\\`` are literal): ``a*b`` is
    ``("a", "b")``, ``*a`` is ``("", "a")``."""
    text, parts = _string(arg, path, "wildcard"), [""]
    for m in re.finditer(r"\\(.?)|(\*)|[^\\*]+", text, re.DOTALL):
        if m[2] and text[m.end() : m.end() + 1] == "*":
            raise _err(path, f"wildcard: consecutive * at position {m.start()}")
        if m[2]:
            parts.append("")
        elif m[0].startswith("\\") and m[1] not in ("*", "\\"):
            raise _err(path, f"wildcard: backslash escapes only * and \\ (position {m.start()})")
        else:
            parts[-1] += m[1] if m[0].startswith("\\") else m[0]
    return tuple(parts)


def glob_match(parts: tuple[str, ...], value: str) -> bool:
    """Whether ``value`` is the pieces with anything between them, in linear time.

    No regex: ``a.*b.*c`` backtracks polynomially, and a client chooses ``value``
    (PutEvents details, SQS bodies), so one small event could stall the process.
    Taking each middle piece at its earliest place is right for ``*``-only globs.
    """
    if len(parts) == 1:
        return value == parts[0]
    first, *middle, last = parts
    if len(value) < len(first) + len(last) or not value.startswith(first):
        return False
    at, end = len(first), len(value) - len(last)
    for piece in middle:
        at = value.find(piece, at, end)
        if at < 0:
            return False
        at += len(piece)
    return value.endswith(last)


def _wildcard(arg: Any, path: str) -> _Pred:
    parts = _wildcard_parts(arg, path)
    return lambda v: isinstance(v, str) and glob_match(parts, v)


def _cidr(arg: Any, path: str) -> _Pred:
    text = _string(arg, path, "cidr")
    try:
        if "/" not in text:
            raise ValueError("one '/' required")
        net = ipaddress.ip_network(text)
    except ValueError as exc:
        raise _err(path, f"malformed CIDR {text!r}: {exc}") from None

    def pred(v: Any) -> bool:
        try:
            return isinstance(v, str) and ipaddress.ip_address(v) in net
        except ValueError:
            return False

    return pred


_LOWER = {">": False, ">=": True}  # operator: bound included?
_UPPER = {"<": False, "<=": True}


def _numeric(arg: Any, path: str) -> _Pred:
    terms = list(arg) if isinstance(arg, list | tuple) else []
    if len(terms) not in (2, 4):
        raise _err(path, 'numeric takes one or two operator/number pairs, like [">", 0, "<=", 5]')
    lo, lo_in, hi, hi_in = -math.inf, False, math.inf, False
    for i in range(0, len(terms), 2):
        op, num = terms[i], terms[i + 1]
        if not isinstance(op, str) or op not in {"=", *_LOWER, *_UPPER}:
            raise _err(f"{path}[{i}]", f"unrecognized numeric operator {op!r}")
        if not _is_num(num):
            raise _err(f"{path}[{i + 1}]", f"value of {op} must be a number, got {_kind(num)}")
        if i == 2 and (terms[0] not in _LOWER or op not in _UPPER):
            raise _err(path, "a range is a lower bound (> or >=) then an upper one (< or <=)")
        if op == "=":
            lo, lo_in, hi, hi_in = num, True, num, True
        elif op in _LOWER:
            lo, lo_in = num, _LOWER[op]
        else:
            hi, hi_in = num, _UPPER[op]
    if not lo <= hi or (lo == hi and len(terms) == 4):
        raise _err(path, f"bottom {lo} must be less than top {hi}")
    above = (lambda v: v >= lo) if lo_in else (lambda v: v > lo)
    below = (lambda v: v <= hi) if hi_in else (lambda v: v < hi)
    return lambda v: _is_num(v) and above(v) and below(v)


def _anything_but(arg: Any, path: str) -> _Pred:
    if isinstance(arg, Mapping):
        return _anything_but_op(arg, path)
    values = list(arg) if isinstance(arg, list | tuple) else [arg]
    kinds = {str if isinstance(v, str) else float if _is_num(v) else None for v in values}
    if kinds not in ({str}, {float}):
        raise _err(path, "anything-but takes a string, a number, or a list of only one of them")
    excluded = set(values)  # "1" != 1, and _is_num keeps True from equalling 1
    return lambda v: not ((isinstance(v, str) or _is_num(v)) and v in excluded)


def _anything_but_op(arg: Mapping[str, Any], path: str) -> _Pred:
    op, val = _single(arg, path, "anything-but")
    path = _join(path, op)
    texts = tuple(val) if isinstance(val, list | tuple) else (val,)
    if op not in {"prefix", "suffix", "equals-ignore-case", "wildcard"}:
        raise _err(path, "anything-but supports prefix, suffix, equals-ignore-case and wildcard")
    if not texts or not all(isinstance(t, str) for t in texts):
        raise _err(path, f"anything-but {op} takes a string or a non-empty list of strings")
    if op in {"prefix", "suffix"} and "" in texts:
        raise _err(path, f"anything-but {op} must not be empty")
    if op == "prefix":
        return lambda v: not (isinstance(v, str) and v.startswith(texts))
    if op == "suffix":
        return lambda v: not (isinstance(v, str) and v.endswith(texts))
    if op == "equals-ignore-case":
        folded = {t.lower() for t in texts}
        return lambda v: not (isinstance(v, str) and v.lower() in folded)
    globs = [_wildcard_parts(t, path) for t in texts]
    return lambda v: not (isinstance(v, str) and any(glob_match(g, v) for g in globs))


_BUILDERS: dict[str, Callable[[Any, str], _Pred]] = {
    "prefix": functools.partial(_affix, "prefix"),
    "suffix": functools.partial(_affix, "suffix"),
    "equals-ignore-case": _ignore_case,
    "wildcard": _wildcard,
    "cidr": _cidr,
    "numeric": _numeric,
    "anything-but": _anything_but,
}


def lambda_filter_matches(
    filters: Sequence[Pattern],
    record: Mapping[str, Any],
    *,
    body_field: str | None,
    body_base64: bool | None = None,
) -> bool:
    """Lambda FilterCriteria: does ``record`` pass any of ``filters`` (none: no filtering)?

    ``body_field`` names the data key: "body" for SQS, "data" for Kinesis and MQ, whose
    data is base64 (``body_base64`` defaults to ``body_field == "data"``). A body that
    decodes to a JSON object or array is matched as that document, any other as text.
    As Lambda documents, a filter with an object pattern for the body drops a text body,
    one with an array (plain string) pattern drops a JSON body, and a filter that does
    not mention the body filters on the other fields only.
    """
    if not filters:
        return True
    if body_field is None or body_field not in record:
        return any(f.matches(record) for f in filters)
    b64 = body_field == "data" if body_base64 is None else body_base64
    is_json, body = _decode_body(record[body_field], b64)
    event = {**record, body_field: body}
    for pattern in filters:
        shapes = pattern.field_shapes(body_field)
        if shapes and ("leaf" if is_json else "object") in shapes:
            continue  # body and pattern formats differ: Lambda drops the record
        if pattern.matches(event):
            return True
    return False


def _decode_body(raw: Any, b64: bool) -> tuple[bool, Any]:
    if not isinstance(raw, str | bytes):
        return isinstance(raw, Mapping | list), raw  # already a document (DynamoDB)
    text: Any = raw
    try:
        text = base64.b64decode(raw, validate=True) if b64 else raw
        text = text.decode() if isinstance(text, bytes) else text
    except (binascii.Error, ValueError):  # not base64 or not UTF-8: match the raw text
        text = raw
    doc = _loads(text)
    return (True, doc) if isinstance(doc, dict | list) else (False, text)


def sns_filter_matches(
    policy: Mapping[str, Any] | str,
    attributes: Mapping[str, Any] | None,
    body: str | None,
    scope: str = "MessageAttributes",
) -> bool:
    """SNS FilterPolicy: does the message pass? An empty policy passes everything.

    ``attributes`` maps names to ``{"Type": ..., "Value": ...}`` (or the API's ``DataType``
    and ``StringValue``): Binary ones are ignored, Number ones compare numerically, and
    String.Array and Number.Array match element-wise. With scope MessageBody, the body
    must be a JSON object or nothing matches.
    """
    text = policy if isinstance(policy, str) else json.dumps(policy, sort_keys=True)
    if text.strip() in ("", "{}"):
        return True
    compiled = _compile_sns(text, scope)
    if scope == "MessageBody":
        doc = _loads(body)
        return isinstance(doc, dict) and compiled.matches(doc)
    values = {name: _sns_attribute(attr) for name, attr in (attributes or {}).items()}
    return compiled.matches({k: v for k, v in values.items() if v is not _MISSING})


@functools.lru_cache(maxsize=512)
def _compile_sns(text: str, scope: str) -> Pattern:
    if scope not in ("MessageAttributes", "MessageBody"):
        raise PatternError(f"<root>: unknown FilterPolicyScope {scope!r}")
    pattern = compile_pattern(text, max_length=SNS_MAX_POLICY_LENGTH)
    if scope == "MessageAttributes" and pattern._root.nested():
        raise PatternError("<root>: nested filter policies need FilterPolicyScope MessageBody")
    return pattern


def _sns_attribute(attr: Any) -> Any:
    if not isinstance(attr, Mapping):
        return attr
    kind = str(attr.get("Type", attr.get("DataType", "String")))
    value = attr.get("Value", attr.get("StringValue"))
    if kind.startswith("Binary") or value is None:
        return _MISSING
    if not isinstance(value, str) or not kind.startswith(("Number", "String.Array")):
        return value
    parsed = _loads(value)
    if kind.endswith(".Array"):
        return parsed if isinstance(parsed, list) else value
    return parsed if _is_num(parsed) else value
