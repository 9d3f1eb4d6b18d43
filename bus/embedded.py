"""A private ``redis-server`` for ``lambdabus dev``, the demo and the tests.

Nothing here ever touches the shared default port 6379: the server listens on a
free loopback port, keeps its files in a temp dir, persists nothing, and is
stopped when the owning process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

__all__ = ["EmbeddedRedis", "free_port"]

_STOP_GRACE_S = 5.0
_LOG_TAIL_LINES = 20
_MAX_SOCKET_PATH = 100
"""Bytes of a Unix socket path Linux accepts (108, with room to spare)."""


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int, timeout_s: float = 0.5) -> bool:
    """True if a Redis server on ``port`` answers PING (raw RESP, no client needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedRedis:
    """A private redis-server on a free loopback port in a temp dir; stops with the process."""

    def __init__(
        self, *, port: int | None = None, extra_args: Sequence[str] = (), unix_socket: bool = False
    ) -> None:
        """``unix_socket``: also listen on a Unix socket in the temp dir (only this user
        may connect), which :attr:`local_url` names: for clients on this machine it
        costs less CPU per round trip than loopback TCP (``bench/http.py``)."""
        if port == 6379:
            raise ValueError("EmbeddedRedis never uses 6379; pass another port or None")
        self._requested_port = port
        self._port: int | None = port
        self._extra_args = tuple(extra_args)
        self._unix_socket = unix_socket
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None
        self._atexit_registered = False

    @property
    def port(self) -> int:
        """The port the server listens on (known once started or if given)."""
        if self._port is None:
            raise RuntimeError("EmbeddedRedis has no port until start() is called")
        return self._port

    @property
    def url(self) -> str:
        """A ``redis://`` URL for database 0 of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def local_url(self) -> str:
        """The Unix socket's ``unix://`` URL if there is one, else :attr:`url`."""
        if not self._unix_socket:
            return self.url
        if self._dir is None:
            raise RuntimeError("EmbeddedRedis has no socket until start() is called")
        return f"unix://{quote(str(self._dir / 'redis.sock'))}?db=0"

    def start(self, timeout_s: float = 10.0) -> None:
        """Spawn redis-server and wait until it answers PING, so callers can connect at once."""
        if self._proc is not None:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found on PATH; install Redis (>= 7) to use it")
        self._port = self._requested_port if self._requested_port is not None else free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="lambdabus-redis-"))
        log_path = self._dir / "redis.log"
        if self._unix_socket and len(str(self._dir / "redis.sock").encode()) > _MAX_SOCKET_PATH:
            self._unix_socket = False  # a deep TMPDIR: sockets have a path limit; stay on TCP
        argv = [
            binary,
            "--port", str(self._port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--logfile", str(log_path),
            "--daemonize", "no",
            "--protected-mode", "yes",
            *(["--unixsocket", str(self._dir / "redis.sock"), "--unixsocketperm", "700"]
              if self._unix_socket else []),
            *self._extra_args,
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=False,
        )
        if not self._atexit_registered:
            # Tie the server's life to ours even if the caller forgets stop().
            atexit.register(self.stop)
            self._atexit_registered = True
        deadline = time.monotonic() + timeout_s
        while True:
            if _ping(self._port):
                return
            exit_code = self._proc.poll()
            if exit_code is not None or time.monotonic() >= deadline:
                reason = (
                    f"exited with code {exit_code}"
                    if exit_code is not None
                    else f"did not answer PING within {timeout_s:g}s"
                )
                tail = self._log_tail(log_path)
                self.stop()
                raise RuntimeError(f"redis-server on port {self._port} {reason}: {tail}")
            time.sleep(0.02)

    def _log_tail(self, log_path: Path) -> str:
        """The last lines of the server's log (or stderr), flattened for a one-line error."""
        text = ""
        with contextlib.suppress(OSError):
            text = log_path.read_text(errors="replace")
        if not text.strip() and self._proc is not None and self._proc.poll() is not None:
            # Argument errors are printed to stderr before the logfile is opened.
            if self._proc.stderr is not None:
                with contextlib.suppress(OSError, ValueError):
                    text = self._proc.stderr.read().decode(errors="replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return " | ".join(lines[-_LOG_TAIL_LINES:]) or "(no log output)"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; remove the temp dir. Safe to repeat."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=_STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()
        work_dir, self._dir = self._dir, None
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
