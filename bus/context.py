"""The Lambda ``context`` object handlers receive."""

from __future__ import annotations

import time
from typing import Any


class LambdaContext:
    """The attributes of AWS's Python runtime context that handlers and Powertools read."""

    __slots__ = (
        "_deadline_mono",
        "aws_request_id",
        "client_context",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
    )

    def __init__(
        self,
        *,
        aws_request_id: str,
        function_name: str,
        invoked_function_arn: str,
        memory_limit_in_mb: int,
        log_group_name: str,
        log_stream_name: str,
        deadline_mono: float,
        function_version: str = "$LATEST",
    ) -> None:
        self.aws_request_id = aws_request_id
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = memory_limit_in_mb
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline_mono = deadline_mono

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline_mono - time.monotonic()) * 1000))

    def as_dict(self) -> dict[str, Any]:
        """For handing the context to an isolated subprocess."""
        return {
            "aws_request_id": self.aws_request_id,
            "function_name": self.function_name,
            "function_version": self.function_version,
            "invoked_function_arn": self.invoked_function_arn,
            "memory_limit_in_mb": self.memory_limit_in_mb,
            "log_group_name": self.log_group_name,
            "log_stream_name": self.log_stream_name,
            "remaining_ms": self.get_remaining_time_in_millis(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LambdaContext:
        return cls(
            aws_request_id=d["aws_request_id"],
            function_name=d["function_name"],
            function_version=d["function_version"],
            invoked_function_arn=d["invoked_function_arn"],
            memory_limit_in_mb=d["memory_limit_in_mb"],
            log_group_name=d["log_group_name"],
            log_stream_name=d["log_stream_name"],
            deadline_mono=time.monotonic() + d["remaining_ms"] / 1000.0,
        )
