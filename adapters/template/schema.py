"""The three tiers of the template, as data (DESIGN.md, "The template (SAM)").

- **Supported**: the resource types in :data:`RESOURCE_SCHEMAS` and, per type,
  the properties in its ``fields``. lambdabus runs or provisions these.
- **Accepted and ignored** (one warning line each): the ``ignored`` properties
  of each type, the resource types in :data:`IGNORED_TYPES` (or starting with
  one of :data:`IGNORED_TYPE_PREFIXES`), the attributes in
  :data:`IGNORED_ATTRIBUTES`, and the template's ``Outputs`` and ``Rules``.
  What only matters on AWS: permissions, tracing, tags, deployment, networking.
- **Errors**: everything else, including the ``refused`` properties, whose
  reason the error line gives.

Event sources of functions are in :mod:`adapters.template.event_schema`.
"""

from __future__ import annotations

from .shapes import ANY, Bool, Int, List, Map, Num, OneOf, Shape, Str, words

FUNCTION = "AWS::Serverless::Function"
API = "AWS::Serverless::Api"
HTTP_API = "AWS::Serverless::HttpApi"
SAM_STATE_MACHINE = "AWS::Serverless::StateMachine"
SFN_STATE_MACHINE = "AWS::StepFunctions::StateMachine"
QUEUE = "AWS::SQS::Queue"
TOPIC = "AWS::SNS::Topic"
SUBSCRIPTION = "AWS::SNS::Subscription"
BUCKET = "AWS::S3::Bucket"
TABLE = "AWS::DynamoDB::Table"
SIMPLE_TABLE = "AWS::Serverless::SimpleTable"

RESOURCE_ATTRIBUTES = frozenset({"Type", "Properties", "Condition", "DependsOn", "Metadata"})
IGNORED_ATTRIBUTES = frozenset(
    {"DeletionPolicy", "UpdateReplacePolicy", "CreationPolicy", "UpdatePolicy"}
)
SAM_ATTRIBUTES = frozenset({"IgnoreGlobals"})
"""Only on ``AWS::Serverless::*`` resources, as SAM defines them."""

IGNORED_TYPES = frozenset(
    words(
        "AWS::Serverless::Connector AWS::Lambda::Permission AWS::Lambda::LayerVersion "
        "AWS::Lambda::LayerVersionPermission AWS::Lambda::Version AWS::Lambda::Alias "
        "AWS::Serverless::LayerVersion AWS::SQS::QueuePolicy AWS::SNS::TopicPolicy "
        "AWS::S3::BucketPolicy AWS::ApiGateway::Account AWS::SSM::Parameter "
        "AWS::SecretsManager::Secret AWS::CloudFormation::WaitConditionHandle "
        "AWS::CloudFormation::WaitCondition"
    )
)
IGNORED_TYPE_PREFIXES = words(
    "AWS::IAM:: AWS::Logs:: AWS::CloudWatch:: AWS::KMS:: AWS::CodeDeploy:: "
    "AWS::ApplicationAutoScaling:: AWS::XRay:: AWS::ApplicationInsights:: "
    "AWS::ResourceGroups::"
)
ONLY_ON_AWS = "only matters on AWS"


NOT_PROVISIONED = {
    "AWS::SSM::Parameter": "lambdabus does not provision SSM parameters",
    "AWS::SecretsManager::Secret": "lambdabus does not provision secrets",
}


def ignored_type_reason(resource_type: str) -> str | None:
    """Why a resource type is accepted and ignored, or None if it isn't."""
    if resource_type in IGNORED_TYPES or resource_type.startswith(IGNORED_TYPE_PREFIXES):
        return NOT_PROVISIONED.get(resource_type, ONLY_ON_AWS)
    return None


DESTINATION = Map(
    {"Type": Str("Lambda", "SQS", "SNS", "EventBridge", "S3", required=True), "Destination": Str()}
)

