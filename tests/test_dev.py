"""``lambdabus dev`` on a SAM template: per-function code, dependencies and
environment, the Lambda API through the edge, and a clean stop every time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from bus.embedded import free_port

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Metadata:
  lambdabus:
    stack: devtest
Globals:
  Function:
    Runtime: python3.11
    Timeout: 5
    Environment:
      Variables:
        SHARED: from-globals
Resources:
  Alpha:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: a/
      Handler: app.lambda_handler
      MemorySize: 256
      Environment:
        Variables:
          MY_VAR: alpha-var
  Beta:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: b/
      Handler: app.lambda_handler
      Policies: [AWSLambdaBasicExecutionRole]
      Environment:
        Variables:
          MY_VAR: beta-var
Outputs:
  AlphaArn:
    Value: !GetAtt Alpha.Arn
"""

APP = """\
import os
import six

# Read at import time, as real handlers (and Powertools) do.
NAME = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
MY_VAR = os.environ["MY_VAR"]
SHARED = os.environ["SHARED"]
MEMORY = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]


def lambda_handler(event, context):
    if event.get("fail"):
        raise RuntimeError("asked to fail")
    return {{"code": "{code}", "name": NAME, "var": MY_VAR, "shared": SHARED,
             "memory": MEMORY, "context_memory": context.memory_limit_in_mb,
             "six": six.__version__}}
"""


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two functions, each ``app.lambda_handler``, pinning different versions of six."""
    root = tmp_path_factory.mktemp("devapp")
    (root / "template.yaml").write_text(TEMPLATE)
    for folder, version in (("a", "1.16.0"), ("b", "1.15.0")):
        (root / folder).mkdir()
        (root / folder / "app.py").write_text(APP.format(code=folder))
        (root / folder / "requirements.txt").write_text(f"six=={version}\n")
    built = lambdabus("build", "--template", str(root / "template.yaml"), cwd=root)
    assert built.returncode == 0, built.stderr
    return root


def lambdabus(*args: str, cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        **kw,
    )  # type: ignore[call-overload]


class Dev:
    """A ``lambdabus dev`` process with its own TMPDIR, so leftovers can be seen."""

    def __init__(self, app: Path, tmp: Path, *extra_args: str, **extra_env: str) -> None:
        self.port = free_port()
        self.tmp = tmp
        env = dict(os.environ, TMPDIR=str(tmp), PYTHONPATH=str(ROOT), **extra_env)
        for var in ("LAMBDABUS_REDIS_URL", "AWS_ENDPOINT_URL"):
            env.pop(var, None)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapters.cli",
                "dev",
                str(app / "template.yaml"),
                "--edge-port",
                str(self.port),
                "--grace",
                "5",
                *extra_args,
            ],
            cwd=app,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.lines: list[str] = []
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.strip() == "ready":
                return
        raise AssertionError(f"dev exited {self.proc.wait()}: {self.proc.stderr.read()}")  # type: ignore[union-attr]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def client(self, key: str = "x", secret: str = "x") -> object:
        return boto3.client(
            "lambda",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
        )


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (from /proc)."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry.name))
    return kids


def mentions(text: str) -> list[int]:
    """Processes whose command line mentions ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmd and int(entry.name) != os.getpid():
                found.append(int(entry.name))
    return found


def test_each_function_sees_its_own_code_dependencies_and_environment(
    app_dir: Path, tmp_path: Path
) -> None:
    dev = Dev(app_dir, tmp_path)
    try:
        client = dev.client()
        results = {}
        for name in ("Alpha", "Beta"):
            resp = client.invoke(FunctionName=name, Payload=b"{}")  # type: ignore[attr-defined]
            assert resp["StatusCode"] == 200 and "FunctionError" not in resp
            results[name] = json.loads(resp["Payload"].read())
        failed = client.invoke(FunctionName="Beta", Payload=b'{"fail": true}')  # type: ignore[attr-defined]
        error = json.loads(failed["Payload"].read())
    finally:
        assert dev.stop() == 0
    assert results["Alpha"] == {
        "code": "a",
        "name": "Alpha",
        "var": "alpha-var",
        "shared": "from-globals",
        "memory": "256",
        "context_memory": 256,
        "six": "1.16.0",
    }
    assert results["Beta"] == {
        "code": "b",
        "name": "Beta",
        "var": "beta-var",
        "shared": "from-globals",
        "memory": "128",
        "context_memory": 128,
        "six": "1.15.0",
    }
    assert failed["FunctionError"] == "Unhandled"
    assert error["errorType"] == "RuntimeError" and error["errorMessage"] == "asked to fail"
    assert any("edge" in line and str(dev.port) in line for line in dev.lines)


