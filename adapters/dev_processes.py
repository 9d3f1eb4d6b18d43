"""The child processes of ``lambdabus dev``: workers and extra API gateways.

Each is ``lambdabus <command>`` on dev's own template, its stderr relayed with
a label; it counts as started once it prints the ready line. Everything dev
starts stops with it: children get SIGTERM, then SIGKILL after the grace
period, and on Linux they die with their parent even if it is killed.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from bus.lifecycle import READY_LINE

_PR_SET_PDEATHSIG = 1
_START_TIMEOUT_S = 60


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class DevChildren:
    """Dev's worker and extra gateway processes, from start to stop.

    Built once dev's services run, so it is given their addresses rather than
    reading them off dev; the children reach Redis, AWS and the edge through them.
    """

    def __init__(
        self,
        template: Path,
        stack_name: str,
        *,
        overrides: Sequence[str],
        redis_url: str,
        aws_endpoint: str,
        edge_url: str,
        credentials: Mapping[str, str] | None,
        embedded_moto: bool,
        api_processes: int,
    ) -> None:
        self.template = template
        self.stack_name = stack_name
        self.overrides = list(overrides)
        self.api_processes = api_processes
        self.workers: list[asyncio.subprocess.Process] = []
        self.gateways: list[asyncio.subprocess.Process] = []
        """Gateway processes beyond the one in dev's own process (``api_processes``)."""
        self.admin_urls: dict[str, str] = {}
        """Each child's admin endpoint, by label, as it printed it."""
        self._relays: list[asyncio.Task[None]] = []
        self._env = self._child_env(redis_url, aws_endpoint, edge_url, credentials, embedded_moto)

    def _child_env(
        self,
        redis_url: str,
        aws_endpoint: str,
        edge_url: str,
        credentials: Mapping[str, str] | None,
        embedded_moto: bool,
    ) -> dict[str, str]:
        """Dev's environment, pointed at dev's services; read once, when dev has set it up."""
        env = dict(os.environ)
        env.update(
            {
                "LAMBDABUS_REDIS_URL": redis_url,
                "LAMBDABUS_TEMPLATE": str(self.template),
                "AWS_ENDPOINT_URL": aws_endpoint,
                "AWS_ENDPOINT_URL_LAMBDA": edge_url,
                "AWS_ENDPOINT_URL_EVENTBRIDGE": edge_url,
                "AWS_ENDPOINT_URL_SFN": edge_url,
                "LAMBDABUS_ADMIN_PORT": "0",
            }
        )
        if credentials:  # functions sign their calls to the edge with the first pair
            key, secret = next(iter(credentials.items()))
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = key, secret
        if embedded_moto:  # moto accepts any credentials; don't reach for real ones
            env.setdefault("AWS_ACCESS_KEY_ID", "testing")
            env.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        env.setdefault("AWS_DEFAULT_REGION", env.get("AWS_REGION", "us-east-1"))
        return env

    async def start_workers(self, groups: Sequence[Sequence[str]]) -> None:
        """One ``lambdabus worker`` per group, side by side: each cold start (imports)
        takes a while. Raises the first failure once all have settled."""
        started = await asyncio.gather(
            *(self._start_worker(group) for group in groups), return_exceptions=True
        )
        for outcome in started:
            if isinstance(outcome, BaseException):
                raise outcome

    async def start_gateways(self, port: int, *, mount_stage: bool) -> None:
        """Gateways ``api2`` … ``api<api_processes>``, sharing ``port`` (SO_REUSEPORT)
        with the one dev runs itself."""
        tail = ["adapter", "http", "--api-port", str(port), "--reuse-port"]
        if mount_stage:
            tail.append("--mount-stage")
        await asyncio.gather(
            *(self._start(tail, label, self.gateways) for label in self._gateway_labels())
        )

    async def stop(self, grace_s: float) -> bool:
        """Gateways, then workers (they drain); True if none had to be killed."""
        clean = await terminate(self.gateways, grace_s)
        clean = await terminate(self.workers, grace_s) and clean
        await asyncio.gather(*self._relays, return_exceptions=True)
        return clean

    def endpoint_lines(self) -> list[str]:
        """The children's admin URLs, for dev's banner."""
        gateways = self._gateway_labels()
        return [
            f"  {'api' if label in gateways else 'worker':<12} {label}: {url}"
            for label, url in sorted(self.admin_urls.items())
        ]

    def _gateway_labels(self) -> list[str]:
        return [f"api{n}" for n in range(2, self.api_processes + 1)]

    async def _start_worker(self, group: Sequence[str]) -> None:
        tail = ["worker"]
        for name in group:
            tail += ["--function", name]
        await self._start(tail, "+".join(group), self.workers)

    async def _start(
        self, tail: list[str], label: str, into: list[asyncio.subprocess.Process]
    ) -> None:
        """Start ``lambdabus <tail>`` on this template; return once it is ready."""
        cmd = [sys.executable, "-m", "adapters.cli", "--template", str(self.template),
               "--stack-name", self.stack_name, *tail]  # fmt: skip
        if self.overrides:  # the child loads the template the same way dev did
            cmd += ["--parameter-overrides", *self.overrides]
        proc = await asyncio.create_subprocess_exec(
            *cmd,
            env=self._env,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        into.append(proc)
        started = asyncio.get_running_loop().create_future()
        self._relays.append(asyncio.create_task(self._relay(proc, label, started)))
        try:
            await asyncio.wait_for(started, _START_TIMEOUT_S)
        except TimeoutError:
            raise RuntimeError(f"{label} did not start within {_START_TIMEOUT_S} s") from None

    async def _relay(
        self, proc: asyncio.subprocess.Process, label: str, started: asyncio.Future[None]
    ) -> None:
        """Prefix the child's log lines with its label, and notice when it is up."""
        assert proc.stderr is not None
        async for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line.startswith("admin: "):
                self.admin_urls[label] = line.removeprefix("admin: ")
            elif line == READY_LINE and not started.done():
                started.set_result(None)
                continue
            print(f"[{label}] {line}", file=sys.stderr, flush=True)
        if not started.done():
            started.set_exception(RuntimeError(f"{label} exited with {await proc.wait()}"))


async def terminate(procs: list[asyncio.subprocess.Process], grace_s: float) -> bool:
    """SIGTERM each, then wait for all (killing what outlives the grace period)."""
    clean = True
    for proc in procs:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), grace_s + 5)
        except TimeoutError:
            clean = False
            proc.kill()
            await proc.wait()
    return clean
