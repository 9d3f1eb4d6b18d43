"""``lambdabus adapter http``: the API gateway as a process of its own (what a
Kubernetes Deployment runs; ``dev`` runs it inside and, with ``--api-processes``,
beside itself)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bus.embedded import free_port
from bus.lifecycle import READY_LINE
from tests.procs import ROOT

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: app.handler
      Events:
        Get:
          Type: HttpApi
          Properties: {Path: /hello, Method: get}
"""


def _argv(template: Path, *args: str) -> list[str]:
    """``lambdabus --template T adapter http ARGS``."""
    return [sys.executable, "-m", "adapters.cli", "--template", str(template), "adapter", "http",
            *args]  # fmt: skip


def _env(redis_url: str) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(ROOT), LAMBDABUS_REDIS_URL=redis_url)


def _start(template: Path, redis_url: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        _argv(template, *args),
        cwd=template.parent,
        env=_env(redis_url),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.strip() == READY_LINE:
            return proc
    raise AssertionError(f"adapter http exited with {proc.wait()}")


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.fixture
def template(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    return path


def test_serves_the_routes_and_exits_0_on_sigterm(template: Path, redis_url: str) -> None:
    port = free_port()
    proc = _start(template, redis_url, "--api-port", str(port))
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nowhere", timeout=10)
        assert refused.value.code == 404
        assert json.loads(refused.value.read()) == {"message": "Not Found"}
    finally:
        assert _stop(proc) == 0


def test_two_processes_share_a_port_only_with_reuse_port(template: Path, redis_url: str) -> None:
    port = free_port()
    first = _start(template, redis_url, "--api-port", str(port), "--reuse-port")
    try:
        second = _start(template, redis_url, "--api-port", str(port), "--reuse-port")
        assert _stop(second) == 0
        refused = subprocess.run(
            _argv(template, "--api-port", str(port)),
            cwd=template.parent,
            env=_env(redis_url),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode != 0  # the port is taken without SO_REUSEPORT
    finally:
        assert _stop(first) == 0


def test_a_template_without_http_routes_is_refused_in_one_line(
    tmp_path: Path, redis_url: str
) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        TEMPLATE.replace("HttpApi", "Schedule").replace(
            "Properties: {Path: /hello, Method: get}", "Properties: {Schedule: rate(1 hour)}"
        )
    )
    done = subprocess.run(
        _argv(path),
        cwd=tmp_path,
        env=_env(redis_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "no Api or HttpApi events to serve" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
