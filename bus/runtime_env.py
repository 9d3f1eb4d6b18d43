"""The environment Lambda's runtime sets, which Powertools and handlers read at import."""

from __future__ import annotations

import os
from collections.abc import Mapping

from .spec import FunctionSpec

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
"""moto's and SAM local's account id, so ARNs agree with the embedded AWS."""


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


def function_arn(name: str, account: str = DEFAULT_ACCOUNT) -> str:
    return f"arn:aws:lambda:{region()}:{account}:function:{name}"


def log_group(name: str) -> str:
    return f"/aws/lambda/{name}"


def lambda_environment(fn: FunctionSpec, log_stream: str, task_root: str) -> dict[str, str]:
    """Variables a Lambda sandbox has, then the function's own ``Environment`` on top."""
    env = {
        "AWS_LAMBDA_FUNCTION_NAME": fn.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(fn.timeout_s)),
        "AWS_LAMBDA_LOG_GROUP_NAME": log_group(fn.name),
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        "AWS_LAMBDA_RUNTIME_API": "lambdabus",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_REGION": region(),
        "AWS_DEFAULT_REGION": region(),
        "LAMBDA_TASK_ROOT": task_root,
        "LAMBDA_RUNTIME_DIR": task_root,
        "_HANDLER": fn.handler,
        "TZ": ":UTC",
    }
    env.update(fn.environment)
    return env


def group_environment(fns: list[FunctionSpec], log_stream: str) -> dict[str, str]:
    """The environment of a process running ``fns``: with one function, all of it;
    with several, only the variables they agree on (the others stay unset)."""
    envs = [lambda_environment(fn, log_stream, fn.code_path or os.getcwd()) for fn in fns]
    if not envs:
        return {}
    first = envs[0]
    return {k: v for k, v in first.items() if all(e.get(k) == v for e in envs[1:])}


def apply(env: Mapping[str, str]) -> None:
    os.environ.update(env)