FUNCTION_SCHEMA = Map(
    {
        "Handler": Str(required=True),
        "CodeUri": OneOf(Str(), Map(), required=True),
        "Timeout": Int(1, 900),
        "MemorySize": Int(128, 10240),
        "Environment": Map({"Variables": Map(values=OneOf(Str(), Bool()))}),
        "ReservedConcurrentExecutions": Int(0),
        "EventInvokeConfig": Map(
            {
                "MaximumEventAgeInSeconds": Int(60, 21600),
                "MaximumRetryAttempts": Int(0, 2),
                "DestinationConfig": Map(
                    {"OnFailure": DESTINATION},
                    ignored={"OnSuccess": "lambdabus does not deliver OnSuccess destinations"},
                ),
            }
        ),
        "DeadLetterQueue": Map(
            {"Type": Str("SQS", "SNS", required=True), "TargetArn": Str(required=True)}
        ),
        "Events": Map(values=ANY),
    },
    ignored={
        **dict.fromkeys(
            words(
                "Runtime Architectures Role RolePath Policies PermissionsBoundary "
                "AssumeRolePolicyDocument Tracing Tags PropagateTags Layers AutoPublishAlias "
                "AutoPublishAliasAllProperties AutoPublishCodeSha256 VersionDescription "
                "DeploymentPreference ProvisionedConcurrencyConfig VpcConfig Description "
                "PackageType KmsKeyArn CodeSigningConfigArn EphemeralStorage SnapStart "
                "RuntimeManagementConfig LoggingConfig RecursiveLoop SourceKMSKeyArn"
            ),
            ONLY_ON_AWS,
        ),
        "FunctionName": "lambdabus names a function by its logical id",
        "FunctionUrlConfig": "lambdabus serves no function URLs",
        "FileSystemConfigs": "lambdabus mounts no file systems",
    },
    refused={
        "InlineCode": "not supported: put the handler's code in a CodeUri folder",
        "ImageUri": "not supported: lambdabus runs zip (folder) functions, not images",
        "ImageConfig": "not supported: lambdabus runs zip (folder) functions, not images",
    },
)

_API_DEFINITION = "not supported: lambdabus builds routes from the functions' Api events"
API_SCHEMA = Map(
    {
        "StageName": Str(required=True),
        "Auth": Map(),
        "Cors": OneOf(Str(), Map()),
        "Name": Str(),
        "BinaryMediaTypes": List(Str()),
        "Variables": Map(values=Str()),
    },
    ignored=words(
        "Description EndpointConfiguration MethodSettings AccessLogSetting TracingEnabled "
        "CacheClusterEnabled CacheClusterSize CanarySetting Tags Domain GatewayResponses "
        "MinimumCompressionSize Models OpenApiVersion ApiKeySourceType Mode AlwaysDeploy "
        "DisableExecuteApiEndpoint FailOnWarnings MergeDefinitions PropagateTags"
    ),
    refused={"DefinitionBody": _API_DEFINITION, "DefinitionUri": _API_DEFINITION},
)
HTTP_API_SCHEMA = Map(
    {
        "StageName": Str(),
        "Auth": Map(),
        "CorsConfiguration": OneOf(Bool(), Map()),
        "Name": Str(),
        "StageVariables": Map(values=Str()),
    },
    ignored=words(
        "Description AccessLogSettings DefaultRouteSettings RouteSettings Tags Domain "
        "FailOnWarnings DisableExecuteApiEndpoint PropagateTags"
    ),
    refused={
        "DefinitionBody": _API_DEFINITION,
        "DefinitionUri": _API_DEFINITION,
        "Cors": "an HttpApi's CORS settings are called CorsConfiguration",
    },
)

SAM_STATE_MACHINE_SCHEMA = Map(
    {
        "Definition": Map(),
        "DefinitionUri": Str(),
        "DefinitionSubstitutions": Map(values=Str()),
        "Name": Str(),
        "Type": Str("STANDARD", "EXPRESS"),
        "Events": Map(values=ANY),
    },
    ignored=words(
        "Role RolePath Policies PermissionsBoundary Logging Tracing Tags PropagateTags "
        "AutoPublishAlias DeploymentPreference UseAliasAsEventTarget"
    ),
)
SFN_STATE_MACHINE_SCHEMA = Map(
    {
        "Definition": Map(),
        "DefinitionString": Str(),
        "DefinitionSubstitutions": Map(values=Str()),
        "StateMachineName": Str(),
        "StateMachineType": Str("STANDARD", "EXPRESS"),
    },
    ignored=words("RoleArn LoggingConfiguration TracingConfiguration Tags EncryptionConfiguration"),
    refused={"DefinitionS3Location": "not supported: use Definition or DefinitionString"},
)

