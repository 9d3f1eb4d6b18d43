"""The CLI: user mistakes give one clear line and a non-zero exit, never a traceback;
dead letters can be listed, shown and redriven from the shell."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bus.envelope import Envelope, encode
from bus.keys import FunctionKeys
from bus.logs import JsonFormatter
from bus.spec import FunctionSpec, Stack

ROOT = Path(__file__).resolve().parents[1]
CLI_STACK = Stack("clitest", {"always_fails": FunctionSpec("always_fails", "tests.x.y")})


def cli(*args: str, redis_url: str | None = None) -> subprocess.CompletedProcess[str]:
    pre = ["--redis-url", redis_url] if redis_url else []
    return subprocess.run(
        [sys.executable, "-m", "bus.cli", *pre, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_unknown_stack_is_one_line_and_exit_2() -> None:
    r = cli("--stack", "no.such.module:STACK", "status")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0, r.stderr
    assert "cannot load stack" in r.stderr and "Traceback" not in r.stderr


def test_malformed_stack_reference_and_unknown_function() -> None:
    r = cli("--stack", "just-a-module", "status")
    assert r.returncode == 2 and "module:attribute" in r.stderr
    r = cli("--stack", "tests.test_cli:CLI_STACK", "dlq", "list", "nope")
    assert r.returncode == 2 and "no function 'nope'" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_arguments_exit_2_with_usage() -> None:
    r = cli("worker", "--grace", "soon")
    assert r.returncode == 2 and "invalid float value" in r.stderr


def test_unreachable_redis_is_one_line() -> None:
    r = cli("--stack", "tests.test_cli:CLI_STACK", "status", redis_url="redis://127.0.0.1:1/0")
    assert r.returncode == 1
    assert "cannot reach Redis" in r.stderr and "Traceback" not in r.stderr


async def test_dlq_list_show_redrive_and_status(redis_url: str, redis: Redis) -> None:
    # Given one dead letter of the demo stack's always_fails function
    keys = FunctionKeys("clitest", "always_fails")
    env = Envelope("order-1", "test", "t", "$direct", {"id": "order-1"}, time.time())
    await redis.xadd(keys.dead_letters, {
        "d": encode(env), "error_type": "ValueError", "error_message": "bad order",
        "traceback": "Traceback ...", "reason": "RetriesExhausted", "attempts": 3,
        "failed_at_ms": int(time.time() * 1000),
    })  # fmt: skip
    stack = ("--stack", "tests.test_cli:CLI_STACK")

    listed = cli(*stack, "dlq", "list", "always_fails", redis_url=redis_url)
    assert listed.returncode == 0, listed.stderr
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["event_id"] == "order-1" and row["attempts"] == 3

    shown = cli(*stack, "dlq", "show", "always_fails", row["id"], redis_url=redis_url)
    assert json.loads(shown.stdout)["event"] == {"id": "order-1"}
    missing = cli(*stack, "dlq", "show", "always_fails", "1-1", redis_url=redis_url)
    assert missing.returncode == 2 and "no dead letter" in missing.stderr

    status = cli(*stack, "status", redis_url=redis_url)
    line = next(ln for ln in status.stdout.splitlines() if ln.startswith("always_fails"))
    assert line.split()[5] == "1"  # dead letters column

    redriven = cli(*stack, "dlq", "redrive", "always_fails", redis_url=redis_url)
    assert "redrove 1 dead letters" in redriven.stdout
    assert await redis.xlen(keys.dead_letters) == 0
    assert await redis.xlen(keys.stream) == 1


def test_json_log_lines_are_json() -> None:
    record = logging.LogRecord("lambdabus", logging.ERROR, __file__, 1, "boom %s", ("x",), None)
    doc = json.loads(JsonFormatter().format(record))
    assert doc["message"] == "boom x" and doc["level"] == "ERROR" and doc["time"].endswith("Z")


def test_logs_go_to_the_stderr_of_the_moment_not_a_closed_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A CLI run in-process under capture binds its log handler to the captured stderr;
    records logged after that stream was closed must not fail ("Logging error")."""
    import io

    from bus import logs

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    first, then = io.StringIO(), io.StringIO()
    try:
        monkeypatch.setattr(sys, "stderr", first)
        logs.configure(level="INFO")
        first.close()  # the capture of the test that ran the CLI ended
        monkeypatch.setattr(sys, "stderr", then)
        logging.getLogger("bus.somewhere").warning("written later by a thread")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    assert "written later by a thread" in then.getvalue()
    assert "Logging error" not in then.getvalue()
