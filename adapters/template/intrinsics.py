"""CloudFormation's intrinsic functions and conditions, as pure functions over data.

Resolution is a plain walk over the parsed template: no I/O, no knowledge of
resource types. What a ``Ref`` or ``Fn::GetAtt`` to a resource returns is
asked of a :class:`Targets` object (the loader's resource table; tests pass a
:class:`StaticTargets`), so this module can be tested table-driven on its own.

Implemented as CloudFormation defines them: ``Ref`` (resources, parameters,
pseudo parameters, ``AWS::NoValue``), ``Fn::GetAtt`` (``"A.B"`` and
``[A, B]``), ``Fn::Sub`` (both forms, ``${Res.Attr}``, ``${!Literal}``),
``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::FindInMap``, ``Fn::If``,
``Fn::Base64``, ``Fn::GetAZs``, and the condition functions ``Fn::Equals``,
``Fn::And``, ``Fn::Or``, ``Fn::Not`` and ``Condition``. A value that resolves
to ``AWS::NoValue`` removes its key (or list item). Errors are
:class:`~adapters.template.errors.Invalid` carrying the property path.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from .errors import Invalid, did_you_mean, show


class _NoValue:
    """``Ref: AWS::NoValue``: the enclosing key or list item disappears."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Final = _NoValue()

UNSUPPORTED_FNS = frozenset(
    {"Fn::ImportValue", "Fn::Cidr", "Fn::Transform", "Fn::Length", "Fn::ToJsonString"}
)


class Targets(Protocol):
    """What the template's resources answer to ``Ref`` and ``Fn::GetAtt``.

    Methods raise :class:`LookupError` with a short reason when an attribute
    does not exist or a resource is left out; the resolver adds where it happened.
    """

    def __contains__(self, logical_id: object) -> bool: ...

    def names(self) -> Iterable[str]: ...

    def ref(self, logical_id: str, ctx: Context) -> Any: ...

    def get_att(self, logical_id: str, attribute: str, ctx: Context) -> Any: ...


@dataclass
class StaticTargets:
    """Fixed answers, for tests and for templates without resources."""

    refs: Mapping[str, Any] = field(default_factory=dict)
    attributes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __contains__(self, logical_id: object) -> bool:
        return logical_id in self.refs

    def names(self) -> Iterable[str]:
        return self.refs.keys()

    def ref(self, logical_id: str, ctx: Context) -> Any:
        return self.refs[logical_id]

    def get_att(self, logical_id: str, attribute: str, ctx: Context) -> Any:
        attrs = self.attributes.get(logical_id, {})
        if attribute not in attrs:
            raise LookupError(f"no attribute {attribute!r}")
        return attrs[attribute]


@dataclass
class Context:
    """Everything a reference can point at, plus the memo of evaluated conditions."""

    region: str
    account: str
    stack: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    mappings: Mapping[str, Any] = field(default_factory=dict)
    conditions: Mapping[str, Any] = field(default_factory=dict)
    targets: Targets = field(default_factory=StaticTargets)
    _condition_values: dict[str, bool] = field(default_factory=dict, repr=False)
    _evaluating: set[str] = field(default_factory=set, repr=False)

    def pseudo(self, name: str) -> Any:
        """A pseudo parameter's value; :class:`KeyError` if there is no such one."""
        partition = "aws-cn" if self.region.startswith("cn-") else "aws"
        values: dict[str, Any] = {
            "AWS::AccountId": self.account,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
            "AWS::Partition": partition,
            "AWS::Region": self.region,
            "AWS::StackId": f"arn:{partition}:cloudformation:{self.region}:{self.account}"
            f":stack/{self.stack}/00000000-0000-0000-0000-000000000000",
            "AWS::StackName": self.stack,
            "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
        }
        return values[name]

    def condition(self, name: Any, path: str) -> bool:
        """The named condition's value, evaluated once; cycles are errors."""
        if not isinstance(name, str) or name not in self.conditions:
            hint = did_you_mean(str(name), self.conditions)
            raise Invalid(path, f"no condition named {name!r}{hint}")
        if name in self._condition_values:
            return self._condition_values[name]
        if name in self._evaluating:
            raise Invalid(name, "condition refers to itself", "Conditions")
        self._evaluating.add(name)
        try:
            value = evaluate_condition(self.conditions[name], self, name)
        except Invalid as exc:
            exc.resource = exc.resource or "Conditions"
            raise
        finally:
            self._evaluating.discard(name)
        self._condition_values[name] = value
        return value


def resolve(value: Any, ctx: Context, path: str) -> Any:
    """``value`` with every intrinsic function evaluated and ``AWS::NoValue`` removed."""
    if isinstance(value, dict):
        fn = intrinsic_name(value)
        if fn is not None:
            return _call(fn, value[fn], ctx, path)
        out: dict[str, Any] = {}
        for key, item in value.items():
            resolved = resolve(item, ctx, f"{path}.{key}" if path else str(key))
            if resolved is not NO_VALUE:
                out[key] = resolved
        return out
    if isinstance(value, list):
        items = (resolve(item, ctx, f"{path}[{i}]") for i, item in enumerate(value))
        return [item for item in items if item is not NO_VALUE]
    return value


