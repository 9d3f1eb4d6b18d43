"""Logging: Lambda's START / END / REPORT lines, and an optional JSON format."""

from __future__ import annotations

import json
import logging
import os
import resource
import sys
import time
from typing import Any

INVOCATION_LOG = logging.getLogger("lambdabus.invocation")
log = logging.getLogger("lambdabus")


def max_memory_mb() -> int:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def log_start(request_id: str) -> None:
    INVOCATION_LOG.info("START RequestId: %s Version: $LATEST", request_id)


def log_end(request_id: str, duration_s: float, memory_mb: int) -> None:
    ms = duration_s * 1000.0
    INVOCATION_LOG.info("END RequestId: %s", request_id)
    INVOCATION_LOG.info(
        "REPORT RequestId: %s\tDuration: %.2f ms\tBilled Duration: %d ms\t"
        "Memory Size: %d MB\tMax Memory Used: %d MB",
        request_id, ms, int(ms) + 1, memory_mb, max_memory_mb(),
    )  # fmt: skip


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class CurrentStderr(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes, as logging's last-resort
    handler does: code that runs a CLI in-process (tests capturing its output, embedders)
    may swap stderr and close the one it had, and records logged later by the process's
    threads must not go to the closed one ("I/O operation on closed file")."""

    def __init__(self) -> None:
        super().__init__()  # its stream is the property below, whatever is given here

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def configure(level: str | None = None, fmt: str | None = None) -> None:
    """Log to stderr; ``LAMBDABUS_LOG_FORMAT=json`` for one JSON object a line.

    ``LAMBDABUS_INVOCATION_LOGS=0`` silences START/END/REPORT (the benchmark does,
    to measure the bus rather than the terminal).
    """
    level = level or os.environ.get("LAMBDABUS_LOG_LEVEL", "INFO")
    fmt = fmt or os.environ.get("LAMBDABUS_LOG_FORMAT", "text")
    handler = CurrentStderr()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if os.environ.get("LAMBDABUS_INVOCATION_LOGS", "1") == "0":
        INVOCATION_LOG.setLevel(logging.WARNING)
