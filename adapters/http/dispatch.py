"""One request through the gateway: limits → route → auth → body → invoke → response.

Everything that can refuse a request without reading its body runs first
(URL and header limits, routing, a declared Content-Length over 10 MB, auth),
so a refused upload is never read, and ``Expect: 100-continue`` is answered
only once the request is going to be served. A body without a length is read
chunk by chunk and refused as soon as it passes the limit, and a body that
hasn't all arrived by the body deadline is refused with 408 (see
:mod:`.server`): a stalled upload invokes nothing.

Function answers become responses per payload format (:mod:`.responses`);
a failed or malformed answer is the API kind's integration failure, a late
one its integration timeout; the function's error never reaches the client,
only the log.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from bus.sync import Invoker, InvokeTimeout

from .auth import Authorizers
from .auth_config import RouteAuth
from .cors import http_actual, http_preflight, is_preflight, rest_preflight
from .errors import Answer, ApiKind, Denied, refusal
from .events_v1 import build_v1
from .events_v2 import build_v2
from .request import RequestData, RequestIds, request_ids
from .responses import MalformedResponse, response_v1, response_v2
from .routes import Match, Miss, Preflight, RouteTable

log = logging.getLogger("adapters.http")

MAX_BODY_BYTES = 10 * 1024 * 1024
"""API Gateway's payload limit."""
MAX_URL_BYTES = 8192
MAX_HEADER_BYTES = 10240
"""Request line and headers together, as API Gateway counts them."""
LAMBDA_SYNC_LIMIT = 6 * 1024 * 1024
"""Lambda's synchronous invocation payload limit; a bigger event fails the integration."""
_MAY_EXCEED_SYNC_LIMIT = LAMBDA_SYNC_LIMIT * 3 // 4
"""A body under this can't make the event that big (base64 grows it by a third)."""

ROUTE_KEY = web.RequestKey("lambdabus_route", str)
"""What the access log names: ``Function routeKey`` or the refusal."""


def _decoded_headers(request: web.BaseRequest) -> tuple[tuple[str, str], ...]:
    """Raises UnicodeDecodeError for bytes that aren't UTF-8 (events are JSON text)."""
    return tuple([(k.decode("utf-8"), v.decode("utf-8")) for k, v in request.raw_headers])


def _protocol(version: tuple[int, int]) -> str:
    """``HTTP/1.1``, as the events name the request's protocol."""
    known = _PROTOCOLS.get(version)
    return known if known is not None else f"HTTP/{version[0]}.{version[1]}"


_PROTOCOLS = {(1, 1): "HTTP/1.1", (1, 0): "HTTP/1.0"}


async def read_body(request: web.BaseRequest, limit: int, timeout_s: float) -> bytes:
    """The whole body, refused (Denied) as soon as it passes ``limit`` bytes, or when it
    hasn't all arrived ``timeout_s`` after we started reading it.

    The deadline covers the whole body, not the gap between chunks: a client that
    trickles a byte a second would keep an idle timer happy forever. A body that has
    all arrived already (most do, with their head) is read without waiting, so
    without arming the timer."""
    if not request.body_exists:
        return b""
    if request.content.is_eof():
        return await _read_all(request, limit)
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_all(request, limit)
    except TimeoutError:
        raise Denied("request_timeout", f"body incomplete after {timeout_s:g} s") from None


