"""``lambdabus dev`` runs workflows: the Step Functions API on the edge, the executor,
the template's state machines, and functions whose ``sfn.send_task_success`` reaches
lambdabus through ``AWS_ENDPOINT_URL_SFN`` (the handler sets no endpoint itself)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3

from bus.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Metadata: {lambdabus: {stack: approvals}}
Resources:
  Approver:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: approver/, Handler: app.handler, Timeout: 20}
  Approval:
    Type: AWS::Serverless::StateMachine
    Properties:
      Name: approval
      Definition:
        StartAt: Ask
        States:
          Ask:
            Type: Task
            Resource: arn:aws:states:::lambda:invoke.waitForTaskToken
            Parameters:
              FunctionName: !GetAtt Approver.Arn
              Payload: {"token.$": "$$.Task.Token", "amount.$": "$.amount"}
            ResultPath: $.decision
            TimeoutSeconds: 60
            End: true
"""

HANDLER = """\
import json
import os

import boto3


def handler(event, context):
    # No endpoint_url: AWS_ENDPOINT_URL_SFN, set by lambdabus dev, routes the call.
    assert os.environ["AWS_ENDPOINT_URL_SFN"].startswith("http://")
    sfn = boto3.client("stepfunctions")
    sfn.send_task_success(taskToken=event["token"],
                          output=json.dumps({"approved": event["amount"] < 100}))
"""


def test_a_handler_completes_its_task_token_through_the_edge(tmp_path: Path) -> None:
    app = tmp_path / "app"
    (app / "approver").mkdir(parents=True)
    (app / "template.yaml").write_text(TEMPLATE)
    (app / "approver" / "app.py").write_text(HANDLER)
    port = free_port()
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONPATH=str(ROOT))
    for var in ("LAMBDABUS_REDIS_URL", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SFN"):
        env.pop(var, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "dev", str(app / "template.yaml"),
         "--edge-port", str(port), "--api-port", str(free_port()), "--grace", "5"],
        cwd=app, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.strip() == "ready":
                break
        assert any("Step Functions" in line for line in lines), lines
        sfn: Any = boto3.client("stepfunctions", endpoint_url=f"http://127.0.0.1:{port}",
                                region_name="us-east-1", aws_access_key_id="x",
                                aws_secret_access_key="x")  # fmt: skip
        machine = "arn:aws:states:us-east-1:123456789012:stateMachine:approval"
        arns = [sfn.start_execution(stateMachineArn=machine, input=json.dumps({"amount": n}))[
            "executionArn"] for n in (50, 500)]  # fmt: skip
        outputs = []
        for arn in arns:
            deadline = time.monotonic() + 60
            while (desc := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
                assert time.monotonic() < deadline, "execution still running"
                time.sleep(0.1)  # polling another process's state
            assert desc["status"] == "SUCCEEDED", desc
            outputs.append(json.loads(desc["output"]))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0
    assert outputs == [{"amount": 50, "decision": {"approved": True}},
                       {"amount": 500, "decision": {"approved": False}}]  # fmt: skip
