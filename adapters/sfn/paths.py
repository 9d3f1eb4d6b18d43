"""JSONPath as Step Functions evaluates it (Jayway semantics), plus reference paths.

A small parser rather than jsonpath-ng: ASL's rules differ from that
library's in ways the conformance corpus checks — a *definite* path (names and
single indices only) yields the value itself and fails when it is missing,
while an *indefinite* one (wildcard, filter, slice, union, deep scan) yields a
list, possibly empty; bracket names carry JSON-style escapes; ResultPath may
only use names and indices and creates what is missing. Errors quote the path
normalized as Jayway prints it (``$['a'][0]``), as AWS's causes do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import StatesError

MISSING: Any = object()


class PathSyntaxError(ValueError):
    """The text is not a JSONPath Step Functions accepts."""


@dataclass(frozen=True)
class Seg:
    kind: str  # name | index | wild | slice | union | filter | deep
    value: Any = None


@dataclass(frozen=True)
class Path:
    text: str
    context: bool  # starts with $$ (the context object)
    segs: tuple[Seg, ...]
    variable: str | None = None  # ``$name...``: a workflow variable (Assign)

    @property
    def definite(self) -> bool:
        return all(s.kind in ("name", "index") for s in self.segs)

    @property
    def normalized(self) -> str:
        out = "$"
        for s in self.segs:
            out += f"['{s.value}']" if s.kind == "name" else f"[{s.value}]"
        return out


_NAME = re.compile(r"[^.\[\]\s()]+")
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CACHE: dict[str, Path] = {}


def parse(text: str) -> Path:
    """Parse ``$``/``$$``-rooted JSONPath text (cached: definitions reuse their paths)."""
    cached = _CACHE.get(text)
    if cached is not None:
        return cached
    if not isinstance(text, str) or not text.startswith("$"):
        raise PathSyntaxError(f"{text!r} does not start with '$'")
    context = text.startswith("$$")
    i = 2 if context else 1
    variable = None
    if not context:
        m = _VAR.match(text, 1)
        if m:
            variable, i = m.group(), m.end()
    segs: list[Seg] = []
    n = len(text)
    while i < n:
        c = text[i]
        if text.startswith("..", i):
            m = _NAME.match(text, i + 2)
            if not m:
                raise PathSyntaxError(f"{text!r}: a name must follow '..'")
            segs.append(Seg("deep", m.group()))
            i = m.end()
        elif c == ".":
            if text.startswith(".*", i):
                segs.append(Seg("wild"))
                i += 2
                continue
            m = _NAME.match(text, i + 1)
            if not m:
                raise PathSyntaxError(f"{text!r}: a name must follow '.' at position {i}")
            segs.append(Seg("name", m.group()))
            i = m.end()
        elif c == "[":
            seg, i = _bracket(text, i + 1)
            segs.append(seg)
        else:
            raise PathSyntaxError(f"{text!r}: unexpected {c!r} at position {i}")
    path = Path(text, context, tuple(segs), variable)
    if len(_CACHE) < 4096:
        _CACHE[text] = path
    return path


def _bracket(text: str, i: int) -> tuple[Seg, int]:
    end = _close(text, i)
    body = text[i:end].strip()
    if not body:
        raise PathSyntaxError(f"{text!r}: empty brackets")
    if body == "*":
        return Seg("wild"), end + 1
    if body.startswith("?(") and body.endswith(")"):
        return Seg("filter", _parse_filter(body[2:-1], text)), end + 1
    if body[0] in "'\"":
        names = [_unquote(p.strip(), text) for p in _split_top(body, ",")]
        return (Seg("name", names[0]) if len(names) == 1 else Seg("union", names)), end + 1
    if ":" in body:
        parts = [p.strip() for p in body.split(":")]
        try:
            nums = tuple(int(p) if p else None for p in parts[:3])
        except ValueError:
            raise PathSyntaxError(f"{text!r}: bad slice [{body}]") from None
        return Seg("slice", nums), end + 1
    try:
        idx = [int(p) for p in body.split(",")]
    except ValueError:
        raise PathSyntaxError(f"{text!r}: bad index [{body}]") from None
    return (Seg("index", idx[0]) if len(idx) == 1 else Seg("union", idx)), end + 1


def _close(text: str, i: int) -> int:
    quote: str | None = None
    depth = 0
    j = i
    while j < len(text):
        c = text[j]
        if quote:
            if c == "\\":
                j += 2
                continue
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "([":
            depth += 1
        elif c in ")]":
            if depth == 0 and c == "]":
                return j
            depth -= 1
        j += 1
    raise PathSyntaxError(f"{text!r}: unclosed '['")


def _split_top(body: str, sep: str) -> list[str]:
    parts, cur, quote, j = [], "", None, 0
    while j < len(body):
        c = body[j]
        if quote:
            cur += c
            if c == "\\" and j + 1 < len(body):
                cur += body[j + 1]
                j += 2
                continue
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
            cur += c
        elif c == sep:
            parts.append(cur)
            cur = ""
        else:
            cur += c
        j += 1
    parts.append(cur)
    return parts


def _unquote(tok: str, text: str) -> str:
    if len(tok) < 2 or tok[0] != tok[-1] or tok[0] not in "'\"":
        raise PathSyntaxError(f"{text!r}: bad quoted name {tok}")
    out, j, body = "", 0, tok[1:-1]
    while j < len(body):
        c = body[j]
        if c == "\\" and j + 1 < len(body) and body[j + 1] == tok[0]:
            out += tok[0]  # only the quote itself is escaped; other backslashes are literal
            j += 2
            continue
        out += c
        j += 1
    return out


# -- filters: [?(@.a op literal)] joined by && / || -----------------------------------------

_CMP = re.compile(r"^(@[^\s=!<>]*)\s*(==|!=|<=|>=|<|>)\s*(.+)$")


def _parse_filter(expr: str, text: str) -> tuple[Any, ...]:
    ors = [p for p in re.split(r"\s*\|\|\s*", expr)]
    return ("or", [("and", [_parse_cmp(c.strip(), text) for c in re.split(r"\s*&&\s*", o)])
                   for o in ors])  # fmt: skip


def _parse_cmp(cond: str, text: str) -> tuple[Any, ...]:
    m = _CMP.match(cond)
    if not m:
        if cond.startswith("@"):
            return ("exists", _sub_path(cond, text))
        raise PathSyntaxError(f"{text!r}: unsupported filter {cond!r}")
    lhs, op, rhs = m.groups()
    rhs = rhs.strip()
    value: Any
    if rhs[:1] in "'\"":
        value = _unquote(rhs, text)
    elif rhs in ("true", "false", "null"):
        value = {"true": True, "false": False, "null": None}[rhs]
    else:
        try:
            value = float(rhs) if any(ch in rhs for ch in ".eE") else int(rhs)
        except ValueError:
            raise PathSyntaxError(f"{text!r}: bad filter operand {rhs!r}") from None
    return ("cmp", _sub_path(lhs, text), op, value)


def _sub_path(at: str, text: str) -> Path:
    return parse("$" + at[1:])


def _filter_ok(node: Any, f: tuple[Any, ...]) -> bool:
    kind = f[0]
    if kind == "or":
        return any(_filter_ok(node, g) for g in f[1])
    if kind == "and":
        return all(_filter_ok(node, g) for g in f[1])
    if kind == "exists":
        return _walk(node, f[1].segs) is not MISSING
    _, path, op, value = f
    got = _walk(node, path.segs)
    if got is MISSING:
        return False
    if isinstance(got, bool) != isinstance(value, bool):
        return op == "!="
    try:
        return bool(
            {"==": got == value, "!=": got != value}.get(op)
            if op in ("==", "!=")
            else {"<": got < value, "<=": got <= value, ">": got > value, ">=": got >= value}[op]
        )
    except TypeError:
        return False


# -- evaluation ------------------------------------------------------------------------------


def _walk(node: Any, segs: tuple[Seg, ...]) -> Any:
    """Definite walk: the value, or MISSING."""
    for s in segs:
        if s.kind == "name" and isinstance(node, dict) and s.value in node:
            node = node[s.value]
        elif s.kind == "index" and isinstance(node, list) and -len(node) <= s.value < len(node):
            node = node[s.value]
        else:
            return MISSING
    return node


def _select(nodes: list[Any], s: Seg) -> list[Any]:
    out: list[Any] = []
    for node in nodes:
        if s.kind == "name":
            if isinstance(node, dict) and s.value in node:
                out.append(node[s.value])
        elif s.kind == "index":
            if isinstance(node, list) and -len(node) <= s.value < len(node):
                out.append(node[s.value])
        elif s.kind == "wild":
            out.extend(node.values() if isinstance(node, dict) else node if isinstance(node, list)
                       else [])  # fmt: skip
        elif s.kind == "slice" and isinstance(node, list):
            start, stop, *step = s.value
            out.extend(node[slice(start, stop, step[0] if step else None)])
        elif s.kind == "union":
            for k in s.value:
                if isinstance(k, int) and isinstance(node, list) and -len(node) <= k < len(node):
                    out.append(node[k])
                elif isinstance(k, str) and isinstance(node, dict) and k in node:
                    out.append(node[k])
        elif s.kind == "filter":
            items = node if isinstance(node, list) else [node] if isinstance(node, dict) else []
            out.extend(x for x in items if _filter_ok(x, s.value))
        elif s.kind == "deep":
            out.extend(_deep(node, s.value))
    return out


def _deep(node: Any, name: str) -> list[Any]:
    out: list[Any] = []
    if isinstance(node, dict):
        if name in node:
            out.append(node[name])
        for v in node.values():
            out.extend(_deep(v, name))
    elif isinstance(node, list):
        for v in node:
            out.extend(_deep(v, name))
    return out


def lookup(path: Path, data: Any) -> Any:
    """The path's value in ``data``; MISSING when a definite path finds nothing."""
    if path.definite:
        return _walk(data, path.segs)
    nodes = [data]
    for s in path.segs:
        nodes = _select(nodes, s)
    return nodes


