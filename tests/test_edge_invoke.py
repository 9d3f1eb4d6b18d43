"""The edge endpoint's Lambda Invoke API, driven by boto3, aiobotocore and raw HTTP.

Real redis-server, real in-process Workers, a real EdgeServer on a free port:
the SDK clients are the ones users' code runs, unmodified, so what passes here
is what ``boto3.client("lambda", endpoint_url=...)`` sees.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aiohttp
import botocore.exceptions
import pytest
from aiobotocore.session import get_session
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from bus.keys import FunctionKeys
from bus.spec import FunctionSpec, Stack
from tests.handlers_edge import inbox, invoke, lambda_client, serving, unique

H = "tests.handlers_edge."
ACCOUNT = "123456789012"
MB = 1024 * 1024


def path(function: str) -> str:
    return f"/2015-03-31/functions/{function}/invocations"


def error_of(exc: botocore.exceptions.ClientError) -> tuple[int, str, str]:
    response: Any = exc.response
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
    )


async def test_request_response_returns_the_handlers_json(redis_url: str, stack_name: str) -> None:
    fn, none = unique("echo"), unique("none")
    stack = Stack(stack_name, {fn: FunctionSpec(fn, H + "echo"),
                               none: FunctionSpec(none, H + "nothing")})  # fmt: skip
    async with serving(redis_url, stack) as edge:
        client = lambda_client(edge.url)
        sent = {"a": 1, "text": "grüße", "nested": [1.5, None, True]}
        resp, body = await invoke(client, FunctionName=fn, Payload=json.dumps(sent), LogType="Tail")
        rid = resp["ResponseMetadata"]["RequestId"]
        assert resp["StatusCode"] == 200
        assert resp["ExecutedVersion"] == "$LATEST"
        assert "FunctionError" not in resp
        assert resp["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/json"
        # The handler's context carries the request id the caller got back.
        assert json.loads(body) == {"event": sent, "function": fn, "request_id": rid}
        assert (
            f"START RequestId: {rid} Version: $LATEST"
            in base64.b64decode(resp["LogResult"]).decode()
        )

        _, body = await invoke(client, FunctionName=fn)  # no payload: the event is {}
        assert json.loads(body)["event"] == {}
        _, body = await invoke(client, FunctionName=none, Payload=b"[]")
        assert body == b"null"
    success = REGISTRY.get_sample_value(
        "lambdabus_invocations_total", {"function": fn, "outcome": "success"}
    )
    assert success == 2


async def test_every_function_name_form_reaches_the_function(
    redis_url: str, stack_name: str
) -> None:
    fn = unique("echo")
    stack = Stack(stack_name, {fn: FunctionSpec(fn, H + "echo")})
    forms: list[dict[str, str]] = [
        {"FunctionName": f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{fn}"},
        {"FunctionName": f"arn:aws:lambda:us-east-1:123456789012:function:{fn}:$LATEST"},
        {"FunctionName": f"{ACCOUNT}:function:{fn}"},
        {"FunctionName": f"{fn}:$LATEST"},
        {"FunctionName": fn, "Qualifier": "$LATEST"},
    ]
    async with serving(redis_url, stack) as edge, get_session().create_client(
        "lambda", endpoint_url=edge.url, region_name="us-east-1",
        aws_access_key_id="k", aws_secret_access_key="s",
    ) as client:  # fmt: skip
        for form in forms:
            resp = await client.invoke(**form, Payload=b'{"form": 1}')
            assert resp["StatusCode"] == 200, form
            assert json.loads(await resp["Payload"].read())["function"] == fn, form


@pytest.mark.parametrize(
    ("handler", "timeout_s", "error_type", "message"),
    [
        ("boom", 3.0, "ValueError", "boom: bad input"),
        ("hang", 0.2, "Sandbox.Timedout", "Task timed out after 0.20 seconds"),
        ("raw_bytes", 3.0, "Runtime.MarshalError",
         "Unable to marshal response: Object of type bytes is not JSON serializable"),
        ("huge", 3.0, "Function.ResponseSizeTooLarge",
         "Response payload size exceeded maximum allowed payload size (6291556 bytes)."),
    ],
)  # fmt: skip
async def test_function_errors_are_200_with_unhandled_and_lambdas_error_document(
    redis_url: str, stack_name: str, handler: str, timeout_s: float, error_type: str, message: str
) -> None:
    fn = unique(handler)
    stack = Stack(stack_name, {fn: FunctionSpec(fn, H + handler, timeout_s=timeout_s)})
    async with serving(redis_url, stack) as edge:
        resp, body = await invoke(
            lambda_client(edge.url), FunctionName=fn, Payload=b'{"why": "bad input"}'
        )
    assert resp["StatusCode"] == 200
    assert resp["FunctionError"] == "Unhandled"
    error = json.loads(body)
    assert error["errorType"] == error_type
    assert message in error["errorMessage"]
    assert isinstance(error["stackTrace"], list)
    if handler == "boom":
        assert any("handlers_edge.py" in line for line in error["stackTrace"]), error


async def test_event_returns_202_and_the_function_runs_asynchronously(
    redis_url: str, stack_name: str
) -> None:
    fn = unique("record")
    calls = inbox(fn)
    stack = Stack(stack_name, {fn: FunctionSpec(fn, H + "record")})
    async with serving(redis_url, stack) as edge, get_session().create_client(
        "lambda", endpoint_url=edge.url, region_name="us-east-1",
        aws_access_key_id="k", aws_secret_access_key="s",
    ) as client:  # fmt: skip
        resp = await client.invoke(FunctionName=fn, InvocationType="Event", Payload=b'{"n": 7}')
        assert resp["StatusCode"] == 202
        assert await resp["Payload"].read() == b""
        event, _ = await asyncio.wait_for(calls.get(), timeout=10)
        assert event == {"n": 7}

        # Exactly at the 1 MB asynchronous limit is still accepted.
        at_limit = json.dumps("x" * (MB - 2)).encode()
        assert len(at_limit) == MB
        resp = await client.invoke(FunctionName=fn, InvocationType="Event", Payload=at_limit)
        assert resp["StatusCode"] == 202
        event, _ = await asyncio.wait_for(calls.get(), timeout=10)
        assert event == "x" * (MB - 2)


async def test_dry_run_checks_the_function_and_runs_nothing(
    redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn = unique("echo")
    stack = Stack(stack_name, {fn: FunctionSpec(fn, H + "echo")})
    async with serving(redis_url, stack, workers=[]) as edge:
        client = lambda_client(edge.url)
        resp, body = await invoke(client, FunctionName=fn, InvocationType="DryRun", Payload=b"{}")
        assert (resp["StatusCode"], body) == (204, b"")
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            await invoke(client, FunctionName="missing", InvocationType="DryRun")
    keys = FunctionKeys(stack_name, fn)
    assert await redis.xlen(keys.sync) == 0
    assert await redis.xlen(keys.stream) == 0


@pytest.mark.parametrize(
    ("kwargs", "status", "code", "message"),
    [
        ({"FunctionName": "nope"}, 404, "ResourceNotFoundException",
         f"Function not found: arn:aws:lambda:us-east-1:{ACCOUNT}:function:nope"),
        ({"FunctionName": "{fn}", "Qualifier": "v2"}, 404, "ResourceNotFoundException",
         f"Function not found: arn:aws:lambda:us-east-1:{ACCOUNT}:function:{{fn}}:v2"),
        ({"FunctionName": "arn:aws:lambda:eu-west-1:123456789012:function:{fn}"}, 404,
         "ResourceNotFoundException",
         "Function not found: arn:aws:lambda:eu-west-1:123456789012:function:{fn}"),
        ({"FunctionName": "{fn}:v1", "Qualifier": "$LATEST"}, 400,
         "InvalidParameterValueException", "The derived qualifier"),
        ({"FunctionName": "bad*name"}, 400, "ValidationException", "'bad*name' at 'functionName'"),
        ({"FunctionName": "{fn}", "InvocationType": "Sometimes"}, 400,
         "InvalidParameterValueException", "Unsupported invocation type 'Sometimes'"),
        ({"FunctionName": "{fn}", "LogType": "All"}, 400, "InvalidParameterValueException",
         "Unsupported log type 'All'"),
        ({"FunctionName": "{fn}", "Payload": b'{"a":'}, 400, "InvalidRequestContentException",
         "Could not parse request body into json: "),
        ({"FunctionName": "{fn}", "Payload": b"NaN"}, 400, "InvalidRequestContentException",
         "NaN is not valid JSON"),
        ({"FunctionName": "{fn}", "Payload": b'"\xff"'}, 400, "InvalidRequestContentException",
         "Could not parse request body into json: "),
        ({"FunctionName": "{fn}", "Payload": b"[18446744073709551616]"}, 400,
         "InvalidRequestContentException", "out of the 64-bit range"),
        ({"FunctionName": "{fn}", "Payload": b'"\\ud800"'}, 400,
         "InvalidRequestContentException", "Could not parse request body into json: "),
    ],
)  # fmt: skip
async def test_bad_requests_get_lambdas_error_codes(
    redis_url: str, stack_name: str, kwargs: dict[str, Any], status: int, code: str, message: str
) -> None:
    fn = unique("echo")
    stack = Stack(stack_name, {fn: FunctionSpec(fn, H + "echo")})
    kwargs = {k: v.format(fn=fn) if isinstance(v, str) else v for k, v in kwargs.items()}
    async with serving(redis_url, stack) as edge:
        client = lambda_client(edge.url)
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            await invoke(client, **kwargs)
    assert error_of(caught.value)[:2] == (status, code)
    assert message.format(fn=fn) in error_of(caught.value)[2]
    # botocore maps the header's code onto the modeled exception class.
    if code != "ValidationException":
        assert type(caught.value) is getattr(client.exceptions, code)


async def raw_post(url: str, target: str, headers: dict[str, str], body: bytes,
                   *, chunked: bool) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    """POST over a plain socket, sending the whole body before reading the reply.

    Client libraries stop uploading once an early 413 arrives, and the server then
    lingers for the rest; sending everything first keeps the test deterministic.
    """
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = [f"POST {target} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        for start in range(0, len(body), MB):
            piece = body[start : start + MB]
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            await writer.drain()
        writer.write(b"0\r\n\r\n" if chunked else b"")
        await writer.drain()
        status_line, _, rest = (await reader.read()).partition(b"\r\n")
        head_block, _, content = rest.partition(b"\r\n\r\n")
        reply_headers = dict(
            line.decode().split(": ", 1) for line in head_block.split(b"\r\n") if line
        )
        return int(status_line.split()[1]), reply_headers, content
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(
    ("invocation_type", "size", "chunked", "message"),
    [
        ("RequestResponse", 6 * MB + 1, False,
         "Request must be smaller than 6291456 bytes for the InvokeFunction operation"),
        ("RequestResponse", 6 * MB + 1, True,
         "Request must be smaller than 6291456 bytes for the InvokeFunction operation"),
        ("Event", MB + 1, False,
         "1048577 byte payload is too large for the Event invocation type (limit 1048576 bytes)"),
        ("Event", MB + 1, True, "is too large for the Event invocation type"),
        # Past what the server buffers at all: refused on sight, or while reading.
        ("RequestResponse", 8 * MB, False, "Request must be smaller than 7340032 bytes"),
        ("RequestResponse", 8 * MB, True, "Request must be smaller than 7340032 bytes"),
    ],
)  # fmt: skip
async def test_oversized_payloads_are_413(
    redis_url: str, stack_name: str, invocation_type: str, size: int, chunked: bool, message: str
) -> None:
    fn = unique("echo")
    stack = Stack(stack_name, {fn: FunctionSpec(fn, H + "echo")})
    body = json.dumps("x" * (size - 2)).encode()
    headers = {"X-Amz-Invocation-Type": invocation_type}
    async with serving(redis_url, stack, workers=[]) as edge:
        status, reply_headers, content = await raw_post(
            edge.url, path(fn), headers, body, chunked=chunked
        )
    assert status == 413
    assert reply_headers["x-amzn-ErrorType"] == "RequestEntityTooLargeException"
    assert reply_headers["x-amzn-RequestId"]
    document = json.loads(content)
    assert document["Type"] == "User"
    assert message in document["message"]


async def test_boto3_sees_an_oversized_payload_as_request_entity_too_large(
    redis_url: str, stack_name: str
) -> None:
    fn = unique("echo")
    stack = Stack(stack_name, {fn: FunctionSpec(fn, H + "echo")})
    async with serving(redis_url, stack) as edge:
        client = lambda_client(edge.url)
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            await invoke(client, FunctionName=fn, Payload=b"1" * (6 * MB + 1))
        assert error_of(caught.value)[:2] == (413, "RequestEntityTooLargeException")
        # The refused upload's connection is closed, not reused with its leftover body.
        resp, body = await invoke(client, FunctionName=fn, Payload=b"2")
        assert resp["StatusCode"] == 200 and json.loads(body)["event"] == 2


async def test_no_worker_answering_is_a_502_service_exception(
    redis_url: str, stack_name: str
) -> None:
    fn = unique("orphan")
    stack = Stack(stack_name, {fn: FunctionSpec(fn, H + "echo", timeout_s=0.05)})
    async with serving(redis_url, stack, workers=[], reply_margin_s=0.3) as edge:
        client = lambda_client(edge.url)
        with pytest.raises(client.exceptions.ServiceException) as caught:
            await invoke(client, FunctionName=fn, Payload=b"{}")
    status, code, message = error_of(caught.value)
    assert (status, code) == (502, "ServiceException")
    assert "no worker answered" in message


async def test_healthz_is_served(redis_url: str, stack_name: str) -> None:
    stack = Stack(stack_name, {})
    async with serving(redis_url, stack) as edge, aiohttp.ClientSession() as http:
        async with http.get(edge.url + "/healthz") as resp:
            assert resp.status == 200
