"""Handlers, a template and the harness around them for the API gateway's tests.

Workers run in the test's process and loop, so handlers share module state
with their test: ``INBOXES`` receive what asynchronous routes were invoked
with, ``CALLS`` count authorizer invocations, and ``RELEASE`` lets a test hold
a handler past the gateway's integration timeout and then let it finish —
tests await these instead of sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy
from prometheus_client import REGISTRY

from adapters.http import ApiGateway
from adapters.template import load_template
from adapters.template.loaded import LoadedTemplate
from bus.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00"
INBOXES: dict[str, asyncio.Queue[Any]] = {}
CALLS: Counter[str] = Counter()
RELEASE: dict[str, asyncio.Event] = {}


def echo_v1(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The event back as the JSON body, with a repeated header and two cookies."""
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json", "X-Single": "one"},
        "multiValueHeaders": {"X-Multi": ["a", "b"], "Set-Cookie": ["s=1", "t=2"]},
        "body": json.dumps(event),
        "isBase64Encoded": False,
    }


def echo_v2(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Payload 2.0's simplified response: a dict without statusCode is 200 JSON."""
    return event


def cookies_v2(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 201,
        "headers": {"content-type": "text/plain", "x-list": ["a", "b"]},
        "cookies": ["session=abc; Path=/; HttpOnly", "theme=dark"],
        "body": "created",
    }


def image(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "image/png"},
        "body": base64.b64encode(PNG).decode(),
        "isBase64Encoded": True,
    }


def boom(event: dict[str, Any], context: Any) -> None:
    raise RuntimeError("handler exploded")


def malformed(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"statusCode": 200, "body": {"not": "a string"}}


async def slow(event: dict[str, Any], context: Any) -> str:
    """Answers only once its test sets ``RELEASE[function]``."""
    await RELEASE.setdefault(context.function_name, asyncio.Event()).wait()
    return "late"


async def record(event: dict[str, Any], context: Any) -> None:
    INBOXES[context.function_name].put_nowait(event)


def token_authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """REST TOKEN authorizer: ``allow``/``deny``/anything else is Unauthorized."""
    CALLS[context.function_name] += 1
    token = event["authorizationToken"]
    if token not in ("allow", "deny"):
        raise Exception("Unauthorized")
    return {
        "principalId": f"user-{token}",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow" if token == "allow" else "Deny",
                    "Resource": event["methodArn"].rsplit("/", 2)[0] + "/*",
                }
            ],
        },
        "context": {"tier": "gold", "quota": 5},
    }


def simple_authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """HTTP API 2.0 simple-response authorizer on the ``x-token`` header."""
    CALLS[context.function_name] += 1
    return {"isAuthorized": event["identitySource"] == ["letmein"], "context": {"user": "u1"}}


TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Metadata:
  lambdabus:
    jwks:
      Jwt: jwks.json
Globals:
  Function:
    CodeUri: @ROOT@
    Timeout: 10
