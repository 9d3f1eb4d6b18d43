"""Payload format 2.0: the event an HTTP API sends by default.

As AWS sends it: header names lower-cased with repeats joined by commas,
the ``cookie`` header moved into ``cookies`` (one entry per cookie),
repeated query parameters joined by commas in ``queryStringParameters``
while ``rawQueryString`` stays as received, and absent parts (cookies,
query, body, path parameters, stage variables) left out rather than null.
``rawPath`` is decoded, as HTTP APIs deliver it, and includes a named stage
when stages are mounted.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from adapters.template.models import ACCOUNT_ID

from .request import (
    OVERRIDDEN,
    TRACE_HEADER,
    Grant,
    RequestData,
    domain_prefix,
    encode_body,
    gateway_headers,
    request_times,
)
from .routes import Match


def headers_v2(req: RequestData) -> tuple[dict[str, str], list[str]]:
    """``joined_headers(forwarded(req, lower=True))`` (tests/http_reference.py) in one pass."""
    out: dict[str, str] = {}
    cookies: list[str] = []
    previous: str | None = None
    for name, value in req.headers:
        key = name.lower()
        if key in OVERRIDDEN:
            if key == "x-forwarded-for":
                previous = value
        elif key == "cookie":
            cookies.extend([c.strip() for c in value.split(";") if c.strip()])
        elif key in out:
            out[key] = f"{out[key]},{value}"
        else:
            out[key] = value
    out.update(gateway_headers(req, previous, TRACE_HEADER in out, lower=True))
    return out, cookies


def authorizer_v2(grant: Grant | None) -> dict[str, Any] | None:
    if grant is None:
        return None
    if grant.kind == "jwt":
        return {"jwt": {"claims": grant.claims, "scopes": grant.scopes}}
    return {"lambda": dict(grant.context)}


def request_context(
    req: RequestData,
    match: Match,
    request_id: str,
    path: str,
    grant: Grant | None = None,
) -> dict[str, Any]:
    """``path``: the decoded path (the event's ``rawPath``)."""
    host = req.host()
    request_time, epoch_ms = request_times(req.time)
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": match.route.api.id,
        "domainName": host,
        "domainPrefix": domain_prefix(host),
        "http": {
            "method": req.method,
            "path": path,
            "protocol": req.protocol,
            "sourceIp": req.source_ip,
            "userAgent": req.header("User-Agent") or "",
        },
        "requestId": request_id,
        "routeKey": match.route.route_key,
        "stage": match.route.api.stage,
        "time": request_time,
        "timeEpoch": epoch_ms,
    }
    authorizer = authorizer_v2(grant)
    if authorizer is not None:
        context["authorizer"] = authorizer
    return context


def build_v2(
    req: RequestData,
    match: Match,
    request_id: str,
    *,
    grant: Grant | None = None,
    query: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The proxy event for ``req`` routed by ``match``; raises UnicodeDecodeError or
    ValueError for a query string that isn't UTF-8 or has too many fields.
    ``query``: ``req.query()``, when the caller has parsed it already."""
    headers, cookies = headers_v2(req)
    if query is None:
        query = req.query()
    body, is_b64 = (
        encode_body(req.body, req.header("Content-Type"), None) if req.body else (None, False)
    )
    route = match.route
    path = unquote(req.raw_path)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": path,
        "rawQueryString": req.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
    event["requestContext"] = request_context(req, match, request_id, path, grant)
    if body is not None:
        event["body"] = body
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    event["isBase64Encoded"] = is_b64
    if route.api.stage_variables:
        event["stageVariables"] = dict(route.api.stage_variables)
    return event
