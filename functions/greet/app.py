"""An ``async def`` handler answering synchronous invocations."""

import os
from typing import Any

GREETING = os.environ.get("GREETING", "hello")  # read at import time, as handlers do


async def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "message": f"{GREETING}, {event.get('name', 'world')}",
        "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        "memory_mb": context.memory_limit_in_mb,
        "requestId": context.aws_request_id,
    }
