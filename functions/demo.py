"""``make demo``: ``lambdabus dev template.yaml``, driven through the Lambda API.

It starts the stack, invokes functions synchronously and asynchronously through
the edge endpoint with aiobotocore (as any AWS SDK would), waits for what the
handlers report, prints a table, and stops the stack with SIGTERM.

    python -m functions.demo
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aiobotocore.session import get_session

from bus.embedded import EmbeddedRedis, free_port
from bus.redis_conn import connect

ROOT = Path(__file__).resolve().parents[1]
Row = tuple[str, str, str, str]


def start_dev(store_url: str, edge_port: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start ``lambdabus dev`` and read the endpoints it prints until ``ready``."""
    cmd = [
        sys.executable,
        "-m",
        "adapters.cli",
        "dev",
        str(ROOT / "template.yaml"),
        "--edge-port",
        str(edge_port),
        "--parameter-overrides",
        f"StoreUrl={store_url}",
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.setdefault("LAMBDABUS_INVOCATION_LOGS", "0")
    env.pop("LAMBDABUS_REDIS_URL", None)
    env.pop("AWS_ENDPOINT_URL", None)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    endpoints: dict[str, str] = {}
    for line in proc.stdout:
        print(f"  | {line.rstrip()}")
        m = re.match(r"\s+(redis|aws|edge)\s+(\S+)", line)
        if m:
            endpoints[m.group(1)] = m.group(2)
        if line.strip() == "ready":
            return proc, endpoints
    raise RuntimeError(f"lambdabus dev exited with {proc.wait()} before it was ready")


async def wait_results(store: Any, expected: int, timeout_s: float) -> list[dict[str, str]]:
    """Read the handlers' reports until ``expected`` arrived (XREAD BLOCK, no polling)."""
    rows: list[dict[str, str]] = []
    last = "0-0"
    deadline = time.monotonic() + timeout_s
    while len(rows) < expected and time.monotonic() < deadline:
        reply = await store.xread({"demo:results": last}, block=500)
        for _, entries in reply.items() if isinstance(reply, dict) else reply or []:
            for entry_id, fields in entries:
                last = entry_id
                rows.append({k.decode(): v.decode() for k, v in fields.items()})
    return rows


async def drive(edge: str, aws: str, store_url: str) -> list[Row]:
    rows: list[Row] = []
    session = get_session()
    async with session.create_client(
        "lambda",
        endpoint_url=edge,
        region_name="us-east-1",
        aws_access_key_id="demo",
        aws_secret_access_key="demo",
    ) as client:

        async def invoke(name: str, payload: Any, kind: str = "RequestResponse") -> Any:
            t = time.perf_counter()
            resp = await client.invoke(
                FunctionName=name, InvocationType=kind, Payload=json.dumps(payload).encode()
            )
            body = await resp["Payload"].read()
            ms = f"{(time.perf_counter() - t) * 1000:.1f} ms"
            error = resp.get("FunctionError")
            shown: Any = json.loads(body) if body else None
            if error and isinstance(shown, dict):
                shown = f"FunctionError {error}: {shown['errorType']}: {shown['errorMessage']}"
            rows.append(
                (
                    name,
                    f"{kind} {json.dumps(payload)}",
                    f"{resp['StatusCode']} {shown if shown is not None else ''}",
                    ms,
                )
            )
            return shown

        published = time.time()
        await invoke("Greet", {"name": "Ada"})
        await invoke("Greet", {"name": "Grace"})
        await invoke("Orders", {"id": 1, "quantity": 3})
        await invoke("Orders", {"id": 2, "quantity": 0})  # raises: a synchronous error
        await invoke("Flaky", {"job": "nightly-report"}, "Event")  # fails twice, then succeeds
        await invoke("Orders", {"id": 3, "quantity": 0}, "Event")  # retried, then dead-lettered
    async with session.create_client(
        "sqs", endpoint_url=aws, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    ) as sqs:  # fmt: skip
        url = (await sqs.get_queue_url(QueueName="demo-Jobs"))["QueueUrl"]
        entries = [{"Id": str(i), "MessageBody": json.dumps({"id": i})} for i in range(1, 4)]
        await sqs.send_message_batch(QueueUrl=url, Entries=entries)
        rows.append(("JobWorker", "SQS send_message_batch x3 to demo-Jobs", "sent", ""))
    store = connect(store_url)
    try:
        for rep in await wait_results(store, expected=5, timeout_s=60):
            ms = f"{(float(rep['at']) - published) * 1000:.0f} ms after publish"
            rows.append((rep["function"], rep["key"], rep["outcome"], ms))
    finally:
        await store.aclose()
    return rows


def show(rows: list[Row]) -> None:
    head = ("function", "event", "outcome", "latency")
    widths = [min(60, max(len(r[i]) for r in [head, *rows])) for i in range(4)]
    for row in [head, *rows]:
        print("  ".join(c[:60].ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> int:
    with EmbeddedRedis() as store:  # the handlers' own database, not the bus
        print("starting: lambdabus dev template.yaml")
        proc, endpoints = start_dev(store.url, free_port())
        try:
            rows = asyncio.run(drive(endpoints["edge"], endpoints["aws"], store.url))
            dlq = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "adapters.cli",
                    "--redis-url",
                    endpoints["redis"],
                    "--template",
                    str(ROOT / "template.yaml"),
                    "dlq",
                    "list",
                    "Orders",
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
    print()
    show(rows)
    print("\ndead letters of Orders (lambdabus dlq list Orders):")
    print(dlq.stdout.strip() or dlq.stderr.strip())
    print(f"\nlambdabus dev stopped on SIGTERM with exit code {code}")
    return 0 if code == 0 and len(rows) >= 12 else 1


if __name__ == "__main__":
    sys.exit(main())
