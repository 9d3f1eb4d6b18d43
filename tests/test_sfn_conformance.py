"""The shared Step Functions conformance corpus (66 executions whose results AWS produced),
run twice: through the engine alone, and through the edge endpoint against the durable
executor, with the executor process SIGKILLed and restarted while the corpus runs."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.edge import EdgeServer
from adapters.sfn.api import mount
from adapters.sfn.run import run_local
from bus.redis_conn import connect
from bus.spec import Stack
from tests import handlers_sfn as handlers

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "sfn-conformance"
needs_corpus = pytest.mark.skipif(not (CORPUS / "cases").is_dir(),
                                  reason="../shared/sfn-conformance not present")  # fmt: skip

ENGINE_FLOOR = 66
"""Cases matched by the engine when this test was written; a regression fails the test."""
ENDPOINT_FLOOR = 66


def _compare() -> Any:
    sys.path.insert(0, str(CORPUS))
    try:
        import run_cases  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(CORPUS))
    return run_cases.compare


@needs_corpus
def test_engine_matches_the_corpus() -> None:
    compare = _compare()
    cases = sorted((CORPUS / "cases").glob("*.json"))
    failures = {}
    for path in cases:
        case = json.loads(path.read_text())
        problems = compare(case["expected"], run_local(case["definition"], case["input"]))
        if problems:
            failures[path.stem] = problems
    matched = len(cases) - len(failures)
    print(f"engine: {matched}/{len(cases)} cases match")
    assert len(cases) == 66
    assert matched >= ENGINE_FLOOR, failures


@pytest.fixture
async def edge(redis_url: str, stack_name: str,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[EdgeServer]:  # fmt: skip
    monkeypatch.setenv("SFN_TEST_STACK", stack_name)
    redis = connect(redis_url)
    server = EdgeServer(redis_url, Stack(stack_name, {}), port=0)
    mount(server, redis, stack_name, "us-east-1")
    try:
        async with server:
            yield server
    finally:
        await redis.aclose()


@needs_corpus
async def test_corpus_through_the_endpoint_with_the_executor_killed_midway(
    edge: EdgeServer, redis_url: str, stack_name: str
) -> None:
    redis = connect(redis_url)
    first = handlers.executor_proc(redis_url, stack_name)
    second = None
    try:
        await first.wait_ready()
        runner = await asyncio.create_subprocess_exec(
            sys.executable, str(CORPUS / "run_cases.py"), "--endpoint", edge.url, "-j", "8",
            "--timeout", "60", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        executions = f"{stack_name}:sfn:executions"
        async with asyncio.timeout(60):
            # bounded polling of another process's progress (the case runner's StartExecutions)
            while await redis.zcard(executions) < 20:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await first.kill()
        started_at_kill = await redis.zcard(executions)
        second = handlers.executor_proc(redis_url, stack_name)
        await second.wait_ready()
        out, _ = await asyncio.wait_for(runner.communicate(), 240)
    finally:
        first.force_close()
        if second is not None:
            second.force_close()
        await redis.aclose()
    text = out.decode()
    found = re.search(r"^(\d+)/(\d+) cases match$", text, re.M)
    assert found, text[-3000:]
    matched, total = int(found[1]), int(found[2])
    print(f"endpoint (executor killed after {started_at_kill} executions started): "
          f"{matched}/{total} cases match")  # fmt: skip
    assert total == 66
    assert started_at_kill < 66, "the kill must land while the corpus runs"
    assert matched >= ENDPOINT_FLOOR, "\n".join(
        line for line in text.splitlines() if not line.startswith("PASS")
    )
