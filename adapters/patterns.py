"""Event patterns: Lambda event filtering, EventBridge rules and SNS filter policies.

AWS gives all three one rule language, so one matcher serves them. This module is the
compiler and the public face: ``compile_pattern`` validates once, like EventBridge's
rule compiler, raising :class:`PatternError` with the offending path, and builds the
matcher tree of :mod:`.pattern_matching` (where the matching semantics are written
down); ``Pattern.matches`` then costs O(pattern size) per event (times the length of
any event array it walks). Callers import everything from here.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from . import pattern_matching as m
from .pattern_matching import Pattern, glob_match, lambda_filter_matches

__all__ = [
    "Pattern",
    "PatternError",
    "compile_pattern",
    "glob_match",
    "lambda_filter_matches",
    "sns_filter_matches",
]

MAX_PATTERN_LENGTH = 4096  # Lambda Filter.Pattern and EventBridge EventPattern: 4096 characters
SNS_MAX_POLICY_LENGTH = 256 * 1024  # "The maximum size of a filter policy is 256 KB"
MAX_DEPTH = 32  # objects nested in objects or $or: a local guard, not an AWS limit

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
    if m.is_num(value):
        return "a number"
    return _KINDS.get(type(value)) or ("an object" if isinstance(value, Mapping) else repr(value))


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


def _compile_obj(node: Mapping[str, Any], path: str, depth: int, in_or: bool) -> m.Obj:
    if depth > MAX_DEPTH:
        raise _err(path, f"nested deeper than {MAX_DEPTH} levels")
    if not node:
        raise _err(path, "empty objects are not allowed")
    fields: list[tuple[str, m.Obj | m.Leaf]] = []
    ors: list[list[m.Obj]] = []
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
    return m.Obj(fields, ors)


def _compile_or(value: Any, path: str, depth: int) -> list[m.Obj]:
    if not isinstance(value, list | tuple) or len(value) < 2:
        raise _err(path, "$or must be an array of at least 2 objects")
    branches = []
    for i, branch in enumerate(value):
        if not isinstance(branch, Mapping):
            raise _err(f"{path}[{i}]", f"$or array elements must be objects, got {_kind(branch)}")
        branches.append(_compile_obj(branch, f"{path}[{i}]", depth + 1, in_or=True))
    return branches


def _compile_leaf(items: Sequence[Any], path: str) -> m.Leaf:
    if not items:
        raise _err(path, "empty arrays are not allowed")
    leaf = m.Leaf()
    for i, item in enumerate(items):
        if item is None:
            leaf.null = True
        elif isinstance(item, bool):
            leaf.bools.add(item)
        elif isinstance(item, str):
            leaf.strs.add(item)
        elif m.is_num(item):
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


def _compile_operator(item: Mapping[str, Any], path: str, leaf: m.Leaf) -> None:
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


# Operator arguments: each builder validates its argument, then makes the predicate.


def _string(arg: Any, path: str, what: str) -> str:
    if not isinstance(arg, str):
        raise _err(path, f"{what} takes a string, got {_kind(arg)}")
    return arg


def _affix(op: str, arg: Any, path: str) -> m.Pred:
    if isinstance(arg, Mapping):
        inner, val = _single(arg, path, op)
        if inner != "equals-ignore-case":
            raise _err(_join(path, inner), f"{op} supports only equals-ignore-case inside")
        folded = _string(val, _join(path, inner), "equals-ignore-case").lower()
        return m.affix(op, folded, ignore_case=True)
    return m.affix(op, _string(arg, path, op))


def _ignore_case(arg: Any, path: str) -> m.Pred:
    return m.equals_ignore_case(_string(arg, path, "equals-ignore-case").lower())


def _wildcard_parts(arg: Any, path: str) -> tuple[str, ...]:
    """The literal pieces between ``*``s (``\\*`` and ``\\\\`` are literal): ``a*b`` is
    ``("a", "b")``, ``*a`` is ``("", "a")``."""
    text, parts = _string(arg, path, "wildcard"), [""]
    for found in re.finditer(r"\\(.?)|(\*)|[^\\*]+", text, re.DOTALL):
        if found[2] and text[found.end() : found.end() + 1] == "*":
            raise _err(path, f"wildcard: consecutive * at position {found.start()}")
        if found[2]:
            parts.append("")
        elif found[0].startswith("\\") and found[1] not in ("*", "\\"):
            raise _err(
                path, f"wildcard: backslash escapes only * and \\ (position {found.start()})"
            )
        else:
            parts[-1] += found[1] if found[0].startswith("\\") else found[0]
    return tuple(parts)


def _wildcard(arg: Any, path: str) -> m.Pred:
    return m.wildcard(_wildcard_parts(arg, path))


def _cidr(arg: Any, path: str) -> m.Pred:
    text = _string(arg, path, "cidr")
    try:
        if "/" not in text:
            raise ValueError("one '/' required")
        net = ipaddress.ip_network(text)
    except ValueError as exc:
        raise _err(path, f"malformed CIDR {text!r}: {exc}") from None
    return m.in_network(net)


_LOWER = {">": False, ">=": True}  # operator: bound included?
_UPPER = {"<": False, "<=": True}


def _numeric(arg: Any, path: str) -> m.Pred:
    terms = list(arg) if isinstance(arg, list | tuple) else []
    if len(terms) not in (2, 4):
        raise _err(path, 'numeric takes one or two operator/number pairs, like [">", 0, "<=", 5]')
    lo, lo_in, hi, hi_in = -math.inf, False, math.inf, False
    for i in range(0, len(terms), 2):
        op, num = terms[i], terms[i + 1]
        if not isinstance(op, str) or op not in {"=", *_LOWER, *_UPPER}:
            raise _err(f"{path}[{i}]", f"unrecognized numeric operator {op!r}")
        if not m.is_num(num):
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
    return m.numeric_range(lo, lo_in, hi, hi_in)


def _anything_but(arg: Any, path: str) -> m.Pred:
    if isinstance(arg, Mapping):
        return _anything_but_op(arg, path)
    values = list(arg) if isinstance(arg, list | tuple) else [arg]
    kinds = {str if isinstance(v, str) else float if m.is_num(v) else None for v in values}
    if kinds not in ({str}, {float}):
        raise _err(path, "anything-but takes a string, a number, or a list of only one of them")
    return m.anything_but(frozenset(values))


def _anything_but_op(arg: Mapping[str, Any], path: str) -> m.Pred:
    op, val = _single(arg, path, "anything-but")
    path = _join(path, op)
    texts = tuple(val) if isinstance(val, list | tuple) else (val,)
    if op not in {"prefix", "suffix", "equals-ignore-case", "wildcard"}:
        raise _err(path, "anything-but supports prefix, suffix, equals-ignore-case and wildcard")
    if not texts or not all(isinstance(t, str) for t in texts):
        raise _err(path, f"anything-but {op} takes a string or a non-empty list of strings")
    if op in {"prefix", "suffix"} and "" in texts:
        raise _err(path, f"anything-but {op} must not be empty")
    if op == "wildcard":
        return m.anything_but_wildcard([_wildcard_parts(t, path) for t in texts])
    if op == "equals-ignore-case":
        texts = tuple(t.lower() for t in texts)
    return m.anything_but_text(op, texts)


_BUILDERS: dict[str, Callable[[Any, str], m.Pred]] = {
    "prefix": functools.partial(_affix, "prefix"),
    "suffix": functools.partial(_affix, "suffix"),
    "equals-ignore-case": _ignore_case,
    "wildcard": _wildcard,
    "cidr": _cidr,
    "numeric": _numeric,
    "anything-but": _anything_but,
}


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
    must be a JSON object or nothing matches. An invalid policy raises PatternError.
    """
    text = policy if isinstance(policy, str) else json.dumps(policy, sort_keys=True)
    if text.strip() in ("", "{}"):
        return True
    compiled = _compile_sns(text, scope)
    if scope == "MessageBody":
        doc = m.loads_or_missing(body)
        return isinstance(doc, dict) and compiled.matches(doc)
    return compiled.matches(m.sns_attributes_event(attributes))


@functools.lru_cache(maxsize=512)
def _compile_sns(text: str, scope: str) -> Pattern:
    if scope not in ("MessageAttributes", "MessageBody"):
        raise PatternError(f"<root>: unknown FilterPolicyScope {scope!r}")
    pattern = compile_pattern(text, max_length=SNS_MAX_POLICY_LENGTH)
    if scope == "MessageAttributes" and pattern.nested():
        raise PatternError("<root>: nested filter policies need FilterPolicyScope MessageBody")
    return pattern
