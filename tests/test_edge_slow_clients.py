"""Slow and stalled clients on the edge port: a body that trickles or stops is answered
408 and the connection closed, whatever the API (Lambda, JSON-protocol services) and
before SigV4 reads it; nothing is invoked; a connection that never sends a complete
request head is closed after the idle timeout. Raw sockets, a real redis-server."""

from __future__ import annotations

import asyncio

import pytest

from bus.keys import FunctionKeys
from bus.spec import FunctionSpec, Stack
from tests.handlers_edge import serving, unique


async def stalled(port: int, head: bytes, sent: bytes, *, trickle: bool = False) -> bytes:
    """Send ``head`` and part of a body, then stall (or trickle a byte every 50 ms);
    return what the server answered before it closed the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + sent)
    await writer.drain()

    async def dribble() -> None:
        while trickle:
            await asyncio.sleep(0.05)  # the client's pace, not synchronisation
            writer.write(b" ")
            await writer.drain()

    feeder = asyncio.create_task(dribble())
    try:
        return await asyncio.wait_for(reader.read(), timeout=20)
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        writer.close()


def post(path: str, length: int, target: str = "") -> bytes:
    extra = f"X-Amz-Target: {target}\r\nContent-Type: application/x-amz-json-1.1\r\n"
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
        f"{extra if target else ''}\r\n"
    ).encode()


@pytest.mark.parametrize("trickle", [False, True])
@pytest.mark.parametrize("credentials", [None, {"AKID": "secret"}])
async def test_incomplete_bodies_are_answered_408_and_nothing_runs(
    redis_url: str, redis: object, stack_name: str, trickle: bool, credentials: object
) -> None:
    fn = unique("Slow")
    stack = Stack(stack_name, {fn: FunctionSpec(fn, "tests.handlers_edge.record")})
    async with serving(redis_url, stack, workers=[], body_timeout_s=0.5,
                       credentials=credentials) as edge:  # fmt: skip
        lambda_path = f"/2015-03-31/functions/{fn}/invocations"
        for head in (post(lambda_path, 100_000), post("/", 100_000, "AWSEvents.PutEvents")):
            answer = await stalled(edge.port, head, b'{"Entries": [', trickle=trickle)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b"RequestTimeoutException" in answer
    keys = FunctionKeys(stack_name, fn)
    assert await redis.xlen(keys.stream) + await redis.xlen(keys.sync) == 0  # type: ignore[attr-defined]


async def test_a_connection_without_a_complete_request_head_is_closed(
    redis_url: str, stack_name: str
) -> None:
    stack = Stack(stack_name, {})
    async with serving(redis_url, stack, workers=[], idle_timeout_s=0.5) as edge:
        reader, writer = await asyncio.open_connection("127.0.0.1", edge.port)
        writer.write(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # no blank line: head unfinished
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), timeout=20) == b""  # closed, no answer
        writer.close()
