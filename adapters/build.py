"""``lambdabus build``: each function's ``CodeUri/requirements.txt`` into its own
dependency folder, as ``sam build`` does, so two functions can pin different
versions of one package."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from bus.spec import FunctionSpec

STAMP = ".requirements.sha256"


def requirements_of(fn: FunctionSpec) -> Path | None:
    if not fn.code_path:
        return None
    req = Path(fn.code_path) / "requirements.txt"
    return req if req.is_file() else None


def is_built(fn: FunctionSpec) -> bool:
    """True when the dependency folder matches the current requirements.txt."""
    req = requirements_of(fn)
    if req is None or not fn.deps_path:
        return True
    stamp = Path(fn.deps_path) / STAMP
    return stamp.is_file() and stamp.read_text() == _digest(req)


def _digest(req: Path) -> str:
    return hashlib.sha256(req.read_bytes()).hexdigest()


class BuildError(Exception):
    pass


def build_function(fn: FunctionSpec, *, quiet: bool = True) -> bool:
    """Install the function's requirements; returns False when there was nothing to do."""
    req = requirements_of(fn)
    if req is None or not fn.deps_path:
        return False
    target = Path(fn.deps_path)
    target.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--upgrade",
        "--target",
        str(target),
        "-r",
        str(req),
    ]
    if quiet:
        cmd.append("--quiet")
    done = subprocess.run(cmd, cwd=fn.code_path, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["pip failed"]
        raise BuildError(f"{fn.name}: installing {req} failed: {tail[0]}")
    (target / STAMP).write_text(_digest(req))
    return True
