"""The ``States.*`` intrinsic functions of JSONPath states: parser and evaluator.

String literals take the escapes AWS documents (``\\'``, ``\\{``, ``\\}``,
``\\\\``); an escaped brace is kept as a private-use placeholder until
``States.Format`` has looked for ``{}``, so ``\\{literal\\}`` is never a
placeholder. Values render in ``States.Format`` the way AWS's Java runtime
prints them (objects as ``{k=v, ...}``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from . import paths
from .errors import INTRINSIC_FAILURE, RUNTIME, StatesError

_LB, _RB = "\ue000", "\ue001"


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Lit:
    value: Any


@dataclass(frozen=True)
class PathArg:
    text: str


class IntrinsicSyntaxError(ValueError):
    pass


def looks_intrinsic(text: str) -> bool:
    return isinstance(text, str) and text.startswith("States.")


def parse(text: str) -> Call:
    node, i = _call(text, 0)
    if text[i:].strip():
        raise IntrinsicSyntaxError(f"{text!r}: unexpected text after the call")
    return node


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _call(text: str, i: int) -> tuple[Call, int]:
    i = _skip(text, i)
    open_at = text.find("(", i)
    if open_at < 0:
        raise IntrinsicSyntaxError(f"{text!r}: missing '('")
    name = text[i:open_at].strip()
    if not name.startswith("States.") or name[7:] not in FUNCTIONS:
        raise IntrinsicSyntaxError(f"{text!r}: unknown intrinsic function {name!r}")
    i = _skip(text, open_at + 1)
    args: list[Any] = []
    if i < len(text) and text[i] == ")":
        return Call(name[7:], ()), i + 1
    while True:
        arg, i = _arg(text, i)
        args.append(arg)
        i = _skip(text, i)
        if i >= len(text):
            raise IntrinsicSyntaxError(f"{text!r}: missing ')'")
        if text[i] == ")":
            return Call(name[7:], tuple(args)), i + 1
        if text[i] != ",":
            raise IntrinsicSyntaxError(f"{text!r}: expected ',' at position {i}")
        i = _skip(text, i + 1)


def _arg(text: str, i: int) -> tuple[Any, int]:
    i = _skip(text, i)
    if i >= len(text):
        raise IntrinsicSyntaxError(f"{text!r}: missing argument")
    c = text[i]
    if c == "'":
        out, j = "", i + 1
        while j < len(text):
            ch = text[j]
            if ch == "\\" and j + 1 < len(text):
                nxt = text[j + 1]
                out += _LB if nxt == "{" else _RB if nxt == "}" else nxt
                j += 2
                continue
            if ch == "'":
                return Lit(out), j + 1
            out += ch
            j += 1
        raise IntrinsicSyntaxError(f"{text!r}: unterminated string")
    if c == "$":
        j, depth, quote = i, 0, None
        while j < len(text):
            ch = text[j]
            if quote:
                if ch == "\\":
                    j += 1
                elif ch == quote:
                    quote = None
            elif ch in "'\"":
                quote = ch
            elif ch in "([":
                depth += 1
            elif ch in ")]":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                break
            j += 1
        ptext = text[i:j].strip()
        try:
            paths.parse(ptext)
        except paths.PathSyntaxError as exc:
            raise IntrinsicSyntaxError(str(exc)) from None
        return PathArg(ptext), j
    if text.startswith("States.", i):
        return _call(text, i)
    j = i
    while j < len(text) and text[j] not in ",)":
        j += 1
    tok = text[i:j].strip()
    if tok in ("null", "true", "false"):
        return Lit({"null": None, "true": True, "false": False}[tok]), j
    try:
        return Lit(float(tok) if any(ch in tok for ch in ".eE") else int(tok)), j
    except ValueError:
        raise IntrinsicSyntaxError(f"{text!r}: bad argument {tok!r}") from None


def _plain(v: Any) -> Any:
    if isinstance(v, str):
        return v.replace(_LB, "{").replace(_RB, "}")
    return v


def evaluate(text: str, data: Any, context: Any, variables: dict[str, Any] | None = None) -> Any:
    try:
        call = parse(text)
    except IntrinsicSyntaxError as exc:
        raise StatesError(RUNTIME, str(exc), runtime=True) from None
    return _plain(_eval(call, data, context, variables))


def _eval(node: Any, data: Any, context: Any, variables: dict[str, Any] | None) -> Any:
    if isinstance(node, Lit):
        return node.value
    if isinstance(node, PathArg):
        return paths.require(node.text, data, context, variables)
    args = [_eval(a, data, context, variables) for a in node.args]
    fn = FUNCTIONS[node.name]
    if node.name != "Format":
        args = [_plain(a) for a in args]
    try:
        return fn(*args)
    except StatesError:
        raise
    except (TypeError, ValueError, KeyError, IndexError, OverflowError) as exc:
        raise StatesError(INTRINSIC_FAILURE, f"States.{node.name}: {exc}") from None


def java_str(v: Any) -> str:
    """How AWS's runtime prints a JSON value inside States.Format."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e16:
        return str(v)
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={java_str(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(java_str(x) for x in v) + "]"
    return str(v)


def _format(template: str, *args: Any) -> str:
    if not isinstance(template, str):
        raise ValueError("the format string must be a string")
    parts = template.split("{}")
    if len(parts) - 1 != len(args):
        raise StatesError(
            INTRINSIC_FAILURE,
            f"Number of arguments in States.Format ({len(args)}) does not match the number "
            f"of placeholders ({len(parts) - 1})",
        )
    out = parts[0]
    for arg, rest in zip(args, parts[1:], strict=True):
        out += java_str(_plain(arg)) + rest
    return _plain(out)


def _num(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ValueError(f"{v!r} is not a number")
    return int(Decimal(str(v)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int | float) or not float(v).is_integer():
        raise ValueError(f"{v!r} is not an integer")
    return int(v)


def _partition(arr: list[Any], size: Any) -> list[list[Any]]:
    n = _int(size)
    if not isinstance(arr, list) or n <= 0:
        raise ValueError("expects an array and a positive chunk size")
    return [arr[i : i + n] for i in range(0, len(arr), n)]


def _range(start: Any, end: Any, step: Any) -> list[int]:
    a, b, s = _int(start), _int(end), _int(step)
    if s == 0:
        raise ValueError("the step must not be 0")
    out = list(range(a, b + (1 if s > 0 else -1), s))
    if len(out) > 1000:
        raise ValueError("the range has more than 1000 items")
    return out


def _get_item(arr: list[Any], idx: Any) -> Any:
    if not isinstance(arr, list):
        raise ValueError("expects an array")
    return arr[_int(idx)]


def _unique(arr: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in arr:
        if not any(json.dumps(x, sort_keys=True) == json.dumps(y, sort_keys=True) for y in out):
            out.append(x)
    return out


def _b64enc(s: str) -> str:
    if not isinstance(s, str) or len(s) > 10000:
        raise ValueError("expects a string of at most 10000 characters")
    return base64.b64encode(s.encode()).decode()


def _b64dec(s: str) -> str:
    if not isinstance(s, str) or len(s) > 10000:
        raise ValueError("expects a string of at most 10000 characters")
    return base64.b64decode(s.encode(), validate=True).decode()


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384",
           "SHA-512": "sha512"}  # fmt: skip


def _hash(data: Any, algorithm: str) -> str:
    if algorithm not in _HASHES:
        raise ValueError(f"unsupported algorithm {algorithm!r}; one of {', '.join(_HASHES)}")
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return hashlib.new(_HASHES[algorithm], text.encode()).hexdigest()


def _merge(a: Any, b: Any, deep: Any) -> dict[str, Any]:
    if not isinstance(a, dict) or not isinstance(b, dict):
        raise ValueError("expects two objects")
    if deep is not False:
        raise ValueError("only shallow merges (false) are supported, as in AWS")
    return {**a, **b}


def _random(start: Any, end: Any, seed: Any = None) -> int:
    rng = random.Random(_int(seed)) if seed is not None else random.SystemRandom()
    return rng.randrange(_int(start), _int(end))


def _split(s: str, delims: str) -> list[str]:
    if not isinstance(s, str) or not isinstance(delims, str):
        raise ValueError("expects two strings")
    out, cur = [], ""
    for ch in s:
        if ch in delims:
            if cur:
                out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        out.append(cur)
    return out


def _string_to_json(s: str) -> Any:
    if not isinstance(s, str):
        raise ValueError("expects a string")
    return json.loads(s)


def _contains(arr: list[Any], v: Any) -> bool:
    if not isinstance(arr, list):
        raise ValueError("expects an array")
    return any(_same(x, v) for x in arr)


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1``, however Python compares them."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _length(arr: list[Any]) -> int:
    if not isinstance(arr, list):
        raise ValueError("expects an array")
    return len(arr)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "Format": _format,
    "StringToJson": _string_to_json,
    "JsonToString": lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False),
    "Array": lambda *a: list(a),
    "ArrayPartition": _partition,
    "ArrayContains": _contains,
    "ArrayRange": _range,
    "ArrayGetItem": _get_item,
    "ArrayLength": _length,
    "ArrayUnique": _unique,
    "Base64Encode": _b64enc,
    "Base64Decode": _b64dec,
    "Hash": _hash,
    "JsonMerge": _merge,
    "MathRandom": _random,
    "MathAdd": lambda a, b: _num(a) + _num(b),
    "StringSplit": _split,
    "UUID": lambda: str(uuid.uuid4()),
}
