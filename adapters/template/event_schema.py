"""The event sources a function (or state machine) may declare under ``Events``.

Same three tiers as :mod:`adapters.template.schema`: per SAM event type, the
supported ``Properties``, the ones accepted with a warning, and errors for
everything else (including event types lambdabus does not run).
"""

from __future__ import annotations

from .schema import S3_FILTER
from .shapes import Bool, Int, List, Map, OneOf, Shape, Str, words

ENABLED_STATE = Str("ENABLED", "DISABLED")
FILTER_CRITERIA = Map({"Filters": List(Map({"Pattern": OneOf(Str(), Map())}))})
BATCH_RESPONSE = List(Str("ReportBatchItemFailures"))
TARGET_RETRY = Map(
    {"MaximumEventAgeInSeconds": Int(60, 86400), "MaximumRetryAttempts": Int(0, 185)}
)
TARGET_DLQ = Map({"Arn": Str(), "QueueLogicalId": Str(), "Type": Str("SQS")})

EVENT_SCHEMAS: dict[str, Shape] = {
    "S3": Map(
        {
            "Bucket": Str(required=True),
            "Events": OneOf(List(Str()), Str(), required=True),
            "Filter": S3_FILTER,
        }
    ),
    "SQS": Map(
        {
            "Queue": Str(required=True),
            "BatchSize": Int(1, 10000),
            "Enabled": Bool(),
            "FilterCriteria": FILTER_CRITERIA,
            "FunctionResponseTypes": BATCH_RESPONSE,
            "MaximumBatchingWindowInSeconds": Int(0, 300),
            "ScalingConfig": Map({"MaximumConcurrency": Int(2, 1000)}),
        },
        ignored=("KmsKeyArn", "MetricsConfig"),
    ),
    "SNS": Map(
        {
            "Topic": Str(required=True),
            "FilterPolicy": Map(),
            "FilterPolicyScope": Str("MessageAttributes", "MessageBody"),
            "SqsSubscription": OneOf(
                Bool(),
                Map(
                    {
                        "BatchSize": Int(1, 10),
                        "Enabled": Bool(),
                        "QueueArn": Str(),
                        "QueuePolicyLogicalId": Str(),
                        "QueueUrl": Str(),
                    }
                ),
            ),
            "RedrivePolicy": Map(),
        },
        ignored=("Region",),
    ),
    "DynamoDB": Map(
        {
            "Stream": Str(required=True),
            "StartingPosition": Str("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", required=True),
            "StartingPositionTimestamp": Int(0),
            "BatchSize": Int(1, 10000),
            "BisectBatchOnFunctionError": Bool(),
            "DestinationConfig": Map(
                {"OnFailure": Map({"Destination": Str(required=True), "Type": Str("SQS", "SNS")})}
            ),
            "Enabled": Bool(),
            "FilterCriteria": FILTER_CRITERIA,
            "FunctionResponseTypes": BATCH_RESPONSE,
            "MaximumBatchingWindowInSeconds": Int(0, 300),
            "MaximumRecordAgeInSeconds": Int(-1, 604800),
            "MaximumRetryAttempts": Int(-1, 10000),
            "ParallelizationFactor": Int(1, 10),
        },
        ignored=("KmsKeyArn", "MetricsConfig"),
        refused={"TumblingWindowInSeconds": "not supported: tumbling windows"},
    ),
    "Api": Map(
        {
            "Path": Str(required=True),
            "Method": Str(required=True),
            "RestApiId": Str(),
            "Auth": Map(),
            "TimeoutInMillis": Int(50, 29000),
        },
        ignored=("RequestModel", "RequestParameters", "UnescapeMappingTemplate"),
    ),
    "HttpApi": Map(
        {
            "ApiId": Str(),
            "Path": Str(),
            "Method": Str(),
            "Auth": Map(),
            "PayloadFormatVersion": Str("1.0", "2.0"),
            "TimeoutInMillis": Int(50, 30000),
        },
        ignored=("RouteSettings",),
    ),
    "Schedule": Map(
        {
            "Schedule": Str(required=True),
            "Name": Str(),
            "Enabled": Bool(),
            "State": ENABLED_STATE,
            "Input": Str(),
            "RetryPolicy": TARGET_RETRY,
            "DeadLetterConfig": TARGET_DLQ,
        },
        ignored=("Description",),
    ),
    "ScheduleV2": Map(
        {
            "ScheduleExpression": Str(required=True),
            "ScheduleExpressionTimezone": Str(),
            "Name": Str(),
            "GroupName": Str(),
            "State": ENABLED_STATE,
            "Input": Str(),
            "StartDate": Str(),
            "EndDate": Str(),
            "FlexibleTimeWindow": Map(
                {
                    "Mode": Str("OFF", "FLEXIBLE", required=True),
                    "MaximumWindowInMinutes": Int(1, 1440),
                }
            ),
            "OmitName": Bool(),
            "RetryPolicy": TARGET_RETRY,
            "DeadLetterConfig": TARGET_DLQ,
        },
        ignored=("Description", "KmsKeyArn", "PermissionsBoundary", "RoleArn"),
    ),
    "EventBridgeRule": Map(
        {
            "Pattern": Map(required=True),
            "EventBusName": Str(),
            "Input": Str(),
            "InputPath": Str(),
            "InputTransformer": Map(
                {"InputPathsMap": Map(values=Str()), "InputTemplate": Str(required=True)}
            ),
            "RuleName": Str(),
            "State": ENABLED_STATE,
            "Target": Map({"Id": Str(required=True)}),
            "RetryPolicy": TARGET_RETRY,
            "DeadLetterConfig": TARGET_DLQ,
        }
    ),
    "CloudWatchEvent": Map(
        {
            "Pattern": Map(required=True),
            "EventBusName": Str(),
            "Input": Str(),
            "InputPath": Str(),
            "Enabled": Bool(),
            "State": ENABLED_STATE,
        }
    ),
}

STATE_MACHINE_EVENT_TYPES = frozenset(
    {"Api", "Schedule", "ScheduleV2", "EventBridgeRule", "CloudWatchEvent"}
)
UNSUPPORTED_EVENT_TYPES = frozenset(
    words("Kinesis MSK MQ SelfManagedKafka DocumentDB CloudWatchLogs IoTRule AlexaSkill Cognito")
)
