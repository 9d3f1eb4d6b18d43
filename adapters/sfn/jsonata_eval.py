"""``QueryLanguage: JSONata``: ``{% expr %}`` strings evaluated with jsonata-python.

Only a string that is exactly ``{% ... %}`` is an expression; every other value
is a literal, however much it looks like a path (as in AWS). ``$states`` holds
input, context, result and errorOutput; workflow variables bind as ``$name``.
AWS's extra functions ($partition, $range, $hash, $random, $uuid, $parse) are
registered on each expression.
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

from . import intrinsics
from .errors import QUERY_EVALUATION, StatesError

_COMPILED: dict[str, Any] = {}


def is_expression(value: Any) -> bool:
    return (
        isinstance(value, str)
        and value.startswith("{%")
        and value.endswith("%}")
        and len(value) >= 4
    )


def expression_text(value: str) -> str:
    return value[2:-2].strip()


def _seq(items: list[Any]) -> Any:
    from jsonata import utils

    return utils.Utils.create_sequence_from_iter(items)


def _partition(arr: Any, size: Any) -> Any:
    return intrinsics.FUNCTIONS["ArrayPartition"](list(arr), size)


def _range(start: Any, end: Any, step: Any = 1) -> Any:
    return _seq(intrinsics.FUNCTIONS["ArrayRange"](start, end, step))


def _random(seed: Any = None) -> float:
    return (random.Random(seed) if seed is not None else random.SystemRandom()).random()


def _compile(text: str) -> Any:
    expr = _COMPILED.get(text)
    if expr is None:
        import jsonata  # here, not at import: loading a template must stay light

        try:
            expr = jsonata.Jsonata(text)
        except Exception as exc:
            raise StatesError(QUERY_EVALUATION, f"The JSONata expression '{text}' is invalid: "
                              f"{exc}", runtime=True) from None  # fmt: skip
        expr.register_lambda("partition", _partition)
        expr.register_lambda("range", _range)
        expr.register_lambda("hash", lambda v, a: intrinsics.FUNCTIONS["Hash"](v, a))
        expr.register_lambda("random", _random)
        expr.register_lambda("uuid", lambda: str(uuid.uuid4()))
        expr.register_lambda("parse", lambda s: json.loads(s))
        if len(_COMPILED) < 2048:
            _COMPILED[text] = expr
    return expr


def evaluate_expression(text: str, states: dict[str, Any], variables: dict[str, Any],
                        field: str) -> Any:  # fmt: skip
    expr = _compile(text)
    frame = expr.create_frame()
    frame.bind("states", states)
    for name, value in variables.items():
        frame.bind(name, value)
    try:
        return _plain(expr.evaluate(None, frame))
    except StatesError:
        raise
    except Exception as exc:
        raise StatesError(
            QUERY_EVALUATION,
            f"The JSONata expression '{text}' specified for the field '{field}' "
            f"could not be evaluated: {exc}",
            runtime=True,
        ) from None


def _plain(v: Any) -> Any:
    """jsonata-python's sequences and numbers as plain JSON values."""
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def evaluate_template(value: Any, states: dict[str, Any], variables: dict[str, Any],
                      field: str) -> Any:  # fmt: skip
    """Evaluate every ``{% %}`` string inside ``value``; everything else stays literal."""
    if is_expression(value):
        return evaluate_expression(expression_text(value), states, variables, field)
    if isinstance(value, dict):
        return {k: evaluate_template(v, states, variables, field) for k, v in value.items()}
    if isinstance(value, list):
        return [evaluate_template(v, states, variables, field) for v in value]
    return value


def type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"
