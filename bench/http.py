"""``make bench-http``: the API gateway under wrk, against a bare aiohttp hello-world.

On loopback only, with the same wrk settings for both:
  (a) ``lambdabus dev`` on a one-route template: wrk -> gateway -> bus (private
      redis-server) -> worker process -> no-op ``async def`` handler -> back;
  (b) a bare aiohttp ``web.Application`` answering "hello" on the same machine.
Both servers run side by side and are measured in interleaved rounds (a, b, a,
b, ...), so a change in the machine's load hits both; the medians of the rounds
are reported, with requests/s, p50/p99 latency (wrk --latency), the ratio of
the rates, and one JSON line. The issue's target: (a) at least 40% of (b)'s rate.

    python -m bench.http [--rounds 3] [--duration 8] [--connections 32,64,128] [--threads 1]
                         [--api-processes N]

Gateway processes: as many as the machine has CPUs by default (``lambdabus dev
--api-processes``: more gateway processes on the API port with SO_REUSEPORT,
as a deployment runs replicas); the bare server is aiohttp's single-process
hello-world. ``--api-processes 1`` measures one gateway process.

Connections: 32, 64 and 128 by default, the same for both servers, one wrk
thread; the issue fixes no number. Fewer connections mean smaller batches on
the bus (fewer requests share each Redis round trip and each wake-up), so the
gateway's ratio drops; bare aiohttp's rate barely moves with them. The ratio is
printed per connection count, and once more as the ratio of the two servers'
best rates over the sweep (each at its own saturation, as capacities compare).

Needs ``wrk`` on PATH (``make bench-http`` installs Debian's). Invocation and
access logs are off (LAMBDABUS_INVOCATION_LOGS=0, LAMBDABUS_HTTP_ACCESS_LOG=0;
``--access-log`` keeps the latter): this measures the request path, not the
terminal.

Requests/s depend on what else the machine runs; the CPU time each side's
processes spend per request is printed too, as the steadier measure on a shared
machine: for (a) split into the gateway process (``lambdabus dev``), the worker
process and redis-server.

Measured numbers and their history: README.md, "Performance".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

TEMPLATE = f"""\
Transform: AWS::Serverless-2016-10-31
Metadata:
  lambdabus:
    stack: benchhttp
Resources:
  Noop:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: {ROOT}
      Handler: bench.http.noop
      Events:
        Get: {{Type: HttpApi, Properties: {{Path: /noop, Method: get}}}}
"""


async def noop(event: Any, context: Any) -> dict[str, Any]:
    """The function behind the route: API Gateway's smallest proxy answer."""
    return {"statusCode": 200, "headers": {"Content-Type": "text/plain"}, "body": "hello"}