def test_dev_started_and_stopped_five_times_leaves_nothing_behind(
    app_dir: Path, tmp_path: Path
) -> None:
    for round_ in range(5):
        tmp = tmp_path / f"round{round_}"
        tmp.mkdir()
        dev = Dev(app_dir, tmp)
        kids = children_of(dev.proc.pid)
        assert len(kids) >= 3, "a redis-server and two workers"
        assert dev.stop() == 0
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{k}").exists() for k in kids) and time.monotonic() < deadline:
            time.sleep(0.05)  # reaping is asynchronous; bounded poll
        assert not [k for k in kids if Path(f"/proc/{k}").exists()], "child left running"
        assert not mentions(str(tmp)), "a process still uses the temp dir"
        assert list(tmp.iterdir()) == [], f"left in TMPDIR: {list(tmp.iterdir())}"


GROUPED = """\
Transform: AWS::Serverless-2016-10-31
Metadata:
  lambdabus:
    stack: grouped
Resources:
  Caller:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: caller/
      Handler: app.lambda_handler
      Runtime: python3.11
    Metadata:
      lambdabus:
        group: pair
  Callee:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: callee/
      Handler: app.lambda_handler
    Metadata:
      lambdabus:
        group: pair
"""

CALLER = """\
import json
import boto3


def lambda_handler(event, context):
    # No endpoint_url: botocore reads AWS_ENDPOINT_URL_LAMBDA, which lambdabus sets.
    reply = boto3.client("lambda").invoke(FunctionName="Callee", Payload=json.dumps(event))
    return {"code": "caller", "callee": json.loads(reply["Payload"].read())}
"""

CALLEE = """\
def lambda_handler(event, context):
    return {"code": "callee", "got": event}
"""