def intrinsic_name(value: Mapping[Any, Any]) -> str | None:
    """The function name if ``value`` is an intrinsic call (one key: Ref or Fn::*)."""
    if len(value) != 1:
        return None
    (key,) = value
    if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
        return str(key)
    return None


def evaluate_condition(expr: Any, ctx: Context, path: str) -> bool:
    """A condition function (``Fn::Equals``/``And``/``Or``/``Not``/``Condition``) as a bool."""
    if isinstance(expr, dict) and len(expr) == 1:
        (key,) = expr
        if key == "Condition":
            return ctx.condition(expr[key], path)
        if key in ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not"):
            return bool(_call(key, expr[key], ctx, path))
    raise Invalid(path, "expected a condition function (Fn::Equals, Fn::And, Fn::Or, Fn::Not)")


def _call(fn: str, arg: Any, ctx: Context, path: str) -> Any:
    impl = _FUNCTIONS.get(fn)
    if impl is not None:
        return impl(arg, ctx, path)
    if fn in UNSUPPORTED_FNS:
        raise Invalid(path, f"{fn} is not supported by lambdabus")
    raise Invalid(path, f"unknown intrinsic function {fn}")


def _ref(arg: Any, ctx: Context, path: str) -> Any:
    if not isinstance(arg, str):
        raise Invalid(path, f"Ref needs a name, got {show(arg)}")
    return _lookup(arg, ctx, path, f"Ref to {arg!r}")


def _lookup(name: str, ctx: Context, path: str, what: str) -> Any:
    """Ref semantics: pseudo parameter, then parameter, then resource."""
    if name.startswith("AWS::"):
        try:
            return ctx.pseudo(name)
        except KeyError:
            raise Invalid(path, f"{what}: no such pseudo parameter") from None
    if name in ctx.parameters:
        return ctx.parameters[name]
    if name in ctx.targets:
        try:
            return ctx.targets.ref(name, ctx)
        except LookupError as exc:
            raise Invalid(path, f"{what}: {exc.args[0] if exc.args else exc}") from None
    hint = did_you_mean(name, [*ctx.parameters, *ctx.targets.names()])
    raise Invalid(path, f"{what}: no such resource, parameter or pseudo parameter{hint}")


def _get_att(arg: Any, ctx: Context, path: str) -> Any:
    if isinstance(arg, str):
        resource, _, attribute = arg.partition(".")
        arg = [resource, attribute]
    if not isinstance(arg, list) or len(arg) != 2 or not isinstance(arg[0], str):
        raise Invalid(path, f"Fn::GetAtt needs [resource, attribute], got {show(arg)}")
    resource, attribute = arg[0], _text(resolve(arg[1], ctx, path), path, "Fn::GetAtt")
    return _attribute(resource, attribute, ctx, path, f"Fn::GetAtt {resource}.{attribute}")


def _attribute(resource: str, attribute: str, ctx: Context, path: str, what: str) -> Any:
    if not attribute:
        raise Invalid(path, f"{what}: no attribute given")
    if resource not in ctx.targets:
        hint = did_you_mean(resource, ctx.targets.names())
        raise Invalid(path, f"{what}: no resource named {resource!r}{hint}")
    try:
        return ctx.targets.get_att(resource, attribute, ctx)
    except LookupError as exc:
        raise Invalid(path, f"{what}: {exc.args[0] if exc.args else exc}") from None


_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


def _sub(arg: Any, ctx: Context, path: str) -> str:
    variables: dict[str, Any] = {}
    if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[1], dict):
        arg, raw_vars = arg
        variables = {k: resolve(v, ctx, path) for k, v in raw_vars.items()}
    if not isinstance(arg, str):
        raise Invalid(path, f"Fn::Sub needs a string or [string, variables], got {show(arg)}")

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        what = f"Fn::Sub ${{{name}}}"
        if name in variables:
            value = variables[name]
        elif "." in name and not name.startswith("AWS::"):
            resource, _, attribute = name.partition(".")
            value = _attribute(resource, attribute, ctx, path, what)
        else:
            value = _lookup(name, ctx, path, what)
        return _text(value, path, what)

    return _SUB_VAR.sub(replace, arg)


def _join(arg: Any, ctx: Context, path: str) -> str:
    if not isinstance(arg, list) or len(arg) != 2:
        raise Invalid(path, f"Fn::Join needs [delimiter, [values]], got {show(arg)}")
    delimiter = _text(resolve(arg[0], ctx, path), path, "Fn::Join delimiter")
    items = _list(resolve(arg[1], ctx, path), path, "Fn::Join")
    return delimiter.join(_text(item, path, "Fn::Join") for item in items)


