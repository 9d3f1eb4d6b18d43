"""Handlers, and the small harness around them, for the edge endpoint's tests.

Workers run in the test's process and loop, so an async handler can hand what
it saw to its test through an ``asyncio.Queue`` (``inbox``): tests await the
queue instead of sleeping. Function names are unique per test, so inboxes and
the process-global Prometheus metrics never mix between tests.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import boto3
from botocore.config import Config

from adapters.edge import EdgeServer
from bus.spec import Stack
from bus.worker import Worker

INBOXES: dict[str, asyncio.Queue[tuple[Any, str]]] = {}

BIG_RESPONSE_CHARS = 6 * 1024 * 1024 + 1


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def inbox(function: str) -> asyncio.Queue[tuple[Any, str]]:
    """Where ``record`` puts ``(event, request id)`` for ``function``; create before invoking."""
    queue: asyncio.Queue[tuple[Any, str]] = asyncio.Queue()
    INBOXES[function] = queue
    return queue


def echo(event: Any, context: Any) -> dict[str, Any]:
    """What the handler saw, so tests can compare it with what the caller sent."""
    return {
        "event": event,
        "function": context.function_name,
        "request_id": context.aws_request_id,
    }


def nothing(event: Any, context: Any) -> None:
    return None


def boom(event: Any, context: Any) -> None:
    raise ValueError(f"boom: {event.get('why')}")


async def record(event: Any, context: Any) -> None:
    INBOXES[context.function_name].put_nowait((event, context.aws_request_id))


async def hang(event: Any, context: Any) -> None:
    """Never returns: the worker cancels it at the function's Timeout."""
    await asyncio.Event().wait()


def raw_bytes(event: Any, context: Any) -> bytes:
    """Not JSON-serializable: Lambda's runtime reports Runtime.MarshalError."""
    return b"\x00\x01"


def huge(event: Any, context: Any) -> str:
    """Just over Lambda's 6 MB response limit once JSON-encoded."""
    return "x" * BIG_RESPONSE_CHARS


@asynccontextmanager
async def serving(
    redis_url: str, stack: Stack, *, workers: Iterable[str] | None = None, **edge_kwargs: Any
) -> AsyncIterator[EdgeServer]:
    """An EdgeServer on a free port, with an in-process Worker per function (or ``workers``)."""
    started: list[Worker] = []
    try:
        for name in stack.functions if workers is None else workers:
            worker = Worker(redis_url, stack, name, block_ms=50)  # stops without a 1 s wait
            await worker.start()
            started.append(worker)
        async with EdgeServer(redis_url, stack, port=0, **edge_kwargs) as edge:
            yield edge
    finally:
        for worker in started:
            await worker.stop(5.0)


def lambda_client(url: str, *, key: str = "test", secret: str = "test",
                  region: str = "us-east-1", **config: Any) -> Any:  # fmt: skip
    """A boto3 Lambda client on the edge, without retries so each call is one request."""
    return boto3.session.Session().client(
        "lambda",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


async def invoke(client: Any, **kwargs: Any) -> tuple[dict[str, Any], bytes]:
    """``client.invoke`` in a thread (boto3 blocks), reading the payload there too."""

    def call() -> tuple[dict[str, Any], bytes]:
        response = client.invoke(**kwargs)
        return response, response["Payload"].read()

    return await asyncio.to_thread(call)
