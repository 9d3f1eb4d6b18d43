"""Read a template file safely: YAML (or JSON) with CloudFormation's short-form tags.

Templates come from users and from the internet, so reading one must never
hang, exhaust memory or end in a traceback:

- files over :data:`MAX_TEMPLATE_BYTES` are refused before they are parsed
  (CloudFormation's own limit for a template is 1 MB);
- text must be UTF-8 (a BOM is tolerated), as CloudFormation requires;
- aliases are a tree-in-a-DAG: PyYAML shares aliased nodes, so a "billion
  laughs" document is small in memory but exponential for anyone who walks
  it. The composed node graph is measured as it would be once expanded (a
  linear, memoised walk) and refused above :data:`MAX_EXPANDED_NODES` or
  :data:`MAX_DEPTH`, and recursive aliases are refused, before anything is
  constructed;
- duplicate keys in a mapping are errors (YAML silently keeps the last one,
  which hides typos);
- dates stay strings (``AWSTemplateFormatVersion: 2010-09-09`` is text to
  CloudFormation), and scalar keys become strings (``200:`` is ``"200"``).

Short forms become the long forms CloudFormation defines: ``!Ref X`` is
``{"Ref": "X"}``, ``!GetAtt A.B`` is ``{"Fn::GetAtt": ["A", "B"]}``,
``!Condition C`` is ``{"Condition": "C"}`` and every other ``!Name`` is
``{"Fn::Name": ...}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Invalid

MAX_TEMPLATE_BYTES = 1024 * 1024
MAX_EXPANDED_NODES = 200_000
MAX_DEPTH = 100
MAX_INT_BITS = 128

FN_TAGS = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Length",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "ToJsonString",
    "Transform",
)

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MERGE = "tag:yaml.org,2002:merge"


class _Limit(Exception):
    """Raised from inside PyYAML's composer; becomes an :class:`Invalid` line."""

    def __init__(self, problem: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.where = f"line {line}" if line is not None else "-"


class TemplateLoader(yaml.SafeLoader):
    """SafeLoader that knows CloudFormation tags and guards against hostile documents."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        """Bound nesting while composing: PyYAML's composer recurses once per level."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise _Limit(f"nested deeper than {MAX_DEPTH} levels", mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: ScalarNode) -> int:
        """Integers past :data:`MAX_INT_BITS` are refused: no template needs them, and
        base-60 forms like ``1:00:00:…`` would otherwise grow without bound."""
        value: int = super().construct_yaml_int(node)
        if abs(value).bit_length() > MAX_INT_BITS:
            raise _Limit("integer too large", node.start_mark.line + 1)
        return value

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Make scalar keys strings, as CloudFormation reads them."""
        data = super().construct_mapping(node, deep=deep)
        return {_key_text(key): value for key, value in data.items()}


def _key_text(key: Any) -> str:
    """Keys are text to CloudFormation: ``200`` is ``"200"``, ``true`` is ``"true"``."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def _construct_fn(name: str) -> Any:
    def construct(loader: TemplateLoader, node: Node) -> dict[str, Any]:
        return {name: _construct_any(loader, node)}

    return construct


def _construct_any(loader: TemplateLoader, node: Node) -> Any:
    if isinstance(node, ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, SequenceNode):
        return loader.construct_sequence(node, deep=True)
    if isinstance(node, MappingNode):
        return loader.construct_mapping(node, deep=True)
    raise _Limit("unexpected node", node.start_mark.line + 1)  # pragma: no cover


def _construct_getatt(loader: TemplateLoader, node: Node) -> dict[str, Any]:
    """``!GetAtt Res.Attr.With.Dots`` splits at the first dot, as CloudFormation does."""
    value = _construct_any(loader, node)
    if isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute] if attribute else [resource]
    return {"Fn::GetAtt": value}


for _fn in FN_TAGS:
    TemplateLoader.add_constructor(f"!{_fn}", _construct_fn(f"Fn::{_fn}"))
