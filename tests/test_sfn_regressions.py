"""Regressions of the Step Functions review: each test failed before its fix.

Real redis-server, the real Executor and StepFunctionsApi; pure engine checks run
without Redis. A test that used to hang runs under ``deadline`` (SIGALRM), so the
old behaviour is a failure, not a stuck run.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
import pytest
from prometheus_client import REGISTRY

from adapters.edge.json_api import JsonApiError
from adapters.sfn import engine as engine_mod
from adapters.sfn import executor as executor_mod
from adapters.sfn.api import StepFunctionsApi, execution_id
from adapters.sfn.definition import load
from adapters.sfn.engine import MAX_STATES_PER_TRANSITION, Engine
from adapters.sfn.errors import matches
from adapters.sfn.executor import Executor
from adapters.sfn.run import run_local
from adapters.sfn.store import ExecutionStore
from adapters.sfn.transition import MAX_HISTORY_EVENTS
from adapters.sfn.work_entries import decode_entry
from bus.keys import GROUP, FunctionKeys
from bus.redis_conn import connect, ensure_group

EXECUTION = {"Id": "arn:x", "Name": "x", "RoleArn": "", "StartTime": "t"}
LOOP = {"StartAt": "Check", "States": {
    "Check": {"Type": "Choice", "Default": "Work",
              "Choices": [{"Variable": "$.done", "BooleanEquals": True, "Next": "End"}]},
    "Work": {"Type": "Pass", "Next": "Check"}, "End": {"Type": "Succeed"}}}  # fmt: skip
PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
CALLBACK = {"StartAt": "T", "TimeoutSeconds": 31536000, "States": {"T": {
    "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
    "HeartbeatSeconds": 86400, "TimeoutSeconds": 86400, "End": True,
    "Parameters": {"FunctionName": "cb", "Payload": {"t.$": "$$.Task.Token"}}}}}  # fmt: skip
LAMBDA = {"StartAt": "Charge", "States": {"Charge": {
    "Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:charge",
    "End": True}}}  # fmt: skip
WAIT = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 60, "End": True}}}
TASK_F = {"Type": "Task", "End": True, "Resource": "arn:aws:lambda:us-east-1:1:function:f"}
MAP = {"StartAt": "M", "States": {"M": {"Type": "Map", "End": True, "ItemProcessor": {
    "StartAt": "T", "States": {"T": TASK_F}}}}}  # fmt: skip


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Turn a hang (the defects' old behaviour) into a test failure."""

    def expired(*_: Any) -> None:
        raise TimeoutError(f"still running after {seconds}s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture
async def api(redis_url: str, stack_name: str) -> AsyncIterator[StepFunctionsApi]:
    redis = connect(redis_url)
    try:
        yield StepFunctionsApi(ExecutionStore(redis, stack_name), "us-east-1")
    finally:
        await redis.aclose()


async def machine(api: StepFunctionsApi, definition: dict[str, Any], kind: str = "STANDARD") -> str:
    body = {"name": f"m{time.monotonic_ns()}", "definition": json.dumps(definition), "type": kind}
    return str((await api.create_state_machine(body))["stateMachineArn"])


async def settle(api: StepFunctionsApi, arn: str, timeout_s: float = 15.0) -> dict[str, Any]:
    assert await api.store.wait_done(execution_id(arn), timeout_s), "execution did not finish"
    return await api.describe_execution({"executionArn": arn})


async def pending_tokens(api: StepFunctionsApi, arn: str) -> list[str]:
    """Task tokens of an execution, once its start has been committed."""
    for _ in range(200):
        doc = await api.store.load(execution_id(arn))
        engine = (doc or {}).get("engine") or {}
        toks = [t for t, p in engine.get("pending", {}).items() if p["kind"] == "task"]
        if toks:
            return toks
        await asyncio.sleep(0.02)
    raise AssertionError("the execution never reached its task")


# -- 1. a Pass/Choice loop ------------------------------------------------------------------


def test_endless_pass_choice_loop_fails_at_the_history_quota_in_bounded_steps() -> None:
    engine = Engine(load(json.dumps(LOOP)))
    transitions = 0
    with deadline(30):
        tr = engine.start({"done": False}, execution=EXECUTION, now=0.0)
        while tr.doc["status"] == "RUNNING":
            assert [c["type"] for c in tr.commands] == ["continue"]
            assert len(tr.history) <= 2 * MAX_STATES_PER_TRANSITION + 1
            tr = engine.step(tr.doc, {"type": "continue"}, 0.0)
            transitions += 1
    assert tr.doc["status"] == "FAILED" and tr.doc["error"] == "States.Runtime"
    assert str(MAX_HISTORY_EVENTS) in tr.doc["cause"]
    assert tr.doc["event_id"] == MAX_HISTORY_EVENTS
    assert tr.history[-1]["type"] == "ExecutionFailed" and transitions > 10


async def test_loop_execution_fails_and_does_not_starve_others(
    api: StepFunctionsApi, redis_url: str, stack_name: str
) -> None:
    loop_arn, ok_arn = await machine(api, LOOP), await machine(api, PASS)
    with deadline(60):
        async with Executor(redis_url, stack_name, claim_idle_ms=500):
            looping = await api.start_execution({"stateMachineArn": loop_arn,
                                                 "input": '{"done": false}'})  # fmt: skip
            ok = await api.start_execution({"stateMachineArn": ok_arn})
            assert (await settle(api, ok["executionArn"]))["status"] == "SUCCEEDED"
            failed = await settle(api, looping["executionArn"], 40)
    assert failed["status"] == "FAILED" and failed["error"] == "States.Runtime"
    history = await api.store.history(execution_id(looping["executionArn"]), 0, 100_000)
    assert len(history) == MAX_HISTORY_EVENTS and history[-1]["type"] == "ExecutionFailed"


# -- 2. poison entries -----------------------------------------------------------------------


async def test_send_task_failure_rejects_non_string_or_oversized_error(
    api: StepFunctionsApi, redis_url: str, stack_name: str
) -> None:
    arn = await machine(api, CALLBACK)
    async with Executor(redis_url, stack_name):
        ex = await api.start_execution({"stateMachineArn": arn})
        tok = (await pending_tokens(api, ex["executionArn"]))[0]
        for body in ({"error": {"a": 1}}, {"error": "E" * 257}, {"cause": 5},
                     {"cause": "c" * 32769}):  # fmt: skip
            with pytest.raises(JsonApiError) as err:
                await api.send_task_failure({"taskToken": tok, **body})
            assert err.value.code == "ValidationException"
        await api.send_task_failure({"taskToken": tok, "error": "Bad", "cause": "c" * 32768})
        done = await settle(api, ex["executionArn"])
    assert (done["status"], done["error"]) == ("FAILED", "Bad")
    with pytest.raises(JsonApiError) as err:
        await api.stop_execution({"executionArn": ex["executionArn"], "error": ["x"]})
    assert err.value.code == "ValidationException"


def test_a_result_that_is_not_json_fails_the_task_as_a_marshal_error() -> None:
    packed = msgpack.packb(["abc.1", "success", b"\x00png"], use_bin_type=True)
    event = decode_entry([b"r", packed])
    assert event is not None and event["type"] == "task_failed"
    assert event["error"] == "Runtime.MarshalError"
    assert "bytes" in json.loads(event["cause"])["errorMessage"]


def test_a_defect_while_stepping_fails_the_execution_instead_of_raising() -> None:
    engine = Engine(load(json.dumps(LAMBDA)))
    tr = engine.start({}, execution=EXECUTION, now=0.0, token_prefix="e.")
    tok = next(c["token"] for c in tr.commands if c["type"] == "invoke")
    out = engine.step(tr.doc, {"type": "task_succeeded", "token": tok, "result": b"raw"}, 1.0)
    assert out.doc["status"] == "FAILED" and out.doc["error"] == "States.Runtime"
    assert "TypeError" in out.doc["cause"]
    assert [c["type"] for c in out.commands] == ["finished"]


async def test_one_failing_execution_does_not_block_acks_of_its_batch(
    api: StepFunctionsApi, redis_url: str, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = await machine(api, PASS)
    bad = await api.start_execution({"stateMachineArn": arn})
    good = await api.start_execution({"stateMachineArn": arn})
    ex = Executor(redis_url, stack_name)
    real = ex.advance

    async def advance(eid: str, events: list[dict[str, Any]]) -> bool:
        if eid == execution_id(bad["executionArn"]):
            raise TypeError("a defect")
        return await real(eid, events)

    monkeypatch.setattr(ex, "advance", advance)
    keys = api.store.keys
    await ensure_group(api.store.redis, keys.work)
    reply = await ex.reader.xreadgroup(GROUP, "c", {keys.work: ">"}, count=10)
    entries = next(iter(reply.values())) if isinstance(reply, dict) else reply[0][1]
    try:
        await ex.process(entries)
        left = await api.store.redis.xpending_range(keys.work, GROUP, "-", "+", 10)
    finally:
        await ex.reader.aclose()
        await ex.redis.aclose()
    assert len(left) == 1  # only the failing execution's entry waits for a retry
    assert (await settle(api, good["executionArn"]))["status"] == "SUCCEEDED"


async def test_an_entry_delivered_too_often_is_dead_lettered(
    api: StepFunctionsApi, redis_url: str, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(executor_mod, "MAX_DELIVERIES", 3)
    r, keys = api.store.redis, api.store.keys
    await ensure_group(r, keys.work)
    entry = await r.xadd(keys.work, {"ev": json.dumps({"e": "0" * 32, "type": "timer"})})
    await r.xreadgroup(GROUP, "dead", {keys.work: ">"}, count=1)
    for _ in range(4):
        await r.xclaim(keys.work, GROUP, "dead", 0, [entry])
    sample = "lambdabus_sfn_work_dead_lettered_total"
    before = REGISTRY.get_sample_value(sample) or 0.0
    ex = Executor(redis_url, stack_name, claim_idle_ms=0)
    try:
        await ex._drop_poison()
    finally:
        await ex.reader.aclose()
        await ex.redis.aclose()
    assert await r.xpending_range(keys.work, GROUP, "-", "+", 10) == []
    assert await r.xlen(keys.work) == 0
    assert REGISTRY.get_sample_value(sample) == before + 1


# -- 3. orphaned outbox commands -------------------------------------------------------------


async def test_adopting_an_orphaned_invoke_twice_sends_it_once(
    api: StepFunctionsApi, redis_url: str, stack_name: str
) -> None:
    eid = "a" * 32
    cmd = {"type": "invoke", "token": f"{eid}.3", "resource": "r", "function": "work",
           "payload": {}, "callback": False, "timeout_s": None, "at": 0}  # fmt: skip
    outbox_key = api.store.keys.execution(eid)["outbox"]
    b, c = Executor(redis_url, stack_name, consumer="b"), Executor(redis_url, stack_name,
                                                                   consumer="c")  # fmt: skip
    try:
        await api.store.redis.hset(outbox_key, "1:0", json.dumps(cmd))
        outbox = await api.store.outbox(eid)
        await asyncio.gather(b._issue(eid, outbox), c._issue(eid, outbox))
        await b._issue(eid, outbox)  # the slow original executor, resuming
    finally:
        for x in (b, c):
            await x.reader.aclose()
            await x.redis.aclose()
    assert await api.store.redis.xlen(FunctionKeys(stack_name, "work").sync) == 1


async def test_a_skewed_local_clock_neither_ages_nor_adopts_fresh_commands(
    api: StepFunctionsApi, redis_url: str, stack_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    eid = "b" * 32
    skew = 3600.0
    real_time = time.time
    monkeypatch.setattr(executor_mod, "ADOPT_POLLS", 2)
    ex = Executor(redis_url, stack_name)
    try:
        await api.store.redis.set(api.store.keys.execution(eid)["doc"],
                                  json.dumps({"v": 0, "meta": {}, "engine": None}))  # fmt: skip
        cmd = {"type": "timer", "token": f"{eid}.1", "due": 0}
        with monkeypatch.context() as m:  # this host's clock is an hour late
            m.setattr(time, "time", lambda: real_time() - skew)
            await api.store.commit(eid, lambda d: ({**d, "engine": {}}, [], [cmd]))
        (stored,) = (await api.store.outbox(eid)).values()
        assert abs(stored["at"] - await api.store.server_time()) < 60
        with monkeypatch.context() as m:  # this one's is an hour early: still not an orphan
            m.setattr(time, "time", lambda: real_time() + skew)
            assert await ex._adopt_orphans(eid) is False
        assert await api.store.redis.zcard(api.store.keys.timers) == 0
    finally:
        await ex.reader.aclose()
        await ex.redis.aclose()


# -- 4. StopExecution before the start is applied ---------------------------------------------


async def test_stop_seen_before_start_aborts_the_execution(
    api: StepFunctionsApi, redis_url: str, stack_name: str
) -> None:
    r, keys = api.store.redis, api.store.keys
    await ensure_group(r, keys.work)
    arn = await machine(api, WAIT)
    ex = await api.start_execution({"stateMachineArn": arn})
    await r.xreadgroup(GROUP, "dead", {keys.work: ">"}, count=10)  # read, then "SIGKILLed"
    await api.stop_execution({"executionArn": ex["executionArn"], "cause": "by test"})
    async with Executor(redis_url, stack_name, claim_idle_ms=300):
        done = await settle(api, ex["executionArn"])
        await asyncio.sleep(0)
        for _ in range(100):  # the reclaimed 'start' is applied (and ignored) too
            if not await r.xpending_range(keys.work, GROUP, "-", "+", 10):
                break
            await asyncio.sleep(0.05)
    assert done["status"] == "ABORTED" and done["cause"] == "by test"
    history = await api.store.history(execution_id(ex["executionArn"]))
    assert [e["type"] for e in history] == ["ExecutionAborted"]
    assert (await api.describe_execution({"executionArn": ex["executionArn"]}))[
        "status"
    ] == "ABORTED"


# -- 5. NOGROUP ------------------------------------------------------------------------------


async def test_executor_recreates_a_lost_consumer_group(
    api: StepFunctionsApi, redis_url: str, stack_name: str
) -> None:
    arn = await machine(api, PASS)
    async with Executor(redis_url, stack_name, claim_idle_ms=200):
        first = await api.start_execution({"stateMachineArn": arn})
        assert (await settle(api, first["executionArn"]))["status"] == "SUCCEEDED"
        await api.store.redis.delete(api.store.keys.work)  # a restart of an empty Redis
        second = await api.start_execution({"stateMachineArn": arn})
        assert (await settle(api, second["executionArn"]))["status"] == "SUCCEEDED"


# -- 6. ErrorEquals order ----------------------------------------------------------------------


@pytest.mark.parametrize("names", [["States.TaskFailed", "States.NoChoiceMatched"],
                                   ["States.NoChoiceMatched", "States.TaskFailed"]])  # fmt: skip
def test_matches_does_not_depend_on_the_order_of_error_equals(names: list[str]) -> None:
    assert matches(names, "States.NoChoiceMatched")
    assert matches(names, "MyError")
    assert not matches(names, "States.Timeout")


# -- 7. API input ------------------------------------------------------------------------------


async def test_execution_names_follow_aws_rules(api: StepFunctionsApi) -> None:
    arn = await machine(api, PASS)
    for name in ("invoice.2024-01.csv", "café", "a" * 80, "x+y=z@w!"):
        await api.start_execution({"stateMachineArn": arn, "name": name})
    for name in ("a b", "a/b", "a:b", "a*", "{x}", "a\x01", "a\x85", "a" * 81, 'q"'):
        with pytest.raises(JsonApiError) as err:
            await api.start_execution({"stateMachineArn": arn, "name": name})
        assert err.value.code == "InvalidName"


async def test_bad_paging_arguments_are_client_errors(api: StepFunctionsApi) -> None:
    arn = await machine(api, PASS)
    ex = await api.start_execution({"stateMachineArn": arn})
    calls = [(api.get_execution_history, {"executionArn": ex["executionArn"]}),
             (api.list_executions, {"stateMachineArn": arn})]  # fmt: skip
    for call, body in calls:
        for bad, code in (({"nextToken": "abc"}, "InvalidToken"),
                          ({"maxResults": "x"}, "ValidationException"),
                          ({"maxResults": -1}, "ValidationException"),
                          ({"maxResults": 10**6}, "ValidationException")):  # fmt: skip
            with pytest.raises(JsonApiError) as err:
                await call({**body, **bad})
            assert err.value.code == code
        assert "nextToken" not in await call({**body, "maxResults": 5, "nextToken": "0"})


# -- 8. timers -----------------------------------------------------------------------------


async def test_dropped_timers_leave_the_timer_set(
    api: StepFunctionsApi, redis_url: str, stack_name: str
) -> None:
    r, keys = api.store.redis, api.store.keys
    arn = await machine(api, CALLBACK)
    async with Executor(redis_url, stack_name):
        ex = await api.start_execution({"stateMachineArn": arn})
        tok = (await pending_tokens(api, ex["executionArn"]))[0]
        assert await r.zcard(keys.timers) == 3  # execution, task and heartbeat timeouts
        for _ in range(30):
            await api.send_task_heartbeat({"taskToken": tok})
        for _ in range(200):  # every heartbeat applied: the last one re-armed the timer
            hist = await api.store.load(execution_id(ex["executionArn"]))
            assert hist is not None
            if hist["engine"]["seq"] >= 33 and not await api.store.outbox(hist["meta"]["eid"]):
                break
            await asyncio.sleep(0.02)
        assert await r.zcard(keys.timers) == 3
        await api.send_task_success({"taskToken": tok, "output": "{}"})
        assert (await settle(api, ex["executionArn"]))["status"] == "SUCCEEDED"
        for _ in range(100):
            if not await api.store.outbox(execution_id(ex["executionArn"])):
                break
            await asyncio.sleep(0.02)
    assert await r.zcard(keys.timers) == 0


# -- 9. task tokens --------------------------------------------------------------------------


async def test_task_tokens_cannot_be_forged(
    api: StepFunctionsApi, redis_url: str, stack_name: str
) -> None:
    plain, cb = await machine(api, LAMBDA), await machine(api, CALLBACK)
    async with Executor(redis_url, stack_name, functions={"charge", "cb"}):
        ex = await api.start_execution({"stateMachineArn": plain})
        (plain_token,) = await pending_tokens(api, ex["executionArn"])
        forged = execution_id(ex["executionArn"]) + ".1"
        for tok in (forged, plain_token):  # computable, and a request-response task's
            with pytest.raises(JsonApiError) as err:
                await api.send_task_success({"taskToken": tok, "output": '{"approved": true}'})
            assert err.value.code == "TaskDoesNotExist"
        ex2 = await api.start_execution({"stateMachineArn": cb})
        (token,) = await pending_tokens(api, ex2["executionArn"])
        eid2 = execution_id(ex2["executionArn"])
        guessable = token.rsplit(".", 1)[0]
        assert token.startswith(eid2 + ".") and len(token) > len(guessable) + 16
        with pytest.raises(JsonApiError):
            await api.send_task_success({"taskToken": guessable, "output": "{}"})
        await api.send_task_success({"taskToken": token, "output": '{"ok": 1}'})
        done = await settle(api, ex2["executionArn"])
    assert done["status"] == "SUCCEEDED" and json.loads(done["output"]) == {"ok": 1}
    assert (await api.describe_execution({"executionArn": ex["executionArn"]}))[
        "status"
    ] == "RUNNING"


# -- 10. idempotent StartExecution -----------------------------------------------------------


async def test_start_execution_retry_returns_the_original(
    api: StepFunctionsApi, redis_url: str, stack_name: str
) -> None:
    arn = await machine(api, PASS)
    body = {"stateMachineArn": arn, "name": "order-1", "input": '{"a": 1}'}
    first = await api.start_execution(body)
    again = await api.start_execution(body)
    assert again == first
    with pytest.raises(JsonApiError) as err:
        await api.start_execution({**body, "input": '{"a": 2}'})
    assert err.value.code == "ExecutionAlreadyExists"
    async with Executor(redis_url, stack_name):
        assert (await settle(api, first["executionArn"]))["status"] == "SUCCEEDED"
    history = await api.store.history(execution_id(first["executionArn"]))
    assert [e["type"] for e in history].count("ExecutionStarted") == 1
    with pytest.raises(JsonApiError):  # finished: the name is taken
        await api.start_execution(body)


# -- 11. StartSyncExecution and the shared pool -----------------------------------------------


async def test_sync_waiters_do_not_hold_the_shared_pool(redis_url: str, stack_name: str) -> None:
    redis = connect(redis_url, max_connections=4)
    api = StepFunctionsApi(ExecutionStore(redis, stack_name), "us-east-1")
    try:
        slow = await machine(api, WAIT, kind="EXPRESS")
        waiters = [asyncio.create_task(api.start_sync_execution({"stateMachineArn": slow}))
                   for _ in range(8)]  # fmt: skip
        for _ in range(200):  # every waiter has started its execution
            if len(await api.store.execution_ids(None, 100)) == 8:
                break
            await asyncio.sleep(0.01)
        listed = await asyncio.wait_for(api.list_state_machines({}), 10)
        assert len(listed["stateMachines"]) == 1
        assert not any(w.done() for w in waiters)
        for w in waiters:
            w.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    finally:
        await redis.aclose()


# -- 12. one copy per batch, not per event ------------------------------------------------------


def test_a_batch_of_events_is_applied_without_copying_the_document(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = Engine(load(json.dumps(MAP)))
    tr = engine.start([{"i": i} for i in range(50)], execution=EXECUTION, now=0.0,
                      token_prefix="e.")  # fmt: skip
    toks = [c["token"] for c in tr.commands if c["type"] == "invoke"]
    doc = {"v": 1, "meta": {"status": "RUNNING"}, "engine": json.loads(json.dumps(tr.doc))}
    copies = []
    real = engine_mod.copy.deepcopy
    monkeypatch.setattr(engine_mod.copy, "deepcopy", lambda x: copies.append(1) or real(x))
    events = [{"type": "task_succeeded", "token": t, "result": 1} for t in toks]
    change = Executor._apply(None, engine, doc, events, 1.0)  # type: ignore[arg-type]
    assert change is not None and copies == []
    new_doc, _, _ = change
    assert new_doc["engine"]["status"] == "SUCCEEDED" and new_doc["engine"]["output"] == [1] * 50


def test_local_runner_follows_continue_commands_to_the_end() -> None:
    with deadline(30):
        result = run_local(load(json.dumps(LOOP)), {"done": False})
    assert result["status"] == "FAILED" and result["error"] == "States.Runtime"


def test_one_commit_shares_one_budget_of_states_among_its_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(executor_mod, "MAX_STATES_PER_TRANSITION", 30)
    chain = {f"P{i}": {"Type": "Pass", "Next": f"P{i + 1}"} for i in range(10)}
    chain["P10"] = {"Type": "Pass", "End": True}
    definition = {"StartAt": "M", "States": {"M": {"Type": "Map", "End": True,
                  "ItemProcessor": {"StartAt": "T", "States": {
                      "T": {**TASK_F, "End": False, "Next": "P0"}, **chain}}}}}  # fmt: skip
    engine = Engine(load(json.dumps(definition)))
    tr = engine.start(list(range(20)), execution=EXECUTION, now=0.0, token_prefix="e.")
    toks = [c["token"] for c in tr.commands if c["type"] == "invoke"]
    doc = {"v": 1, "meta": {"status": "RUNNING"}, "engine": tr.doc}
    events = [{"type": "task_succeeded", "token": t, "result": 1} for t in toks]
    change = Executor._apply(None, engine, doc, events, 1.0)  # type: ignore[arg-type]
    assert change is not None
    new_doc, history, commands = change
    entered = [e for e in history if e["type"].endswith("StateEntered")]
    assert len(entered) <= 30 + len(events)
    assert [c["type"] for c in commands].count("continue") == 1
    assert new_doc["engine"]["status"] == "RUNNING" and new_doc["engine"]["ready"]
    while new_doc["engine"]["status"] == "RUNNING":  # the continues finish the work
        change = Executor._apply(None, engine, new_doc, [{"type": "continue"}], 2.0)  # type: ignore[arg-type]
        assert change is not None
        new_doc = change[0]
    assert new_doc["engine"]["output"] == [1] * 20
