"""Target input: AWS's documented InputTransformer examples, InputPath, Input, and bad settings.

The examples are those of "Amazon EventBridge input transformation" (the EC2 event and
its template table) and of the InputTransformer API reference; bad settings must fail
to compile with the property named, which the loader turns into a one-line error.
"""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest

from adapters.eventbridge.routing import RuleError, check_rule
from adapters.eventbridge.transform import (
    InputError,
    RuleContext,
    compile_input,
    compile_template,
)
from adapters.template import TemplateError, load_template

EC2: dict[str, Any] = {
    "version": "0",
    "id": "7bf73129-1428-4cd3-a780-95db273d1602",
    "detail-type": "EC2 Instance State-change Notification",
    "source": "aws.ec2",
    "account": "123456789012",
    "time": "2015-11-11T21:29:54Z",
    "region": "us-east-1",
    "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
    "detail": {"instance-id": "i-0123456789", "state": "RUNNING"},
}
PATHS = {"instance": "$.detail.instance-id", "state": "$.detail.state"}
CTX = RuleContext(
    rule_name="example",
    rule_arn="arn:aws:events:us-east-2:123456789012:rule/example",
    ingestion_time="2015-11-11T21:29:55.123Z",
)


def render(template: str, paths: dict[str, str] | None = None, event: Any = None) -> Any:
    compiled = compile_template({"InputPathsMap": PATHS if paths is None else paths,
                                 "InputTemplate": template})  # fmt: skip
    return compiled.render(EC2 if event is None else event, CTX)


DOC_EXAMPLES: list[tuple[str, str, Any]] = [
    ("simple string", '"instance <instance> is in <state>"', "instance i-0123456789 is in RUNNING"),
    (
        "string with escaped quotes",
        '"instance \\"<instance>\\" is in <state>"',
        'instance "i-0123456789" is in RUNNING',
    ),
    (
        "simple JSON",
        '{\n  "instance" : <instance>,\n  "state": <state>\n}',
        {"instance": "i-0123456789", "state": "RUNNING"},
    ),
    (
        "JSON with strings and variables",
        '{"instance" : <instance>, "state": "<state>", '
        '"instanceStatus": "instance \\"<instance>\\" is in <state>"}',
        {
            "instance": "i-0123456789",
            "state": "RUNNING",
            "instanceStatus": 'instance "i-0123456789" is in RUNNING',
        },
    ),
    (
        "JSON with a mix of variables and static information",
        '{"instance" : <instance>, "state": [ 9, <state>, true ], "Transformed" : "Yes"}',
        {"instance": "i-0123456789", "state": [9, "RUNNING", True], "Transformed": "Yes"},
    ),
    (
        "including reserved variables in JSON",
        '{"instance" : <instance>, "state": <state>, "ruleArn" : <aws.events.rule-arn>, '
        '"ruleName" : <aws.events.rule-name>, "originalEvent" : <aws.events.event.json>}',
        {
            "instance": "i-0123456789",
            "state": "RUNNING",
            "ruleArn": "arn:aws:events:us-east-2:123456789012:rule/example",
            "ruleName": "example",
            "originalEvent": EC2,
        },
    ),
    (
        "including reserved variables in a string",
        '"<aws.events.rule-name> triggered"',
        "example triggered",
    ),
]


@pytest.mark.parametrize(("template", "expected"), [c[1:] for c in DOC_EXAMPLES],
                         ids=[c[0] for c in DOC_EXAMPLES])  # fmt: skip
def test_documented_examples(template: str, expected: Any) -> None:
    before = copy.deepcopy(EC2)
    assert render(template) == expected
    assert before == EC2  # the event is not modified


def test_api_reference_examples() -> None:
    paths = {"instance": "$.detail.instance", "status": "$.detail.status"}
    event = {**EC2, "detail": {"instance": "i-1", "status": "stopped"}}
    # Not JSON: text mode, values as text, delivered as a string.
    assert render("<instance> is in state <status>", paths, event) == "i-1 is in state stopped"
    assert render('<instance> is in state "<status>"', paths, event) == 'i-1 is in state "stopped"'
    template = '{"myInstance": <instance>,"myStatus": "<instance> is in state \\"<status>\\""}'
    assert render(template, paths, event) == {
        "myInstance": "i-1",
        "myStatus": 'i-1 is in state "stopped"',
    }


