"""The function that starts a state machine for its ``Events`` (Schedule,
EventBridgeRule, Api): the template loader gives each such state machine one of
these, with the machine's events as its triggers, so every event source that
can run a function can start an execution. The event becomes the execution's
input, and the start goes through the Step Functions API on the edge
(``AWS_ENDPOINT_URL_SFN``), as EventBridge's and API Gateway's integrations do.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aiobotocore.session import get_session

MACHINES_VARIABLE = "LAMBDABUS_SFN_STARTERS"
"""JSON ``{function name: state machine ARN}``, the same for every starter (starters.py)."""


async def handler(event: Any, context: Any) -> dict[str, Any]:
    arn = json.loads(os.environ[MACHINES_VARIABLE])[context.function_name]
    async with get_session().create_client(
        "stepfunctions",
        endpoint_url=os.environ.get("AWS_ENDPOINT_URL_SFN"),
        region_name=arn.split(":")[3],
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "lambdabus"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "lambdabus"),
    ) as sfn:
        started = await sfn.start_execution(stateMachineArn=arn, input=json.dumps(event))
    body = {"executionArn": started["executionArn"],
            "startDate": started["startDate"].timestamp()}  # fmt: skip
    if isinstance(event, dict) and "requestContext" in event:  # an Api / HttpApi route
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
                "body": json.dumps(body)}  # fmt: skip
    return body
