"""The route table: the template's Api and HttpApi events, and how a request finds one.

Pure data and functions (no I/O), so routing is tested without a server.

Matching follows each API kind's documented precedence:

- **REST APIs** walk a resource tree: at each path segment a literal child
  beats ``{param}``, which beats ``{proxy+}``. The resource is chosen by path
  alone; if it lacks the request's method (and ``ANY``), API Gateway answers
  403 "Missing Authentication Token", as for an unknown path.
- **HTTP APIs** pick among routes whose method matches (an exact method over
  ``ANY``): a full match beats any greedy ``{proxy+}`` match, the longer
  greedy prefix wins, and ``$default`` catches the rest. Nothing matching is
  404 "Not Found" — API Gateway never answers 405.

A greedy variable needs at least one segment (``/{proxy+}`` doesn't match
``/``). A trailing slash matches the same route. By default every API is
served at the root, as ``sam local start-api`` serves them; with
``mount_stage`` each API lives under ``/{StageName}`` (an HTTP API's
``$default`` stage at the root), as on API Gateway's default domain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

from .auth_config import ApiAuth, GatewayConfigError, RouteAuth
from .cors import CorsConfig
from .errors import ApiKind

DEFAULT_ROUTE = "$default"

LITERAL, PARAM, GREEDY = 0, 1, 2
Segment = tuple[int, str]
_PARAM = re.compile(r"\{([A-Za-z0-9._-]+)(\+?)\}")


@dataclass(frozen=True, slots=True)
class Api:
    logical_id: str
    id: str
    kind: ApiKind
    stage: str
    stage_variables: Mapping[str, str] | None = None
    binary_media_types: tuple[str, ...] = ()
    cors: CorsConfig | None = None
    auth: ApiAuth = field(default_factory=ApiAuth)
    prefix: tuple[str, ...] = field(init=False, repr=False, compare=False)
    """The path segments the API sits under when stages are mounted."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", () if self.stage == DEFAULT_ROUTE else (self.stage,))


@dataclass(frozen=True, slots=True)
class Route:
    api: Api
    method: str
    """An HTTP method, or ``ANY``."""
    path: str
    """``/users/{id}``, ``/files/{proxy+}`` or ``$default``."""
    function: str
    event: str
    payload_version: Literal["1.0", "2.0"] = "1.0"
    auth: RouteAuth = field(default_factory=RouteAuth)
    timeout_s: float | None = None
    """The event's ``TimeoutInMillis``; None: the gateway's integration timeout."""
    asynchronous: bool = False
    segments: tuple[Segment, ...] = ()
    route_key: str = field(init=False, repr=False, compare=False)
    """``GET /users/{id}`` or ``$default``."""
    label: str = field(init=False, repr=False, compare=False)
    """``Function routeKey``, as the access log names what served a request."""

    def __post_init__(self) -> None:
        key = DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"
        object.__setattr__(self, "route_key", key)
        object.__setattr__(self, "label", f"{self.function} {key}")


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    path_parameters: dict[str, str] | None
    path: str
    """The request's raw (percent-encoded) path without the mounted stage prefix."""


@dataclass(frozen=True, slots=True)
class Miss:
    kind: ApiKind
    """Whose dialect answers: the API the path was closest to."""


@dataclass(frozen=True, slots=True)
class Preflight:
    api: Api
    methods: frozenset[str]
    """Methods the matched REST resource serves (empty for HTTP APIs)."""
    match: Match | None = None
    """REST: the resource (one of its routes), for the auth SAM adds to its OPTIONS."""


def parse_path(path: str, where: str) -> tuple[Segment, ...]:
    """A route path's segments; ``{proxy+}`` only last, variables only as whole segments."""
    if path == DEFAULT_ROUTE:
        return ()
    parts = [p for p in path.split("/")[1:] if p != ""] if path != "/" else []
    segments: list[Segment] = []
    for i, part in enumerate(parts):
        found = _PARAM.fullmatch(part)
        if found is None:
            if "{" in part or "}" in part:
                raise GatewayConfigError(f"{where}: {part!r} is not a whole-segment {{variable}}")
            segments.append((LITERAL, part))
        elif found.group(2):
            if i != len(parts) - 1:
                raise GatewayConfigError(f"{where}: a greedy {part} must be the last segment")
            segments.append((GREEDY, found.group(1)))
        else:
            segments.append((PARAM, found.group(1)))
    return tuple(segments)