TemplateLoader.add_constructor("!Ref", _construct_fn("Ref"))
TemplateLoader.add_constructor("!Condition", _construct_fn("Condition"))
TemplateLoader.add_constructor("!GetAtt", _construct_getatt)
TemplateLoader.add_constructor("tag:yaml.org,2002:int", TemplateLoader.construct_yaml_int)


def read_text(path: Path) -> str:
    """The file's text, refusing what is too big, unreadable or not UTF-8."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_TEMPLATE_BYTES + 1)
    except FileNotFoundError:
        raise Invalid("-", "no such file", "(file)") from None
    except OSError as exc:
        raise Invalid("-", f"cannot read: {exc.strerror or exc}", "(file)") from None
    if len(raw) > MAX_TEMPLATE_BYTES:
        raise Invalid("size", f"larger than {MAX_TEMPLATE_BYTES} bytes (1 MiB)", "(file)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid("encoding", f"not UTF-8 (byte {exc.start})", "(file)") from None


def parse_yaml(text: str) -> Any:
    """Parse one YAML document into plain data; any problem is one :class:`Invalid`."""
    try:
        return _parse(text)
    except _Limit as exc:
        raise Invalid(exc.where, str(exc), "(yaml)") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "-"
        raise Invalid(where, exc.problem or exc.context or "invalid YAML", "(yaml)") from None
    except yaml.reader.ReaderError as exc:
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        problem = f"character U+{code:04X} is not allowed in YAML"
        raise Invalid(f"character {exc.position + 1}", problem, "(yaml)") from None
    except yaml.YAMLError as exc:
        raise Invalid("-", " ".join(str(exc).split()), "(yaml)") from None
    except (ValueError, OverflowError) as exc:  # e.g. a 5000-digit number
        raise Invalid("-", f"unreadable value: {exc}"[:200], "(yaml)") from None
    except (RecursionError, MemoryError):
        raise Invalid("-", "document too deeply nested or too large", "(yaml)") from None


def _parse(text: str) -> Any:
    loader = TemplateLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expansion(root: Node) -> None:
    """Refuse documents whose aliases expand past the limits, or refer to themselves.

    Memoised by node identity, so the walk is linear in the composed graph even
    for a billion-laughs document; depth is checked on the way down so Python's
    own recursion limit is never reached.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, height)
    active: set[int] = set()

    def walk(node: Node, depth: int) -> tuple[int, int]:
        known = sizes.get(id(node))
        if known is None:
            if id(node) in active:
                raise _Limit("an alias refers to itself", node.start_mark.line + 1)
            if depth > MAX_DEPTH:
                raise _Limit(f"nested deeper than {MAX_DEPTH} levels once aliases are expanded")
            active.add(id(node))
            count, height = 1, 0
            for child in _children(node):
                child_count, child_height = walk(child, depth + 1)
                count += child_count
                height = max(height, child_height + 1)
                if count > MAX_EXPANDED_NODES:
                    raise _Limit(
                        f"more than {MAX_EXPANDED_NODES} nodes once aliases are expanded"
                        " (an alias bomb?)"
                    )
            active.discard(id(node))
            known = sizes[id(node)] = (count, height)
        if depth + known[1] > MAX_DEPTH:
            raise _Limit(f"nested deeper than {MAX_DEPTH} levels once aliases are expanded")
        return known

    walk(root, 0)


def _children(node: Node) -> list[Node]:
    """The node's children; for a mapping, also refuse a key given twice.

    Checked here, on the composed graph, because construction later rewrites
    mappings in place to apply ``<<`` merge keys.
    """
    if isinstance(node, SequenceNode):
        return list(node.value)
    if not isinstance(node, MappingNode):
        return []
    seen: set[str] = set()
    for key_node, _ in node.value:
        if key_node.tag == _MERGE or not isinstance(key_node, ScalarNode):
            continue
        if key_node.value in seen:
            raise _Limit(f"duplicate key {key_node.value!r}", key_node.start_mark.line + 1)
        seen.add(key_node.value)
    return [n for pair in node.value for n in pair]


def load_file(path: Path) -> Any:
    """Read and parse ``path`` with every guard above."""
    return parse_yaml(read_text(path))