def bare_server(port: int) -> None:
    """aiohttp's hello-world, as its docs write it, on the same loop lambdabus uses."""
    from aiohttp import web

    from bus.lifecycle import install_uvloop

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    install_uvloop()
    app = web.Application()
    app.add_routes([web.get("/", hello)])
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def free_port() -> int:
    from bus.embedded import free_port as pick

    return pick()


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(text: str) -> dict[str, float]:
    """Requests/s and the p50/p99 latencies (ms) from wrk --latency's report."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if rate is None:
        raise RuntimeError(f"wrk printed no rate:\n{text}")
    count = re.search(r"(\d+) requests in", text)
    out = {"rps": float(rate.group(1)), "requests": float(count.group(1)) if count else 0.0}
    for pct in ("50", "99"):
        found = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if found is None:
            raise RuntimeError(f"wrk printed no p{pct}:\n{text}")
        out[f"p{pct}_ms"] = float(found.group(1)) * _UNITS[found.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    out["non_2xx"] = float(errors.group(1)) if errors else 0.0
    socket_errors = re.search(r"Socket errors: (.*)", text)
    out["socket_errors"] = (
        float(sum(map(int, re.findall(r"\d+", socket_errors.group(1))))) if socket_errors else 0.0
    )
    return out


def wrk(url: str, seconds: int, connections: int, threads: int) -> dict[str, float]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse_wrk(done.stdout)


def start_dev(
    folder: Path, access_log: bool = False, api_processes: int = 1
) -> tuple[subprocess.Popen[str], str]:
    """``lambdabus dev`` on the one-route template; returns it and its API URL."""
    (folder / "template.yaml").write_text(TEMPLATE)
    env = dict(os.environ, PYTHONPATH=str(ROOT), LAMBDABUS_INVOCATION_LOGS="0")
    env["LAMBDABUS_HTTP_ACCESS_LOG"] = "1" if access_log else "0"
    for var in ("LAMBDABUS_REDIS_URL", "AWS_ENDPOINT_URL"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "adapters.cli", "dev", str(folder / "template.yaml"),
           "--edge-port", str(free_port()), "--api-port", str(free_port()),
           "--api-processes", str(api_processes)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    api = None
    for line in proc.stdout:
        found = re.match(r"\s+api\s+(http\S+)", line)
        if found:
            api = found.group(1)
        if line.strip() == "ready" and api:
            return proc, api
    raise RuntimeError(f"lambdabus dev exited with {proc.wait()} before it was ready")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (the dev process's workers and redis-server)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def _role(pid: int, root: int) -> str:
    """Which part of the stack a process is, for the CPU split."""
    if pid == root:
        return "gateway"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "other"
    if b"redis-server" in cmd[0]:  # its title is "redis-server 127.0.0.1:PORT"
        return "redis"
    if b"worker" in cmd:
        return "worker"
    return "gateway" if b"http" in cmd else "other"  # more gateway processes (--api-processes)


def measure(url: str, pid: int, connections: int, args: argparse.Namespace) -> dict[str, float]:
    """wrk's numbers plus the CPU the server side (``pid`` and its descendants) spent per
    request, in total and per role (gateway / worker / redis)."""
    pids = _descendants(pid)
    before = {p: _cpu_s([p]) for p in pids}
    result = wrk(url, args.duration, connections, args.threads)
    spent = {p: _cpu_s([p]) - before[p] for p in pids}
    per_request = 1e6 / result["requests"]
    result["cpu_us_per_request"] = sum(spent.values()) * per_request
    for p, cpu in spent.items():
        key = f"cpu_us_{_role(p, pid)}"
        result[key] = result.get(key, 0.0) + cpu * per_request
    return result


def _median(rounds: list[dict[str, float]], key: str) -> float:
    return float(statistics.median(r.get(key, 0.0) for r in rounds))


def _line(name: str, r: dict[str, float]) -> str:
    split = " ".join(
        f"{role} {r[f'cpu_us_{role}']:.0f}"
        for role in ("gateway", "worker", "redis")
        if f"cpu_us_{role}" in r and name.startswith("gateway")
    )
    return (
        f"{name:<24} {r['rps']:>9,.0f} req/s  p50 {r['p50_ms']:6.2f} ms  "
        f"p99 {r['p99_ms']:6.2f} ms  CPU {r['cpu_us_per_request']:5.0f} us/request"
        + (f" ({split})" if split else "")
        + f"  errors {r['non_2xx'] + r['socket_errors']:.0f}"
    )


def main(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH: `make bench-http` installs it (apt-get install wrk)")
    counts = [int(c) for c in str(args.connections).split(",")]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, api = start_dev(Path(tmp), args.access_log, args.api_processes)
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        bare_cmd = [sys.executable, "-c", f"import bench.http as b; b.bare_server({port})"]
        bare_proc = subprocess.Popen(bare_cmd, cwd=ROOT, env=env, text=True)
        try:
            _wait_listening(port)
            urls = (f"{api}/noop", f"http://127.0.0.1:{port}/")
            for connections in counts:
                results.append(_compare(urls, (proc.pid, bare_proc.pid), connections, args))
        finally:
            stop(bare_proc)
            stop(proc)
    peaks = _peaks(results)
    if len(results) > 1:
        each = ", ".join(f"-c{r['connections']} {r['ratio']:.0%}" for r in results)
        print(f"best rates over the sweep: gateway {peaks['gateway_rps']:,} /s at "
              f"-c{peaks['gateway_connections']}, bare {peaks['bare_rps']:,} /s at "
              f"-c{peaks['bare_connections']}: ratio {peaks['ratio']:.0%} "
              f"(per connection count: {each})")  # fmt: skip
    print(f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"{args.api_processes} gateway process(es)", flush=True)  # fmt: skip
    return {
        "api_processes": args.api_processes,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "threads": args.threads,
        "access_log": args.access_log,
        "runs": results,
        "peaks": peaks,
    }


def _peaks(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Each server's best median rate over the connection counts, and their ratio."""
    gw = max(results, key=lambda r: r["gateway_rps"])
    bare = max(results, key=lambda r: r["bare_rps"])
    return {
        "gateway_rps": gw["gateway_rps"],
        "gateway_connections": gw["connections"],
        "bare_rps": bare["bare_rps"],
        "bare_connections": bare["connections"],
        "ratio": round(gw["gateway_rps"] / bare["bare_rps"], 3),
    }


