"""The SAM template loader end to end: real YAML files in, Stack/resources/events out,
and one clear line for every bad, unsupported or hostile template."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.template import (
    ACCOUNT_ID,
    FailureDestination,
    LoadedTemplate,
    TemplateError,
    load_template,
)
from bus.spec import RetryPolicy, Trigger

TEMPLATES = Path(__file__).parent / "templates"
SQS_ATTEMPT = ("attributes", "ApproximateReceiveCount")
REALWORLD = TEMPLATES / "realworld.yaml"
CODE = str((TEMPLATES / "code").resolve())


@pytest.fixture(autouse=True)
def default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ARN below is in us-east-1 unless a test sets another region."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)


def error_of(path: Path | str, **kwargs: object) -> str:
    with pytest.raises(TemplateError) as caught:
        load_template(path, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- a real-world-shaped template -------------------------------------------------------


@pytest.fixture(scope="module")
def shop() -> LoadedTemplate:
    return load_template(REALWORLD)


def test_realworld_warns_once_per_ignored_property(shop: LoadedTemplate) -> None:
    f = str(REALWORLD)
    ignored = [
        "(template): Outputs",
        "Globals: Function.Runtime",
        "Globals: Function.Tracing",
        "Globals: Function.Layers",
        "OrdersQueue: KmsMasterKeyId",
        "OrdersQueue: Tags",
        "UploadsBucket: DeletionPolicy",
        "UploadsBucket: PublicAccessBlockConfiguration",
        "OrdersTable: SSESpecification",
        "OrdersTable: PointInTimeRecoverySpecification",
        "ProcessOrderFunction: Policies",
        "NotifyFunction: Description",
        "ThumbnailFunction: Architectures",
        "ApiFunction: AutoPublishAlias",
        "ApiFunction: DeploymentPreference",
        "BackupFunction: Events.Nightly.Properties.Description",
        "AlertFunction: Role",
        "AlertRole: AWS::IAM::Role",
        "OrdersLogGroup: AWS::Logs::LogGroup",
    ]
    assert shop.warnings == [f"{f}: {item}: ignored (only matters on AWS)" for item in ignored]


def test_realworld_stack_name_settings_and_groups(shop: LoadedTemplate) -> None:
    assert shop.stack.name == "shop"
    assert shop.settings == {"stack": "shop", "workers": 2}
    assert shop.path == REALWORLD.resolve()
    assert list(shop.stack.functions) == [
        "ProcessOrderFunction", "NotifyFunction", "ThumbnailFunction", "SyncFunction",
        "ApiFunction", "BackupFunction", "AlertFunction",
    ]  # fmt: skip
    assert shop.groups == [
        ["ProcessOrderFunction"], ["NotifyFunction"], ["ThumbnailFunction", "SyncFunction"],
        ["ApiFunction"], ["BackupFunction"], ["AlertFunction"],
    ]  # fmt: skip


def test_realworld_globals_merge_into_functions(shop: LoadedTemplate) -> None:
    fn = shop.stack.function("ProcessOrderFunction")
    assert fn.handler == "app.handler"
    assert fn.code_path == CODE
    assert fn.deps_path == str(TEMPLATES.resolve() / ".lambdabus" / "deps" / "ProcessOrderFunction")
    assert (fn.timeout_s, fn.memory_mb) == (10.0, 256)  # Globals Timeout, FindInMap MemorySize
    assert dict(fn.environment) == {
        "STAGE": "dev",
        "LOG_LEVEL": "DEBUG",
        "POWERTOOLS_SERVICE_NAME": "shop",
        "TABLE_NAME": "shop-OrdersTable",
        "QUEUE_ARN": f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:shop-OrdersQueue.fifo",
        "DLQ_URL": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT_ID}/shop-orders-dlq.fifo",
        "MAX_ITEMS": "25",
        "STRICT": "true",
    }
    assert fn.isolation == "process"
    assert fn.visibility_timeout_s == 120.0
    assert fn.retry == RetryPolicy(max_retry_attempts=1, max_event_age_s=3600.0)
    assert fn.on_failure == "AlertFunction"
    thumbnail = shop.stack.function("ThumbnailFunction")
    assert thumbnail.memory_mb == 1024  # the function's own value beats Globals
    assert thumbnail.retry == RetryPolicy()
    backup = shop.stack.function("BackupFunction")
    assert (backup.timeout_s, backup.reserved_concurrency) == (900.0, 1)
    assert backup.environment["RETENTION_DAYS"] == "14"
    assert "AUDIT_TABLE" not in backup.environment  # !If [IsProd, ..., !Ref AWS::NoValue]
    api = shop.stack.function("ApiFunction")
    rest_api = shop.resources["ServerlessRestApi"].ref
    assert api.environment["API_URL"] == (
        f"https://{rest_api}.execute-api.us-east-1.amazonaws.com/Prod"
    )
    notify = shop.stack.function("NotifyFunction")
    assert notify.environment["RECIPIENTS"] == "ops@example.com,sales@example.com"


def test_realworld_triggers_follow_lambda(shop: LoadedTemplate) -> None:
    functions = shop.stack.functions
    assert functions["ProcessOrderFunction"].triggers == {
        "Orders": Trigger(
            "Orders", batch_size=5, shape="records", ordered=True, partial_batch="items",
            item_id_path=("messageId",), attempt_path=SQS_ATTEMPT, max_retry_attempts=2,
            max_record_age_s=345600.0, dedupe_window_s=360.0,
        )
    }  # fmt: skip
    assert functions["NotifyFunction"].triggers == {
        "Notice": Trigger("Notice", batch_size=1, shape="records"),
        "Queued": Trigger(
            "Queued", batch_size=10, shape="records", item_id_path=("messageId",),
            attempt_path=SQS_ATTEMPT, max_retry_attempts=-1, max_record_age_s=345600.0,
            dedupe_window_s=330.0,
        ),
    }  # fmt: skip
    assert functions["ThumbnailFunction"].triggers == {
        "Upload": Trigger("Upload", batch_size=1, shape="records")
    }
    assert functions["SyncFunction"].triggers == {
        "Changes": Trigger(
            "Changes", batch_size=50, shape="records", ordered=True, partial_batch="checkpoint",
            item_id_path=("dynamodb", "SequenceNumber"), bisect_on_error=True,
            max_retry_attempts=3, max_record_age_s=3600.0, dedupe_window_s=600.0,
        )
    }  # fmt: skip
    assert functions["ApiFunction"].triggers == {
        "GetOrder": Trigger("GetOrder"),
        "CreateOrder": Trigger("CreateOrder"),
    }
    assert functions["BackupFunction"].triggers == {
        "Nightly": Trigger("Nightly"),
        "Custom": Trigger("Custom"),
    }
    assert functions["AlertFunction"].triggers == {}


def test_realworld_resources(shop: LoadedTemplate) -> None:
    r = shop.resources
    assert list(r) == [
        "OrdersQueue", "OrdersDeadLetterQueue", "NotificationsQueue", "NotificationsTopic",
        "UploadsBucket", "OrdersTable", "ServerlessRestApi", "ServerlessHttpApi",
    ]  # fmt: skip
    queue = r["OrdersQueue"]
    assert (queue.name, queue.arn, queue.ref) == (
        "shop-OrdersQueue.fifo",
        f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:shop-OrdersQueue.fifo",
        f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT_ID}/shop-OrdersQueue.fifo",
    )
    assert queue.properties == {
        "FifoQueue": True,
        "ContentBasedDeduplication": True,
        "VisibilityTimeout": 60,
        "RedrivePolicy": {
            "deadLetterTargetArn": r["OrdersDeadLetterQueue"].arn,
            "maxReceiveCount": 3,
        },
    }
    topic = r["NotificationsTopic"]
    assert topic.ref == topic.arn == f"arn:aws:sns:us-east-1:{ACCOUNT_ID}:shop-notifications"
    assert topic.properties["Subscription"] == [
        {"Protocol": "sqs", "Endpoint": r["NotificationsQueue"].arn},
        {"Protocol": "email", "Endpoint": "ops@example.com"},
    ]
    bucket = r["UploadsBucket"]
    assert (bucket.name, bucket.ref, bucket.arn) == (
        "shop-uploads-dev",
        "shop-uploads-dev",
        "arn:aws:s3:::shop-uploads-dev",
    )
    table = r["OrdersTable"]
    assert (table.name, table.ref) == ("shop-OrdersTable", "shop-OrdersTable")
    assert table.properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert "SSESpecification" not in table.properties
    assert r["ServerlessRestApi"].properties == {
        "StageName": "Prod",
        "Cors": {"AllowOrigin": "'*'"},
    }
    assert r["ServerlessHttpApi"].properties == {"StageName": "$default"}


def test_realworld_event_sources(shop: LoadedTemplate) -> None:
    by_name = {e.name: e for e in shop.events}
    assert [(e.function, e.name, e.type) for e in shop.events] == [
        ("ProcessOrderFunction", "Orders", "SQS"),
        ("NotifyFunction", "Notice", "SNS"),
        ("NotifyFunction", "Queued", "SQS"),
        ("ThumbnailFunction", "Upload", "S3"),
        ("SyncFunction", "Changes", "DynamoDB"),
        ("ApiFunction", "GetOrder", "Api"),
        ("ApiFunction", "CreateOrder", "HttpApi"),
        ("BackupFunction", "Nightly", "Schedule"),
        ("BackupFunction", "Custom", "EventBridgeRule"),
    ]
    table_arn = shop.resources["OrdersTable"].arn
    assert by_name["Changes"].properties["Stream"] == f"{table_arn}/stream/1970-01-01T00:00:00.000"
    assert by_name["Upload"].properties == {
        "Bucket": "shop-uploads-dev",
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {"S3Key": {"Rules": [{"Name": "suffix", "Value": ".jpg"}]}},
    }
    assert by_name["GetOrder"].properties == {
        "Path": "/orders/{id}",
        "Method": "GET",
        "RestApiId": shop.resources["ServerlessRestApi"].ref,
    }
    assert by_name["CreateOrder"].properties["ApiId"] == shop.resources["ServerlessHttpApi"].ref
    assert by_name["Nightly"].properties == {"Schedule": "cron(0 12 * * ? *)"}
    topic_arn = f"arn:aws:sns:us-east-1:{ACCOUNT_ID}:shop-notifications"
    assert shop.destinations == [
        FailureDestination("SyncFunction", "SNS", topic_arn, "Events.Changes"),
    ]


# -- parameters, conditions, stack name, region ---------------------------------------------


def test_parameter_overrides_and_conditions() -> None:
    prod = load_template(REALWORLD, parameter_overrides={"Stage": "prod"})
    backup = prod.stack.function("BackupFunction")
    assert backup.reserved_concurrency == 5
    assert backup.environment["AUDIT_TABLE"] == "shop-AuditTable"
    assert backup.environment["LOG_LEVEL"] == "INFO"
    assert backup.memory_mb == 1024
    assert prod.resources["AuditTable"].properties == {
        "PrimaryKey": {"Name": "id", "Type": "String"}
    }
    assert prod.resources["UploadsBucket"].name == "shop-uploads-prod"
    assert "AuditTable" not in load_template(REALWORLD).resources


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        ({"Stag": "prod"}, "Parameters: Stag: no such parameter (given as an override)"
                           " (did you mean Stage?)"),
        ({"Stage": "qa"}, "Parameters: Stage: 'qa' is not one of the AllowedValues (dev, prod)"),
        ({"RetentionDays": "0"}, "Parameters: RetentionDays: 0 is below MinValue 1"),
        ({"RetentionDays": "many"}, "Parameters: RetentionDays: 'many' is not a number"),
    ],
)  # fmt: skip
def test_bad_parameter_overrides(overrides: dict[str, str], line: str) -> None:
    assert error_of(REALWORLD, parameter_overrides=overrides) == f"{REALWORLD}: {line}"


def test_a_parameter_without_default_needs_an_override() -> None:
    path = TEMPLATES / "needs_param.yaml"
    assert error_of(path) == (
        f"{path}: Parameters: AlertEmail: no value: give it a Default or a parameter override"
    )
    assert error_of(path, parameter_overrides={"AlertEmail": "nobody"}) == (
        f"{path}: Parameters: AlertEmail: 'nobody' does not match AllowedPattern '[^@]+@[^@]+'"
    )
    loaded = load_template(path, parameter_overrides={"AlertEmail": "ops@example.com"})
    assert loaded.resources["AlertTopic"].properties["Subscription"] == [
        {"Protocol": "email", "Endpoint": "ops@example.com"}
    ]
    assert loaded.stack.name == "templates"  # the folder's name
    assert loaded.stack.functions == {}


def test_stack_name_argument_and_region_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    loaded = load_template(REALWORLD, stack_name="shop-staging")
    assert loaded.stack.name == "shop-staging"
    assert loaded.region == "eu-central-1"
    assert loaded.resources["OrdersQueue"].arn == (
        f"arn:aws:sqs:eu-central-1:{ACCOUNT_ID}:shop-staging-OrdersQueue.fifo"
    )
    assert loaded.resources["OrdersDeadLetterQueue"].name == "shop-staging-orders-dlq.fifo"
    assert error_of(REALWORLD, stack_name="no spaces") == (
        f"{REALWORLD}: (template): stack name: 'no spaces' is not a valid stack name"
        " (a letter, then letters, digits or hyphens, at most 128)"
    )


# -- the three named errors, from real files -------------------------------------------------


def test_misspelt_property_is_one_line() -> None:
    path = TEMPLATES / "bad_misspelt.yaml"
    assert error_of(path) == (
        f"{path}: HelloFunction: Handlr: unknown property (did you mean Handler?)"
    )


def test_unknown_resource_type_is_one_line() -> None:
    path = TEMPLATES / "bad_unknown_type.yaml"
    assert error_of(path) == (
        f"{path}: Clicks: Type: resource type AWS::Kinesis::Stream is not supported by lambdabus"
    )


def test_dangling_ref_is_one_line() -> None:
    path = TEMPLATES / "bad_dangling_ref.yaml"
    assert error_of(path) == (
        f"{path}: HelloFunction: Environment.Variables.TABLE_NAME: Ref to 'OrderTable':"
        " no such resource, parameter or pseudo parameter (did you mean OrdersTable?)"
    )


# -- state machines, subscriptions, destinations, IgnoreGlobals ------------------------------


def test_workflow_template() -> None:
    path = TEMPLATES / "workflow.yaml"
    loaded = load_template(path, stack_name="wf")
    assert loaded.warnings == [
        f"{path}: Pipeline: Policies: ignored (only matters on AWS)",
        f"{path}: Cleanup: RoleArn: ignored (only matters on AWS)",
    ]
    resize_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:ResizeFunction"
    pipeline = loaded.resources["Pipeline"]
    assert pipeline.ref == f"arn:aws:states:us-east-1:{ACCOUNT_ID}:stateMachine:wf-Pipeline"
    assert pipeline.properties["Definition"]["States"]["Resize"]["Resource"] == resize_arn
    assert pipeline.properties["Events"] == {
        "Hourly": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 hour)"}}
    }
    cleanup = loaded.resources["Cleanup"]
    assert cleanup.name == "wf-cleanup"
    assert cleanup.properties["Definition"]["States"]["Done"]["Comment"] == "us-east-1"
    subscription = loaded.resources["FailedSubscription"].properties
    assert subscription["FilterPolicy"] == {"severity": ["high"]}
    assert subscription["RawMessageDelivery"] is True
    functions = loaded.stack.functions
    assert functions["ResizeFunction"].timeout_s == 3.0  # IgnoreGlobals: [Timeout]
    assert functions["IndexFunction"].timeout_s == 20.0
    assert dict(functions["ResizeFunction"].environment) == {"SHARED": "yes"}
    queue_arn = f"arn:aws:sqs:us-east-1:{ACCOUNT_ID}:wf-FailedQueue"
    topic_arn = f"arn:aws:sns:us-east-1:{ACCOUNT_ID}:wf-FailedTopic"
    assert loaded.destinations == [
        FailureDestination("ResizeFunction", "SQS", queue_arn, "EventInvokeConfig"),
        FailureDestination("IndexFunction", "SNS", topic_arn, "DeadLetterQueue"),
    ]


def test_json_templates_load(tmp_path: Path) -> None:
    path = tmp_path / "template.json"
    path.write_text(
        '{"Resources": {"Q": {"Type": "AWS::SQS::Queue",'
        ' "Properties": {"QueueName": {"Fn::Sub": "${AWS::StackName}-q"}}}}}'
    )
    assert load_template(path, stack_name="j").resources["Q"].name == "j-q"


def test_yaml_merge_keys_in_resources(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "Resources:\n"
        "  Base: &queue\n    Type: AWS::SQS::Queue\n    Properties: {VisibilityTimeout: 45}\n"
        "  Copy:\n    <<: *queue\n"
    )
    loaded = load_template(path)
    assert loaded.resources["Copy"].properties == {"VisibilityTimeout": 45}


def test_some_ignored_things_say_why(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    path = tmp_path / "template.yaml"
    path.write_text(
        "Resources:\n"
        "  Setting: {Type: AWS::SSM::Parameter, Properties: {Type: String, Value: x}}\n"
        "  F:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      Handler: app.handler\n      CodeUri: src/\n"
        "      FunctionName: my-function\n"
        "      EventInvokeConfig:\n        DestinationConfig:\n"
        "          OnSuccess: {Type: SQS, Destination: !GetAtt Setting.Arn}\n"
    )
    assert load_template(path).warnings == [
        f"{path}: Setting: AWS::SSM::Parameter: ignored (lambdabus does not provision SSM"
        " parameters)",
        f"{path}: F: FunctionName: ignored (lambdabus names a function by its logical id)",
        f"{path}: F: EventInvokeConfig.DestinationConfig.OnSuccess: ignored (lambdabus does"
        " not deliver OnSuccess destinations)",
    ]


def test_async_routes_name_http_events_of_the_function(tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    base = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: app.handler
      Events:
        Post:
          Type: Api
          Properties: {Path: /jobs, Method: post}
    Metadata:
      lambdabus:
        async_routes: [%s]
"""
    (tmp_path / "ok.yaml").write_text(base % "Post")
    assert load_template(tmp_path / "ok.yaml").async_routes == {"Fn": ["Post"]}
    (tmp_path / "bad.yaml").write_text(base % "Nope")
    with pytest.raises(TemplateError) as err:
        load_template(tmp_path / "bad.yaml")
    line = str(err.value)
    assert "\n" not in line and "Fn" in line and "async_routes" in line and "Nope" in line
