"""Lambda's Invoke API (``POST /2015-03-31/functions/{FunctionName}/invocations``).

Served as AWS defines it, so botocore's ``lambda`` client (boto3, aiobotocore,
the AWS CLI) and handlers pointed here by ``AWS_ENDPOINT_URL_LAMBDA`` work
unchanged:

- ``RequestResponse`` (default) runs the function through ``bus.sync.Invoker``
  and returns 200 with the handler's JSON result and ``X-Amz-Executed-Version``;
  a raised error or a Timeout is a *function* error, as in Lambda: still 200,
  ``X-Amz-Function-Error: Unhandled`` and Lambda's error document as the body.
  Only when no worker replies at all within Timeout + a margin is it our error
  (502 ServiceException).
- ``Event`` queues the call (``Invoker.invoke_async``; retried by the bus) and
  returns 202; ``DryRun`` returns 204 once the function is known to exist.
- ``FunctionName`` may be a name, a function ARN or a partial ARN, with an
  optional qualifier; only ``$LATEST`` exists here (no versions or aliases).
- Limits are Lambda's: 6 MB request and response for synchronous calls, 1 MB
  (1,048,576 bytes) for asynchronous ones.

Choices where lambdabus differs from AWS, on purpose:
- Unqualified names resolve in the edge's region and the account
  ``bus.runtime_env.DEFAULT_ACCOUNT``, the one in ``context.invoked_function_arn``;
  ARNs naming any account are accepted, ARNs naming another region are not found.
- ``LogType: Tail`` returns Lambda's START/END/REPORT lines with the duration
  measured here: the function's own output is in its worker's log, not here.
- ``X-Amz-Client-Context`` is accepted and not passed on (the bus has no field).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import time
from typing import Any

from aiohttp import web

from bus.runtime_env import DEFAULT_ACCOUNT
from bus.spec import FunctionSpec, Stack
from bus.sync import Invoker, InvokeResult, InvokeTimeout

from .errors import JSON, ApiError, request_id

log = logging.getLogger(__name__)

INVOKE_PATH = "/2015-03-31/functions/{FunctionName}/invocations"
SYNC_LIMIT = 6 * 1024 * 1024
"""Lambda's synchronous payload limit, for the request and for the response."""
ASYNC_LIMIT = 1024 * 1024
"""Lambda's asynchronous (Event) payload limit."""
RESPONSE_LIMIT_MESSAGE = (
    "Response payload size exceeded maximum allowed payload size (6291556 bytes)."
)
INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")
LOG_TYPES = ("None", "Tail")
LATEST = "$LATEST"

