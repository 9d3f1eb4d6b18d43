"""The route table built from a loaded template: its Api and HttpApi events, their
``AWS::Serverless::Api`` / ``HttpApi`` resources or the implicit ones SAM creates,
and the overlaps worth a warning. Matching requests is :mod:`.routes`' job."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from adapters.template.loaded import LoadedTemplate, Resource
from adapters.template.schema import API, HTTP_API

from .auth_config import GatewayConfigError, parse_api_auth, route_auth
from .cors import parse_http_cors, parse_rest_cors
from .errors import ApiKind
from .routes import DEFAULT_ROUTE, Api, Route, RouteTable, parse_path


def _function_of(loaded: LoadedTemplate) -> Any:
    def function_of(value: Any, where: str) -> str:
        name = str(value).rsplit(":function:", 1)[-1].split(":")[0] if value else ""
        if name not in loaded.stack.functions:
            raise GatewayConfigError(f"{where}: {value!r} is not a function of this stack")
        return name

    return function_of


def _jwks(loaded: LoadedTemplate) -> dict[str, str]:
    """``Metadata.lambdabus.jwks``: authorizer name -> JWKS file (relative to the
    template) or URL; lets a local JWT authorizer verify without reaching the issuer."""
    raw = loaded.settings.get("jwks") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise GatewayConfigError("Metadata.lambdabus.jwks: expected authorizer name -> file or URL")
    base = loaded.path.parent
    return {
        name: v if re.match(r"^[a-z]+://", v) else str((base / Path(v)).resolve())
        for name, v in raw.items()
    }


def _api(res: Resource, loaded: LoadedTemplate, jwks: Mapping[str, str]) -> Api:
    props, where = res.properties, res.logical_id
    kind: ApiKind = "rest" if res.type == API else "http"
    auth = parse_api_auth(kind, props.get("Auth"), _function_of(loaded), jwks, f"{where}.Auth")
    if kind == "rest":
        cors = parse_rest_cors(props.get("Cors"), f"{where}.Cors")
        variables = props.get("Variables") or None
        binary = tuple(t.replace("~1", "/") for t in props.get("BinaryMediaTypes", []))
    else:
        cors = parse_http_cors(props.get("CorsConfiguration"), f"{where}.CorsConfiguration")
        variables, binary = props.get("StageVariables") or None, ()
    stage = str(props.get("StageName") or DEFAULT_ROUTE)
    return Api(res.logical_id, res.ref, kind, stage, variables, binary, cors, auth)


def build_routes(
    loaded: LoadedTemplate,
    *,
    mount_stage: bool = False,
    asynchronous: Mapping[str, Collection[str]] | None = None,
) -> RouteTable:
    """Every Api/HttpApi event of ``loaded`` as a route; ``asynchronous`` maps a function to
    the event names it serves asynchronously (its ``Metadata.lambdabus.async_routes``)."""
    jwks = _jwks(loaded)
    apis = {
        res.ref: _api(res, loaded, jwks)
        for res in loaded.resources.values()
        if res.type in (API, HTTP_API)
    }
    wanted = {(fn, ev) for fn, events in (asynchronous or {}).items() for ev in events}
    routes = [
        _route(source.function, source.name, source.properties, apis, wanted)
        for source in loaded.events
        if source.type in ("Api", "HttpApi")
    ]
    for fn, ev in sorted(wanted - {(r.function, r.event) for r in routes}):
        raise GatewayConfigError(
            f"{fn}: Metadata.lambdabus.async_routes: {ev!r} is not an Api or HttpApi event of it"
        )
    return RouteTable(list(apis.values()), routes, mount_stage, _overlaps(routes, mount_stage))


def _route(
    fn: str,
    name: str,
    props: Mapping[str, Any],
    apis: Mapping[str, Api],
    asynchronous: Collection[tuple[str, str]],
) -> Route:
    where = f"{fn}.Events.{name}"
    api_id = props.get("RestApiId") or props.get("ApiId")
    api = apis.get(str(api_id))
    if api is None:
        raise GatewayConfigError(f"{where}: no API with id {api_id!r} in this template")
    version = str(props.get("PayloadFormatVersion", "2.0" if api.kind == "http" else "1.0"))
    timeout_ms = props.get("TimeoutInMillis")
    path, method = str(props["Path"]), str(props["Method"]).upper()
    return Route(
        api,
        method,
        path,
        fn,
        name,
        "2.0" if version == "2.0" else "1.0",
        route_auth(api.kind, api.auth, props.get("Auth"), f"{where}.Auth"),
        float(timeout_ms) / 1000 if timeout_ms is not None else None,
        (fn, name) in asynchronous,
        parse_path(path, f"{where}.Path"),
    )


def _overlaps(routes: list[Route], mount_stage: bool) -> list[str]:
    """Routes of different APIs that share a path at the root: the first API serves them."""
    seen: dict[tuple[str, str], Route] = {}
    warnings: list[str] = []
    for route in routes:
        prefix = route.api.prefix if mount_stage else ()
        key = (route.method, "/".join(prefix) + route.path)
        first = seen.setdefault(key, route)
        if first.api.id != route.api.id:
            warnings.append(
                f"{route.function}.{route.event}: {route.route_key} is also served by"
                f" {first.function}.{first.event} ({first.api.logical_id}), which wins"
            )
    return warnings
