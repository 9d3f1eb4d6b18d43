"""The API gateway end to end: real redis-server, in-process Workers, real HTTP.

Given the test stack (``tests/handlers_http.py``: a REST API and an HTTP API
over echoing, failing, slow and authorizing functions), when real clients
send requests, then they get what API Gateway would answer, handlers get the
events API Gateway would send, and refused requests invoke nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel,
    APIGatewayProxyEventV2Model,
)
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from adapters.http import ApiGateway, build_routes
from adapters.http.auth_config import JwtAuthorizer
from adapters.http.errors import Denied
from adapters.http.jwt_auth import JwtVerifier
from adapters.http.request import RequestData
from adapters.template.loaded import LoadedTemplate
from tests import handlers_http_powertools as powertools_apps
from tests.handlers_http import (
    CALLS,
    INBOXES,
    MB,
    PNG,
    RELEASE,
    call,
    gateway,
    invocations,
    raw_request,
    workers,
    write_template,
)

ISSUER, AUDIENCE = "https://issuer.example", "lambdabus-tests"


@cache
def signing_keys() -> tuple[RSAKey, RSAKey]:
    """The issuer's key and a stranger's key with the same kid (generated once: slow)."""
    ours = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    theirs = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    return ours, theirs


def token(key: RSAKey | None = None, kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": now + 300, "iat": now - 5,
            "scope": "read write", **claims}  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode({"alg": "RS256", "kid": kid}, body, key or signing_keys()[0])


@pytest.fixture
def loaded(tmp_path: Path, stack_name: str) -> LoadedTemplate:
    jwks = KeySet([signing_keys()[0]]).as_dict(private=False)
    return write_template(tmp_path, jwks, stack_name)


@pytest.fixture
async def gw(redis_url: str, loaded: LoadedTemplate) -> AsyncIterator[ApiGateway]:
    CALLS.clear()
    RELEASE.clear()
    async with workers(redis_url, loaded), gateway(redis_url, loaded) as served:
        yield served


async def test_rest_route_gets_the_v1_event_and_answers_with_its_headers(gw: ApiGateway) -> None:
    status, headers, body = await call(
        "GET",
        f"{gw.url}/items/a%20b?tag=x&tag=y&empty=&q=caf%C3%A9",
        headers=[("X-Custom", "1"), ("X-Custom", "2"), ("User-Agent", "tests/1")],
    )
    assert status == 200
    event = json.loads(body)
    APIGatewayProxyEventModel.model_validate(event)
    assert event["resource"] == "/items/{id}" and event["path"] == "/items/a%20b"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "a b"}
    assert event["queryStringParameters"] == {"tag": "y", "empty": "", "q": "café"}
    assert event["multiValueQueryStringParameters"]["tag"] == ["x", "y"]
    assert event["multiValueHeaders"]["X-Custom"] == ["1", "2"]
    assert event["headers"]["X-Custom"] == "2"
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["stageVariables"] == {"env": "test"}
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["stage"] == "prod" and context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "tests/1"
    assert headers["x-amzn-RequestId"] == context["requestId"]
    assert headers["x-amz-apigw-id"] == context["extendedRequestId"]
    assert context["requestTimeEpoch"] == pytest.approx(time.time() * 1000, abs=60_000)
    # The function's single and multi-valued headers both reach the client.
    assert headers.getall("X-Multi") == ["a", "b"]
    assert headers.getall("Set-Cookie") == ["s=1", "t=2"]
    assert headers["X-Single"] == "one"


async def test_greedy_proxy_and_any_method(gw: ApiGateway) -> None:
    status, _, body = await call("DELETE", f"{gw.url}/files/docs/2024/report.pdf")
    assert status == 200
    event = json.loads(body)
    assert event["resource"] == "/files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "docs/2024/report.pdf"}
    assert event["httpMethod"] == "DELETE"


async def test_http_route_gets_the_v2_event(gw: ApiGateway) -> None:
    status, headers, body = await call(
        "GET",
        f"{gw.url}/users/%C3%A9?a=1&a=2&b=",
        headers=[("Cookie", "c1=v1; c2=v2"), ("X-Dup", "1"), ("X-Dup", "2")],
    )
    assert status == 200 and headers["Content-Type"] == "application/json"
    event = json.loads(body)
    APIGatewayProxyEventV2Model.model_validate(event)
    assert event["version"] == "2.0" and event["routeKey"] == "GET /users/{id}"
    assert event["rawPath"] == "/users/é" and event["rawQueryString"] == "a=1&a=2&b="
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-dup"] == "1,2"
    assert event["pathParameters"] == {"id": "é"}
    assert event["stageVariables"] == {"color": "blue"}
    assert "body" not in event and event["isBase64Encoded"] is False
    assert headers["apigw-requestid"] == event["requestContext"]["requestId"]


async def test_binary_bodies_are_base64_both_ways(gw: ApiGateway) -> None:
    payload = bytes(range(256)) * 10
    status, _, body = await call(
        "POST", f"{gw.url}/upload", data=payload, headers={"Content-Type": "application/pdf"}
    )
    event = json.loads(body)
    assert status == 200 and event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload
    status, _, body = await call(
        "POST", f"{gw.url}/upload", json={"k": "v"}, headers={"Content-Type": "application/json"}
    )
    event = json.loads(body)
    assert event["isBase64Encoded"] is False and json.loads(event["body"]) == {"k": "v"}
    status, headers, body = await call("GET", f"{gw.url}/image")
    assert status == 200 and headers["Content-Type"] == "image/png" and body == PNG


async def test_v2_structured_response_with_cookies(gw: ApiGateway) -> None:
    status, headers, body = await call("GET", f"{gw.url}/cookies")
    assert status == 201 and body == b"created"
    assert headers.getall("Set-Cookie") == ["session=abc; Path=/; HttpOnly", "theme=dark"]
    assert headers["x-list"] == "a,b" and headers["Content-Type"] == "text/plain"


async def test_http_api_route_with_payload_1_0(gw: ApiGateway) -> None:
    status, headers, body = await call("GET", f"{gw.url}/legacy?x=1")
    event = json.loads(body)
    APIGatewayProxyEventModel.model_validate(event)
    assert status == 200 and event["version"] == "1.0"
    assert event["resource"] == "/legacy" and event["queryStringParameters"] == {"x": "1"}
    context = event["requestContext"]
    assert headers["apigw-requestid"] == context["requestId"] == context["extendedRequestId"]


async def test_unknown_routes_are_refused_as_api_gateway_does(gw: ApiGateway) -> None:
    before = invocations("EchoV1") + invocations("EchoV2")
    status, headers, body = await call("GET", f"{gw.url}/nowhere")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    assert "apigw-requestid" in headers
    # An HTTP API route with another method: still 404, never 405.
    status, _, body = await call("POST", f"{gw.url}/users/1")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    # A REST resource without that method: REST's 403.
    status, headers, body = await call("DELETE", f"{gw.url}/items/1")
    assert (status, json.loads(body)) == (403, {"message": "Missing Authentication Token"})
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert "x-amzn-RequestId" in headers
    # /files is a REST resource too (the parent of /files/{proxy+}), serving nothing:
    # a greedy variable needs at least one segment.
    status, _, _ = await call("GET", f"{gw.url}/files/")
    assert status == 403
    assert invocations("EchoV1") + invocations("EchoV2") == before


async def test_function_errors_and_malformed_answers(gw: ApiGateway) -> None:
    status, _, body = await call("GET", f"{gw.url}/malformed")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    # Boom's two routes (REST first in the template) are both GET /boom: REST serves it.
    status, _, body = await call("GET", f"{gw.url}/boom")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})


async def test_http_api_function_error_is_its_500(redis_url: str, loaded: LoadedTemplate) -> None:
    table = build_routes(loaded, mount_stage=True)
    async with workers(redis_url, loaded), gateway(redis_url, loaded, routes=table) as gw:
        status, _, body = await call("GET", f"{gw.url}/boom")  # HTTP API at $default
        assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
        status, _, body = await call("GET", f"{gw.url}/prod/boom")
        assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
        status, _, body = await call("GET", f"{gw.url}/prod/items/7")
        event = json.loads(body)
        assert status == 200 and event["path"] == "/items/7"
        assert event["requestContext"]["path"] == "/prod/items/7"
        status, _, _ = await call("GET", f"{gw.url}/items/7")
        assert status == 404


async def test_integration_timeout(redis_url: str, loaded: LoadedTemplate) -> None:
    RELEASE.clear()
    async with (
        workers(redis_url, loaded),
        gateway(redis_url, loaded, integration_timeout_s=0.3) as gw,
    ):
        rest, http = await asyncio.gather(
            call("GET", f"{gw.url}/slow"),
            call("GET", f"{gw.url}/slow", headers={"X-Unused": "1"}),
        )
        # Both paths are GET /slow; REST (first in the template) serves both.
        assert rest[0] == http[0] == 504
        assert json.loads(rest[2]) == {"message": "Endpoint request timed out"}
    table = build_routes(loaded, mount_stage=True)
    RELEASE.clear()
    async with (
        workers(redis_url, loaded),
        gateway(redis_url, loaded, integration_timeout_s=0.3, routes=table) as gw,
    ):
        status, _, body = await call("GET", f"{gw.url}/slow")
        assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})


async def test_oversized_bodies_are_413_without_reading_them(gw: ApiGateway) -> None:
    before = invocations("EchoV2")
    # Declared too large, waiting for 100-continue: refused before a byte is sent.
    status, rest = await raw_request(
        gw.url, ["POST /upload HTTP/1.1", f"Content-Length: {10 * MB + 1}", "Expect: 100-continue"]
    )
    assert status == 413 and b"100 Continue" not in rest
    assert json.loads(rest.partition(b"\r\n\r\n")[2]) == {"message": "Request Entity Too Large"}
    # Chunked: refused once the limit is passed.
    status, _ = await raw_request(
        gw.url, ["POST /upload HTTP/1.1", "Transfer-Encoding: chunked"], b"x" * (10 * MB + 1),
        chunked=True,
    )  # fmt: skip
    assert status == 413
    assert invocations("EchoV2") == before
    # Expect: 100-continue on an accepted request gets its 100 and is served.
    status, rest = await raw_request(
        gw.url,
        ["POST /upload HTTP/1.1", "Content-Length: 2", "Expect: 100-continue",
         "Content-Type: text/plain"],
        b"hi",
    )  # fmt: skip
    assert status == 100 and b"HTTP/1.1 200" in rest


async def test_hostile_requests_get_clear_errors(gw: ApiGateway) -> None:
    status, _ = await raw_request(gw.url, ["GET /users/%FF HTTP/1.1"])
    assert status == 400
    status, _ = await raw_request(gw.url, ["GET /users/1 HTTP/1.1", "X-Bin: \xff"])
    assert status == 400
    status, _, _ = await call("GET", f"{gw.url}/users/1?q=%FF")
    assert status == 400
    status, _, _ = await call("GET", f"{gw.url}/users/{'a' * 9000}")
    assert status == 414
    status, _, _ = await call("GET", f"{gw.url}/users/1", headers={"X-Big": "b" * 11000})
    assert status == 431
    status, _, _ = await call("GET", f"{gw.url}/users/1", headers={"X-Huge": "b" * 20000})
    assert status == 400  # past the parser's field limit
    # A spoofed X-Forwarded-For is kept but never becomes the source IP.
    _, _, body = await call("GET", f"{gw.url}/users/1", headers={"X-Forwarded-For": "6.6.6.6"})
    event = json.loads(body)
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["headers"]["x-forwarded-for"] == "6.6.6.6, 127.0.0.1"


async def test_api_key_required(redis_url: str, loaded: LoadedTemplate) -> None:
    async with workers(redis_url, loaded), gateway(redis_url, loaded, api_keys=["k-123"]) as gw:
        before = invocations("EchoV1")
        for headers in ({}, {"x-api-key": "wrong"}):
            status, resp_headers, body = await call("GET", f"{gw.url}/secret", headers=headers)
            assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
            assert resp_headers["x-amzn-ErrorType"] == "ForbiddenException"
        assert invocations("EchoV1") == before
        status, _, body = await call("GET", f"{gw.url}/secret", headers={"x-api-key": "k-123"})
        assert status == 200
        assert json.loads(body)["requestContext"]["identity"]["apiKey"] == "k-123"
        status, _, _ = await call("GET", f"{gw.url}/items/1")  # not key-protected
        assert status == 200


async def test_jwt_authorizer(gw: ApiGateway) -> None:
    url = f"{gw.url}/jwt"
    status, _, body = await call("GET", url, headers={"Authorization": f"Bearer {token()}"})
    assert status == 200
    event = json.loads(body)
    APIGatewayProxyEventV2Model.model_validate(event)
    jwt_context = event["requestContext"]["authorizer"]["jwt"]
    assert jwt_context["claims"]["sub"] == "alice" and jwt_context["scopes"] == ["read", "write"]
    assert jwt_context["claims"]["exp"].isdigit()  # claims are strings, as AWS sends them
    before = invocations("EchoV2")
    refused = {
        "missing": {},
        "expired": {"Authorization": token(exp=int(time.time()) - 1)},
        "foreign": {"Authorization": token(signing_keys()[1])},
        "audience": {"Authorization": token(aud="someone-else")},
        "issuer": {"Authorization": token(iss="https://evil.example")},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
    }
    for why, headers in refused.items():
        status, resp_headers, body = await call("GET", url, headers=headers)
        assert (status, json.loads(body)) == (401, {"message": "Unauthorized"}), why
        assert resp_headers["www-authenticate"].startswith("Bearer"), why
    status, _, body = await call("GET", url, headers={"Authorization": token(scope="write")})
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    assert invocations("EchoV2") == before


async def test_rest_lambda_authorizer_allow_deny_and_cache(gw: ApiGateway) -> None:
    url = f"{gw.url}/guarded"
    for _ in range(3):
        status, _, body = await call("GET", url, headers={"Authorization": "allow"})
        assert status == 200
    authorizer = json.loads(body)["requestContext"]["authorizer"]
    assert authorizer["principalId"] == "user-allow"
    assert authorizer["tier"] == "gold" and authorizer["quota"] == 5
    assert CALLS["TokenAuthFn"] == 1  # cached for ReauthorizeEvery
    before = invocations("EchoV1")
    status, headers, body = await call("GET", url, headers={"Authorization": "deny"})
    assert status == 403 and headers["x-amzn-ErrorType"] == "AccessDeniedException"
    assert json.loads(body) == {
        "Message": "User is not authorized to access this resource with an explicit deny"
    }
    status, _, body = await call("GET", url, headers={"Authorization": "bogus"})
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})
    status, _, _ = await call("GET", url)  # no token: refused without invoking
    assert status == 401
    assert CALLS["TokenAuthFn"] == 3
    assert invocations("EchoV1") == before


async def test_http_lambda_authorizer_simple_responses(gw: ApiGateway) -> None:
    url = f"{gw.url}/simple"
    status, _, body = await call("GET", url, headers={"x-token": "letmein"})
    assert status == 200
    assert json.loads(body)["requestContext"]["authorizer"] == {"lambda": {"user": "u1"}}
    await call("GET", url, headers={"x-token": "letmein"})
    assert CALLS["SimpleAuthFn"] == 1
    status, _, body = await call("GET", url, headers={"x-token": "nope"})
    assert (status, json.loads(body)) == (403, {"message": "Forbidden"})
    status, _, body = await call("GET", url)
    assert (status, json.loads(body)) == (401, {"message": "Unauthorized"})


async def test_cors(gw: ApiGateway) -> None:
    origin = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}
    # REST: SAM's OPTIONS mock on every path.
    status, headers, _ = await call("OPTIONS", f"{gw.url}/items/1", headers=origin)
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert headers["Access-Control-Allow-Methods"] == "GET,OPTIONS"
    assert headers["Access-Control-Allow-Headers"] == "Content-Type,X-Api-Key"
    assert headers["Access-Control-Max-Age"] == "600"
    # HTTP API: answered by the gateway itself.
    status, headers, _ = await call("OPTIONS", f"{gw.url}/users/1", headers=origin)
    assert status == 204
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-allow-methods"] == "GET,POST"
    foreign = {**origin, "Origin": "https://evil.example"}
    status, headers, _ = await call("OPTIONS", f"{gw.url}/users/1", headers=foreign)
    assert status == 204 and "access-control-allow-origin" not in headers
    status, headers, _ = await call(
        "GET", f"{gw.url}/users/1", headers={"Origin": origin["Origin"]}
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.example"
    assert headers["access-control-expose-headers"] == "x-trace"


async def test_asynchronous_route_answers_202(redis_url: str, loaded: LoadedTemplate) -> None:
    table = build_routes(loaded, asynchronous={"Recorder": ["Job"]})
    INBOXES["Recorder"] = asyncio.Queue()
    async with workers(redis_url, loaded), gateway(redis_url, loaded, routes=table) as gw:
        status, headers, body = await call("POST", f"{gw.url}/jobs", json={"n": 1})
        assert status == 202 and body == b""
        async with asyncio.timeout(10):
            event = await INBOXES["Recorder"].get()
    assert event["requestContext"]["requestId"] == headers["apigw-requestid"]
    assert json.loads(event["body"]) == {"n": 1}


async def test_concurrent_requests_get_their_own_answers(gw: ApiGateway) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one(i: int) -> tuple[int, str]:
            async with session.get(f"{gw.url}/users/{i}") as r:
                return r.status, json.loads(await r.read())["pathParameters"]["id"]

        results = await asyncio.gather(*(one(i) for i in range(500)))
    assert results == [(200, str(i)) for i in range(500)]


class AccessLines(logging.Handler):
    """Collects the access log; ``done`` is set once ``want`` lines arrived."""

    def __init__(self, want: int) -> None:
        super().__init__(logging.INFO)
        self.want, self.lines, self.done = want, list[str](), asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        if len(self.lines) >= self.want:
            self.done.set()


async def test_one_access_log_line_per_request(gw: ApiGateway) -> None:
    logger, lines = logging.getLogger("adapters.http.access"), AccessLines(2)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(lines)
    try:
        await call("GET", f"{gw.url}/users/42?token=secret")
        await call("GET", f"{gw.url}/nowhere")
        async with asyncio.timeout(5):  # written just after each answer is sent
            await lines.done.wait()
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    served, refused = lines.lines
    assert "GET /users/42 200" in served and "EchoV2 GET /users/{id}" in served
    assert "secret" not in served  # query strings may carry tokens: never logged
    assert "GET /nowhere 404" in refused and "refused: no route" in refused


async def test_powertools_resolvers_run_unmodified(
    redis_url: str, tmp_path: Path, stack_name: str
) -> None:
    loaded = write_template(tmp_path, {"keys": []}, stack_name, powertools_apps.TEMPLATE)
    table = build_routes(loaded, mount_stage=True)
    async with workers(redis_url, loaded), gateway(redis_url, loaded, routes=table) as gw:
        for base in (f"{gw.url}/prod", gw.url):  # the REST app, then the HTTP API app
            status, _, body = await call("GET", f"{base}/todos/7?verbose=yes")
            assert (status, json.loads(body)) == (200, {"id": "7", "verbose": "yes"}), base
            status, _, body = await call("POST", f"{base}/todos", json={"title": "t"})
            assert (status, json.loads(body)) == (201, {"created": {"title": "t"}}), base
            status, headers, body = await call("GET", f"{base}/login", cookies={"a": "1"})
            assert status == 200 and body == b"saw a=1", base
            assert [c.split(";")[0] for c in headers.getall("Set-Cookie")] == [
                "session=s1", "theme=dark",
            ]  # fmt: skip
            status, headers, body = await call("GET", f"{base}/logo")
            assert (status, headers["Content-Type"], body) == (
                200,
                "image/png",
                powertools_apps.LOGO,
            )
            status, _, body = await call("GET", f"{base}/nothing")
            assert status == 404, base  # Powertools' own 404, through the gateway


async def test_jwt_keys_from_a_url() -> None:
    """Keys fetched over HTTP (as from an issuer's jwks_uri), cached, and refreshed for a
    kid they don't know yet, at most once a minute so junk kids can't hammer the issuer."""
    ours, _ = signing_keys()
    served = {"jwks": KeySet([ours]).as_dict(private=False), "hits": 0}

    async def jwks(request: web.Request) -> web.Response:
        served["hits"] += 1
        return web.json_response(served["jwks"])

    app = web.Application()
    app.router.add_get("/jwks", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    authorizer = JwtAuthorizer("J", ISSUER, (AUDIENCE,), jwks=f"http://127.0.0.1:{port}/jwks")
    verifier = JwtVerifier()
    try:
        for _ in range(2):
            grant = await verifier.verify(bearer(token()), authorizer, ())
            assert grant.claims["sub"] == "alice" and grant.scopes is None
        assert served["hits"] == 1
        with pytest.raises(Denied) as refused:
            await verifier.verify(bearer(token(kid="k2")), authorizer, ())
        assert refused.value.what == "unauthorized" and served["hits"] == 1  # refreshed < 60 s ago
    finally:
        await verifier.close()
        await runner.cleanup()


def bearer(value: str) -> RequestData:
    return RequestData("GET", "/", "", (("Authorization", f"Bearer {value}"),), "127.0.0.1", 1)
