"""``load_template``: a SAM template file in, a :class:`LoadedTemplate` out.

The steps, each failing with one line naming file, resource and property:

1. read and parse the file safely (:mod:`.yaml_load`);
2. check the top level, choose the stack name, resolve ``Parameters``
   (with overrides), ``Mappings`` and every ``Conditions`` entry;
3. declare every resource: attributes, type tier, property names (ignored ones
   warned about here, as written, so ``Globals`` don't multiply warnings),
   then merge ``Globals``; add SAM's implicit resources (``ServerlessRestApi``,
   ``ServerlessHttpApi``, ``<Function>Role``) so references to them resolve;
4. resolve and check the supported properties of every resource whose
   ``Condition`` holds (ignored properties are never resolved: they only
   matter on AWS, where CloudFormation checks them);
5. build the functions (:mod:`.functions`), the other resources, and the
   worker process groups.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bus.spec import Stack

from . import schema as s
from .errors import Invalid, TemplateError, blame, did_you_mean, show
from .functions import BuiltFunction, build_function
from .globals import Globals, apply_globals, parse_globals
from .intrinsics import Context, resolve
from .loaded import EventSource, FailureDestination, LoadedTemplate, Resource
from .models import ACCOUNT_ID, Declaration, ResourceTable, current_region
from .parameters import resolve_parameters
from .resources import finish
from .shapes import Shape, Warn, check
from .subscriptions import subscribed_events
from .triggers import EventSite
from .yaml_load import load_file

_LOGICAL_ID = re.compile(r"[A-Za-z0-9]+")
_STACK_NAME = re.compile(r"[A-Za-z][-A-Za-z0-9]{0,127}")
TEMPLATE = "(template)"


def load_template(
    path: str | Path,
    parameter_overrides: Mapping[str, str] | None = None,
    stack_name: str | None = None,
) -> LoadedTemplate:
    """Load, check and resolve a SAM template; :class:`TemplateError` on the first problem."""
    label = str(path)
    loader = _Loader(Path(path), dict(parameter_overrides or {}), stack_name)
    try:
        return loader.load(label)
    except Invalid as exc:
        raise TemplateError(exc.line(label)) from None


class _Loader:
    def __init__(self, path: Path, overrides: dict[str, str], stack_name: str | None) -> None:
        self.path = path.resolve()
        self.base = self.path.parent
        self.overrides = overrides
        self.stack_name = stack_name
        self.region = current_region()
        self._warnings: dict[str, list[tuple[str, str]]] = {TEMPLATE: [], "Globals": []}

    def warn_for(self, resource: str) -> Warn:
        return lambda prop, reason: self._warnings.setdefault(resource, []).append((prop, reason))

    def load(self, label: str) -> LoadedTemplate:
        top = _top_level(load_file(self.path))
        settings = _settings(top.get("Metadata"))
        stack = self._stack(settings)
        for key in sorted(s.IGNORED_TOP_LEVEL_KEYS & top.keys()):
            self.warn_for(TEMPLATE)(key, s.ONLY_ON_AWS)
        declared: dict[str, Any] = top["Resources"]
        for logical_id in declared:
            self._warnings.setdefault(str(logical_id), [])
        parameters = resolve_parameters(top.get("Parameters"), self.overrides)
        for name in parameters.keys() & declared.keys():
            raise Invalid(name, "a parameter and a resource have this name", "Parameters")
        ctx = Context(
            self.region,
            ACCOUNT_ID,
            stack,
            parameters,
            _mappings(top.get("Mappings")),
            _conditions(top.get("Conditions")),
        )
        for name in ctx.conditions:
            ctx.condition(name, name)
        globals_ = parse_globals(top.get("Globals"), self.warn_for("Globals"))
        known = _dependable(declared)
        decls = {
            lid: self._declare(lid, body, ctx, globals_, known) for lid, body in declared.items()
        }
        table = ResourceTable(decls, stack, self.region)
        table.left_out = {
            lid: d.condition
            for lid, d in decls.items()
            if d.condition and not ctx.condition(d.condition, "Condition")
        }
        _add_implicit(decls, globals_, table.left_out)
        ctx.targets = table
        resolved = {
            lid: self._resolve(decl, ctx)
            for lid, decl in decls.items()
            if lid not in table.left_out and decl.type in s.RESOURCE_SCHEMAS
        }
        return self._assemble(label, stack, settings, decls, resolved, ctx, table)

    def _stack(self, settings: Mapping[str, Any]) -> str:
        """``stack_name``, else ``Metadata.lambdabus.stack``, else the folder's name."""
        if self.stack_name is not None:
            name, where = self.stack_name, "stack name"
        elif "stack" in settings:
            name, where = settings["stack"], "Metadata.lambdabus.stack"
        else:
            folder = re.sub(r"[^A-Za-z0-9-]+", "-", self.base.name).strip("-")
            return folder if _STACK_NAME.fullmatch(folder) else f"stack-{folder}".rstrip("-")[:128]
        if not isinstance(name, str) or not _STACK_NAME.fullmatch(name):
            raise Invalid(
                where,
                f"{name!r} is not a valid stack name (a letter, then letters,"
                " digits or hyphens, at most 128)",
                TEMPLATE,
            )
        return name

    def _declare(
        self, lid: Any, body: Any, ctx: Context, globals_: Globals, known: _Dependable
    ) -> Declaration:
        with blame(str(lid)):
            if not isinstance(lid, str) or not _LOGICAL_ID.fullmatch(lid):
                raise Invalid("-", "a logical id must be alphanumeric")
            if not isinstance(body, dict):
                raise Invalid("-", f"expected a mapping with Type and Properties, got {show(body)}")
            warn = self.warn_for(lid)
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

    def _resolve(self, decl: Declaration, ctx: Context) -> dict[str, Any]:
        schema = s.RESOURCE_SCHEMAS[decl.type]
        assert schema.fields is not None
        warn = self.warn_for(decl.logical_id)
        with blame(decl.logical_id):
            raw = {k: v for k, v in decl.properties.items() if k in schema.fields}
            props = check(resolve(raw, ctx, ""), schema, "", warn)
            return finish(decl.type, props, self.base, warn)

    def _assemble(
        self,
        label: str,
        stack: str,
        settings: dict[str, Any],
        decls: Mapping[str, Declaration],
        resolved: Mapping[str, dict[str, Any]],
        ctx: Context,
        table: ResourceTable,
    ) -> LoadedTemplate:
        site = EventSite(ctx, table, self.base, resolved)
        resources: dict[str, Resource] = {}
        built: list[BuiltFunction] = []
        types = {lid: decl.type for lid, decl in decls.items()}
        topics = {
            lid: str(table.identity(lid, ctx).arn) for lid in resolved if types[lid] == s.TOPIC
        }
        subscribed, repeated = subscribed_events(types, resolved, topics)
        for fn, name in repeated:
            self.warn_for(fn)(name, "it subscribes the function to a topic it already has")
        for lid, props in resolved.items():
            decl = decls[lid]
            with blame(lid):
                if decl.type == s.FUNCTION:
                    if lid in subscribed:
                        own = props.get("Events") or {}
                        props = {**props, "Events": {**own, **subscribed[lid]}}
                    built.append(
                        build_function(lid, props, decl.settings, site, self.warn_for(lid))
                    )
                else:
                    ident = table.identity(lid, ctx)
                    resources[lid] = Resource(
                        lid, decl.type, props, ident.name, ident.arn, ident.ref
                    )
        from ..sfn.starters import starters  # state machine Events start executions

        built += starters(resources, site, self.warn_for, {b.spec.name for b in built})
        events: list[EventSource] = [e for b in built for e in b.events]
        destinations: list[FailureDestination] = [d for b in built for d in b.destinations]
        warnings = [
            f"{label}: {resource}: {prop}: ignored ({reason})"
            for resource, items in self._warnings.items()
            for prop, reason in items
        ]
        return LoadedTemplate(
            path=self.path,
            stack=Stack(stack, {b.spec.name: b.spec for b in built}),
            resources=resources,
            events=events,
            warnings=warnings,
            groups=_groups(built),
            settings=settings,
            async_routes={b.spec.name: list(b.async_routes) for b in built if b.async_routes},
            destinations=destinations,
            region=self.region,
        )


