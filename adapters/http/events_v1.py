"""Payload format 1.0: the event a REST API (and an HTTP API set to ``"1.0"``) sends.

Shape as AWS documents and sends it: single-valued ``headers`` and
``queryStringParameters`` keep the *last* value of a repeat while the
``multiValue*`` twins keep all; absent parts are ``null``, never missing; a
REST API passes ``path`` percent-encoded as received, an HTTP API decoded.
``requestContext.path`` is the path the client asked for (with the stage when
stages are mounted, as on API Gateway's default domain).
"""

from __future__ import annotations

import functools
import hashlib
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


@functools.lru_cache(maxsize=1024)
def _resource_id(path: str) -> str:
    """A REST resource's id: stable per resource path, as API Gateway's are per resource."""
    return hashlib.sha256(path.encode()).hexdigest()[:6]


def headers_v1(req: RequestData) -> tuple[dict[str, str], dict[str, list[str]]]:
    """(``headers``, ``multiValueHeaders``) in one pass over the headers: what the plain
    ``multi_headers(forwarded(req, lower=False))`` of tests/http_reference.py gives, and
    the last value of each."""
    spelled: dict[str, str] = {}
    last: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    previous: str | None = None
    for name, value in req.headers:
        lowered = name.lower()
        if lowered in OVERRIDDEN:
            if lowered == "x-forwarded-for":
                previous = value
            continue
        key = spelled.setdefault(lowered, name)
        last[key] = value
        if key in multi:
            multi[key].append(value)
        else:
            multi[key] = [value]
    for name, value in gateway_headers(req, previous, TRACE_HEADER in spelled, lower=False):
        last[name] = value
        multi[name] = [value]
    return last, multi


def identity(req: RequestData, api_key: str | None) -> dict[str, Any]:
    return {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "apiKey": api_key,
        "apiKeyId": hashlib.sha256(api_key.encode()).hexdigest()[:10] if api_key else None,
        "sourceIp": req.source_ip,
        "principalOrgId": None,
        "accessKey": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": req.header("User-Agent"),
        "user": None,
    }


def authorizer_v1(grant: Grant | None) -> dict[str, Any] | None:
    """REST's shape: a Lambda authorizer's context flattened beside principalId; JWT
    claims and scopes (HTTP APIs sending format 1.0)."""
    if grant is None:
        return None
    if grant.kind == "jwt":
        return {"claims": grant.claims, "scopes": grant.scopes}
    return {
        **grant.context,
        "principalId": grant.principal_id,
        "integrationLatency": grant.latency_ms,
    }


def request_context(
    req: RequestData,
    match: Match,
    request_id: str,
    extended_id: str,
    api_key: str | None = None,
    grant: Grant | None = None,
) -> dict[str, Any]:
    route, host = match.route, req.host()
    rest = route.api.kind == "rest"
    request_time, epoch_ms = request_times(req.time)
    context: dict[str, Any] = {
        "resourceId": _resource_id(route.path) if rest else route.route_key,
        "resourcePath": route.path,
        "httpMethod": req.method,
        "extendedRequestId": extended_id,
        "requestTime": request_time,
        "path": req.raw_path if rest else unquote(req.raw_path),
        "accountId": ACCOUNT_ID,
        "protocol": req.protocol,
        "stage": route.api.stage,
        "domainPrefix": domain_prefix(host),
        "requestTimeEpoch": epoch_ms,
        "requestId": request_id,
        "identity": identity(req, api_key),
        "domainName": host,
        "apiId": route.api.id,
    }
    authorizer = authorizer_v1(grant)
    if authorizer is not None:
        context["authorizer"] = authorizer
    return context


def build_v1(
    req: RequestData,
    match: Match,
    request_id: str,
    extended_id: str,
    *,
    api_key: str | None = None,
    grant: Grant | None = None,
    query: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """The proxy event for ``req`` routed by ``match``; raises UnicodeDecodeError or
    ValueError for a query string that isn't UTF-8 or has too many fields.
    ``query``: ``req.query()``, when the caller has parsed it already."""
    route = match.route
    api = route.api
    rest = api.kind == "rest"
    headers, multi = headers_v1(req)
    if query is None:
        query = req.query()
    body, is_b64 = (
        encode_body(req.body, req.header("Content-Type"), api.binary_media_types if rest else None)
        if req.body
        else (None, False)
    )
    event: dict[str, Any] = {} if rest else {"version": "1.0"}
    event["resource"] = route.path
    event["path"] = match.path if rest else unquote(match.path)
    event["httpMethod"] = req.method
    event["headers"] = headers
    event["multiValueHeaders"] = multi
    event["queryStringParameters"] = {k: v[-1] for k, v in query.items()} if query else None
    event["multiValueQueryStringParameters"] = query or None
    event["requestContext"] = request_context(req, match, request_id, extended_id, api_key, grant)
    event["pathParameters"] = match.path_parameters
    event["stageVariables"] = dict(api.stage_variables) if api.stage_variables else None
    event["body"] = body
    event["isBase64Encoded"] = is_b64
    return event
