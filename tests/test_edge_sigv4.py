"""SigV4 on the edge endpoint: what AWS accepts is accepted, everything else is a 403.

Signed requests come from boto3 and aiobotocore themselves, and from botocore's
signer driven by hand where a test needs a request no SDK would send (an old
date, a body changed after signing, a presigned URL).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import botocore.auth
import botocore.exceptions
import pytest
from aiobotocore.session import get_session
from botocore import UNSIGNED
from botocore.auth import SIGV4_TIMESTAMP, SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from yarl import URL

from adapters.edge import EdgeServer
from bus.spec import FunctionSpec, Stack
from tests.handlers_edge import invoke, lambda_client, serving, unique

H = "tests.handlers_edge."
KEY, SECRET = "AKIDLAMBDABUSEDGE", "edge/secret+key=="


@pytest.fixture
async def edge(redis_url: str, stack_name: str) -> AsyncIterator[tuple[EdgeServer, str]]:
    """A server that requires signatures by KEY, with one echo function."""
    fn = unique("echo")
    stack = Stack(stack_name, {fn: FunctionSpec(fn, H + "echo")})
    async with serving(redis_url, stack, credentials={KEY: SECRET}) as server:
        yield server, fn


def invocations(server: EdgeServer, fn: str) -> str:
    return f"{server.url}/2015-03-31/functions/{fn}/invocations"


def signed_headers(url: str, body: bytes, *, secret: str = SECRET,
                   when: datetime | None = None) -> dict[str, str]:  # fmt: skip
    """What ``SigV4Auth.add_auth`` produces, at a chosen time, from its public steps."""
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={"Content-Type": "application/json"})  # fmt: skip
    stamp = (when or datetime.now(UTC)).strftime(SIGV4_TIMESTAMP)
    request.context["timestamp"] = stamp
    request.headers["X-Amz-Date"] = stamp
    auth = SigV4Auth(Credentials(KEY, secret), "lambda", "us-east-1")
    signature = auth.signature(
        auth.string_to_sign(request, auth.canonical_request(request)), request
    )
    names = auth.signed_headers(auth.headers_to_sign(request))
    request.headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={auth.scope(request)}, "
        f"SignedHeaders={names}, Signature={signature}"
    )
    return dict(request.headers.items())


def presigned(url: str, *, expires: int = 60) -> str:
    request = AWSRequest(method="POST", url=url, data=b"")
    SigV4QueryAuth(Credentials(KEY, SECRET), "lambda", "us-east-1", expires=expires).add_auth(
        request
    )
    return str(request.url)


async def post(url: str, body: bytes, headers: dict[str, str] | None = None
               ) -> tuple[int, str | None, dict[str, Any]]:  # fmt: skip
    """Status, error code header and JSON body of a raw POST (URL sent exactly as given)."""
    async with aiohttp.ClientSession() as http:
        async with http.post(URL(url, encoded=True), data=body, headers=headers or {}) as resp:
            text = await resp.text()
            return resp.status, resp.headers.get("x-amzn-ErrorType"), json.loads(text or "null")


def refused(exc: botocore.exceptions.ClientError) -> tuple[int, str, str]:
    response: Any = exc.response
    return (response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"],
            response["Error"]["Message"])  # fmt: skip


async def test_boto3_and_aiobotocore_signed_calls_are_accepted(
    edge: tuple[EdgeServer, str],
) -> None:
    server, fn = edge
    resp, body = await invoke(
        lambda_client(server.url, key=KEY, secret=SECRET), FunctionName=fn, Payload=b'{"a": 1}'
    )
    assert resp["StatusCode"] == 200
    assert json.loads(body)["event"] == {"a": 1}
    async with get_session().create_client(
        "lambda", endpoint_url=server.url, region_name="us-east-1",
        aws_access_key_id=KEY, aws_secret_access_key=SECRET,
    ) as client:  # fmt: skip
        resp = await client.invoke(FunctionName=fn, Payload=b'{"b": 2}')
        assert json.loads(await resp["Payload"].read())["event"] == {"b": 2}


async def test_aws_cli_style_arn_and_qualifier_verify(edge: tuple[EdgeServer, str]) -> None:
    """The ARN's colons are percent-encoded in the path and signed double-encoded."""
    server, fn = edge
    client = lambda_client(server.url, key=KEY, secret=SECRET)
    for name in (f"arn:aws:lambda:us-east-1:123456789012:function:{fn}", f"{fn}:$LATEST"):
        resp, body = await invoke(client, FunctionName=name, Qualifier="$LATEST", Payload=b"{}")
        assert resp["StatusCode"] == 200, name
        assert json.loads(body)["function"] == fn


