"""Slow clients can't hold the gateway's connections: a stalled or trickled body is
answered 408 and closed before anything is invoked, a stalled request head is closed.

Raw asyncio sockets play the hostile clients; the gateway runs with short deadlines so
the tests wait for its reaction (an answer, end of stream), never for a clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.http import ApiGateway, GatewayConfigError
from adapters.http.server import BODY_TIMEOUT_ENV, seconds_from_env
from tests.handlers_http import call, invocations, workers, write_template

TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: @ROOT@
Resources:
  Shop:
    Type: AWS::Serverless::Api
    Properties: {StageName: prod}
  SlowEchoV1:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http.echo_v1
      Events:
        Rest: {Type: Api, Properties: {RestApiId: !Ref Shop, Path: /upload, Method: post}}
  SlowEchoV2:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.handlers_http.echo_v2
      Events:
        Http: {Type: HttpApi, Properties: {Path: /v2/upload, Method: post}}
"""
BODY_TIMEOUT_S = 0.4
IDLE_TIMEOUT_S = 0.4


@pytest.fixture
async def gw(redis_url: str, tmp_path: Path, stack_name: str) -> AsyncIterator[ApiGateway]:
    loaded = write_template(tmp_path, {"keys": []}, stack_name, TEMPLATE)
    gateway = ApiGateway(
        redis_url, loaded, port=0, body_timeout_s=BODY_TIMEOUT_S, idle_timeout_s=IDLE_TIMEOUT_S
    )
    async with workers(redis_url, loaded), gateway:
        yield gateway


async def connect(gw: ApiGateway) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", gw.port)


def head(length: int, path: str = "/upload") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """(status, head, everything until the server closed), within a bound.

    The server closing with bytes of a still-sending client unread makes the kernel
    reset the connection instead of closing it: a reset after the answer counts as
    the close (the answer's body, read by its Content-Length first, is kept)."""
    async with asyncio.timeout(10):
        head_block = await reader.readuntil(b"\r\n\r\n")
        found = re.search(rb"(?im)^content-length:\s*(\d+)", head_block)
        body = await reader.readexactly(int(found.group(1))) if found else b""
        try:
            rest = await reader.read()  # to EOF: the server must close
        except ConnectionResetError:
            rest = b""
    return int(head_block.split()[1]), head_block, body + rest


@pytest.mark.parametrize(
    ("path", "function", "id_header"),
    [
        ("/upload", "SlowEchoV1", b"x-amzn-requestid"),
        ("/v2/upload", "SlowEchoV2", b"apigw-requestid"),
    ],
)
async def test_a_stalled_body_is_answered_408_and_nothing_runs(
    gw: ApiGateway, path: str, function: str, id_header: bytes
) -> None:
    before = invocations(function)
    reader, writer = await connect(gw)
    try:
        writer.write(head(100, path) + b'{"partial": ')
        await writer.drain()
        started = time.monotonic()
        status, head_block, body = await answer(reader)
    finally:
        writer.close()
    assert status == 408
    assert json.loads(body) == {"message": "Request Timeout"}
    assert id_header in head_block.lower()  # answered in the route's API's dialect
    assert time.monotonic() - started >= BODY_TIMEOUT_S * 0.9  # not refused before the deadline
    assert invocations(function) == before
    # The gateway is fine afterwards and the same route still serves a complete body.
    status, _, echoed = await call("POST", f"{gw.url}{path}", json={"whole": True})
    assert status == 200 and json.loads(json.loads(echoed)["body"]) == {"whole": True}


async def test_a_trickled_body_meets_the_same_deadline(gw: ApiGateway) -> None:
    """A byte every 50 ms keeps any per-read idle timer happy; the deadline is for the
    whole body, so the trickler is cut off all the same."""
    before = invocations("SlowEchoV1")
    reader, writer = await connect(gw)

    async def trickle() -> None:
        writer.write(head(10_000))
        with contextlib.suppress(ConnectionError):
            for _ in range(10_000):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)  # the hostile client's pace, not synchronization

    sender = asyncio.create_task(trickle())
    try:
        status, _, body = await answer(reader)
    finally:
        sender.cancel()
        writer.close()
    assert (status, json.loads(body)) == (408, {"message": "Request Timeout"})
    assert invocations("SlowEchoV1") == before


async def test_chunked_body_that_never_ends_is_cut_off(gw: ApiGateway) -> None:
    reader, writer = await connect(gw)
    try:
        writer.write(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n"
        )
        await writer.drain()
        status, _, _ = await answer(reader)
    finally:
        writer.close()
    assert status == 408


async def test_a_stalled_request_head_is_closed_without_an_answer(gw: ApiGateway) -> None:
    before = invocations("SlowEchoV1")
    reader, writer = await connect(gw)
    try:
        writer.write(b"POST /upload HTTP/1.1\r\nHost: local")
        await writer.drain()
        async with asyncio.timeout(10):
            assert await reader.read() == b""  # closed, nothing said: the request never came
    finally:
        writer.close()
    assert invocations("SlowEchoV1") == before


async def test_an_idle_keepalive_connection_is_closed_after_its_answer(gw: ApiGateway) -> None:
    reader, writer = await connect(gw)
    try:
        writer.write(head(2) + b"{}")
        await writer.drain()
        async with asyncio.timeout(10):
            head_block = await reader.readuntil(b"\r\n\r\n")
            assert head_block.startswith(b"HTTP/1.1 200")
            rest = await reader.read()  # the body, then end of stream once idle
        assert rest.endswith(b"}")
    finally:
        writer.close()


def test_timeouts_from_the_environment_are_checked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, stack_name: str
) -> None:
    loaded = write_template(tmp_path, {"keys": []}, stack_name, TEMPLATE)
    with pytest.raises(GatewayConfigError, match="must be positive"):
        ApiGateway("redis://unused", loaded, body_timeout_s=0)
    monkeypatch.setenv(BODY_TIMEOUT_ENV, "2.5")
    assert seconds_from_env(BODY_TIMEOUT_ENV, 30.0) == 2.5
    monkeypatch.delenv(BODY_TIMEOUT_ENV)
    assert seconds_from_env(BODY_TIMEOUT_ENV, 30.0) == 30.0
    for bad in ("soon", "0", "-1", "nan", "1e9"):
        monkeypatch.setenv(BODY_TIMEOUT_ENV, bad)
        with pytest.raises(GatewayConfigError, match=f"{BODY_TIMEOUT_ENV}: expected seconds"):
            seconds_from_env(BODY_TIMEOUT_ENV, 30.0)