async def _read_all(request: web.BaseRequest, limit: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while chunk := await request.content.readany():
        total += len(chunk)
        if total > limit:
            raise Denied("too_large", f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _continue(request: web.BaseRequest) -> None:
    """Answer ``Expect: 100-continue`` (aiohttp's router would; its low-level server
    doesn't), only now that the request is accepted: a refused upload is never sent."""
    if request.version >= (1, 1) and request.headers.get("Expect", "").lower() == "100-continue":
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        request.writer.output_size = 0


class Dispatcher:
    """Serves every request of one gateway; holds no per-request state."""

    def __init__(
        self,
        table: RouteTable,
        authorizers: Authorizers,
        invoker: Callable[[], Invoker],
        integration_timeout_s: float,
        body_timeout_s: float = 30.0,
    ) -> None:
        self.table = table
        self.authorizers = authorizers
        self.invoker = invoker
        self.integration_timeout_s = integration_timeout_s
        self.body_timeout_s = body_timeout_s
        self.server_port = 0
        """The port the gateway listens on (X-Forwarded-Port), once bound."""
        self.default_kind: ApiKind = (
            "http" if any(a.kind == "http" for a in table.apis) or not table.apis else "rest"
        )

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        kind: ApiKind = self.default_kind
        ids: RequestIds | None = None
        try:
            raw_path, raw_query = self._target(request)
            found = self._route(request, raw_path)
            if isinstance(found, Miss):
                kind = found.kind
                raise Denied("not_found", "no route")
            kind = found.api.kind if isinstance(found, Preflight) else found.route.api.kind
            ids = request_ids(kind)
            req = self._request(request, raw_path, raw_query)
            answer = await self._serve(request, req, found, ids)
        except Denied as denied:
            answer = refusal(kind, denied.what, extra=denied.headers)
            request[ROUTE_KEY] = f"{request.get(ROUTE_KEY, '-')} refused: {denied.reason}"
        except Exception:
            log.exception("%s %s: gateway failure", request.method, request.path)
            answer = refusal(kind, "integration_failed")
        # web.Response copies the pairs into its own CIMultiDict (repeats kept)
        headers = [*answer.headers, *(ids or request_ids(kind)).headers]
        response = web.Response(status=answer.status, body=answer.body, headers=headers)
        if request.body_exists and not request.content.is_eof():
            response.force_close()  # refused unread: the leftover body can't be reused
        return response

    def _target(self, request: web.BaseRequest) -> tuple[str, str]:
        """(raw path, raw query) of a request within API Gateway's size limits."""
        target = request.raw_path
        if len(target) > MAX_URL_BYTES:
            raise Denied("uri_too_long", f"{len(target)} bytes")
        if not target.startswith("/"):
            raise Denied("bad_request", "the request target must be a path")
        size = len(target) + sum([len(k) + len(v) + 4 for k, v in request.raw_headers])
        if size > MAX_HEADER_BYTES:
            raise Denied("headers_too_large", f"{size} bytes")
        raw_path, _, raw_query = target.split("#", 1)[0].partition("?")
        return raw_path, raw_query

    def _route(self, request: web.BaseRequest, raw_path: str) -> Match | Miss | Preflight:
        try:
            if request.method == "OPTIONS":
                cors = is_preflight(
                    request.method,
                    request.headers.get("Origin"),
                    request.headers.get("Access-Control-Request-Method"),
                )
                preflight = self.table.preflight(raw_path, cors)
                if preflight is not None:
                    return preflight
            return self.table.match(request.method, raw_path)
        except UnicodeDecodeError:
            raise Denied("bad_request", "the path is not UTF-8") from None

    def _request(self, request: web.BaseRequest, raw_path: str, raw_query: str) -> RequestData:
        try:
            headers = _decoded_headers(request)
        except UnicodeDecodeError:
            raise Denied("bad_request", "a header is not UTF-8") from None
        port = self.server_port
        if not port:  # listeners on several ports (port 0 on IPv4 and IPv6): ask the connection
            transport = request.transport
            sockname = transport.get_extra_info("sockname") if transport is not None else None
            port = sockname[1] if isinstance(sockname, tuple) else 0
        return RequestData(
            request.method,
            raw_path,
            raw_query,
            headers,
            request.remote or "",
            port,
            _protocol(request.version),
        )

    async def _serve(
        self, request: web.BaseRequest, req: RequestData, found: Match | Preflight, ids: RequestIds
    ) -> Answer:
        request_id = ids.request_id
        if isinstance(found, Preflight):
            request[ROUTE_KEY] = f"{found.api.logical_id} CORS preflight"
            return await self._preflight(req, found, ids)
        route = found.route
        request[ROUTE_KEY] = route.label
        if (request.content_length or 0) > MAX_BODY_BYTES:
            raise Denied("too_large", f"Content-Length {request.content_length}")
        try:
            query = req.query()
        except ValueError:  # UnicodeDecodeError too
            raise Denied("bad_request", "the query string is not valid UTF-8 form data") from None
        auth = route.auth
        grant, api_key = (
            await self.authorizers.check(req, found, auth, ids)
            if auth.authorizer is not None or auth.api_key_required
            else (None, None)
        )
        if request.body_exists:
            await _continue(request)
            body = await read_body(request, MAX_BODY_BYTES, self.body_timeout_s)
            if body:
                req = req.with_body(body)
        if route.payload_version == "2.0":
            event = build_v2(req, found, request_id, grant=grant, query=query)
        else:
            event = build_v1(
                req, found, request_id, ids.extended, api_key=api_key, grant=grant, query=query
            )
        answer = await self._invoke(found, event, len(req.body), request_id)
        if route.api.kind == "http" and route.api.cors is not None:
            headers = http_actual(route.api.cors, req.header("Origin"), answer.headers)
            answer = Answer(answer.status, headers, answer.body)
        return answer

    async def _preflight(self, req: RequestData, found: Preflight, ids: RequestIds) -> Answer:
        api = found.api
        assert api.cors is not None
        if api.kind == "http":
            origin = req.header("Origin") or ""
            return http_preflight(
                api.cors, origin, req.header("Access-Control-Request-Method") or ""
            )
        auth: RouteAuth = api.auth.preflight()
        if found.match is not None and (auth.authorizer is not None or auth.api_key_required):
            await self.authorizers.check(req, found.match, auth, ids)
        return rest_preflight(api.cors, found.methods)

    async def _invoke(
        self, match: Match, event: dict[str, Any], body_bytes: int, rid: str
    ) -> Answer:
        route = match.route
        kind = route.api.kind
        if body_bytes > _MAY_EXCEED_SYNC_LIMIT and len(json.dumps(event)) > LAMBDA_SYNC_LIMIT:
            log.error(
                "%s: event over Lambda's 6 MB payload limit (request %s)", route.function, rid
            )
            return refusal(kind, "integration_failed")
        invoker = self.invoker()
        if route.asynchronous:
            await invoker.invoke_async(route.function, event, request_id=rid)
            return Answer(202)
        timeout_s = route.timeout_s or self.integration_timeout_s
        try:
            result = await invoker.invoke(
                route.function, event, timeout_s=timeout_s, request_id=rid
            )
        except InvokeTimeout:
            log.error("%s: no answer within %g s (request %s)", route.function, timeout_s, rid)
            return refusal(kind, "integration_timeout")
        if result.status != "success":
            error = result.payload if isinstance(result.payload, dict) else {}
            log.error(
                "%s failed (request %s): %s: %s", route.function, rid,
                error.get("errorType", result.status), error.get("errorMessage", ""),
            )  # fmt: skip
            return refusal(kind, "integration_failed")
        try:
            return (
                response_v2(result.payload)
                if route.payload_version == "2.0"
                else response_v1(result.payload)
            )
        except MalformedResponse as exc:
            log.error("%s: malformed response (request %s): %s", route.function, rid, exc)
            return refusal(kind, "integration_failed")
