"""Bad, unsupported and hostile templates: each is one TemplateError line naming file,
resource and property — never another exception, a hang or a partial load."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.template import MAX_TEMPLATE_BYTES, TemplateError, load_template
from adapters.template.yaml_load import parse_yaml

TEMPLATES = Path(__file__).parent / "templates"
REALWORLD = TEMPLATES / "realworld.yaml"


@pytest.fixture(autouse=True)
def default_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """ARNs in messages are in us-east-1."""
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)


def error_of(path: Path) -> str:
    with pytest.raises(TemplateError) as caught:
        load_template(path, stack_name="tmp")
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- one line per problem, table-driven -----------------------------------------------------

HEAD = "Transform: AWS::Serverless-2016-10-31\n"


def write(tmp_path: Path, text: str, name: str = "template.yaml") -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(text)
    return path


def block(text: str, indent: int) -> str:
    return textwrap.indent(textwrap.dedent(text).strip("\n"), " " * indent) + "\n"


def function(
    props: str = "", extra: str = "", events: str = "", metadata: str = "", top: str = ""
) -> str:
    """A template with function F (CodeUri src/), plus ``extra`` resources and ``top`` sections."""
    text = HEAD + top + "Resources:\n  F:\n    Type: AWS::Serverless::Function\n"
    if metadata:
        text += "    Metadata:\n      lambdabus:\n" + block(metadata, 8)
    text += "    Properties:\n      Handler: app.handler\n      CodeUri: src/\n"
    text += block(props, 6) if props else ""
    text += "      Events:\n" + block(events, 8) if events else ""
    return text + (block(extra, 2) if extra else "")


def case(name: str, template: str, line: str) -> object:
    return pytest.param(template, line, id=name)


QUEUE = "Q: {Type: AWS::SQS::Queue}"
SQS_EVENT = "E:\n  Type: SQS\n  Properties:\n    Queue: !GetAtt Q.Arn\n"
TABLE = "T: {Type: AWS::Serverless::SimpleTable}"
STREAM = (
    "E:\n  Type: DynamoDB\n  Properties:\n    Stream: !GetAtt T.{}\n    StartingPosition: LATEST"
)
PK = "KeySchema: [{AttributeName: pk, KeyType: HASH}]"
ON_FAILURE = "{Type: Lambda, Destination: 'arn:aws:lambda:us-east-1:1:function:x'}"
TWO_IN_A_GROUP = """
    Globals:
      Function: {CodeUri: src/, Handler: app.handler}
    Resources:
      A:
        Type: AWS::Serverless::Function
        Metadata: {lambdabus: {group: g}}
      B:
        Type: AWS::Serverless::Function
        Metadata: {lambdabus: {group: g}}
        Properties: {Environment: {Variables: {X: y}}}
    """

CASES = [
    case("wrong type", function("Timeout: abc"), "F: Timeout: expected an integer, got 'abc'"),
    case("out of range", function("MemorySize: 64"),
         "F: MemorySize: must be between 128 and 10240, got 64"),
    case("missing handler", function().replace("      Handler: app.handler\n", ""),
         "F: Handler: required, but missing"),
    case("inline code", function("InlineCode: print(1)"),
         "F: InlineCode: not supported: put the handler's code in a CodeUri folder"),
    case("handler shape", function().replace("Handler: app.handler", "Handler: app"),
         "F: Handler: expected module.function, got 'app'"),
    case("missing code folder", function().replace("CodeUri: src/", "CodeUri: nowhere/"),
         "F: CodeUri: 'nowhere/' is not a folder (looked for {tmp}/nowhere)"),
    case("s3 code", function().replace("CodeUri: src/", "CodeUri: s3://bucket/code.zip"),
         "F: CodeUri: only a local folder is supported, not an S3 location"),
    case("nested unknown key", function("Environment:\n  Variabels: {A: b}"),
         "F: Environment.Variabels: unknown property (did you mean Variables?)"),
    case("bad env value", function("Environment:\n  Variables: {A: [1]}"),
         "F: Environment.Variables.A: expected a string or true or false, got a list"),
    case("unknown event type", function(events="E: {Type: Kinesiss}"),
         "F: Events.E.Type: unknown event type 'Kinesiss'"),
    case("unsupported event type", function(events="E: {Type: Kinesis}"),
         "F: Events.E.Type: event type Kinesis is not supported by lambdabus"),
    case("unknown event property", function(extra=QUEUE, events=SQS_EVENT + "    Batchsize: 5"),
         "F: Events.E.Properties.Batchsize: unknown property (did you mean BatchSize?)"),
    case("missing event property", function(events="E: {Type: SQS, Properties: {}}"),
         "F: Events.E.Properties.Queue: required, but missing"),
    case("queue url for arn",
         function(extra=QUEUE, events=SQS_EVENT.replace("!GetAtt Q.Arn", "!Ref Q")),
         "F: Events.E.Properties.Queue: expected an SQS queue ARN (!GetAtt Q.Arn),"
         " got 'https://sqs.us-east-1.amazonaws.com/123456789012/tmp-Q'"),
    case("big batch without window", function(extra=QUEUE, events=SQS_EVENT + "    BatchSize: 100"),
         "F: Events.E.Properties.MaximumBatchingWindowInSeconds: must be at least 1 when"
         " BatchSize is over 10 (as in Lambda)"),
    case("fifo batch",
         function(extra="Q: {Type: AWS::SQS::Queue, Properties: {FifoQueue: true}}",
                  events=SQS_EVENT + "    BatchSize: 20\n    MaximumBatchingWindowInSeconds: 1"),
         "F: Events.E.Properties.BatchSize: at most 10 for a FIFO queue, got 20"),
    case("no definition", function(extra="S: {Type: AWS::Serverless::StateMachine}"),
         "S: Definition: give exactly one of Definition, DefinitionUri"),
    case("remote definition",
         function(extra="S: {Type: AWS::Serverless::StateMachine,"
                        " Properties: {DefinitionUri: 's3://b/k.json'}}"),
         "S: DefinitionUri: only a local file is supported, not a remote location"),
    case("bad http method", function(events="A: {Type: HttpApi, Properties: {Method: FETCH}}"),
         "F: Events.A.Properties.Method: not an HTTP method: 'FETCH'"),
    case("s3 bucket elsewhere",
         function(events="E: {Type: S3, Properties: {Bucket: other, Events: 's3:Object*'}}"),
         "F: Events.E.Properties.Bucket: 'other' is not a bucket of this template"
         " (SAM needs !Ref to an AWS::S3::Bucket here)"),
    case("bad schedule", function(events="E: {Type: Schedule, Properties: {Schedule: daily}}"),
         "F: Events.E.Properties.Schedule: expected rate(...), cron(...) or at(...), got 'daily'"),
    case("route collision",
         function(events="A: {Type: Api, Properties: {Path: /x, Method: get}}\n"
                         "B: {Type: Api, Properties: {Path: /x, Method: GET}}"),
         "F: Events.B.Properties.Path: GET /x is already served by F.A"),
    case("stream arn", function(extra=TABLE, events=STREAM.format("Arn")),
         "F: Events.E.Properties.Stream: expected a stream ARN (!GetAtt Table.StreamArn),"
         " got 'arn:aws:dynamodb:us-east-1:123456789012:table/tmp-T'"),
    case("no stream attribute", function(extra=TABLE, events=STREAM.format("StreamArn")),
         "F: Events.E.Properties.Stream: Fn::GetAtt T.StreamArn: AWS::Serverless::SimpleTable"
         " has no attribute 'StreamArn' (it has: Arn)"),
    case("unknown lambdabus key", function(metadata="isolaton: process"),
         "F: Metadata.lambdabus.isolaton: unknown property (did you mean isolation?)"),
    case("bad isolation", function(metadata="isolation: fork"),
         "F: Metadata.lambdabus.isolation: must be one of thread, process; got 'fork'"),
    case("visibility under timeout", function("Timeout: 30", metadata="visibility_timeout_s: 30"),
         "F: Metadata.lambdabus.visibility_timeout_s: must be longer than the function's"
         " Timeout (30 s)"),
    case("lambdabus on a queue",
         HEAD + "Resources:\n  Q: {Type: AWS::SQS::Queue, Metadata: {lambdabus: {x: 1}}}\n",
         "Q: Metadata.lambdabus: lambdabus reads these only on functions and at the top level"),
    case("on failure elsewhere",
         function(f"EventInvokeConfig:\n  DestinationConfig:\n    OnFailure: {ON_FAILURE}"),
         "F: EventInvokeConfig.DestinationConfig.OnFailure.Destination:"
         " 'arn:aws:lambda:us-east-1:1:function:x' is not a function of this stack"),
    case("bad attribute", function("Environment: {Variables: {A: !GetAtt Q.Url}}", extra=QUEUE),
         "F: Environment.Variables.A: Fn::GetAtt Q.Url: AWS::SQS::Queue has no attribute 'Url'"
         " (it has: Arn, QueueName, QueueUrl)"),
    case("ref to left-out resource",
         function("Environment: {Variables: {A: !Ref Q}}",
                  extra="Q: {Type: AWS::SQS::Queue, Condition: Never}",
                  top="Conditions:\n  Never: !Equals [a, b]\n"),
         "F: Environment.Variables.A: Ref to 'Q': Q is left out: its Condition Never is false"),
    case("missing condition", function(extra="Q: {Type: AWS::SQS::Queue, Condition: Nope}"),
         "Q: Condition: no condition named 'Nope'"),
    case("depends on nothing", function(extra="Q: {Type: AWS::SQS::Queue, DependsOn: [F, G]}"),
         "Q: DependsOn: no resource named 'G'"),
    case("misspelt attribute", function(extra="Q: {Type: AWS::SQS::Queue, Propertes: {}}"),
         "Q: Propertes: unknown resource attribute (did you mean Properties?)"),
    case("fifo name",
         function(extra="Q: {Type: AWS::SQS::Queue, Properties: {FifoQueue: yes, QueueName: q}}"),
         "Q: QueueName: a FIFO name must end in .fifo, got 'q'"),
    case("boolean type",
         function(extra="Q: {Type: AWS::SQS::Queue, Properties: {FifoQueue: 1}}"),
         "Q: FifoQueue: expected true or false, got 1"),
    case("fifo setting on a standard queue",
         function(extra="Q:\n  Type: AWS::SQS::Queue\n  Properties: {DeduplicationScope: queue}"),
         "Q: DeduplicationScope: only applies when FifoQueue is true"),
    case("key not defined",
         function(extra=f"T:\n  Type: AWS::DynamoDB::Table\n  Properties:\n    {PK}\n"
                        "    BillingMode: PAY_PER_REQUEST\n"
                        "    AttributeDefinitions: [{AttributeName: id, AttributeType: S}]"),
         "T: KeySchema[0].AttributeName: 'pk' is not in AttributeDefinitions"),
    case("provisioned without throughput",
         function(extra=f"T:\n  Type: AWS::DynamoDB::Table\n  Properties:\n    {PK}\n"
                        "    AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]"),
         "T: ProvisionedThroughput: required unless BillingMode is PAY_PER_REQUEST"),
    case("circular names",
         function(extra="A: {Type: AWS::SQS::Queue, Properties: {QueueName: !GetAtt B.QueueName}}\n"
                        "B: {Type: AWS::SQS::Queue, Properties: {QueueName: !GetAtt A.QueueName}}"),
         "A: QueueName: Fn::GetAtt B.QueueName: the name of B depends on itself"
         " (circular reference)"),
    case("group environments differ", HEAD + textwrap.dedent(TWO_IN_A_GROUP),
         "B: Metadata.lambdabus.group: group 'g' needs the same Environment as A"),
    case("events not in globals", function(top="Globals:\n  Function:\n    Events: {}\n"),
         "Globals: Function.Events: not allowed in Globals"),
    case("unknown globals section", function(top="Globals:\n  Functions: {}\n"),
         "Globals: Functions: not a Globals section (did you mean Function?)"),
    case("parameter clash", function(top="Parameters:\n  F: {Type: String, Default: x}\n"),
         "Parameters: F: a parameter and a resource have this name"),
    case("unknown parameter type", function(top="Parameters:\n  P: {Type: Strin, Default: x}\n"),
         "Parameters: P.Type: unknown parameter type 'Strin'"),
    case("condition cycle", function(top="Conditions:\n  A: !Not [!Condition A]\n"),
         "Conditions: A: condition refers to itself"),
    case("bad mapping", function(top="Mappings:\n  M: [1]\n"),
         "Mappings: M: expected a mapping of mappings"),
    case("transform", function().replace(HEAD, "Transform: AWS::Serverless-2015\n"),
         "(template): Transform: must be AWS::Serverless-2016-10-31,"
         " got 'AWS::Serverless-2015'"),
    case("language extensions",
         function().replace(HEAD, f"Transform: [AWS::LanguageExtensions, {HEAD[11:-1]}]\n"),
         "(template): Transform: must be AWS::Serverless-2016-10-31, got a list"),
    case("no resources", HEAD, "(template): Resources: required, but missing"),
    case("empty resources", HEAD + "Resources: {}\n",
         "(template): Resources: declares no resources"),
    case("unknown section", function() + "Output: {}\n",
         "(template): Output: unknown top-level section (did you mean Outputs?)"),
    case("not a mapping", "- Resources\n",
         "(template): -: the top level must be a mapping, got a list"),
    case("empty file", "", "(template): -: the template is empty"),
    case("bad logical id", HEAD + "Resources:\n  my-queue: {Type: AWS::SQS::Queue}\n",
         "my-queue: -: a logical id must be alphanumeric"),
    case("duplicate key",
         HEAD + "Resources:\n  Q: {Type: AWS::SQS::Queue}\n  Q: {Type: AWS::SNS::Topic}\n",
         "(yaml): line 4: duplicate key 'Q'"),
    case("unknown tag", function("Timeout: !Reff T"),
         "(yaml): line 8, column 16: could not determine a constructor for the tag '!Reff'"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "line"), CASES)
def test_each_problem_is_one_line(tmp_path: Path, text: str, line: str) -> None:
    path = write(tmp_path, text)
    expected = line.replace("{tmp}", str(tmp_path.resolve()))
    assert error_of(path) == f"{path}: {expected}"


# -- hostile input ---------------------------------------------------------------------------


def test_billion_laughs_is_refused() -> None:
    path = TEMPLATES / "hostile_laughs.yaml"
    assert error_of(path) == (
        f"{path}: (yaml): -: more than 200000 nodes once aliases are expanded (an alias bomb?)"
    )


def test_oversize_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("Resources: {}\n#" + "x" * MAX_TEMPLATE_BYTES + "\n")
    assert error_of(path) == f"{path}: (file): size: larger than 1048576 bytes (1 MiB)"


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"Resources:\n  Q\xff: 1\n", "(file): encoding: not UTF-8 (byte 14)"),
        (b"\x00\x01\x02binary", "(yaml): character 1: character U+0000 is not allowed in YAML"),
        (
            b"Resources: " + b"[" * 5000 + b"]" * 5000,
            "(yaml): line 1: nested deeper than 100 levels",
        ),
        (b"Resources: &r\n  Q: *r\n", "(yaml): line 1: an alias refers to itself"),
        (b"\xef\xbb\xbf42\n", "(template): -: the top level must be a mapping, got 42"),
    ],
)
def test_hostile_bytes_are_one_line(tmp_path: Path, content: bytes, line: str) -> None:
    path = tmp_path / "template.yaml"
    path.write_bytes(content)
    assert error_of(path) == f"{path}: {line}"


def test_missing_file_and_directory(tmp_path: Path) -> None:
    assert error_of(tmp_path / "nope.yaml") == f"{tmp_path / 'nope.yaml'}: (file): -: no such file"
    assert error_of(tmp_path).startswith(f"{tmp_path}: (file): -: cannot read: ")


# -- never a traceback ----------------------------------------------------------------------

REFS = ["OrdersQueue", "OrdersTable", "Stage", "AWS::Region", "AWS::NoValue", "Nope", "IsProd"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 100_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([*REFS, "", "x.y", "arn:aws:sqs:us-east-1:1:q", "${Stage}", "${Nope.Arn}"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["Type", "Properties", "Variables", "Queue", "X"]), inner,
                        max_size=3),
        st.builds(lambda k, v: {k: v}, st.sampled_from(
            ["Ref", "Fn::GetAtt", "Fn::Sub", "Fn::If", "Fn::Join", "Fn::Select", "Fn::Split",
             "Fn::FindInMap", "Fn::Equals", "Fn::Not", "Condition", "Fn::Nope"]), inner),
    ),
    max_leaves=8,
)  # fmt: skip


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*prefix, i))
    return found


SHOP = parse_yaml(REALWORLD.read_text())
SHOP_PATHS = _paths(SHOP)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mutants")
    (folder / "code").mkdir()
    return folder / "template.yaml"


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(st.tuples(st.sampled_from(SHOP_PATHS), VALUES, st.booleans()), max_size=3))
def test_mutated_templates_load_or_fail_with_one_line(
    scratch: Path, mutations: list[tuple[tuple[object, ...], object, bool]]
) -> None:
    """Given the real-world template with a few values replaced or removed, loading it either
    succeeds or raises TemplateError with one line: never another exception."""
    doc = copy.deepcopy(SHOP)
    for path, value, delete in mutations:
        node = doc
        try:
            for key in path[:-1]:
                node = node[key]
            if delete:
                del node[path[-1]]
            else:
                node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    scratch.write_text(yaml.safe_dump(doc))
    try:
        load_template(scratch)
    except TemplateError as exc:
        assert "\n" not in str(exc)