Resources:
  Shop:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      Variables: {env: test}
      BinaryMediaTypes: ["image~1png"]
      Cors:
        AllowOrigin: "'https://app.example'"
        AllowHeaders: "'Content-Type,X-Api-Key'"
        MaxAge: "'600'"
      Auth:
        Authorizers:
          TokenAuth:
            FunctionArn: !GetAtt TokenAuthFn.Arn
            Identity: {ReauthorizeEvery: 300}
  Web:
    Type: AWS::Serverless::HttpApi
    Properties:
      StageVariables: {color: blue}
      CorsConfiguration:
        AllowOrigins: [https://app.example]
        AllowMethods: [GET, POST]
        AllowHeaders: [content-type]
        ExposeHeaders: [x-trace]
        MaxAge: 60
      Auth:
        Authorizers:
          Jwt:
            IdentitySource: $request.header.Authorization
            JwtConfiguration:
              issuer: https://issuer.example
              audience: [lambdabus-tests]
          Simple:
            FunctionArn: !GetAtt SimpleAuthFn.Arn
            Identity: {Headers: [x-token]}
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
  EchoV1:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http.echo_v1
      Events:
        GetItem:
          Type: Api
          Properties: {RestApiId: !Ref Shop, Path: "/items/{id}", Method: get}
        PostItems:
          Type: Api
          Properties: {RestApiId: !Ref Shop, Path: /items, Method: post}
        Files:
          Type: Api
          Properties: {RestApiId: !Ref Shop, Path: "/files/{proxy+}", Method: any}
        Secret:
          Type: Api
          Properties:
            {RestApiId: !Ref Shop, Path: /secret, Method: get, Auth: {ApiKeyRequired: true}}
        Guarded:
          Type: Api
          Properties:
            {RestApiId: !Ref Shop, Path: /guarded, Method: get, Auth: {Authorizer: TokenAuth}}
        V1OnHttp:
          Type: HttpApi
          Properties: {ApiId: !Ref Web, Path: /legacy, Method: get, PayloadFormatVersion: "1.0"}
  EchoV2:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http.echo_v2
      Events:
        GetUser:
          Type: HttpApi
          Properties: {ApiId: !Ref Web, Path: "/users/{id}", Method: get}
        Upload:
          Type: HttpApi
          Properties: {ApiId: !Ref Web, Path: /upload, Method: post}
        JwtRoute:
          Type: HttpApi
          Properties:
            ApiId: !Ref Web
            Path: /jwt
            Method: get
            Auth: {Authorizer: Jwt, AuthorizationScopes: [read]}
        SimpleRoute:
          Type: HttpApi
          Properties: {ApiId: !Ref Web, Path: /simple, Method: get, Auth: {Authorizer: Simple}}
  Cookies:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http.cookies_v2
      Events:
        Get:
          Type: HttpApi
          Properties: {ApiId: !Ref Web, Path: /cookies, Method: get}
  Image:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http.image
      Events:
        Get:
          Type: Api
          Properties: {RestApiId: !Ref Shop, Path: /image, Method: get}
  Boom:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http.boom
      Events:
        Rest:
          Type: Api
          Properties: {RestApiId: !Ref Shop, Path: /boom, Method: get}
        Http:
          Type: HttpApi
          Properties: {ApiId: !Ref Web, Path: /boom, Method: get}
  Malformed:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http.malformed
      Events:
        Rest:
          Type: Api
          Properties: {RestApiId: !Ref Shop, Path: /malformed, Method: get}
  Slow:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http.slow
      Events:
        Rest:
          Type: Api
          Properties: {RestApiId: !Ref Shop, Path: /slow, Method: get}
        Http:
          Type: HttpApi
          Properties: {ApiId: !Ref Web, Path: /slow, Method: get}
  Recorder:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http.record
      Events:
        Job:
          Type: HttpApi
          Properties: {ApiId: !Ref Web, Path: /jobs, Method: post}
  TokenAuthFn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http.token_authorizer
  SimpleAuthFn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http.simple_authorizer
"""


def write_template(
    folder: Path, jwks: Mapping[str, Any], stack_name: str, template: str = TEMPLATE
) -> LoadedTemplate:
    """A test stack in ``folder`` (with its JWKS file), loaded as ``stack_name``."""
    (folder / "jwks.json").write_text(json.dumps(jwks))
    path = folder / "template.yaml"
    path.write_text(template.replace("@ROOT@", str(ROOT)))
    return load_template(path, stack_name=stack_name)


@asynccontextmanager
async def workers(redis_url: str, loaded: LoadedTemplate) -> AsyncIterator[None]:
    """An in-process Worker for every function of the stack."""
    started = [
        Worker(redis_url, loaded.stack, name, block_ms=50) for name in loaded.stack.functions
    ]
    try:
        await asyncio.gather(*(worker.start() for worker in started))
        yield
    finally:
        for name in loaded.stack.functions:
            RELEASE.setdefault(name, asyncio.Event()).set()  # let held handlers finish
        await asyncio.gather(*(worker.stop(5.0) for worker in started))


@asynccontextmanager
async def gateway(
    redis_url: str, loaded: LoadedTemplate, **kwargs: Any
) -> AsyncIterator[ApiGateway]:
    """An ApiGateway on a free port (workers started separately, so several gateways
    can share them)."""
    async with ApiGateway(redis_url, loaded, port=0, **kwargs) as gw:
        yield gw


async def call(method: str, url: str, **kwargs: Any) -> tuple[int, CIMultiDictProxy[str], bytes]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as r:
        return r.status, r.headers, await r.read()


def invocations(function: str) -> float:
    """How often ``function`` ran in this process (metrics are process-global)."""
    total = 0.0
    for outcome in ("success", "error", "timeout"):
        labels = {"function": function, "outcome": outcome}
        total += REGISTRY.get_sample_value("lambdabus_invocations_total", labels) or 0.0
    return total


async def raw_request(url: str, head: list[str], body: bytes = b"", chunked: bool = False
                      ) -> tuple[int, bytes]:  # fmt: skip
    """Send a request over a plain socket; returns (status, the rest of the answer).

    Reads one answer (no waiting for the server to close: after refusing an upload it
    lingers for the body a while)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        lines = [*head, f"Host: {host}", "Connection: close"]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for start in range(0, len(body), MB):
            piece = body[start : start + MB]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
        head_block = await reader.readuntil(b"\r\n\r\n")
        if head_block.startswith(b"HTTP/1.1 100"):
            head_block += await reader.readuntil(b"\r\n\r\n")
        found = re.search(rb"(?im)^content-length: *(\d+)", head_block)
        content = await reader.readexactly(int(found.group(1))) if found else b""
        status_line, _, rest = (head_block + content).partition(b"\r\n")
        return int(status_line.split()[1]), rest
    finally:
        writer.close()
        await writer.wait_closed()
