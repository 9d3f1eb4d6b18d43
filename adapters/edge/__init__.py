"""The edge endpoint: lambdabus's AWS-compatible APIs on one port (default 4566).

Handlers reach it through ``AWS_ENDPOINT_URL_LAMBDA`` & co., so an unmodified
``boto3.client("lambda").invoke(...)`` lands on the bus instead of in AWS. This
package serves the Lambda Invoke API and verifies SigV4 when credentials are
configured; JSON-protocol services (EventBridge, Step Functions) add their
operations to ``EdgeServer.json_api``, others add routes to ``EdgeServer.app``.
"""

from .json_api import JsonApiError, JsonTargets, Operation
from .server import EdgeServer

__all__ = ["EdgeServer", "JsonApiError", "JsonTargets", "Operation"]
