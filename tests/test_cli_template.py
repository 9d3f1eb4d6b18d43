"""The template-aware CLI: validate, invoke, build — and user mistakes as one line."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.template import load_template
from bus.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "tests" / "templates"

TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: echo.handler
      Runtime: python3.11
      Timeout: 2
"""

ECHO = """\
def handler(event, context):
    if event.get("fail"):
        raise KeyError("missing")
    return {"echo": event, "function": context.function_name}
"""


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args], cwd=ROOT, input=stdin,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0, r.stderr
    return r.stderr.strip()


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "echo.py").write_text(ECHO)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    return tmp_path / "template.yaml"


def test_validate_reports_a_valid_template_and_its_warnings(app: Path) -> None:
    r = cli("validate", str(app))
    assert r.returncode == 0, r.stderr
    assert "valid; stack" in r.stdout and "1 functions" in r.stdout
    assert "Runtime: ignored" in r.stderr


@pytest.mark.parametrize(
    ("fixture", "needle"),
    [("bad_misspelt.yaml", "unknown property"), ("bad_unknown_type.yaml", "type"),
     ("bad_dangling_ref.yaml", "Ref")],
)  # fmt: skip
def test_validate_errors_are_one_line_naming_file_and_resource(fixture: str, needle: str) -> None:
    line = one_line_error(cli("validate", str(TEMPLATES / fixture)))
    assert fixture in line and needle.lower() in line.lower()


def test_missing_template_and_bad_overrides_are_one_line(app: Path) -> None:
    assert "no template at" in one_line_error(cli("validate", "/no/such/template.yaml"))
    assert "KEY=VALUE" in one_line_error(
        cli("validate", str(app), "--parameter-overrides", "novalue")
    )


async def test_invoke_sync_async_and_errors_through_the_cli(
    app: Path, redis_url: str, tmp_path: Path
) -> None:
    loaded = load_template(app)
    worker = Worker(redis_url, loaded.stack, "Echo", block_ms=100)
    await worker.start()
    try:
        event = tmp_path / "event.json"
        event.write_text('{"n": 1}')
        base = ("--redis-url", redis_url, "--template", str(app))
        ok = await asyncio.to_thread(cli, *base, "invoke", "Echo", "--event", str(event))
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout) == {"echo": {"n": 1}, "function": "Echo"}
        assert json.loads(ok.stderr.strip().splitlines()[-1])["StatusCode"] == 200

        failed = await asyncio.to_thread(
            cli, *base, "invoke", "Echo", "-e", "-", stdin='{"fail": 1}'
        )
        assert json.loads(failed.stdout)["errorType"] == "KeyError"
        assert json.loads(failed.stderr.strip().splitlines()[-1])["FunctionError"] == "Unhandled"

        queued = await asyncio.to_thread(cli, *base, "invoke", "Echo", "--async")
        assert json.loads(queued.stdout)["StatusCode"] == 202

        bad = await asyncio.to_thread(cli, *base, "invoke", "Echo", "-e", "-", stdin="{nope")
        assert "is not JSON" in one_line_error(bad)
        unknown = await asyncio.to_thread(cli, *base, "invoke", "Nope")
        assert "no function 'Nope'" in one_line_error(unknown)
    finally:
        await worker.stop(5)


def test_invoke_without_a_worker_says_so(app: Path, redis_url: str) -> None:
    r = cli("--redis-url", redis_url, "--template", str(app), "invoke", "Echo", "--timeout", "0.3")
    assert "is a worker for Echo running?" in one_line_error(r)


def test_build_without_requirements_and_with_a_broken_one(app: Path) -> None:
    r = cli("build", str(app))
    assert r.returncode == 0 and "Echo: no requirements.txt" in r.stdout
    (app.parent / "code" / "requirements.txt").write_text("this is not a requirement !!\n")
    assert "installing" in one_line_error(cli("build", str(app)))


def test_generate_event_pipes_into_invoke_shape() -> None:
    r = cli("generate-event", "sqs")
    assert r.returncode == 0
    assert json.loads(r.stdout)["Records"][0]["eventSource"] == "aws:sqs"
    assert "unknown" in one_line_error(cli("generate-event", "sqs", "nope")).lower()