def _top_level(doc: Any) -> dict[str, Any]:
    if doc is None:
        raise Invalid("-", "the template is empty", TEMPLATE)
    if not isinstance(doc, dict):
        raise Invalid("-", f"the top level must be a mapping, got {show(doc)}", TEMPLATE)
    known = s.TOP_LEVEL_KEYS | s.IGNORED_TOP_LEVEL_KEYS
    for key in doc:
        if key not in known:
            raise Invalid(
                str(key), "unknown top-level section" + did_you_mean(str(key), known), TEMPLATE
            )
    version = doc.get("AWSTemplateFormatVersion")
    if version is not None and str(version) != "2010-09-09":
        raise Invalid(
            "AWSTemplateFormatVersion", f"must be 2010-09-09, got {show(version)}", TEMPLATE
        )
    transform = doc.get("Transform")
    if transform is not None and transform not in (s.SAM_TRANSFORM, [s.SAM_TRANSFORM]):
        raise Invalid("Transform", f"must be {s.SAM_TRANSFORM}, got {show(transform)}", TEMPLATE)
    resources = doc.get("Resources")
    if resources is None:
        raise Invalid("Resources", "required, but missing", TEMPLATE)
    if not isinstance(resources, dict):
        raise Invalid("Resources", f"expected a mapping, got {show(resources)}", TEMPLATE)
    if not resources:
        raise Invalid("Resources", "declares no resources", TEMPLATE)
    return doc


