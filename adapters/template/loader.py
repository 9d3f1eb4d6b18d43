"""``load_template``: a SAM template file in, a :class:`LoadedTemplate` out.

The steps, each failing with one line naming file, resource and property:

1. read and parse the file safely (:mod:`.yaml_load`);
2. check the top level (:mod:`.sections`), choose the stack name, resolve
   ``Parameters`` (with overrides), ``Mappings`` and every ``Conditions`` entry;
3. declare every resource and merge ``Globals``, then add SAM's implicit
   resources (:mod:`.declarations`);
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
from .declarations import add_implicit, declare, dependable
from .errors import Invalid, TemplateError, blame
from .functions import BuiltFunction, build_function
from .globals import parse_globals
from .intrinsics import Context, resolve
from .loaded import EventSource, FailureDestination, LoadedTemplate, Resource
from .models import ACCOUNT_ID, Declaration, ResourceTable, current_region
from .parameters import resolve_parameters
from .resources import finish
from .sections import TEMPLATE, conditions, mappings, template_settings, top_level
from .shapes import Warn, check
from .subscriptions import subscribed_events
from .triggers import EventSite
from .yaml_load import load_file

_STACK_NAME = re.compile(r"[A-Za-z][-A-Za-z0-9]{0,127}")


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
        top = top_level(load_file(self.path))
        settings = template_settings(top.get("Metadata"))
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
            mappings(top.get("Mappings")),
            conditions(top.get("Conditions")),
        )
        for name in ctx.conditions:
            ctx.condition(name, name)
        globals_ = parse_globals(top.get("Globals"), self.warn_for("Globals"))
        known = dependable(declared)
        decls = {
            lid: declare(lid, body, ctx, globals_, known, self.warn_for)
            for lid, body in declared.items()
        }
        table = ResourceTable(decls, stack, self.region)
        table.left_out = {
            lid: d.condition
            for lid, d in decls.items()
            if d.condition and not ctx.condition(d.condition, "Condition")
        }
        add_implicit(decls, globals_, table.left_out)
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
