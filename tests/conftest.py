"""Shared fixtures: a real redis-server and moto's server, each on a free port.

Integration tests run against real services (see DESIGN.md, "Tests"): one
private redis-server and one in-process moto server per session, emptied or
isolated per test so tests never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer
from redis import Redis as SyncRedis
from redis.asyncio import Redis as AsyncRedis

from bus.embedded import EmbeddedRedis, free_port

SHARED = Path(__file__).resolve().parents[2] / "shared"
requires_shared = pytest.mark.skipif(
    not (SHARED / "aws-events").is_dir(), reason="../shared not present"
)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[EmbeddedRedis]:
    """One private redis-server for the whole session; starting one per test is slow."""
    server = EmbeddedRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """The session server's URL, flushed first so every test starts empty."""
    client = SyncRedis.from_url(redis_server.url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_server.url


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[AsyncRedis]:
    """An asyncio client (bytes responses, as the bus uses) closed after the test."""
    client = AsyncRedis.from_url(redis_url, decode_responses=False)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def stack_name() -> str:
    """A short unique stack name, so keys and resources of different tests never collide."""
    return "t" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    """moto's server in a thread on a free port; yields its endpoint URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_server: str) -> str:
    """Point aiobotocore at moto through the standard AWS variables; returns the endpoint."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return moto_server