def _select(arg: Any, ctx: Context, path: str) -> Any:
    if not isinstance(arg, list) or len(arg) != 2:
        raise Invalid(path, f"Fn::Select needs [index, [values]], got {show(arg)}")
    index = resolve(arg[0], ctx, path)
    items = _list(resolve(arg[1], ctx, path), path, "Fn::Select")
    try:
        position = int(index)
    except (TypeError, ValueError):
        raise Invalid(path, f"Fn::Select index {show(index)} is not a number") from None
    if not 0 <= position < len(items):
        raise Invalid(path, f"Fn::Select index {position} is outside a list of {len(items)}")
    return items[position]


def _split(arg: Any, ctx: Context, path: str) -> list[str]:
    if not isinstance(arg, list) or len(arg) != 2:
        raise Invalid(path, f"Fn::Split needs [delimiter, string], got {show(arg)}")
    delimiter = _text(resolve(arg[0], ctx, path), path, "Fn::Split delimiter")
    if not delimiter:
        raise Invalid(path, "Fn::Split delimiter is empty")
    return _text(resolve(arg[1], ctx, path), path, "Fn::Split").split(delimiter)


def _find_in_map(arg: Any, ctx: Context, path: str) -> Any:
    if not isinstance(arg, list) or len(arg) != 3:
        raise Invalid(path, f"Fn::FindInMap needs [map, key, key], got {show(arg)}")
    keys = [_text(resolve(a, ctx, path), path, "Fn::FindInMap") for a in arg]
    found: Any = ctx.mappings
    for depth, key in enumerate(keys):
        if not isinstance(found, dict) or key not in found:
            where = "mapping" if depth == 0 else f"{'.'.join(keys[:depth])}"
            raise Invalid(path, f"Fn::FindInMap: no {key!r} in {where}")
        found = found[key]
    return found


def _if(arg: Any, ctx: Context, path: str) -> Any:
    if not isinstance(arg, list) or len(arg) != 3:
        raise Invalid(path, f"Fn::If needs [condition, if true, if false], got {show(arg)}")
    chosen = arg[1] if ctx.condition(arg[0], path) else arg[2]
    return resolve(chosen, ctx, path)


def _equals(arg: Any, ctx: Context, path: str) -> bool:
    if not isinstance(arg, list) or len(arg) != 2:
        raise Invalid(path, f"Fn::Equals needs [a, b], got {show(arg)}")
    left, right = (_comparable(resolve(a, ctx, path)) for a in arg)
    return left == right


def _comparable(value: Any) -> Any:
    """CloudFormation compares values as strings: ``1`` equals ``"1"``, ``true`` ``"true"``."""
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _conditions(arg: Any, ctx: Context, path: str, fn: str, low: int, high: int) -> list[bool]:
    if not isinstance(arg, list) or not low <= len(arg) <= high:
        raise Invalid(path, f"{fn} needs {low} to {high} conditions, got {show(arg)}")
    return [evaluate_condition(item, ctx, path) for item in arg]


def _and(arg: Any, ctx: Context, path: str) -> bool:
    return all(_conditions(arg, ctx, path, "Fn::And", 2, 10))


def _or(arg: Any, ctx: Context, path: str) -> bool:
    return any(_conditions(arg, ctx, path, "Fn::Or", 2, 10))


def _not(arg: Any, ctx: Context, path: str) -> bool:
    return not _conditions(arg, ctx, path, "Fn::Not", 1, 1)[0]


def _base64(arg: Any, ctx: Context, path: str) -> str:
    text = _text(resolve(arg, ctx, path), path, "Fn::Base64")
    return base64.b64encode(text.encode()).decode()


def _get_azs(arg: Any, ctx: Context, path: str) -> list[str]:
    region = _text(resolve(arg, ctx, path), path, "Fn::GetAZs") or ctx.region
    return [f"{region}{zone}" for zone in "abc"]


_FUNCTIONS: dict[str, Callable[[Any, Context, str], Any]] = {
    "Ref": _ref,
    "Fn::GetAtt": _get_att,
    "Fn::Sub": _sub,
    "Fn::Join": _join,
    "Fn::Select": _select,
    "Fn::Split": _split,
    "Fn::FindInMap": _find_in_map,
    "Fn::If": _if,
    "Fn::Equals": _equals,
    "Fn::And": _and,
    "Fn::Or": _or,
    "Fn::Not": _not,
    "Fn::Base64": _base64,
    "Fn::GetAZs": _get_azs,
}


def _text(value: Any, path: str, what: str) -> str:
    """A value used inside a string: numbers and booleans as CloudFormation prints them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise Invalid(path, f"{what}: expected a string, got {show(value)}")


def _list(value: Any, path: str, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise Invalid(path, f"{what}: expected a list, got {show(value)}")
    return value