def _bind(segments: tuple[Segment, ...], parts: list[str], trailing: bool) -> dict[str, str] | None:
    """Path parameters (decoded) if ``parts`` (decoded segments) fit the route, else None."""
    params: dict[str, str] = {}
    for i, (kind, text) in enumerate(segments):
        if i >= len(parts):
            return None
        if kind == GREEDY:
            params[text] = "/".join(parts[i:]) + ("/" if trailing else "")
            return params
        if kind == LITERAL:
            if parts[i] != text:
                return None
        elif not parts[i]:
            return None
        else:
            params[text] = parts[i]
    return params if len(parts) == len(segments) else None


def _rank(route: Route) -> tuple[int, ...]:
    """Lower is more specific. HTTP APIs rank any full match above any greedy one."""
    kinds = tuple(kind for kind, _ in route.segments)
    if route.api.kind == "http":
        return (GREEDY in kinds, *kinds)
    return kinds


def split_path(raw_path: str) -> tuple[list[str], bool]:
    """Decoded segments of a raw path and whether it ends in ``/``; raises
    UnicodeDecodeError for percent-escapes that aren't UTF-8 (the caller's 400)."""
    body = raw_path[1:]
    trailing = body.endswith("/")
    if trailing:
        body = body[:-1]
    raw_parts = body.split("/") if body else []
    if "%" not in body:
        return raw_parts, trailing
    return [unquote(p, errors="strict") for p in raw_parts], trailing


CACHED_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})
"""Methods whose matches :meth:`RouteTable.match` remembers (any token is a method)."""