REDRIVE_POLICY = Map(
    {"deadLetterTargetArn": Str(required=True), "maxReceiveCount": Int(1, 1000, required=True)}
)
QUEUE_SCHEMA = Map(
    {
        "QueueName": Str(),
        "FifoQueue": Bool(),
        "ContentBasedDeduplication": Bool(),
        "DeduplicationScope": Str("messageGroup", "queue"),
        "FifoThroughputLimit": Str("perQueue", "perMessageGroupId"),
        "DelaySeconds": Int(0, 900),
        "MaximumMessageSize": Int(1024, 262144),
        "MessageRetentionPeriod": Int(60, 1209600),
        "ReceiveMessageWaitTimeSeconds": Int(0, 20),
        "RedrivePolicy": OneOf(REDRIVE_POLICY, Str()),
        "RedriveAllowPolicy": OneOf(Map(), Str()),
        "VisibilityTimeout": Int(0, 43200),
    },
    ignored=("KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled", "Tags"),
)
TOPIC_SCHEMA = Map(
    {
        "TopicName": Str(),
        "DisplayName": Str(),
        "FifoTopic": Bool(),
        "ContentBasedDeduplication": Bool(),
        "FifoThroughputScope": Str("Topic", "MessageGroup"),
        "SignatureVersion": Str("1", "2"),
        "Subscription": List(Map({"Endpoint": Str(required=True), "Protocol": Str(required=True)})),
        "ArchivePolicy": Map(),
    },
    ignored=words("KmsMasterKeyId Tags DataProtectionPolicy DeliveryStatusLogging TracingConfig"),
)
SUBSCRIPTION_SCHEMA = Map(
    {
        "TopicArn": Str(required=True),
        "Protocol": Str(required=True),
        "Endpoint": Str(),
        "RawMessageDelivery": Bool(),
        "FilterPolicy": OneOf(Map(), Str()),
        "FilterPolicyScope": Str("MessageAttributes", "MessageBody"),
        "RedrivePolicy": OneOf(Map(), Str()),
    },
    ignored=("Region", "DeliveryPolicy", "SubscriptionRoleArn", "ReplayPolicy"),
)

S3_FILTER = Map(
    {"S3Key": Map({"Rules": List(Map({"Name": Str(required=True), "Value": Str(required=True)}))})}
)


def _notification(target: str) -> Shape:
    return List(Map({"Event": Str(required=True), target: Str(required=True), "Filter": S3_FILTER}))


BUCKET_SCHEMA = Map(
    {
        "BucketName": Str(),
        "NotificationConfiguration": Map(
            {
                "LambdaConfigurations": _notification("Function"),
                "QueueConfigurations": _notification("Queue"),
                "TopicConfigurations": _notification("Topic"),
                "EventBridgeConfiguration": Map({"EventBridgeEnabled": Bool()}),
            }
        ),
        "VersioningConfiguration": Map({"Status": Str("Enabled", "Suspended", required=True)}),
    },
    ignored=words(
        "AccelerateConfiguration AccessControl AnalyticsConfigurations BucketEncryption "
        "CorsConfiguration IntelligentTieringConfigurations InventoryConfigurations "
        "LifecycleConfiguration LoggingConfiguration MetricsConfigurations "
        "ObjectLockConfiguration ObjectLockEnabled OwnershipControls "
        "PublicAccessBlockConfiguration ReplicationConfiguration Tags "
        "WebsiteConfiguration MetadataTableConfiguration"
    ),
)

