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

from .request import Grant, RequestData, domain_prefix, encode_body, forwarded, request_times
from .routes import Match


def joined_headers(headers: list[tuple[str, str]]) -> tuple[dict[str, str], list[str]]:
    """(lower-cased headers with repeats comma-joined, cookies split out of ``cookie``)."""
    out: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
        elif key in out:
            out[key] = f"{out[key]},{value}"
        else:
            out[key] = value
    return out, cookies


def authorizer_v2(grant: Grant | None) -> dict[str, Any] | None:
    if grant is None:
        return None
    if grant.kind == "jwt":
        return {"jwt": {"claims": grant.claims, "scopes": grant.scopes}}
    return {"lambda": dict(grant.context)}


def request_context(
    req: RequestData, match: Match, request_id: str, grant: Grant | None = None
) -> dict[str, Any]:
    host = req.host()
    request_time, epoch_ms = request_times(req.time)
    context: dict[str, Any] = {
        "accountId": ACCOUNT_ID,
        "apiId": match.route.api.id,
        "domainName": host,
        "domainPrefix": domain_prefix(host),
        "http": {
            "method": req.method,
            "path": unquote(req.raw_path),
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
    req: RequestData, match: Match, request_id: str, *, grant: Grant | None = None
) -> dict[str, Any]:
    """The proxy event for ``req`` routed by ``match``; raises UnicodeDecodeError or
    ValueError for a query string that isn't UTF-8 or has too many fields."""
    headers, cookies = joined_headers(forwarded(req, lower=True))
    query = req.query()
    body, is_b64 = encode_body(req.body, req.header("Content-Type"), None)
    route = match.route
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": unquote(req.raw_path),
        "rawQueryString": req.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
    event["requestContext"] = request_context(req, match, request_id, grant)
    if body is not None:
        event["body"] = body
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    event["isBase64Encoded"] = is_b64
    if route.api.stage_variables:
        event["stageVariables"] = dict(route.api.stage_variables)
    return event