_FUNCTION_REF_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?(?P<region>(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(?P<account>\d{12}:)?(function:)?(?P<name>[a-zA-Z0-9-_\.]+)"
    r"(:(?P<qualifier>\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_]+))?"
)
_FUNCTION_REF = re.compile(_FUNCTION_REF_PATTERN)
"""Lambda's own pattern for ``NamespacedFunctionName``, with named groups."""
_AWS_PATTERN = re.sub(r"\?P<\w+>", "", _FUNCTION_REF_PATTERN)
"""The same pattern as Lambda spells it in its validation errors."""

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
"""What the bus's msgpack envelope can carry."""


def _parse_int(text: str) -> int:
    value = int(text)
    if not _INT_MIN <= value <= _INT_MAX:
        raise ValueError(f"integer {text[:40]} is out of the 64-bit range")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_payload(body: bytes) -> Any:
    """The event, as Lambda reads it: strict JSON in UTF-8; an empty body is ``{}``."""
    if not body:
        return {}
    try:
        return json.loads(
            body.decode("utf-8"), parse_int=_parse_int, parse_constant=_reject_constant
        )
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise ApiError(
            400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
        ) from None


def _error_document(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": []}).encode()


def encode_result(result: InvokeResult) -> tuple[bytes, bool]:
    """The response body and whether it is a function error, as Lambda's runtime makes them.

    A result that JSON can't carry (bytes, say) is Lambda's ``Runtime.MarshalError``;
    one over 6 MB is ``Function.ResponseSizeTooLarge``; both are function errors.
    """
    if result.status != "success":
        return json.dumps(result.payload, ensure_ascii=False).encode(), True
    try:
        body = json.dumps(result.payload, ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        return _error_document("Runtime.MarshalError", f"Unable to marshal response: {exc}"), True
    if len(body) > SYNC_LIMIT:
        return _error_document("Function.ResponseSizeTooLarge", RESPONSE_LIMIT_MESSAGE), True
    return body, False


def tail_log(rid: str, duration_s: float, memory_mb: int) -> str:
    """``X-Amz-Log-Result``: base64 of the last 4 KB of the log, as callers decode it."""
    ms = duration_s * 1000
    text = (
        f"START RequestId: {rid} Version: {LATEST}\n"
        f"END RequestId: {rid}\n"
        f"REPORT RequestId: {rid}\tDuration: {ms:.2f} ms\tBilled Duration: {math.ceil(ms)} ms\t"
        f"Memory Size: {memory_mb} MB\t\n"
    )
    return base64.b64encode(text.encode()[-4096:]).decode()


class LambdaApi:
    """The Invoke operation for the functions of one stack."""

    def __init__(self, stack: Stack, region: str, *, reply_margin_s: float = 30.0) -> None:
        self.stack = stack
        self.region = region
        self.reply_margin_s = reply_margin_s
        """How long past the function's Timeout to wait for any reply before giving up."""
        self.invoker: Invoker | None = None
        """Set by the server while it runs; one per server, shared by all requests."""

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_post(INVOKE_PATH, self.invoke)

    async def invoke(self, request: web.Request) -> web.Response:
        """Validate in Lambda's order (parameters, function, size, JSON), then dispatch."""
        itype = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if itype not in INVOCATION_TYPES:
            raise ApiError(
                400,
                "InvalidParameterValueException",
                f"Unsupported invocation type '{itype[:64]}'; "
                f"expected one of {', '.join(INVOCATION_TYPES)}.",
            )
        log_type = request.headers.get("X-Amz-Log-Type", "None")
        if log_type not in LOG_TYPES:
            raise ApiError(
                400,
                "InvalidParameterValueException",
                f"Unsupported log type '{log_type[:64]}'; expected None or Tail.",
            )
        fn = self.resolve(request.match_info["FunctionName"], request.query.get("Qualifier"))
        if itype == "DryRun":
            return web.Response(status=204)
        payload = await self._read_payload(request, ASYNC_LIMIT if itype == "Event" else SYNC_LIMIT)
        rid = request_id(request)
        invoker = self._invoker()
        if itype == "Event":
            try:
                await invoker.invoke_async(fn.name, payload, request_id=rid)
            except (OverflowError, UnicodeEncodeError) as exc:
                raise _unrepresentable(exc) from None
            return web.Response(status=202)
        return await self._request_response(invoker, fn, payload, rid, tail=log_type == "Tail")

    def resolve(self, ref: str, query_qualifier: str | None) -> FunctionSpec:
        """The function a name, ARN or partial ARN names, or Lambda's 400/404."""
        m = _FUNCTION_REF.fullmatch(ref)
        if m is None or len(ref) > 256:
            raise ApiError(
                400,
                "ValidationException",
                f"1 validation error detected: Value '{ref[:256]}' at 'functionName' "
                f"failed to satisfy constraint: Member must satisfy regular expression "
                f"pattern: {_AWS_PATTERN}",
            )
        region = (m["region"] or "").rstrip(":") or self.region
        account = (m["account"] or "").rstrip(":") or DEFAULT_ACCOUNT
        qualifier = m["qualifier"]
        if query_qualifier is not None:
            if qualifier is not None and qualifier != query_qualifier:
                raise ApiError(
                    400,
                    "InvalidParameterValueException",
                    "The derived qualifier from the function name does not match "
                    "the specified qualifier.",
                )
            qualifier = query_qualifier
        fn = self.stack.functions.get(m["name"])
        if fn is None or region != self.region or qualifier not in (None, LATEST):
            arn = f"arn:aws:lambda:{region}:{account}:function:{m['name']}"
            arn += f":{qualifier}" if qualifier is not None else ""
            raise ApiError(404, "ResourceNotFoundException", f"Function not found: {arn}")
        return fn

    @staticmethod
    async def _read_payload(request: web.Request, limit: int) -> Any:
        """Refuse by Content-Length before reading where possible; the body is read once."""
        size = request.content_length or 0
        if size <= limit:
            body = await request.read()
            size = len(body)
            if size <= limit:
                return parse_payload(body)
        if limit == ASYNC_LIMIT:
            message = (
                f"{size} byte payload is too large for the Event invocation type "
                f"(limit {limit} bytes)"
            )
        else:
            message = f"Request must be smaller than {limit} bytes for the InvokeFunction operation"
        raise ApiError(413, "RequestEntityTooLargeException", message)

    async def _request_response(
        self, invoker: Invoker, fn: FunctionSpec, payload: Any, rid: str, *, tail: bool
    ) -> web.Response:
        wait_s = fn.timeout_s + self.reply_margin_s
        started = time.monotonic()
        try:
            result = await invoker.invoke(fn.name, payload, timeout_s=wait_s, request_id=rid)
        except InvokeTimeout:
            log.warning("invoke %s %s: no worker answered within %.1f s", fn.name, rid, wait_s)
            raise ApiError(
                502,
                "ServiceException",
                f"no worker answered: function {fn.name} gave no reply within "
                f"{wait_s:g} s (request {rid})",
            ) from None
        except (OverflowError, UnicodeEncodeError) as exc:
            raise _unrepresentable(exc) from None
        body, failed = encode_result(result)
        headers = {"X-Amz-Executed-Version": LATEST}
        if failed:
            headers["X-Amz-Function-Error"] = "Unhandled"
        if tail:
            headers["X-Amz-Log-Result"] = tail_log(rid, time.monotonic() - started, fn.memory_mb)
        return web.Response(status=200, body=body, content_type=JSON, headers=headers)

    def _invoker(self) -> Invoker:
        if self.invoker is None:
            raise RuntimeError("the edge server is not running")
        return self.invoker


def _unrepresentable(exc: Exception) -> ApiError:
    """JSON the bus's envelope can't carry (e.g. lone surrogates) is refused like bad JSON."""
    return ApiError(
        400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}"
    )