KEY_SCHEMA = List(
    Map({"AttributeName": Str(required=True), "KeyType": Str("HASH", "RANGE", required=True)}),
    required=True,
)
THROUGHPUT = Map(
    {"ReadCapacityUnits": Int(1, required=True), "WriteCapacityUnits": Int(1, required=True)}
)
PROJECTION = Map(
    {"ProjectionType": Str("ALL", "KEYS_ONLY", "INCLUDE"), "NonKeyAttributes": List(Str())},
    required=True,
)
_INDEX_IGNORED = ("ContributorInsightsSpecification", "OnDemandThroughput", "WarmThroughput")
TABLE_SCHEMA = Map(
    {
        "TableName": Str(),
        "KeySchema": KEY_SCHEMA,
        "AttributeDefinitions": List(
            Map(
                {
                    "AttributeName": Str(required=True),
                    "AttributeType": Str("S", "N", "B", required=True),
                }
            ),
            required=True,
        ),
        "BillingMode": Str("PROVISIONED", "PAY_PER_REQUEST"),
        "ProvisionedThroughput": THROUGHPUT,
        "StreamSpecification": Map(
            {
                "StreamViewType": Str(
                    "KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", required=True
                )
            }
        ),
        "TimeToLiveSpecification": Map({"AttributeName": Str(), "Enabled": Bool(required=True)}),
        "GlobalSecondaryIndexes": List(
            Map(
                {
                    "IndexName": Str(required=True),
                    "KeySchema": KEY_SCHEMA,
                    "Projection": PROJECTION,
                    "ProvisionedThroughput": THROUGHPUT,
                },
                ignored=_INDEX_IGNORED,
            )
        ),
        "LocalSecondaryIndexes": List(
            Map(
                {"IndexName": Str(required=True), "KeySchema": KEY_SCHEMA, "Projection": PROJECTION}
            )
        ),
    },
    ignored=words(
        "SSESpecification PointInTimeRecoverySpecification Tags "
        "ContributorInsightsSpecification DeletionProtectionEnabled "
        "KinesisStreamSpecification TableClass ResourcePolicy OnDemandThroughput "
        "WarmThroughput"
    ),
    refused={"ImportSourceSpecification": "not supported: importing a table from S3"},
)
SIMPLE_TABLE_SCHEMA = Map(
    {
        "PrimaryKey": Map(
            {"Name": Str(required=True), "Type": Str("String", "Number", "Binary", required=True)}
        ),
        "ProvisionedThroughput": THROUGHPUT,
        "TableName": Str(),
    },
    ignored=("SSESpecification", "Tags", "PointInTimeRecoverySpecification"),
)

RESOURCE_SCHEMAS: dict[str, Shape] = {
    FUNCTION: FUNCTION_SCHEMA,
    API: API_SCHEMA,
    HTTP_API: HTTP_API_SCHEMA,
    SAM_STATE_MACHINE: SAM_STATE_MACHINE_SCHEMA,
    SFN_STATE_MACHINE: SFN_STATE_MACHINE_SCHEMA,
    QUEUE: QUEUE_SCHEMA,
    TOPIC: TOPIC_SCHEMA,
    SUBSCRIPTION: SUBSCRIPTION_SCHEMA,
    BUCKET: BUCKET_SCHEMA,
    TABLE: TABLE_SCHEMA,
    SIMPLE_TABLE: SIMPLE_TABLE_SCHEMA,
}

FUNCTION_SETTINGS = Map(
    {
        "isolation": Str("thread", "process"),
        "group": Str(),
        "visibility_timeout_s": Num(low=1),
        "max_concurrency": Int(1),
        "threads": Int(1),
        "dedupe_window_s": Num(low=1),
        "async_routes": List(Str()),
    }
)
"""A function's ``Metadata: lambdabus:`` keys."""

PARAMETER_SCHEMA = Map(
    {
        "Type": Str(required=True),
        "Default": ANY,
        "AllowedValues": List(),
        "AllowedPattern": Str(),
        "MinLength": Int(0),
        "MaxLength": Int(0),
        "MinValue": Num(),
        "MaxValue": Num(),
        "Description": Str(),
        "ConstraintDescription": Str(),
        "NoEcho": Bool(),
    }
)

TOP_LEVEL_KEYS = frozenset(
    words(
        "AWSTemplateFormatVersion Description Metadata Parameters Mappings Conditions "
        "Transform Globals Resources"
    )
)
IGNORED_TOP_LEVEL_KEYS = frozenset({"Outputs", "Rules"})
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