def _compare(
    urls: tuple[str, str], pids: tuple[int, int], connections: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Interleaved rounds of the gateway and the bare server at one connection count."""
    gws: list[dict[str, float]] = []
    bares: list[dict[str, float]] = []
    for url in urls:  # warm-up: connections, imports, caches
        wrk(url, 2, connections, args.threads)
    for n in range(1, args.rounds + 1):
        gws.append(measure(urls[0], pids[0], connections, args))
        bares.append(measure(urls[1], pids[1], connections, args))
        print(f"-c{connections} round {n}: ratio {gws[-1]['rps'] / bares[-1]['rps']:.0%}")
        print("  " + _line("gateway + bus + worker", gws[-1]))
        print("  " + _line("bare aiohttp hello", bares[-1]), flush=True)
    gw = {k: _median(gws, k) for k in gws[0]}
    bare = {k: _median(bares, k) for k in bares[0]}
    ratio = gw["rps"] / bare["rps"]
    print(f"medians of {args.rounds} interleaved rounds, {args.duration} s each, "
          f"wrk -t{args.threads} -c{connections}:")  # fmt: skip
    print(_line("gateway + bus + worker", gw))
    print(_line("bare aiohttp hello", bare))
    print(f"ratio {ratio:.0%} of bare aiohttp's rate (target >= 40%)", flush=True)
    return {
        "connections": connections,
        "gateway_rps": round(gw["rps"]),
        "gateway_p50_ms": round(gw["p50_ms"], 2),
        "gateway_p99_ms": round(gw["p99_ms"], 2),
        "gateway_errors": int(sum(r["non_2xx"] + r["socket_errors"] for r in gws)),
        "gateway_cpu_us_per_request": round(gw["cpu_us_per_request"]),
        "gateway_cpu_split_us": {
            role: round(gw.get(f"cpu_us_{role}", 0.0)) for role in ("gateway", "worker", "redis")
        },
        "bare_cpu_us_per_request": round(bare["cpu_us_per_request"]),
        "bare_rps": round(bare["rps"]),
        "bare_p50_ms": round(bare["p50_ms"], 2),
        "bare_p99_ms": round(bare["p99_ms"], 2),
        "ratio": round(ratio, 3),
        "round_ratios": [round(g["rps"] / b["rps"], 3) for g, b in zip(gws, bares, strict=True)],
    }


def _wait_listening(port: int, timeout_s: float = 30.0) -> None:
    """Bounded poll until the bare server accepts connections."""
    import socket
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    ap.add_argument("--duration", type=int, default=8, help="seconds of each wrk run")
    ap.add_argument(
        "--connections", default="32,64,128", help="wrk connections: a list compares at each"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--access-log", action="store_true", help="keep the gateway's access log")
    ap.add_argument(
        "--api-processes",
        type=int,
        default=os.cpu_count() or 1,
        help="gateway processes sharing the port (dev's --api-processes; default: CPUs)",
    )
    print(json.dumps(main(ap.parse_args())))