def test_value_kinds_in_and_out_of_strings() -> None:
    paths = {"detail": "$.detail", "n": "$.detail.n", "ok": "$.detail.ok", "none": "$.detail.z"}
    event = {**EC2, "detail": {"n": 7, "ok": True, "z": None, "tag": "hi"}}
    out = render('{"d": <detail>, "n": <n>, "ok": <ok>, "z": <none>, '
                 '"text": "n=<n> ok=<ok> d=<detail>"}', paths, event)  # fmt: skip
    assert out["d"] == event["detail"]
    assert (out["n"], out["ok"], out["z"]) == (7, True, None)
    # An object inside a string loses its inner quotes, as AWS documents.
    assert out["text"] == "n=7 ok=true d={n:7,ok:true,z:null,tag:hi}"


def test_quotes_in_values_are_escaped_inside_strings() -> None:
    """Deviation from AWS (documented): the output stays valid JSON."""
    event = {**EC2, "detail": {"instance-id": 'i-"1"\n', "state": "x"}}
    assert render('{"s": "id <instance>"}', event=event) == {"s": 'id i-"1"\n'}


def test_missing_paths() -> None:
    paths = {"gone": "$.detail.nope", "state": "$.detail.state"}
    assert render('{"a": <gone>, "b": "[<gone>]", "c": <state>}', paths) == {
        "a": None,
        "b": "[]",
        "c": "RUNNING",
    }


def test_wildcards_and_indices() -> None:
    paths = {"all": "$.detail.*", "first": "$.resources[0]"}
    assert render('{"all": <all>, "first": <first>}', paths) == {
        "all": ["i-0123456789", "RUNNING"],
        "first": EC2["resources"][0],
    }


def test_event_without_detail_and_ingestion_time() -> None:
    out = render('{"e": <aws.events.event>, "at": <aws.events.event.ingestion-time>}', {})
    assert out["e"] == {k: v for k, v in EC2.items() if k != "detail"}
    assert out["at"] == CTX.ingestion_time


def test_input_path_input_and_default() -> None:
    assert compile_input({"InputPath": "$.detail"}).apply(EC2, CTX) == EC2["detail"]
    assert compile_input({"InputPath": "$.detail.state"}).apply(EC2, CTX) == "RUNNING"
    assert compile_input({"InputPath": "$.nope"}).apply(EC2, CTX) is None
    assert compile_input({"Input": '{"fixed": [1, "two"]}'}).apply(EC2, CTX) == {
        "fixed": [1, "two"]
    }
    assert compile_input({}).apply(EC2, CTX) is EC2


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "undefined variable",
        {"InputTransformer": {"InputPathsMap": PATHS, "InputTemplate": '{"a": <nope>}'}},
        "InputTransformer.InputTemplate",
        "<nope> is not defined",
    ),
    (
        "event inside a string",
        {"InputTransformer": {"InputTemplate": '{"a": "x <aws.events.event.json>"}'}},
        "InputTransformer.InputTemplate",
        "only be a JSON value",
    ),
    (
        "placeholder as key",
        {"InputTransformer": {"InputPathsMap": PATHS, "InputTemplate": '{"<state>": 1}'}},
        "InputTransformer.InputTemplate",
        "object key",
    ),
    (
        "broken JSON",
        {"InputTransformer": {"InputPathsMap": PATHS, "InputTemplate": '{"a": <state>'}},
        "InputTransformer.InputTemplate",
        "not valid JSON",
    ),
    (
        "bad path",
        {"InputTransformer": {"InputPathsMap": {"a": "$.detail[?"}, "InputTemplate": "<a>"}},
        "InputTransformer.InputPathsMap.a",
        "not a valid JSON path",
    ),
    (
        "path without $",
        {"InputTransformer": {"InputPathsMap": {"a": "detail.x"}, "InputTemplate": "<a>"}},
        "InputTransformer.InputPathsMap.a",
        "starting with $",
    ),
    (
        "bad variable name",
        {"InputTransformer": {"InputPathsMap": {"a.b": "$.x"}, "InputTemplate": "<a.b>"}},
        "InputTransformer.InputPathsMap.a.b",
        "letters, digits",
    ),
    (
        "too many variables",
        {
            "InputTransformer": {
                "InputPathsMap": {f"v{i}": "$.x" for i in range(101)},
                "InputTemplate": "<v1>",
            }
        },
        "InputTransformer.InputPathsMap",
        "101 variables",
    ),
    (
        "template too long",
        {"InputTransformer": {"InputTemplate": '"' + "x" * 8192 + '"'}},
        "InputTransformer.InputTemplate",
        "over 8192",
    ),
    (
        "empty template",
        {"InputTransformer": {"InputTemplate": ""}},
        "InputTransformer.InputTemplate",
        "non-empty",
    ),
    ("input not JSON", {"Input": "{nope"}, "Input", "not valid JSON"),
    ("input path bad", {"InputPath": "$$$"}, "InputPath", "not a valid JSON path"),
    ("two inputs", {"Input": "{}", "InputPath": "$.detail"}, "InputPath", "only one of"),
]


