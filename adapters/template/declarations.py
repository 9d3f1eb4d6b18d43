"""Declaring resources: each entry of ``Resources`` checked as written, then
merged with ``Globals``, plus the resources SAM generates implicitly.

A declaration checks attributes, ``DependsOn``, the type tier, a function's
``Metadata.lambdabus`` and the property names; ignored ones are warned about
here, as written, so ``Globals`` don't multiply warnings. Nothing is resolved
yet: that waits until every ``Condition`` is known. SAM's implicit resources
(``ServerlessRestApi``, ``ServerlessHttpApi``, ``<Function>Role``) are added
so references to them resolve.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import schema as s
from .errors import Invalid, blame, did_you_mean, show
from .globals import Globals, apply_globals
from .intrinsics import Context
from .models import Declaration
from .sections import LOGICAL_ID
from .shapes import Shape, Warn, check


def declare(
    lid: Any,
    body: Any,
    ctx: Context,
    globals_: Globals,
    known: Dependable,
    warn_for: Callable[[str], Warn],
) -> Declaration:
    with blame(str(lid)):
        if not isinstance(lid, str) or not LOGICAL_ID.fullmatch(lid):
            raise Invalid("-", "a logical id must be alphanumeric")
        if not isinstance(body, dict):
            raise Invalid("-", f"expected a mapping with Type and Properties, got {show(body)}")
        warn = warn_for(lid)
        rtype = body.get("Type")
        if not isinstance(rtype, str):
            raise Invalid(
                "Type",
                "required, but missing"
                if rtype is None
                else f"expected a string, got {show(rtype)}",
            )
        _check_attributes(body, rtype, warn)
        props = body.get("Properties") or {}
        if not isinstance(props, dict):
            raise Invalid("Properties", f"expected a mapping, got {show(props)}")
        condition = body.get("Condition")
        if condition is not None:
            ctx.condition(condition, "Condition")
        _check_depends_on(body.get("DependsOn"), known)
        settings = _resource_settings(rtype, body.get("Metadata"), warn)
        if rtype in s.RESOURCE_SCHEMAS:
            _sort_properties(s.RESOURCE_SCHEMAS[rtype], props, warn)
        elif (reason := s.ignored_type_reason(rtype)) is not None:
            warn(rtype, reason)
        else:
            hint = did_you_mean(rtype, [*s.RESOURCE_SCHEMAS, *s.IGNORED_TYPES])
            raise Invalid("Type", f"resource type {rtype} is not supported by lambdabus{hint}")
        if rtype.startswith("AWS::Serverless::"):
            props = apply_globals(globals_, rtype, props, body.get("IgnoreGlobals"))
        return Declaration(lid, rtype, props, condition, settings=settings)


def _check_attributes(body: Mapping[str, Any], rtype: str, warn: Warn) -> None:
    allowed = s.RESOURCE_ATTRIBUTES | (
        s.SAM_ATTRIBUTES if rtype.startswith("AWS::Serverless::") else set()
    )
    for key in body:
        if key in s.IGNORED_ATTRIBUTES:
            warn(key, s.ONLY_ON_AWS)
        elif key not in allowed:
            hint = did_you_mean(str(key), [*allowed, *s.IGNORED_ATTRIBUTES])
            raise Invalid(str(key), f"unknown resource attribute{hint}")


class Dependable:
    """Names ``DependsOn`` may use: declared resources, and what SAM generates from them
    (``<Function>Role``, ``<Api>ProdStage``, ``ServerlessRestApi…``), which all start
    with the logical id of a serverless resource."""

    def __init__(self, declared: Mapping[str, Any], prefixes: tuple[str, ...]) -> None:
        self.declared, self.prefixes = declared, prefixes

    def __contains__(self, name: str) -> bool:
        return name in self.declared or name.startswith(self.prefixes)


def dependable(declared: Mapping[str, Any]) -> Dependable:
    serverless = [
        str(lid)
        for lid, body in declared.items()
        if isinstance(body, dict) and str(body.get("Type", "")).startswith("AWS::Serverless::")
    ]
    return Dependable(declared, ("ServerlessRestApi", "ServerlessHttpApi", *serverless))


def _check_depends_on(depends_on: Any, known: Dependable) -> None:
    if depends_on is None:
        return
    names = [depends_on] if isinstance(depends_on, str) else depends_on
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise Invalid("DependsOn", f"expected a name or a list of names, got {show(depends_on)}")
    for name in names:
        if name not in known:
            hint = did_you_mean(name, known.declared)
            raise Invalid("DependsOn", f"no resource named {name!r}{hint}")


def _resource_settings(rtype: str, metadata: Any, warn: Warn) -> dict[str, Any]:
    """A function's ``Metadata.lambdabus``; other resources' Metadata is free-form."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise Invalid("Metadata", f"expected a mapping, got {show(metadata)}")
    if "lambdabus" not in metadata:
        return {}
    if rtype != s.FUNCTION:
        raise Invalid(
            "Metadata.lambdabus", "lambdabus reads these only on functions and at the top level"
        )
    return dict(check(metadata["lambdabus"] or {}, s.FUNCTION_SETTINGS, "Metadata.lambdabus", warn))


def _sort_properties(schema: Shape, props: Mapping[str, Any], warn: Warn) -> None:
    """The property-name tiers of one resource, as written (before Globals)."""
    for key in props:
        if key in (schema.fields or {}):
            continue
        if key in schema.ignored:
            warn(key, schema.ignored[key])
        elif key in schema.refused:
            raise Invalid(str(key), schema.refused[key])
        else:
            raise Invalid(str(key), "unknown property" + did_you_mean(str(key), schema.known()))


def add_implicit(
    decls: dict[str, Declaration], globals_: Globals, left_out: Mapping[str, str]
) -> None:
    """SAM's generated resources that templates refer to: implicit APIs and function roles."""
    needs = {"Api": False, "HttpApi": False}
    for lid, decl in list(decls.items()):
        if lid in left_out or decl.type not in (s.FUNCTION, s.SAM_STATE_MACHINE):
            continue
        events = decl.properties.get("Events")
        for event in events.values() if isinstance(events, dict) else ():
            if isinstance(event, dict) and event.get("Type") in ("Api", "HttpApi"):
                props = event.get("Properties") or {}
                key = "RestApiId" if event["Type"] == "Api" else "ApiId"
                needs[event["Type"]] |= not (isinstance(props, dict) and key in props)
        role = f"{lid}Role"
        if "Role" not in decl.properties and role not in decls:
            decls[role] = Declaration(role, "AWS::IAM::Role", {}, implicit=True)
    implicit: list[tuple[str, str, str, dict[str, Any]]] = [
        ("Api", "ServerlessRestApi", s.API, {"StageName": "Prod"}),
        ("HttpApi", "ServerlessHttpApi", s.HTTP_API, {}),
    ]
    for kind, lid, rtype, props in implicit:
        if needs[kind] and lid not in decls:
            decls[lid] = Declaration(
                lid, rtype, apply_globals(globals_, rtype, props), implicit=True
            )
