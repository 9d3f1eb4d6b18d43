"""AWS-shaped error responses, as the REST-JSON protocol returns them.

botocore takes the error code from the ``x-amzn-ErrorType`` header and the
message from the body's ``message``, so both must be exact for
``client.exceptions.ResourceNotFoundException`` & co. to be raised on the
caller's side.
"""

from __future__ import annotations

import json
import uuid

from aiohttp import web

JSON = "application/json"

REQUEST_ID = web.RequestKey("lambdabus_request_id", str)


class ApiError(Exception):
    """A request refused the way AWS refuses it: HTTP status, error code, message.

    Raised anywhere below the server's error middleware, which renders it.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def aws_error(status: int, code: str, message: str) -> web.Response:
    """``{"Type": ..., "message": ...}`` plus the code header, as Lambda sends errors.

    ``Type`` is ``User`` for the caller's mistakes (4xx) and ``Service`` for ours (5xx).
    """
    kind = "Service" if status >= 500 else "User"
    # ``__type`` too: JSON-protocol clients (events, stepfunctions) read the code only there.
    body = json.dumps({"Type": kind, "message": message, "__type": code})
    return web.Response(
        status=status, text=body, content_type=JSON, headers={"x-amzn-ErrorType": code}
    )


def request_id(request: web.Request) -> str:
    """The id AWS returns as ``x-amzn-RequestId``; for invocations, also the handler's
    ``context.aws_request_id``, so a caller can find the run in the worker's logs."""
    rid = request.get(REQUEST_ID)
    if rid is None:
        rid = request[REQUEST_ID] = str(uuid.uuid4())
    return rid
