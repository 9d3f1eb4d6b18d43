"""Builders for the API Gateway sample events (see ``samples``): a REST API
(``aws-proxy``, payload 1.0 without ``version``, as REST APIs send it) and an
HTTP API (``http-api-proxy``, payload format 2.0), both for a request through
the default ``execute-api`` domain to an ``ANY /{proxy+}`` route."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qsl

from .samples_aws import (
    Event,
    Values,
    b64,
    clf,
    client_ip,
    epoch_ms,
    lower_id,
    now,
    partition,
    trace_id,
)

USER_AGENT = "curl/8.5.0"
STAGE_VARIABLES = {"lambdaAlias": "live"}


def _content_type(body: str) -> str:
    try:
        json.loads(body)
    except ValueError:
        return "text/plain; charset=utf-8"
    return "application/json"


def _query(raw: str) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        params.setdefault(name, []).append(value)
    return params


def _proxy(path: str) -> dict[str, str] | None:
    """``{proxy+}`` captures the path without its leading slash; ``/`` has no proxy."""
    return {"proxy": path[1:]} if path != "/" else None


def apigateway_aws_proxy(v: Values) -> Event:
    at, ip, api_id = now(), client_ip(), lower_id(10)
    path, stage, method, body = v["path"], v["stage"], v["method"], v["body"]
    host = f"{api_id}.execute-api.{v['region']}.{partition(v['region'])[1]}"
    resource = "/{proxy+}" if _proxy(path) else "/"
    headers = {"Accept": "*/*"}
    if body:
        headers["Content-Type"] = _content_type(body)
    if v["cookies"]:
        headers["Cookie"] = v["cookies"]
    headers |= {
        "Host": host,
        "User-Agent": USER_AGENT,
        "X-Amzn-Trace-Id": trace_id(at),
        "X-Forwarded-For": ip,
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    query = _query(v["query"])
    identity = {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "sourceIp": ip,
        "principalOrgId": None,
        "accessKey": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": USER_AGENT,
        "user": None,
    }
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        # REST APIs keep the last value of a repeated parameter; null when there are none
        "queryStringParameters": {k: vals[-1] for k, vals in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": _proxy(path),
        "stageVariables": dict(STAGE_VARIABLES),
        "requestContext": {
            "resourceId": lower_id(6),
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": b64(11),
            "requestTime": clf(at),
            "path": f"/{stage}{path}",  # the default domain puts the stage in the path
            "accountId": v["account"],
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": api_id,
            "requestTimeEpoch": epoch_ms(at),
            "requestId": str(uuid.uuid4()),
            "identity": identity,
            "domainName": host,
            "apiId": api_id,
        },
        "body": body or None,
        "isBase64Encoded": False,
    }


def apigatewayv2_http_api_proxy(v: Values) -> Event:
    """Absent parts (cookies, query, body, path parameters) are left out, as AWS does."""
    at, ip, api_id = now(), client_ip(), lower_id(10)
    path, stage, method, body = v["path"], v["stage"], v["method"], v["body"]
    host = f"{api_id}.execute-api.{v['region']}.{partition(v['region'])[1]}"
    # a named stage (not $default) stays in the path HTTP APIs report
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    route = "ANY /{proxy+}" if _proxy(path) else "$default"
    cookies = [c.strip() for c in v["cookies"].split(";") if c.strip()]
    headers = {"accept": "*/*", "content-length": str(len(body.encode()))}
    if body:
        headers["content-type"] = _content_type(body)
    headers |= {
        "host": host,
        "user-agent": USER_AGENT,
        "x-amzn-trace-id": trace_id(at),
        "x-forwarded-for": ip,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    query = _query(v["query"])
    event: Event = {"version": "2.0", "routeKey": route, "rawPath": raw_path}
    event["rawQueryString"] = v["query"]
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:  # repeated parameters are joined with commas
        event["queryStringParameters"] = {k: ",".join(vals) for k, vals in query.items()}
    event["requestContext"] = {
        "accountId": v["account"],
        "apiId": api_id,
        "domainName": host,
        "domainPrefix": api_id,
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": "HTTP/1.1",
            "sourceIp": ip,
            "userAgent": USER_AGENT,
        },
        "requestId": b64(11),
        "routeKey": route,
        "stage": stage,
        "time": clf(at),
        "timeEpoch": epoch_ms(at),
    }
    if body:
        event["body"] = body
    if _proxy(path):
        event["pathParameters"] = _proxy(path)
    event["isBase64Encoded"] = False
    event["stageVariables"] = dict(STAGE_VARIABLES)
    return event
