"""``lambdabus sfn executor|start|describe|history|list``.

The executor is a long-running process like a worker (admin port, SIGTERM
drain); the other actions go straight to Redis through the same code the edge's
Step Functions API runs, so they work without an edge endpoint.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from bus.cli import UsageError
from bus.redis_conn import connect, redis_url

ACTIONS = ("executor", "start", "describe", "history", "list")


def add_parser(sub: Any, run: Any) -> None:
    p = sub.add_parser("sfn", help="Step Functions: run the executor, start and inspect executions")
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("target", nargs="?", help="state machine name/ARN, or execution ARN")
    p.add_argument("--input", default="{}", help="execution input: JSON text, or @FILE")
    p.add_argument("--name", help="execution name (default: a UUID)")
    p.add_argument("--sync", action="store_true", help="start: wait for the end (EXPRESS)")
    p.add_argument("--wait", type=float, default=0.0, help="start: wait up to N s for the end")
    p.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    p.add_argument("--claim-idle-ms", type=int, default=30_000,
                   help="executor: take over work a dead executor held this long")  # fmt: skip
    p.add_argument("--admin-port", type=int,
                   default=int(os.environ.get("LAMBDABUS_ADMIN_PORT", 0)))  # fmt: skip
    p.add_argument("--grace", type=float, default=10.0)
    p.set_defaults(run=run)


def _input(text: str) -> str:
    if text.startswith("@"):
        try:
            with open(text[1:], encoding="utf-8") as f:
                return f.read()
        except OSError as exc:
            raise UsageError(f"cannot read input {text[1:]}: {exc.strerror}") from None
    return text


async def run(cli: Any, args: argparse.Namespace) -> int:
    from adapters.edge.json_api import JsonApiError

    from .api import StepFunctionsApi
    from .store import ExecutionStore

    if args.action == "executor":
        return await run_executor(cli, args)
    stack = cli.resolve_stack(args)
    redis = connect(redis_url(args.redis_url))
    api = StepFunctionsApi(ExecutionStore(redis, stack.name), args.region)
    try:
        result = await _action(api, args)
    except JsonApiError as exc:
        raise UsageError(f"{exc.code}: {exc.message}") from None
    finally:
        await redis.aclose()
    print(json.dumps(result, indent=2, default=str))
    return 0 if result.get("status") not in ("FAILED", "TIMED_OUT", "ABORTED") else 1


async def _action(api: Any, args: argparse.Namespace) -> dict[str, Any]:
    target = args.target
    if args.action == "list":
        if not target:
            return dict(await api.list_state_machines({}))
        return dict(await api.list_executions({"stateMachineArn": _machine(api, target)}))
    if not target:
        raise UsageError(f"sfn {args.action} needs a target")
    if args.action == "start":
        body = {"stateMachineArn": _machine(api, target), "input": _input(args.input)}
        if args.name:
            body["name"] = args.name
        if args.sync:
            return dict(await api.start_sync_execution(body))
        started = await api.start_execution(body)
        if args.wait > 0:
            from .api import execution_id

            await api.store.wait_done(execution_id(started["executionArn"]), args.wait)
            return dict(await api.describe_execution({"executionArn": started["executionArn"]}))
        return dict(started)
    if args.action == "describe":
        return dict(await api.describe_execution({"executionArn": target}))
    return dict(await api.get_execution_history({"executionArn": target}))


def _machine(api: Any, target: str) -> str:
    return target if target.startswith("arn:") else str(api.machine_arn(target))


async def run_executor(cli: Any, args: argparse.Namespace) -> int:
    from bus.lifecycle import serve

    from .executor import Executor
    from .machines import register_template_machines

    stack = cli.resolve_stack(args)
    url = redis_url(args.redis_url)
    executor = Executor(url, stack.name, claim_idle_ms=args.claim_idle_ms,
                        functions=set(stack.functions))  # fmt: skip
    loaded = None
    if getattr(args, "template", None) or not (args.stack or os.environ.get("LAMBDABUS_STACK")):
        loaded = cli.load(args)

    async def startup() -> None:
        if loaded is not None:
            await register_template_machines(executor.store, loaded, args.region)
        await executor.start()

    async def shutdown(grace_s: float) -> bool:
        return await executor.stop(grace_s)

    return await serve(startup, shutdown, lambda: True, admin_port=args.admin_port,
                       grace_s=args.grace)  # fmt: skip


__all__ = ["add_parser", "run"]
