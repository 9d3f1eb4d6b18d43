"""The hot paths' Redis plumbing: pre-packed commands (bus/redis_conn.py), and the
synchronous Invoker and the worker's Acker built on pipes (bus/sync.py, bus/settle.py;
the pipe itself: tests/test_resp_pipe.py)."""

from __future__ import annotations

import asyncio
import uuid

import msgpack
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bus.keys import FunctionKeys
from bus.redis_conn import connect, pack, pack_xadd
from bus.sync import Invoker, InvokeTimeout
from tests.procs import eventually


def test_pack_is_resp_and_xadd_packs_the_same() -> None:
    assert b"".join(pack("SET", b"k\r\n", 12, 1.5)) == (
        b"*4\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n12\r\n$3\r\n1.5\r\n"
    )
    value = bytes(range(256)) * 4
    assert b"".join(pack_xadd(b"s:{f}", b"d", value)) == b"".join(
        pack("XADD", "s:{f}", "*", "d", value)
    )


async def test_connections_the_server_closed_are_replaced_before_the_next_call(
    redis: Redis, redis_url: str, stack_name: str
) -> None:
    """Killed while idle (CLIENT KILL, Redis's idle timeout, a restart): the invoker's
    sending and reply-reading connections come back, and the next call gets its reply."""
    fn = f"echo_{uuid.uuid4().hex[:8]}"
    async with Invoker(redis_url, stack_name) as inv:
        for attempt in range(2):
            call = asyncio.create_task(inv.invoke(fn, {"n": attempt}, timeout_s=30))
            await _answer_one(redis, stack_name, fn)
            assert (await asyncio.wait_for(call, 10)).payload == {"echo": {"n": attempt}}
            # every client but the test's own: the invoker's two
            await redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")


async def _answer_one(redis: Redis, stack_name: str, fn: str) -> None:
    """Act as the worker for the one call waiting on ``fn``'s synchronous stream."""
    sync = FunctionKeys(stack_name, fn).sync

    async def published() -> bool:
        return await redis.xlen(sync) == 1

    await eventually(published, "the call published")
    [(entry_id, fields)] = await redis.xrange(sync)
    await redis.xdel(sync, entry_id)
    env = msgpack.unpackb(fields[b"d"], raw=False)
    await redis.xadd(env[12], {"r": msgpack.packb([env[1], "success", {"echo": env[5]}])})


async def test_a_failed_publish_fails_the_call_at_once_not_at_its_deadline(
    redis: Redis, redis_url: str, stack_name: str
) -> None:
    fn = f"broken_{uuid.uuid4().hex[:8]}"
    await redis.set(FunctionKeys(stack_name, fn).sync, "not a stream")
    async with Invoker(redis_url, stack_name) as inv:
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            await asyncio.wait_for(inv.invoke(fn, {"n": 1}, timeout_s=60), 10)
        assert inv._futures == {}


async def test_a_call_without_reply_times_out_and_leaves_nothing_behind(
    redis_url: str, stack_name: str
) -> None:
    async with Invoker(redis_url, stack_name) as inv:
        with pytest.raises(InvokeTimeout, match=r"nobody: no reply within 0\.1 s"):
            await inv.invoke("nobody", {}, timeout_s=0.1)
        assert inv._futures == {}


async def test_replies_resolve_their_own_callers_and_the_reply_stream_is_trimmed(
    redis: Redis, redis_url: str, stack_name: str
) -> None:
    """A stand-in worker answers out of order; each caller gets its own answer, a
    stray reply is ignored, and what was read is trimmed away."""
    fn = f"echo_{uuid.uuid4().hex[:8]}"
    sync = FunctionKeys(stack_name, fn).sync
    async with Invoker(redis_url, stack_name) as inv:
        calls = [asyncio.create_task(inv.invoke(fn, {"n": i}, timeout_s=30)) for i in range(20)]

        async def all_published() -> bool:
            return await redis.xlen(sync) == 20

        await eventually(all_published, "every call published")
        entries = await redis.xrange(sync)
        await redis.xadd(inv.reply_key, {"r": msgpack.packb(["stray", "success", 0])})
        for _, fields in reversed(entries):
            env = msgpack.unpackb(fields[b"d"], raw=False)
            rid, record, reply_to = env[1], env[5], env[12]
            assert reply_to == inv.reply_key
            reply = msgpack.packb([rid, "success", {"echo": record}])
            await redis.xadd(reply_to, {"r": reply})
        results = await asyncio.gather(*calls)
        assert [r.payload for r in results] == [{"echo": {"n": i}} for i in range(20)]

        async def trimmed() -> bool:
            return await redis.xlen(inv.reply_key) <= 1

        await eventually(trimmed, "the reply stream trimmed")


async def test_a_reply_with_a_foreign_request_id_does_not_stop_the_reader(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    """A reply entry whose request id is a list (not ours, or corrupt) is dropped; the
    reader goes on and the next caller's reply still arrives."""
    async with Invoker(redis_url, stack_name) as inv:
        call = asyncio.create_task(inv.invoke("Nobody", {}, timeout_s=10))
        await eventually(lambda: _one(inv), "the call to be registered", timeout_s=5)
        [rid] = inv._futures
        await redis.xadd(inv.reply_key, {"r": msgpack.packb([["x"], "success", None])})
        await redis.xadd(inv.reply_key, {"r": msgpack.packb([rid, "success", {"ok": 1}])})
        result = await asyncio.wait_for(call, 5)
    assert (result.status, result.payload) == ("success", {"ok": 1})


async def _one(inv: Invoker) -> bool:
    return len(inv._futures) == 1


async def test_acks_and_replies_survive_a_dropped_connection(
    redis_url: str, redis: Redis, stack_name: str
) -> None:
    """The server drops the Acker's idle connection (CLIENT KILL, an idle timeout, a
    restart): the next flush still writes its reply and its XACK."""
    from bus.keys import GROUP
    from bus.redis_conn import ensure_group
    from bus.settle import Acker

    stream, reply_to = f"{stack_name}:s", f"{stack_name}:reply"
    await ensure_group(redis, stream)
    first = await redis.xadd(stream, {"d": "1"})
    second = await redis.xadd(stream, {"d": "2"})
    await redis.xreadgroup(GROUP, "c", {stream: ">"})
    acker = Acker(connect(redis_url))
    try:
        acker.ack(stream, first)
        await acker.flush()  # its connection now exists
        await redis.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        acker.reply(reply_to, b"payload", stream, second)
        await acker.flush()
    finally:
        await acker.close()
        await acker.redis.aclose()
    assert [f[b"r"] for _, f in await redis.xrange(reply_to)] == [b"payload"]
    assert (await redis.xpending(stream, GROUP))["pending"] == 0