def _settings(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise Invalid("Metadata", f"expected a mapping, got {show(metadata)}", TEMPLATE)
    settings = metadata.get("lambdabus") or {}
    if not isinstance(settings, dict):
        raise Invalid("Metadata.lambdabus", f"expected a mapping, got {show(settings)}", TEMPLATE)
    return dict(settings)


def _mappings(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Invalid("-", f"expected a mapping, got {show(raw)}", "Mappings")
    for name, top in raw.items():
        if not _LOGICAL_ID.fullmatch(str(name)):
            raise Invalid(str(name), "a mapping name must be alphanumeric", "Mappings")
        if not isinstance(top, dict) or not all(isinstance(v, dict) for v in top.values()):
            raise Invalid(str(name), "expected a mapping of mappings", "Mappings")
    return raw


def _conditions(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Invalid("-", f"expected a mapping, got {show(raw)}", "Conditions")
    for name in raw:
        if not _LOGICAL_ID.fullmatch(str(name)):
            raise Invalid(str(name), "a condition name must be alphanumeric", "Conditions")
    return raw


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


class _Dependable:
    """Names ``DependsOn`` may use: declared resources, and what SAM generates from them
    (``<Function>Role``, ``<Api>ProdStage``, ``ServerlessRestApi…``), which all start
    with the logical id of a serverless resource."""

    def __init__(self, declared: Mapping[str, Any], prefixes: tuple[str, ...]) -> None:
        self.declared, self.prefixes = declared, prefixes

    def __contains__(self, name: str) -> bool:
        return name in self.declared or name.startswith(self.prefixes)


def _dependable(declared: Mapping[str, Any]) -> _Dependable:
    serverless = [
        str(lid)
        for lid, body in declared.items()
        if isinstance(body, dict) and str(body.get("Type", "")).startswith("AWS::Serverless::")
    ]
    return _Dependable(declared, ("ServerlessRestApi", "ServerlessHttpApi", *serverless))


def _check_depends_on(depends_on: Any, known: _Dependable) -> None:
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


def _add_implicit(
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


def _groups(built: list[BuiltFunction]) -> list[list[str]]:
    """One group per function, except those sharing ``Metadata.lambdabus.group``."""
    groups: dict[str, list[BuiltFunction]] = {}
    for b in built:
        groups.setdefault(f"group:{b.group}" if b.group else f"alone:{b.spec.name}", []).append(b)
    for members in groups.values():
        first = members[0]
        for other in members[1:]:
            if dict(other.spec.environment) != dict(first.spec.environment):
                raise Invalid(
                    "Metadata.lambdabus.group",
                    f"group {other.group!r} needs the same Environment as {first.spec.name}",
                    other.spec.name,
                )
    return [[b.spec.name for b in members] for members in groups.values()]
