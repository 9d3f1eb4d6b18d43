"""``make demo``: ``lambdabus dev template.yaml``, driven through every event source.

It starts the stack, runs every step of :mod:`functions.demo_steps` side by side
(each drives one source through AWS's own APIs, as any SDK user would, and waits
for what the handlers report), prints a table per step, and stops the stack with
SIGTERM.

    python -m functions.demo
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from bus.embedded import EmbeddedRedis, free_port
from bus.redis_conn import connect
from functions import demo_steps

ROOT = Path(__file__).resolve().parents[1]
Row = tuple[str, str, str, str]


def start_dev(overrides: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start ``lambdabus dev`` on free ports and read the endpoints it prints until ``ready``."""
    cmd = [
        sys.executable,
        "-m",
        "adapters.cli",
        "dev",
        str(ROOT / "template.yaml"),
        "--edge-port",
        str(free_port()),
        "--api-port",
        str(free_port()),
        "--parameter-overrides",
        *(f"{k}={v}" for k, v in overrides.items()),
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
        m = re.match(r"\s+(redis|aws|edge|api)\s+(\S+)", line)
        if m:
            endpoints[m.group(1)] = m.group(2)
        if line.strip() == "ready":
            return proc, endpoints
    raise RuntimeError(f"lambdabus dev exited with {proc.wait()} before it was ready")


async def drive(endpoints: dict[str, str], store_url: str) -> list[tuple[str, list[Row]]]:
    """Run every step side by side; each step's rows stay together in the output."""
    store = connect(store_url)
    try:
        mods = demo_steps.steps()
        ctxs = [demo_steps.DemoContext(endpoints, store) for _ in mods]
        outcomes = await asyncio.gather(
            *(m.run(c) for m, c in zip(mods, ctxs, strict=True)), return_exceptions=True
        )
        sections = []
        for mod, ctx, outcome in zip(mods, ctxs, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                ctx.row(mod.__name__.rsplit(".", 1)[-1], "step failed", repr(outcome))
            sections.append((mod.TITLE, ctx.rows))
        return sections
    finally:
        await store.aclose()


def show(sections: list[tuple[str, list[Row]]]) -> None:
    rows = [r for _, rs in sections for r in rs]
    head = ("function", "event", "outcome", "latency")
    widths = [min(60, max(len(r[i]) for r in [head, *rows])) for i in range(4)]
    for title, rs in sections:
        print(f"\n== {title}")
        for row in [head, *rs]:
            print("  ".join(c[:60].ljust(w) for c, w in zip(row, widths, strict=True)))


def main() -> int:
    with contextlib.ExitStack() as services:
        store = services.enter_context(EmbeddedRedis())  # the handlers' database, not the bus
        overrides = {"StoreUrl": store.url}
        for mod in demo_steps.steps():
            if hasattr(mod, "services"):
                overrides.update(mod.services(services))
        print("starting: lambdabus dev template.yaml")
        proc, endpoints = start_dev(overrides)
        try:
            sections = asyncio.run(drive(endpoints, store.url))
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
    show(sections)
    print("\ndead letters of Orders (lambdabus dlq list Orders):")
    print(dlq.stdout.strip() or dlq.stderr.strip())
    print(f"\nlambdabus dev stopped on SIGTERM with exit code {code}")
    failed = [r for _, rs in sections for r in rs if r[1] == "step failed"]
    return 0 if code == 0 and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