async def test_unsigned_requests_are_refused_but_health_is_public(
    edge: tuple[EdgeServer, str],
) -> None:
    server, fn = edge
    client = lambda_client(server.url, signature_version=UNSIGNED)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        await invoke(client, FunctionName=fn, Payload=b"{}")
    assert refused(caught.value) == (
        403, "MissingAuthenticationTokenException", "Missing Authentication Token"
    )  # fmt: skip
    assert (await post(invocations(server, fn), b"{}"))[:2] == (
        403, "MissingAuthenticationTokenException"
    )  # fmt: skip
    async with aiohttp.ClientSession() as http, http.get(server.url + "/healthz") as resp:
        assert resp.status == 200


@pytest.mark.parametrize(
    ("key", "secret", "region", "code", "message"),
    [
        (KEY, "not-the-secret", "us-east-1", "InvalidSignatureException",
         "The request signature we calculated does not match"),
        ("AKIDUNKNOWN", SECRET, "us-east-1", "UnrecognizedClientException",
         "The security token included in the request is invalid."),
        (KEY, SECRET, "eu-west-1", "InvalidSignatureException",
         "Credential should be scoped to a valid region, not 'eu-west-1'."),
    ],
)  # fmt: skip
async def test_wrong_secret_unknown_key_and_other_region_are_refused(
    edge: tuple[EdgeServer, str], caplog: pytest.LogCaptureFixture,
    key: str, secret: str, region: str, code: str, message: str,
) -> None:  # fmt: skip
    server, fn = edge
    caplog.set_level(logging.INFO, logger="adapters.edge")
    client = lambda_client(server.url, key=key, secret=secret, region=region)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        await invoke(client, FunctionName=fn, Payload=b"{}")
    status, error_code, error_message = refused(caught.value)
    assert (status, error_code) == (403, code)
    assert error_message.startswith(message)
    # The refusal is logged with its reason, never with the secrets involved.
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("adapters.edge")]
    assert any(code in line for line in logged), logged
    assert not any(SECRET in line or "not-the-secret" in line for line in logged)


async def test_a_body_changed_after_signing_is_refused(edge: tuple[EdgeServer, str]) -> None:
    server, fn = edge
    url = invocations(server, fn)
    headers = signed_headers(url, b'{"amount": 1}')
    status, _, body = await post(url, b'{"amount": 1}', headers)
    assert status == 200 and body["event"] == {"amount": 1}  # the same headers, untampered
    status, code, error = await post(url, b'{"amount": 1000}', headers)
    assert (status, code) == (403, "InvalidSignatureException")
    assert headers["Authorization"].rsplit("=", 1)[1] not in error["message"]
    # Re-targeting the signed request at another function breaks it too.
    other = invocations(server, fn + "x")
    assert (await post(other, b'{"amount": 1}', headers))[:2] == (403, "InvalidSignatureException")


@pytest.mark.parametrize(
    ("skew", "accepted", "message"),
    [
        (timedelta(minutes=-16), False, "Signature expired"),
        (timedelta(minutes=16), False, "Signature not yet current"),
        (timedelta(minutes=-14), True, ""),
    ],
)
async def test_x_amz_date_must_be_within_15_minutes(
    edge: tuple[EdgeServer, str], skew: timedelta, accepted: bool, message: str
) -> None:
    server, fn = edge
    url = invocations(server, fn)
    headers = signed_headers(url, b"{}", when=datetime.now(UTC) + skew)
    status, code, body = await post(url, b"{}", headers)
    if accepted:
        assert status == 200
    else:
        assert (status, code) == (403, "InvalidSignatureException")
        assert body["message"].startswith(message)


async def test_presigned_urls_cover_query_and_body_and_expire(
    edge: tuple[EdgeServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, fn = edge
    url = presigned(invocations(server, fn))
    status, _, body = await post(url, b"")
    assert status == 200 and body["event"] == {}
    # The body's hash is signed (an empty one here), and so is every query parameter.
    assert (await post(url, b'{"x": 1}'))[:2] == (403, "InvalidSignatureException")
    assert (await post(url + "&Qualifier=v1", b""))[:2] == (403, "InvalidSignatureException")

    past = datetime.now(UTC) - timedelta(minutes=2)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: past)
    status, code, error = await post(presigned(invocations(server, fn), expires=60), b"")
    assert (status, code) == (403, "InvalidSignatureException")
    assert error["message"].startswith("Signature expired")