def test_grouped_functions_share_a_process_and_reach_each_other_through_the_edge(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    for folder, code in (("caller", CALLER), ("callee", CALLEE)):
        (app / folder).mkdir(parents=True)
        (app / folder / "app.py").write_text(code)
    (app / "template.yaml").write_text(GROUPED)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    dev = Dev(app, tmp)
    try:
        workers = [line for line in dev.lines if line.strip().startswith("worker")]
        resp = dev.client().invoke(FunctionName="Caller", Payload=b'{"n": 7}')  # type: ignore[attr-defined]
        body = json.loads(resp["Payload"].read())
    finally:
        assert dev.stop() == 0
    assert len(workers) == 1 and ("Callee+Caller" in workers[0] or "Caller+Callee" in workers[0])
    assert "FunctionError" not in resp, body
    assert body == {"code": "caller", "callee": {"code": "callee", "got": {"n": 7}}}


def test_edge_requires_sigv4_when_credentials_are_configured(app_dir: Path, tmp_path: Path) -> None:
    import urllib.error
    import urllib.request

    dev = Dev(app_dir, tmp_path, LAMBDABUS_EDGE_CREDENTIALS="AKIDDEV:devsecret")
    try:
        url = f"http://127.0.0.1:{dev.port}/2015-03-31/functions/Alpha/invocations"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"))
        wrong = dev.client("AKIDDEV", "not-the-secret")
        with pytest.raises(wrong.exceptions.ClientError):  # type: ignore[attr-defined]
            wrong.invoke(FunctionName="Alpha", Payload=b"{}")  # type: ignore[attr-defined]
        ok = dev.client("AKIDDEV", "devsecret").invoke(FunctionName="Alpha", Payload=b"{}")  # type: ignore[attr-defined]
    finally:
        assert dev.stop() == 0
    assert refused.value.code == 403
    assert ok["StatusCode"] == 200 and json.loads(ok["Payload"].read())["code"] == "a"


HTTP_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: hello/
      Handler: app.lambda_handler
      Events:
        Get:
          Type: HttpApi
          Properties:
            Path: /hello/{name}
            Method: GET
        Later:
          Type: HttpApi
          Properties:
            Path: /later
            Method: POST
    Metadata:
      lambdabus:
        async_routes: [Later]
"""

HELLO = """\
def lambda_handler(event, context):
    if event["routeKey"] == "POST /later":
        import os
        done = os.path.join(os.environ["TMPDIR"], "..", "later.done")
        with open(done + ".part", "w") as f:  # then renamed: the test never sees it half-written
            f.write(event["body"])
        os.replace(done + ".part", done)
        return None
    return {"hello": event["pathParameters"]["name"], "route": event["routeKey"]}
"""


def _http_dev(tmp_path: Path, *args: str) -> tuple[Dev, int]:
    """``lambdabus dev`` on the HTTP template, and the port its API listens on."""
    app = tmp_path / "app"
    (app / "hello").mkdir(parents=True)
    (app / "hello" / "app.py").write_text(HELLO)
    (app / "template.yaml").write_text(HTTP_TEMPLATE)
    api_port = free_port()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return Dev(app, tmp, "--api-port", str(api_port), *args), api_port


def test_dev_serves_the_templates_http_routes(tmp_path: Path) -> None:
    import urllib.request

    dev, api_port = _http_dev(tmp_path)
    try:
        assert any(line.split()[:1] == ["api"] for line in dev.lines), dev.lines
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/hello/ada") as resp:
            body = json.loads(resp.read())
        later = urllib.request.Request(
            f"http://127.0.0.1:{api_port}/later",
            data=b"queued",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(later) as resp:
            assert resp.status == 202  # answered before the function runs
        done = tmp_path / "later.done"
        deadline = time.monotonic() + 15
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.05)  # bounded poll of a file another process writes
        assert done.read_text() == "queued"
    finally:
        assert dev.stop() == 0
    assert body == {"hello": "ada", "route": "GET /hello/{name}"}


SOURCES_TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  OutDir:
    Type: String
Globals:
  Function:
    Environment:
      Variables:
        OUT_DIR: !Ref OutDir
Resources:
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
  Uploads:
    Type: AWS::S3::Bucket
  Recorder:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: recorder/
      Handler: app.lambda_handler
      Events:
        Queue:
          Type: SQS
          Properties:
            Queue: !GetAtt Jobs.Arn
            BatchSize: 1
        Upload:
          Type: S3
          Properties:
            Bucket: !Ref Uploads
            Events: s3:ObjectCreated:*
"""

RECORDER = """\
import json, os, uuid


def lambda_handler(event, context):
    path = os.path.join(os.environ["OUT_DIR"], uuid.uuid4().hex + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(event, f)
    os.rename(path + ".tmp", path)
"""


def test_dev_runs_sqs_and_s3_sources_end_to_end(tmp_path: Path) -> None:
    from aws_lambda_powertools.utilities.parser.models import S3Model, SqsModel

    app = tmp_path / "app"
    (app / "recorder").mkdir(parents=True)
    (app / "recorder" / "app.py").write_text(RECORDER)
    (app / "template.yaml").write_text(SOURCES_TEMPLATE)
    out = tmp_path / "out"
    out.mkdir()
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    dev = Dev(app, tmp, "--parameter-overrides", f"OutDir={out}")
    try:
        aws = next(line.split()[1] for line in dev.lines if line.split()[:1] == ["aws"])
        kw = {"endpoint_url": aws, "region_name": "us-east-1",
              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # fmt: skip
        sqs = boto3.client("sqs", **kw)
        url = sqs.get_queue_url(QueueName="app-Jobs")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody='{"job": 1}')
        s3 = boto3.client("s3", **kw)
        s3.put_object(Bucket="app-uploads", Key="a b.txt", Body=b"hi")
        s3.put_object(Bucket="app-uploads", Key="a b.txt", Body=b"again")  # same key, same second
        deadline = time.monotonic() + 30
        events: list[dict[str, object]] = []
        while len(events) < 3 and time.monotonic() < deadline:
            events = [json.loads(p.read_text()) for p in out.glob("*.json")]
            time.sleep(0.1)  # bounded poll of files written by another process
    finally:
        assert dev.stop() == 0
    by_source: dict[str, list[dict[str, object]]] = {}
    for e in events:
        by_source.setdefault(e["Records"][0]["eventSource"], []).append(e)  # type: ignore[index]
    assert sorted(by_source) == ["aws:s3", "aws:sqs"], events
    assert len(by_source["aws:s3"]) == 2  # two uploads of one key are two events
    sources = {k: v[0] for k, v in by_source.items()}
    SqsModel.model_validate(sources["aws:sqs"])
    sizes = set()
    for event in by_source["aws:s3"]:
        parsed = S3Model.model_validate(event)
        assert parsed.Records[0].s3.bucket.name == "app-uploads"
        sizes.add(parsed.Records[0].s3.object.size)
    assert sizes == {2, 5}
    assert json.loads(sources["aws:sqs"]["Records"][0]["body"]) == {"job": 1}  # type: ignore[index]


def test_dev_with_two_api_processes_shares_the_port_and_stops_clean(tmp_path: Path) -> None:
    """``--api-processes 2``: a second gateway process (``lambdabus adapter http
    --reuse-port``) serves the same port beside dev's own; both stop with dev."""
    import urllib.request

    dev, api_port = _http_dev(tmp_path, "--api-processes", "2")
    try:
        assert any(line.split()[:2] == ["api", "api2:"] for line in dev.lines), dev.lines
        gateways = [
            pid
            for pid in children_of(dev.proc.pid)
            if b"\0http\0" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(gateways) == 1
        for n in range(40):  # a new connection each: the kernel spreads them over both
            with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/hello/n{n}") as resp:
                assert json.loads(resp.read())["hello"] == f"n{n}"
    finally:
        assert dev.stop() == 0
    assert not Path(f"/proc/{gateways[0]}").exists() or b"zombie" in _state(gateways[0])


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/status").read_bytes().lower()
    except OSError:
        return b"zombie"
