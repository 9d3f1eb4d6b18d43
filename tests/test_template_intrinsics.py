"""Pure pieces of the template loader, table-driven: intrinsics, conditions, YAML tags,
SAM's Globals merge and the property checker. No files, no services."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.template.errors import Invalid
from adapters.template.globals import merge
from adapters.template.intrinsics import NO_VALUE, Context, StaticTargets, resolve
from adapters.template.shapes import Bool, Int, List, Map, OneOf, Str, check
from adapters.template.yaml_load import parse_yaml

QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/q"
QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:q"


def make_ctx(**conditions: Any) -> Context:
    """Given a stack in eu-west-1 with parameters, a mapping, conditions and two resources."""
    return Context(
        region="eu-west-1",
        account="123456789012",
        stack="shop",
        parameters={"Stage": "prod", "Names": ["a", "b", "c"], "Count": "3"},
        mappings={"Cfg": {"prod": {"Size": 512, "Zones": ["x", "y"]}}},
        conditions={
            "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
            "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
            "Both": {"Fn::And": [{"Condition": "IsProd"}, {"Fn::Equals": ["1", 1]}]},
            "Either": {"Fn::Or": [{"Condition": "IsDev"}, {"Fn::Equals": [True, "true"]}]},
            **conditions,
        },
        targets=StaticTargets(
            refs={"Queue": QUEUE_URL, "Api": "abc123"},
            attributes={
                "Queue": {"Arn": QUEUE_ARN, "QueueName": "q"},
                "Api": {"Outputs.Url": "https://api"},
            },
        ),
    )


RESOLVES: list[tuple[Any, Any]] = [
    # Ref: parameters, list parameters, pseudo parameters, resources
    ({"Ref": "Stage"}, "prod"),
    ({"Ref": "Names"}, ["a", "b", "c"]),
    ({"Ref": "AWS::Region"}, "eu-west-1"),
    ({"Ref": "AWS::AccountId"}, "123456789012"),
    ({"Ref": "AWS::StackName"}, "shop"),
    ({"Ref": "AWS::Partition"}, "aws"),
    ({"Ref": "AWS::URLSuffix"}, "amazonaws.com"),
    ({"Ref": "AWS::NotificationARNs"}, []),
    ({"Ref": "Queue"}, QUEUE_URL),
    # Fn::GetAtt: list form, "A.B" form, attribute names with dots, attribute from a Ref
    ({"Fn::GetAtt": ["Queue", "Arn"]}, QUEUE_ARN),
    ({"Fn::GetAtt": "Queue.QueueName"}, "q"),
    ({"Fn::GetAtt": ["Api", "Outputs.Url"]}, "https://api"),
    ({"Fn::GetAtt": ["Queue", {"Fn::Join": ["", ["A", "rn"]]}]}, QUEUE_ARN),
    # Fn::Sub: pseudo parameters, parameters, Res.Attr, literals, the [string, vars] form
    ({"Fn::Sub": "${AWS::Region}-${Stage}"}, "eu-west-1-prod"),
    ({"Fn::Sub": "q=${Queue.Arn} url=${Queue}"}, f"q={QUEUE_ARN} url={QUEUE_URL}"),
    ({"Fn::Sub": "${!Literal} and ${!AWS::Region}"}, "${Literal} and ${AWS::Region}"),
    ({"Fn::Sub": ["${Name}-${Stage}", {"Name": {"Ref": "Queue"}}]}, f"{QUEUE_URL}-prod"),
    ({"Fn::Sub": ["${Stage}", {"Stage": "shadowed"}]}, "shadowed"),
    ({"Fn::Sub": "no variables, $ and { alone"}, "no variables, $ and { alone"),
    # Fn::Join / Fn::Select / Fn::Split
    ({"Fn::Join": [",", ["a", {"Ref": "Stage"}, 1, True]]}, "a,prod,1,true"),
    ({"Fn::Join": ["-", {"Ref": "Names"}]}, "a-b-c"),
    ({"Fn::Select": [1, {"Ref": "Names"}]}, "b"),
    ({"Fn::Select": ["0", ["x"]]}, "x"),
    ({"Fn::Split": ["|", "a|b||c"]}, ["a", "b", "", "c"]),
    ({"Fn::Select": [2, {"Fn::Split": [",", "x,y,z"]}]}, "z"),
    # Fn::FindInMap with a Ref key
    ({"Fn::FindInMap": ["Cfg", {"Ref": "Stage"}, "Size"]}, 512),
    ({"Fn::Select": [1, {"Fn::FindInMap": ["Cfg", "prod", "Zones"]}]}, "y"),
    # Fn::If and AWS::NoValue removing keys and list items
    ({"Fn::If": ["IsProd", "big", "small"]}, "big"),
    ({"Fn::If": ["IsDev", "big", "small"]}, "small"),
    ({"Fn::If": ["Both", "both", "no"]}, "both"),
    ({"Fn::If": ["Either", "either", "no"]}, "either"),
    ({"a": {"Fn::If": ["IsDev", 1, {"Ref": "AWS::NoValue"}]}, "b": 2}, {"b": 2}),
    (["x", {"Ref": "AWS::NoValue"}, "y"], ["x", "y"]),
    ({"Ref": "AWS::NoValue"}, NO_VALUE),
    # Fn::Base64, Fn::GetAZs, Fn::Equals (CloudFormation compares as strings)
    ({"Fn::Base64": {"Fn::Sub": "hi ${Stage}"}}, "aGkgcHJvZA=="),
    ({"Fn::GetAZs": ""}, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ({"Fn::GetAZs": {"Ref": "AWS::Region"}}, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    ({"Fn::Equals": [{"Ref": "Count"}, 3]}, True),
    # Plain data stays plain: a "Condition" key in a policy, a mapping with two keys
    ({"Condition": {"StringEquals": {"a": "b"}}}, {"Condition": {"StringEquals": {"a": "b"}}}),
    ({"Ref": "Stage", "Other": 1}, {"Ref": "Stage", "Other": 1}),
    (
        {"Nested": [{"Ref": "Stage"}, {"k": {"Fn::Sub": "${Stage}!"}}]},
        {"Nested": ["prod", {"k": "prod!"}]},
    ),
]


@pytest.mark.parametrize(("value", "expected"), RESOLVES)
def test_resolves(value: Any, expected: Any) -> None:
    assert resolve(value, make_ctx(), "Prop") == expected


ERRORS: list[tuple[Any, str]] = [
    ({"Ref": "Nope"}, "Ref to 'Nope': no such resource, parameter or pseudo parameter"),
    ({"Ref": "Stge"}, "Ref to 'Stge': no such resource, parameter or pseudo parameter"
                      " (did you mean Stage?)"),
    ({"Ref": "AWS::Nope"}, "Ref to 'AWS::Nope': no such pseudo parameter"),
    ({"Ref": ["Stage"]}, "Ref needs a name, got a list"),
    ({"Fn::GetAtt": ["Nope", "Arn"]}, "Fn::GetAtt Nope.Arn: no resource named 'Nope'"),
    ({"Fn::GetAtt": ["Queue", "Nope"]}, "Fn::GetAtt Queue.Nope: no attribute 'Nope'"),
    ({"Fn::GetAtt": "Queue"}, "Fn::GetAtt Queue.: no attribute given"),
    ({"Fn::GetAtt": ["Stage", "Arn"]}, "Fn::GetAtt Stage.Arn: no resource named 'Stage'"),
    ({"Fn::Sub": "${Nope}"}, "Fn::Sub ${Nope}: no such resource, parameter or pseudo parameter"),
    ({"Fn::Sub": "${Nope.Arn}"}, "Fn::Sub ${Nope.Arn}: no resource named 'Nope'"),
    ({"Fn::Sub": "${Names}"}, "Fn::Sub ${Names}: expected a string, got a list"),
    ({"Fn::Sub": "${AWS::NoValue}"},
     "Fn::Sub ${AWS::NoValue}: expected a string, got AWS::NoValue"),
    ({"Fn::Sub": 5}, "Fn::Sub needs a string or [string, variables], got 5"),
    ({"Fn::Join": "x"}, "Fn::Join needs [delimiter, [values]], got 'x'"),
    ({"Fn::Join": [",", "ab"]}, "Fn::Join: expected a list, got 'ab'"),
    ({"Fn::Join": [",", [["nested"]]]}, "Fn::Join: expected a string, got a list"),
    ({"Fn::Select": [5, ["a"]]}, "Fn::Select index 5 is outside a list of 1"),
    ({"Fn::Select": ["x", ["a"]]}, "Fn::Select index 'x' is not a number"),
    ({"Fn::Split": ["", "a"]}, "Fn::Split delimiter is empty"),
    ({"Fn::FindInMap": ["Cfg", "dev", "Size"]}, "Fn::FindInMap: no 'dev' in Cfg"),
    ({"Fn::FindInMap": ["Nope", "a", "b"]}, "Fn::FindInMap: no 'Nope' in mapping"),
    ({"Fn::FindInMap": ["Cfg", "prod"]}, "Fn::FindInMap needs [map, key, key], got a list"),
    ({"Fn::If": ["Nope", 1, 2]}, "no condition named 'Nope'"),
    ({"Fn::If": ["IsPrd", 1, 2]}, "no condition named 'IsPrd' (did you mean IsProd?)"),
    ({"Fn::If": ["IsProd", 1]}, "Fn::If needs [condition, if true, if false], got a list"),
    ({"Fn::And": [{"Condition": "IsProd"}]}, "Fn::And needs 2 to 10 conditions, got a list"),
    ({"Fn::Not": ["IsProd"]},
     "expected a condition function (Fn::Equals, Fn::And, Fn::Or, Fn::Not)"),
    ({"Fn::ImportValue": "x"}, "Fn::ImportValue is not supported by lambdabus"),
    ({"Fn::Foo": 1}, "unknown intrinsic function Fn::Foo"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "problem"), ERRORS)
def test_errors_name_the_property_and_the_problem(value: Any, problem: str) -> None:
    with pytest.raises(Invalid) as caught:
        resolve({"Environment": {"Variables": {"X": value}}}, make_ctx(), "")
    assert caught.value.prop == "Environment.Variables.X"
    assert caught.value.problem == problem


def test_errors_in_lists_name_the_index() -> None:
    with pytest.raises(Invalid) as caught:
        resolve({"Layers": ["ok", {"Ref": "Nope"}]}, make_ctx(), "")
    assert caught.value.prop == "Layers[1]"


def test_conditions_are_evaluated_once_and_reject_cycles() -> None:
    ctx = make_ctx(A={"Fn::Not": [{"Condition": "B"}]}, B={"Fn::Not": [{"Condition": "A"}]})
    assert ctx.condition("IsProd", "x") is True
    assert ctx.condition("IsDev", "x") is False
    with pytest.raises(Invalid) as caught:
        ctx.condition("A", "x")
    assert (caught.value.resource, caught.value.prop) == ("Conditions", "A")
    assert caught.value.problem == "condition refers to itself"


def test_a_condition_must_be_a_condition_function() -> None:
    ctx = make_ctx(Bad="yes")
    with pytest.raises(Invalid) as caught:
        ctx.condition("Bad", "Condition")
    assert (caught.value.resource, caught.value.prop) == ("Conditions", "Bad")


# -- YAML short forms -------------------------------------------------------------------

YAML_FORMS: list[tuple[str, Any]] = [
    ("!Ref Queue", {"Ref": "Queue"}),
    ("!GetAtt Queue.Arn", {"Fn::GetAtt": ["Queue", "Arn"]}),
    ("!GetAtt Api.Outputs.Url", {"Fn::GetAtt": ["Api", "Outputs.Url"]}),
    ("!GetAtt [Queue, Arn]", {"Fn::GetAtt": ["Queue", "Arn"]}),
    ("!Sub '${Stage}-x'", {"Fn::Sub": "${Stage}-x"}),
    ("!Sub ['${A}', {A: !Ref B}]", {"Fn::Sub": ["${A}", {"A": {"Ref": "B"}}]}),
    ("!Join ['', [!Ref A, x]]", {"Fn::Join": ["", [{"Ref": "A"}, "x"]]}),
    ("!If [C, !Ref A, !Ref AWS::NoValue]",
     {"Fn::If": ["C", {"Ref": "A"}, {"Ref": "AWS::NoValue"}]}),
    ("!Equals [!Ref S, prod]", {"Fn::Equals": [{"Ref": "S"}, "prod"]}),
    ("!And [!Condition A, !Not [!Condition B]]",
     {"Fn::And": [{"Condition": "A"}, {"Fn::Not": [{"Condition": "B"}]}]}),
    ("!Or [!Condition A, !Condition B]", {"Fn::Or": [{"Condition": "A"}, {"Condition": "B"}]}),
    ("!Select [0, !Split [',', 'a,b']]", {"Fn::Select": [0, {"Fn::Split": [",", "a,b"]}]}),
    ("!FindInMap [M, !Ref AWS::Region, K]",
     {"Fn::FindInMap": ["M", {"Ref": "AWS::Region"}, "K"]}),
    ("!Base64 {Fn::Sub: x}", {"Fn::Base64": {"Fn::Sub": "x"}}),
    ("!GetAZs ''", {"Fn::GetAZs": ""}),
    ("!ImportValue shared", {"Fn::ImportValue": "shared"}),
    ("2010-09-09", "2010-09-09"),
    ("{200: ok, true: yes}", {"200": "ok", "true": True}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), YAML_FORMS)
def test_yaml_short_forms_become_long_forms(text: str, expected: Any) -> None:
    assert parse_yaml(f"v: {text}\n") == {"v": expected}


def test_yaml_merge_keys_still_work() -> None:
    doc = parse_yaml("base: &b {a: 1, b: 2}\nd: {<<: *b, b: 3}\n")
    assert doc["d"] == {"a": 1, "b": 3}


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("a: 1\na: 2\n", "line 2", "duplicate key 'a'"),
        (
            "a: !Nope x\n",
            "line 1, column 4",
            "could not determine a constructor for the tag '!Nope'",
        ),
        ("a: [\n", "line 2, column 1", "expected the node content, but found '<stream end>'"),
        ("a: &x [*x]\n", "line 1", "an alias refers to itself"),
        ("a: " + "[" * 150 + "]" * 150 + "\n", "line 1", "nested deeper than 100 levels"),
    ],
)
def test_yaml_problems_are_one_line(text: str, where: str, problem: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_yaml(text)
    assert (caught.value.resource, caught.value.prop, caught.value.problem) == (
        "(yaml)",
        where,
        problem,
    )


def test_alias_expansion_is_measured_before_anything_expands() -> None:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]" for i in range(1, 12)]
    with pytest.raises(Invalid) as caught:
        parse_yaml("\n".join(lines) + "\n")
    assert caught.value.problem.startswith("more than 200000 nodes once aliases are expanded")


def test_aliases_nesting_deep_once_expanded_are_refused() -> None:
    lines = ["a0: &a0 " + "[" * 60 + "]" * 60]
    lines += [f"a{i}: &a{i} " + "[" * 60 + f"*a{i - 1}" + "]" * 60 for i in range(1, 3)]
    with pytest.raises(Invalid) as caught:
        parse_yaml("\n".join(lines) + "\n")
    assert caught.value.problem == "nested deeper than 100 levels once aliases are expanded"


# -- Globals merge (SAM's rules) ---------------------------------------------------------

MERGES: list[tuple[Any, Any, Any]] = [
    ({"Timeout": 3}, {"Timeout": 10}, {"Timeout": 10}),
    ({"Timeout": 3}, {"MemorySize": 256}, {"Timeout": 3, "MemorySize": 256}),
    ({"Env": {"Vars": {"A": "g", "B": "g"}}}, {"Env": {"Vars": {"B": "l", "C": "l"}}},
     {"Env": {"Vars": {"A": "g", "B": "l", "C": "l"}}}),
    ({"Layers": ["g1", "g2"]}, {"Layers": ["l1"]}, {"Layers": ["g1", "g2", "l1"]}),
    ({"CodeUri": "s3://b/k"}, {"CodeUri": {"Bucket": "b"}}, {"CodeUri": {"Bucket": "b"}}),
    ({"Env": {"A": 1}}, {"Env": {"Ref": "Param"}}, {"Env": {"Ref": "Param"}}),
    ({"Env": {"Ref": "Param"}}, {"Env": {"A": 1}}, {"Env": {"A": 1}}),
]  # fmt: skip


@pytest.mark.parametrize(("global_value", "local_value", "expected"), MERGES)
def test_globals_merge_like_sam(global_value: Any, local_value: Any, expected: Any) -> None:
    assert merge(global_value, local_value) == expected


# -- The property checker ------------------------------------------------------------------

SHAPE = Map(
    {
        "Name": Str(required=True),
        "Count": Int(1, 10),
        "On": Bool(),
        "Mode": Str("a", "b"),
        "Items": List(Int()),
        "Either": OneOf(Bool(), Map({"X": Str()})),
    },
    ignored=("Tags",),
    refused={"Inline": "not supported: use a file"},
)

CHECKS: list[tuple[Any, Any]] = [
    ({"Name": "n"}, {"Name": "n"}),
    ({"Name": 5, "Count": "7", "On": "TRUE"}, {"Name": "5", "Count": 7, "On": True}),
    ({"Name": "n", "Count": 3.0, "Items": ["1", 2]}, {"Name": "n", "Count": 3, "Items": [1, 2]}),
    ({"Name": "n", "Either": {"X": 1}}, {"Name": "n", "Either": {"X": "1"}}),
    ({"Name": "n", "Tags": {"a": "b"}}, {"Name": "n"}),
]

CHECK_ERRORS: list[tuple[Any, str, str]] = [
    ({}, "Name", "required, but missing"),
    ({"Name": "n", "Count": "abc"}, "Count", "expected an integer, got 'abc'"),
    ({"Name": "n", "Count": 11}, "Count", "must be between 1 and 10, got 11"),
    ({"Name": "n", "On": "yes"}, "On", "expected true or false, got 'yes'"),
    ({"Name": "n", "Mode": "c"}, "Mode", "must be one of a, b; got 'c'"),
    ({"Name": ["n"]}, "Name", "expected a string, got a list"),
    ({"Name": "n", "Items": [1, "x"]}, "Items[1]", "expected an integer, got 'x'"),
    ({"Name": "n", "Either": "x"}, "Either", "expected true or false or a mapping, got 'x'"),
    ({"Name": "n", "Either": {"Y": 1}}, "Either",
     "expected true or false or a mapping, got a mapping"),
    ({"Name": "n", "Cuont": 1}, "Cuont", "unknown property (did you mean Count?)"),
    ({"Name": "n", "Inline": "x"}, "Inline", "not supported: use a file"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), CHECKS)
def test_check_coerces_like_cloudformation(value: Any, expected: Any) -> None:
    warned: list[tuple[str, str]] = []
    assert check(value, SHAPE, "", lambda p, r: warned.append((p, r))) == expected
    assert warned == ([("Tags", "only matters on AWS")] if "Tags" in value else [])


@pytest.mark.parametrize(("value", "prop", "problem"), CHECK_ERRORS)
def test_check_errors(value: Any, prop: str, problem: str) -> None:
    with pytest.raises(Invalid) as caught:
        check(value, SHAPE, "", lambda p, r: None)
    assert (caught.value.prop, caught.value.problem) == (prop, problem)