@pytest.mark.parametrize(("props", "prop", "message"), [c[1:] for c in BAD],
                         ids=[c[0] for c in BAD])  # fmt: skip
def test_bad_settings_are_refused(props: dict[str, Any], prop: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        compile_input(props)
    assert info.value.prop == prop
    assert message in info.value.message
    with pytest.raises(RuleError) as rule_info:
        check_rule({"Pattern": {"source": ["x"]}, **props})
    assert rule_info.value.prop == prop


TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: app.handler
      Events:
        Orders:
          Type: {kind}
          Properties:
{props}
"""


@pytest.mark.parametrize(
    ("kind", "props", "expected"),
    [
        (
            "EventBridgeRule",
            {"Pattern": {"detail": {"total": [{"numeric": [">", "100"]}]}}},
            "Fn: Events.Orders.Properties.Pattern: detail.total[0].numeric[1]: "
            "value of > must be a number, got a string",
        ),
        (
            "CloudWatchEvent",
            {"Pattern": {"source": [{"wildcard": "a**"}]}},
            "Fn: Events.Orders.Properties.Pattern: source[0].wildcard: "
            "wildcard: consecutive * at position 1",
        ),
        (
            "EventBridgeRule",
            {"Pattern": {"source": []}},
            "Fn: Events.Orders.Properties.Pattern: source: empty arrays are not allowed",
        ),
        (
            "EventBridgeRule",
            {
                "Pattern": {"source": ["x"]},
                "InputTransformer": {"InputTemplate": '{"a": <b>}'},
            },
            "Fn: Events.Orders.Properties.InputTransformer.InputTemplate: "
            "<b> is not defined in InputPathsMap",
        ),
        (
            "CloudWatchEvent",
            {"Pattern": {"source": ["x"]}, "Input": "not json"},
            "Fn: Events.Orders.Properties.Input: not valid JSON",
        ),
    ],
)
def test_bad_rules_fail_the_load_in_one_line(
    tmp_path: Path, kind: str, props: dict[str, Any], expected: str
) -> None:
    import json

    body = "\n".join(f"            {k}: {json.dumps(v)}" for k, v in props.items())
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.format(kind=kind, props=body))
    with pytest.raises(TemplateError) as info:
        load_template(path)
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(f"{path}: {expected}")


def test_a_good_rule_loads(tmp_path: Path) -> None:
    props = textwrap.indent(
        "Pattern: {source: [demo.orders], detail: {total: [{numeric: ['>', 100]}]}}\n"
        "InputTransformer:\n"
        "  InputPathsMap: {total: $.detail.total}\n"
        '  InputTemplate: \'{"total": <total>, "rule": <aws.events.rule-name>}\'\n',
        " " * 12,
    )
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.format(kind="EventBridgeRule", props=props))
    loaded = load_template(path)
    assert [e.type for e in loaded.events] == ["EventBridgeRule"]