@dataclass
class RouteTable:
    apis: list[Api]
    routes: list[Route]
    mount_stage: bool = False
    warnings: list[str] = field(default_factory=list)
    _http: dict[str, list[tuple[Route, tuple[int, ...]]]] = field(default_factory=dict, repr=False)
    """HTTP API id -> its routes and their ranks, most specific first."""
    _resources: dict[str, list[tuple[str, tuple[Segment, ...]]]] = field(
        default_factory=dict, repr=False
    )
    """REST API id -> its resource paths, most specific first."""
    _methods: dict[tuple[str, str], dict[str, Route]] = field(default_factory=dict, repr=False)
    """(REST API id, resource path) -> method -> route."""
    _exact: dict[tuple[str, str], Match] = field(default_factory=dict, repr=False, compare=False)
    """(method, raw path) -> its match, for routes without variables (see :meth:`match`)."""

    def __post_init__(self) -> None:
        for route in sorted(self.routes, key=_rank):
            api_id = route.api.id
            if route.api.kind == "http":
                self._http.setdefault(api_id, []).append((route, _rank(route)))
                continue
            methods = self._methods.setdefault((api_id, route.path), {})
            if not methods:
                self._resources.setdefault(api_id, []).append((route.path, route.segments))
            methods[route.method] = route

    def _scope(self, api: Api, parts: list[str], raw_path: str) -> tuple[list[str], str] | None:
        """The segments (and raw path) inside ``api``, or None if its stage isn't in the path."""
        prefix = api.prefix if self.mount_stage else ()
        if tuple(parts[: len(prefix)]) != prefix:
            return None
        if not prefix:
            return parts, raw_path
        rest = raw_path.split("/", 2)
        return parts[len(prefix) :], "/" + (rest[2] if len(rest) > 2 else "")

    def match(self, method: str, raw_path: str) -> Match | Miss:
        """The route serving ``method raw_path``, else which API kind refuses it.

        Raises UnicodeDecodeError for a path whose escapes aren't UTF-8.

        A match of a route without variables (not ``$default``) is remembered: it depends
        on nothing but the method and path, and holds nothing mutable. Only those of paths
        without escapes and of standard methods are, so the cache stays small: two paths
        (with and without a trailing slash) per such route and method at most."""
        key = (method, raw_path)
        found = self._exact.get(key)
        if found is not None:
            return found
        matched = self.match_uncached(method, raw_path)
        if (
            isinstance(matched, Match)
            and matched.path_parameters is None
            and matched.route.path != DEFAULT_ROUTE
            and method in CACHED_METHODS
            and "%" not in raw_path
        ):
            self._exact[key] = matched
        return matched

    def match_uncached(self, method: str, raw_path: str) -> Match | Miss:
        """:meth:`match` without its cache."""
        parts, trailing = split_path(raw_path)
        kinds: set[ApiKind] = set()
        resource_without_method = False
        unmatched_rest: list[tuple[Api, list[str]]] = []
        for api in self.apis:
            scoped = self._scope(api, parts, raw_path)
            if scoped is None:
                continue
            kinds.add(api.kind)
            inner, path = scoped
            if api.kind == "rest":
                resource = self._resource(api, inner, trailing)
                if resource is None:
                    unmatched_rest.append((api, inner))  # a parent resource? asked if we miss
                    continue
                methods, params = resource
                route = methods.get(method) or methods.get("ANY")
                if route is not None:
                    return Match(route, params or None, path)
                resource_without_method = True
            else:
                hit = self._match_http(api, method, inner, trailing)
                if hit is not None:
                    return Match(hit[0], hit[1] or None, path)
        if not resource_without_method:
            resource_without_method = any(self._is_parent(a, p) for a, p in unmatched_rest)
        if resource_without_method or kinds == {"rest"}:
            return Miss("rest")
        if kinds or any(a.kind == "http" for a in self.apis):
            return Miss("http")
        return Miss("rest")

    def _resource(
        self, api: Api, parts: list[str], trailing: bool
    ) -> tuple[dict[str, Route], dict[str, str]] | None:
        """The most specific REST resource the path fits: its methods and path parameters."""
        for path, segments in self._resources.get(api.id, ()):
            params = _bind(segments, parts, trailing)
            if params is not None:
                return self._methods[(api.id, path)], params
        return None

    def _is_parent(self, api: Api, parts: list[str]) -> bool:
        """Whether the path is a resource API Gateway creates on the way to a declared one
        (``/files`` for ``/files/{proxy+}``, the root for any): it exists, serving nothing."""
        return any(
            len(parts) < len(segments) and _bind(segments[: len(parts)], parts, False) is not None
            for _, segments in self._resources.get(api.id, ())
        )

    def _match_http(
        self, api: Api, method: str, parts: list[str], trailing: bool
    ) -> tuple[Route, dict[str, str]] | None:
        default: Route | None = None
        best: tuple[Route, dict[str, str]] | None = None
        best_rank: tuple[int, ...] = ()
        for route, rank in self._http.get(api.id, ()):
            if route.path == DEFAULT_ROUTE:
                if route.method in (method, "ANY") and (default is None or route.method == method):
                    default = route
                continue
            if route.method != method and route.method != "ANY":
                continue
            if best is not None and rank != best_rank:
                break
            params = _bind(route.segments, parts, trailing)
            if params is not None and (best is None or route.method == method):
                best, best_rank = (route, params), rank
        if best is None and default is not None:
            return default, {}
        return best

    def preflight(self, raw_path: str, cors_request: bool) -> Preflight | None:
        """The CORS-enabled API that answers an OPTIONS request itself, if any: an HTTP
        API for any real preflight, a REST API for its paths without their own OPTIONS."""
        parts, trailing = split_path(raw_path)
        for api in self.apis:
            scoped = self._scope(api, parts, raw_path)
            if api.cors is None or scoped is None:
                continue
            if api.kind == "http":
                if cors_request:
                    return Preflight(api, frozenset())
                continue
            resource = self._resource(api, scoped[0], trailing)
            if resource is not None and "OPTIONS" not in resource[0]:
                methods, params = resource
                some = next(iter(methods.values()))
                return Preflight(api, frozenset(methods), Match(some, params or None, scoped[1]))
        return None
