"""The Step Functions JSON API (``AWSStepFunctions.*``, JSON 1.0) on the edge port.

Enough of the API for boto3's ``stepfunctions`` client and the AWS CLI to
create machines, start (also synchronously, for EXPRESS machines), describe,
list, stop executions, read their history and complete task tokens. The API
only writes requests down (store + work stream); executors do the work, so an
API process holds no execution state.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from adapters.edge.json_api import JsonApiError

from .definition import MAX_INPUT_BYTES, DefinitionError, InputError, load, parse_input
from .store import ExecutionStore, dumps
from .work_entries import execution_of

if TYPE_CHECKING:
    from adapters.edge import EdgeServer

ACCOUNT = "123456789012"
SYNC_TIMEOUT_S = 300.0
"""StartSyncExecution waits at most as long as an EXPRESS execution may run (5 minutes)."""
_FORBIDDEN = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")
"""AWS's naming rule: no whitespace, brackets, wildcards, these specials, control chars."""
MAX_ERROR, MAX_CAUSE = 256, 32768
"""SendTaskFailure's and StopExecution's limits on ``error`` and ``cause`` (AWS)."""


def execution_id(arn: str) -> str:
    return hashlib.blake2b(arn.encode(), digest_size=16).hexdigest()


def _require(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise JsonApiError("ValidationException", f"Value for '{key}' must be a non-empty string")
    return value


def _name(value: str, what: str) -> str:
    if not 1 <= len(value) <= 80 or _FORBIDDEN.search(value):
        raise JsonApiError("InvalidName", f"Invalid {what} name: {value!r}")
    return value


def _optional_text(body: dict[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise JsonApiError("ValidationException", f"1 validation error detected: Value at "
                           f"'{key}' failed to satisfy constraint: Member must be a string "
                           f"of length less than or equal to {limit}")  # fmt: skip
    return value


def _count(body: dict[str, Any], key: str, default: int, high: int) -> int:
    """``maxResults`` (0 = the default) and the ``nextToken`` offsets we hand out."""
    value = body.get(key)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or not 0 <= number <= high:
        raise JsonApiError("ValidationException" if key == "maxResults" else "InvalidToken",
                           f"Invalid value for '{key}': {str(value)[:100]!r}")  # fmt: skip
    return number or default


def _describe(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "executionArn": meta["arn"], "stateMachineArn": meta["machine_arn"],
        "name": meta["name"], "status": meta["status"], "startDate": meta["start"],
        "input": meta["input_text"], "inputDetails": {"included": True},
    }  # fmt: skip
    if "stop" in meta:
        out["stopDate"] = meta["stop"]
    if meta["status"] == "SUCCEEDED":
        out["output"] = dumps(meta.get("output"))
        out["outputDetails"] = {"included": True}
    for key in ("error", "cause"):
        if meta.get(key) is not None:
            out[key] = meta[key]
    return out


class StepFunctionsApi:
    def __init__(self, store: ExecutionStore, region: str, account: str = ACCOUNT) -> None:
        self.store = store
        self.region = region
        self.account = account

    def operations(self) -> dict[str, Any]:
        names = ["CreateStateMachine", "DescribeStateMachine", "ListStateMachines",
                 "DeleteStateMachine", "StartExecution", "StartSyncExecution",
                 "DescribeExecution", "GetExecutionHistory", "ListExecutions", "StopExecution",
                 "SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"]  # fmt: skip
        return {n: getattr(self, re.sub(r"(?<!^)([A-Z])", r"_\1", n).lower()) for n in names}

    def machine_arn(self, name: str) -> str:
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{name}"

    # -- state machines ------------------------------------------------------------------

    async def create_state_machine(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        name = _name(_require(body, "name"), "state machine")
        text = _require(body, "definition")
        try:
            load(text)
        except DefinitionError as exc:
            raise JsonApiError("InvalidDefinition", str(exc)) from None
        kind = body.get("type", "STANDARD")
        if kind not in ("STANDARD", "EXPRESS"):
            raise JsonApiError("ValidationException", f"Invalid type {kind!r}")
        record = {"arn": self.machine_arn(name), "name": name, "definition": text, "type": kind,
                  "role": body.get("roleArn", ""), "created": time.time()}  # fmt: skip
        stored = await self.store.put_machine(record)
        if stored is not record and (stored["definition"], stored["type"]) != (text, kind):
            raise JsonApiError("StateMachineAlreadyExists",
                               f"State Machine Already Exists: '{record['arn']}'")  # fmt: skip
        return {"stateMachineArn": stored["arn"], "creationDate": stored["created"]}

    async def _machine(self, arn: str) -> dict[str, Any]:
        machine = await self.store.get_machine(arn)
        if machine is None:
            raise JsonApiError("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}'")
        return machine

    async def describe_state_machine(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        m = await self._machine(_require(body, "stateMachineArn"))
        return {"stateMachineArn": m["arn"], "name": m["name"], "status": "ACTIVE",
                "definition": m["definition"], "roleArn": m["role"] or
                f"arn:aws:iam::{self.account}:role/lambdabus", "type": m["type"],
                "creationDate": m["created"]}  # fmt: skip

    async def list_state_machines(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        return {"stateMachines": [
            {"stateMachineArn": m["arn"], "name": m["name"], "type": m["type"],
             "creationDate": m["created"]} for m in await self.store.list_machines()]}  # fmt: skip

    async def delete_state_machine(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        await self.store.delete_machine(_require(body, "stateMachineArn"))
        return {}

    # -- executions ----------------------------------------------------------------------

    async def _start(self, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        machine = await self._machine(_require(body, "stateMachineArn"))
        name = _name(body.get("name") or str(uuid.uuid4()), "execution")
        raw = body.get("input", "{}")
        if not isinstance(raw, str):
            raise JsonApiError("InvalidExecutionInput", "input must be a JSON string")
        if len(raw.encode()) > MAX_INPUT_BYTES:
            raise JsonApiError("ValidationException", "1 validation error detected: Value at "
                               "'input' failed to satisfy constraint: Member must have length "
                               f"less than or equal to {MAX_INPUT_BYTES}")  # fmt: skip
        try:
            data = parse_input(raw)
        except InputError as exc:
            raise JsonApiError("InvalidExecutionInput", str(exc)) from None
        arn = f"arn:aws:states:{self.region}:{self.account}:execution:{machine['name']}:{name}"
        now = time.time()
        meta = {"eid": execution_id(arn), "arn": arn, "name": name,
                "machine_arn": machine["arn"], "machine_name": machine["name"],
                "input": data, "input_text": raw, "start": now, "status": "RUNNING",
                "role": machine["role"], "type": machine["type"],
                "definition": await self.store.put_definition(machine["definition"]),
                "start_date": datetime.fromtimestamp(now, UTC).isoformat(
                    timespec="milliseconds").replace("+00:00", "Z")}  # fmt: skip
        stored = await self.store.create_execution(meta)
        if stored is None:
            raise JsonApiError("ExecutionAlreadyExists", f"Execution Already Exists: '{arn}'")
        return machine, stored

    async def start_execution(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        _, meta = await self._start(body)
        return {"executionArn": meta["arn"], "startDate": meta["start"]}

    async def start_sync_execution(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        machine = await self._machine(_require(body, "stateMachineArn"))
        if machine["type"] != "EXPRESS":
            raise JsonApiError(
                "StateMachineTypeNotSupported",
                "This operation is not supported by this type of state machine",
            )
        _, meta = await self._start(body)
        await self.store.wait_done(meta["eid"], SYNC_TIMEOUT_S)
        doc = await self.store.load(meta["eid"])
        assert doc is not None
        out = _describe(doc["meta"])
        out.pop("inputDetails", None)
        out.pop("outputDetails", None)
        if out["status"] == "RUNNING":
            out["status"] = "TIMED_OUT"
        return out

    async def _execution(self, arn: str) -> dict[str, Any]:
        doc = await self.store.load(execution_id(arn))
        if doc is None:
            raise JsonApiError("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'")
        meta: dict[str, Any] = doc["meta"]
        return meta

    async def describe_execution(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        return _describe(await self._execution(_require(body, "executionArn")))

    async def get_execution_history(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        meta = await self._execution(_require(body, "executionArn"))
        limit = _count(body, "maxResults", 1000, 1000)
        offset = _count(body, "nextToken", 0, 10**9)
        events = await self.store.history(meta["eid"], 0, 1_000_000)
        if body.get("reverseOrder"):
            events.reverse()
        page = events[offset : offset + limit]
        out: dict[str, Any] = {"events": page}
        if offset + limit < len(events):
            out["nextToken"] = str(offset + limit)
        return out

    async def list_executions(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        machine = await self._machine(_require(body, "stateMachineArn"))
        limit = _count(body, "maxResults", 100, 1000)
        offset = _count(body, "nextToken", 0, 10**9)
        wanted = body.get("statusFilter")
        out = []
        for eid in await self.store.execution_ids(machine["name"], 10_000):
            doc = await self.store.load(eid)
            if doc is None or (wanted and doc["meta"]["status"] != wanted):
                continue
            d = _describe(doc["meta"])
            out.append({k: d[k] for k in ("executionArn", "stateMachineArn", "name", "status",
                                          "startDate", "stopDate") if k in d})  # fmt: skip
        page: dict[str, Any] = {"executions": out[offset : offset + limit]}
        if offset + limit < len(out):
            page["nextToken"] = str(offset + limit)
        return page

    async def stop_execution(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        meta = await self._execution(_require(body, "executionArn"))
        error = _optional_text(body, "error", MAX_ERROR)
        cause = _optional_text(body, "cause", MAX_CAUSE)
        if meta["status"] == "RUNNING":
            await self.store.enqueue(meta["eid"], {"type": "stop", "error": error,
                                                   "cause": cause})  # fmt: skip
        return {"stopDate": time.time()}

    # -- task tokens ---------------------------------------------------------------------

    async def _token(self, body: dict[str, Any]) -> tuple[str, str]:
        token = _require(body, "taskToken")
        if len(token) > 1024 or "." not in token:
            raise JsonApiError("InvalidToken", "Invalid Token")
        eid = execution_of(token)
        doc = await self.store.load(eid) if re.fullmatch(r"[0-9a-f]{32}", eid) else None
        engine = (doc or {}).get("engine") or {}
        pending = engine.get("pending", {}).get(token)
        if pending is None or pending.get("kind") != "task" or not pending.get("callback"):
            raise JsonApiError("TaskDoesNotExist", "Task Does Not Exist")
        return eid, token

    async def send_task_success(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        eid, token = await self._token(body)
        raw = body.get("output")
        if not isinstance(raw, str) or len(raw.encode()) > MAX_INPUT_BYTES:
            raise JsonApiError("InvalidOutput", "output must be JSON text of at most 256 KB")
        try:
            result = parse_input(raw)
        except InputError:
            raise JsonApiError("InvalidOutput", "Invalid Output: not JSON") from None
        await self.store.enqueue(eid, {"type": "task_succeeded", "token": token, "result": result})
        return {}

    async def send_task_failure(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        error = _optional_text(body, "error", MAX_ERROR)
        cause = _optional_text(body, "cause", MAX_CAUSE)
        eid, token = await self._token(body)
        await self.store.enqueue(
            eid, {"type": "task_failed", "token": token, "error": error, "cause": cause}
        )
        return {}

    async def send_task_heartbeat(self, body: dict[str, Any], _: Any = None) -> dict[str, Any]:
        eid, token = await self._token(body)
        await self.store.enqueue(eid, {"type": "task_heartbeat", "token": token})
        return {}


def mount(edge: EdgeServer, redis: Redis, stack: str, region: str) -> StepFunctionsApi:
    """Serve ``AWSStepFunctions.*`` on ``edge`` (before it starts)."""
    api = StepFunctionsApi(ExecutionStore(redis, stack), region)
    edge.json_api.add("AWSStepFunctions", api.operations(), version="1.0")
    return api


__all__ = ["StepFunctionsApi", "execution_id", "mount"]
