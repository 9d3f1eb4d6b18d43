"""``lambdabus sfn start|describe|history|list`` against a template's state machine."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from adapters.sfn.executor import Executor
from adapters.sfn.machines import register_template_machines
from adapters.sfn.store import ExecutionStore
from adapters.template import load_template
from bus.redis_conn import connect

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Greeter:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      StateMachineName: greeter
      DefinitionString: >-
        {"StartAt": "Hi", "States": {"Hi": {"Type": "Pass",
         "Parameters": {"msg.$": "States.Format('hi {}', $.who)"}, "End": true}}}
"""


async def cli(*argv: str) -> tuple[int, Any, str]:
    """The console script in a subprocess, as a user runs it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "adapters.cli", *argv, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    return proc.returncode or 0, json.loads(text) if text.strip() else None, err.decode()


async def test_start_describe_history_list(tmp_path: Path, redis_url: str, stack_name: str) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    loaded = load_template(path, {}, stack_name)
    redis = connect(redis_url)
    try:
        await register_template_machines(ExecutionStore(redis, stack_name), loaded)
    finally:
        await redis.aclose()
    common = ["--redis-url", redis_url, "--template", str(path), "--stack-name", stack_name]
    async with Executor(redis_url, stack_name, claim_idle_ms=2000):
        code, out, _ = await cli(
            *common,
            "sfn",
            "start",
            "greeter",
            "--input",
            '{"who": "Ada"}',
            "--name",
            "one",
            "--wait",
            "30",
        )
        assert code == 0 and out["status"] == "SUCCEEDED"
        assert json.loads(out["output"]) == {"msg": "hi Ada"}
        arn = out["executionArn"]
        code, out, _ = await cli(*common, "sfn", "describe", arn)
        assert code == 0 and out["name"] == "one"
        code, out, _ = await cli(*common, "sfn", "history", arn)
        assert [e["type"] for e in out["events"]][-1] == "ExecutionSucceeded"
        code, out, _ = await cli(*common, "sfn", "list")
        assert [m["name"] for m in out["stateMachines"]] == ["greeter"]
        code, out, _ = await cli(*common, "sfn", "list", "greeter")
        assert [e["name"] for e in out["executions"]] == ["one"]
        code, _, err = await cli(*common, "sfn", "start", "nope")
        assert code == 2 and "StateMachineDoesNotExist" in err
        code, _, err = await cli(*common, "sfn", "start", "greeter", "--input", "{bad")
        assert code == 2 and "InvalidExecutionInput" in err
        code, _, err = await cli(*common, "sfn", "describe")
        assert code == 2 and "needs a target" in err