def get(text: str, data: Any, context: Any, variables: dict[str, Any] | None = None) -> Any:
    """Evaluate ``text`` against the data (``$``), the context (``$$``) or a variable."""
    path = parse(text)
    if path.variable is not None:
        if variables is None or path.variable not in variables:
            return MISSING
        return lookup(path, variables[path.variable])
    return lookup(path, context if path.context else data)


def require(text: str, data: Any, context: Any, variables: dict[str, Any] | None = None) -> Any:
    """Evaluate, raising States.Runtime in AWS's words when nothing is found."""
    value = get(text, data, context, variables)
    if value is MISSING:
        raise StatesError(
            "States.Runtime",
            f"Invalid path '{text}' : No results for path: {parse(text).normalized}",
            runtime=True,
        )
    return value


def assign(text: str, target: Any, value: Any) -> Any:
    """ResultPath: a copy of ``target`` with ``value`` placed at the reference path."""
    path = parse(text)
    if path.context or path.variable or not path.definite:
        raise StatesError("States.Runtime", f"Invalid ResultPath '{text}'", runtime=True)
    if not path.segs:
        return value
    return _put(target, path.segs, value, text, target)


def _put(node: Any, segs: tuple[Seg, ...], value: Any, text: str, whole: Any) -> Any:
    import json

    s, rest = segs[0], segs[1:]
    if s.kind == "name":
        if node is MISSING or node is None:
            node = {}
        if not isinstance(node, dict):
            raise StatesError(
                "States.ReferencePathConflict",
                f"Unable to apply ReferencePath {text} to input {json.dumps(whole)}",
            )
        out = dict(node)
        out[s.value] = value if not rest else _put(node.get(s.value, MISSING), rest, value,
                                                   text, whole)  # fmt: skip
        return out
    if not isinstance(node, list) or not -len(node) <= s.value < len(node):
        raise StatesError(
            "States.ReferencePathConflict",
            f"Unable to apply ReferencePath {text} to input {json.dumps(whole)}",
        )
    lst = list(node)
    lst[s.value] = value if not rest else _put(lst[s.value], rest, value, text, whole)
    return lst


def is_reference_path(text: str) -> bool:
    try:
        p = parse(text)
    except PathSyntaxError:
        return False
    return p.definite and p.variable is None and not p.context
