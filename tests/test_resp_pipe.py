"""bus/resp_pipe.py: the callback-driven connection under the synchronous-invoke path
(Invoker's sends and reply reads, the worker's acks and replies), against a real
redis-server."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError, ResponseError

from bus.embedded import EmbeddedRedis
from bus.redis_conn import connect, pack
from bus.resp_pipe import RespPipe


async def test_batches_get_their_replies_in_order_with_errors_in_place(
    redis_url: str, redis: Redis
) -> None:
    key = f"pipe:{uuid.uuid4().hex}"
    pipe = RespPipe(redis_url)
    await pipe.connect()
    try:
        first = pipe.call(pack("SET", key, "v") + pack("INCR", key), 2)
        second = pipe.call(pack("GET", key) + pack("PING"), 2)
        a, b = await asyncio.gather(first, second)
    finally:
        pipe.close()
    assert a[0] == b"OK" and isinstance(a[1], ResponseError)  # INCR on a non-number
    assert b == [b"v", b"PONG"]


async def test_a_client_made_from_a_redis_py_client_reaches_the_same_database(
    redis_server: EmbeddedRedis,
) -> None:
    client = connect(f"redis://127.0.0.1:{redis_server.port}/5")
    pipe = RespPipe(client)
    key = f"pipe:{uuid.uuid4().hex}"
    await pipe.connect()
    try:
        assert await pipe.call(pack("SET", key, "in-5"), 1) == [b"OK"]
        assert await client.get(key) == b"in-5"
    finally:
        pipe.close()
        await client.aclose()


async def test_a_killed_connection_fails_what_it_owed_and_a_new_one_works(
    redis_url: str, redis: Redis
) -> None:
    pipe = RespPipe(redis_url)
    await pipe.connect()
    [client_id] = await pipe.call(pack("CLIENT", "ID"), 1)
    key = f"pipe:{uuid.uuid4().hex}"
    waiting = asyncio.ensure_future(pipe.call(pack("BLPOP", key, 30), 1))
    await asyncio.sleep(0)  # the BLPOP is written (or not yet: it is owed either way)
    await redis.client_kill_filter(_id=client_id)
    [error] = await asyncio.wait_for(waiting, 5)
    assert isinstance(error, ConnectionError)
    assert not pipe.connected
    await pipe.connect()
    try:
        assert await pipe.call(pack("PING"), 1) == [b"PONG"]
    finally:
        pipe.close()


async def test_an_overdue_reply_drops_the_connection(redis_url: str) -> None:
    """A peer that stops answering (here: a BLPOP longer than the pipe's bound) is given
    up on within the bound plus a quarter, not when TCP gives up hours later."""
    pipe = RespPipe(redis_url, timeout_s=0.4)
    await pipe.connect()
    try:
        [reply] = await asyncio.wait_for(
            pipe.call(pack("BLPOP", f"pipe:{uuid.uuid4().hex}", 10), 1), 3
        )
    finally:
        pipe.close()
    assert isinstance(reply, ConnectionError) and "in time" in str(reply)
    assert not pipe.connected


async def test_sending_while_not_connected_fails_soon_not_never(redis_url: str) -> None:
    pipe = RespPipe(redis_url)
    got: list[Any] = []
    pipe.send(pack("PING") + pack("PING"), 2, got.extend)
    assert got == []  # never inside send: callers may hold state they are still updating
    await asyncio.sleep(0)
    assert len(got) == 2 and all(isinstance(e, ConnectionError) for e in got)


async def test_close_fails_batches_still_waiting(redis_url: str) -> None:
    pipe = RespPipe(redis_url)
    await pipe.connect()
    waiting = asyncio.ensure_future(pipe.call(pack("BLPOP", f"pipe:{uuid.uuid4().hex}", 30), 1))
    await asyncio.sleep(0)
    pipe.close()
    [error] = await asyncio.wait_for(waiting, 5)
    assert isinstance(error, ConnectionError)


async def test_a_callback_that_raises_does_not_break_the_connection(redis_url: str) -> None:
    pipe = RespPipe(redis_url)
    await pipe.connect()

    def broken(_: list[Any]) -> None:
        raise RuntimeError("a bug in a caller")

    try:
        pipe.send(pack("PING"), 1, broken)
        assert await pipe.call(pack("ECHO", "after"), 1) == [b"after"]
    finally:
        pipe.close()


def test_connect_refused_is_a_connection_error() -> None:
    from bus.embedded import free_port

    pipe = RespPipe(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(ConnectionError):
        asyncio.run(pipe.connect())


async def test_auth_and_a_unix_socket(tmp_path: Path) -> None:
    sock = tmp_path / "r.sock"
    extra = ["--unixsocket", str(sock), "--unixsocketperm", "700"]
    with EmbeddedRedis(extra_args=extra) as server:
        admin = Redis(port=server.port)
        await admin.config_set("requirepass", "s3cret")  # after start: its PING check passes
        await admin.aclose()
        for url in (f"redis://:s3cret@127.0.0.1:{server.port}/2", f"unix://:s3cret@{sock}?db=2"):
            pipe = RespPipe(url)
            await pipe.connect()
            try:
                assert await pipe.call(pack("SET", "k", url), 1) == [b"OK"]
            finally:
                pipe.close()
        wrong = RespPipe(f"redis://:nope@127.0.0.1:{server.port}/0")
        with pytest.raises(ConnectionError, match=r"WRONGPASS|invalid"):
            await wrong.connect()
        assert not wrong.connected
        check = Redis(port=server.port, password="s3cret", db=2)
        try:
            assert await check.get("k") == f"unix://:s3cret@{sock}?db=2".encode()
        finally:
            await check.aclose()


async def test_embedded_redis_on_a_unix_socket_and_its_long_path_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lambdabus dev``'s private server: clients on the machine use its socket; a
    TMPDIR too deep for a socket path keeps it on TCP instead of failing to start."""
    with EmbeddedRedis(unix_socket=True) as server:
        assert server.local_url.startswith("unix://")
        client = connect(server.local_url)
        pipe = RespPipe(server.local_url)
        await pipe.connect()
        try:
            assert await client.ping()
            assert await pipe.call(pack("ECHO", "via socket"), 1) == [b"via socket"]
        finally:
            pipe.close()
            await client.aclose()
    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    monkeypatch.setenv("TMPDIR", str(deep))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    with EmbeddedRedis(unix_socket=True) as server:
        assert server.local_url == server.url
        client = connect(server.local_url)
        try:
            assert await client.ping()
        finally:
            await client.aclose()


async def _answering(reply: bytes) -> tuple[asyncio.Server, int]:
    """A peer that answers every command with ``reply`` (what a loading or demoted
    server says), for replies a test can't make a real redis-server give on cue."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            writer.write(reply)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize(
    "reply",
    [
        b"-LOADING Redis is loading the dataset in memory\r\n",
        b"-READONLY You can't write against a read only replica.\r\n",
    ],
)
async def test_a_server_that_cant_serve_now_counts_as_a_lost_connection(reply: bytes) -> None:
    """LOADING (a restart with persistence) and READONLY (a failover) answer the batch with
    ConnectionErrors, so writers retry it, and drop the connection so the next connect
    finds a server that can serve: the Acker must not give up a reply to a LOADING."""
    server, port = await _answering(reply)
    try:
        pipe = RespPipe(f"redis://127.0.0.1:{port}/0")
        await pipe.connect()
        replies = await asyncio.wait_for(pipe.call(pack("XADD", "s", "*", "r", "x"), 1), 5)
        assert isinstance(replies[0], ConnectionError)
        assert reply[1:8].decode() in str(replies[0])
        assert not pipe.connected
    finally:
        server.close()


async def test_a_callback_closing_its_pipe_completes_every_other_batch_once(
    redis_url: str,
) -> None:
    pipe = RespPipe(redis_url)
    await pipe.connect()
    calls: list[tuple[str, list[Any]]] = []

    def first(replies: list[Any]) -> None:
        calls.append(("first", replies))
        pipe.close()

    second_called = asyncio.get_running_loop().create_future()

    def second(replies: list[Any]) -> None:
        calls.append(("second", replies))
        if not second_called.done():
            second_called.set_result(None)

    pipe.send(pack("PING"), 1, first)
    pipe.send(pack("ECHO", "x"), 1, second)
    await asyncio.wait_for(second_called, 5)
    await asyncio.sleep(0)  # a second completion would come in the same callback chain
    assert [name for name, _ in calls] == ["first", "second"]
    assert calls[0][1] == [b"PONG"]
    assert isinstance(calls[1][1][0], ConnectionError)  # closed by the first callback


async def test_an_acker_closing_while_redis_is_gone_gives_up_and_returns(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SIGTERM while Redis is down: the worker's Acker tries a few times, logs what will
    be redelivered, and returns, so the worker's shutdown goes on."""
    from bus.settle import Acker

    with EmbeddedRedis() as server:
        client = connect(server.url)
        acker = Acker(client)
        acker.ack("s", b"1-1")
        await acker.flush()  # connected once
        server.stop()
        acker.ack("s", b"1-2")
        await asyncio.wait_for(acker.close(), 30)
        await client.aclose()
    assert "will be redelivered" in caplog.text


def test_tls_settings_are_redis_pys_own() -> None:
    """A rediss:// URL's TLS options mean for a pipe what they mean for redis-py."""
    import ssl

    from redis.asyncio.connection import parse_url

    from bus.resp_pipe import _ssl_context

    default = _ssl_context(dict(parse_url("rediss://cache.example:6380/0")))
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname
    loose = _ssl_context(
        dict(parse_url("rediss://cache.example:6380/0?ssl_cert_reqs=none&ssl_check_hostname=false"))
    )
    assert loose.verify_mode == ssl.CERT_NONE and not loose.check_hostname
