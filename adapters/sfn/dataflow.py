"""A state's input and output processing, in both query languages.

JSONPath: InputPath → Parameters → (the work) → ResultSelector → ResultPath →
OutputPath, with ``.$`` keys evaluated as paths or intrinsic functions.
JSONata: Arguments → (the work) → Output, with ``$states`` bound. Assign in
either. Pure functions of the state's definition and data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import intrinsics, jsonata_eval, paths
from .errors import RUNTIME, StatesError


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def template(tpl: Any, data: Any, context: Any, variables: dict[str, Any]) -> Any:
    """A Parameters-style payload template: ``key.$`` values are paths or intrinsics."""
    if isinstance(tpl, dict):
        out: dict[str, Any] = {}
        for key, value in tpl.items():
            if key.endswith(".$") and isinstance(value, str):
                out[key[:-2]] = dollar(key, value, data, context, variables)
            else:
                out[key] = template(value, data, context, variables)
        return out
    if isinstance(tpl, list):
        return [template(v, data, context, variables) for v in tpl]
    return tpl


def dollar(key: str, text: str, data: Any, context: Any, variables: dict[str, Any]) -> Any:
    if intrinsics.looks_intrinsic(text):
        return intrinsics.evaluate(text, data, context, variables)
    value = paths.get(text, data, context, variables)
    if value is paths.MISSING:
        where = "context object" if text.startswith("$$") else "input"
        shown = context if text.startswith("$$") else data
        raise StatesError(
            RUNTIME,
            f"The JSONPath '{text}' specified for the field '{key}' could not be found in the "
            f"{where} '{compact(shown)}'",
            runtime=True,
        )
    return value


def path_or_intrinsic(text: str, data: Any, context: Any, variables: dict[str, Any]) -> Any:
    if intrinsics.looks_intrinsic(text):
        return intrinsics.evaluate(text, data, context, variables)
    return paths.require(text, data, context, variables)


@dataclass
class Scope:
    """One state's view while it runs: its definition, raw input, context, variables."""

    name: str
    spec: dict[str, Any]
    lang: str
    raw: Any
    context: dict[str, Any]
    variables: dict[str, Any] = field(default_factory=dict)

    @property
    def jsonata(self) -> bool:
        return self.lang == "JSONata"

    def states(self, **extra: Any) -> dict[str, Any]:
        return {"input": self.raw, "context": self.context, **extra}

    def expr(self, value: Any, field_name: str, **extra: Any) -> Any:
        """A JSONata-state field value: ``{% %}`` strings evaluated, literals kept."""
        return jsonata_eval.evaluate_template(value, self.states(**extra), self.variables,
                                              field_name)  # fmt: skip

    def effective_input(self) -> Any:
        if self.jsonata or "InputPath" not in self.spec:
            return self.raw
        input_path = self.spec["InputPath"]
        if input_path is None:
            return {}
        return paths.require(input_path, self.raw, self.context, self.variables)

    def arguments(self, effective: Any, context: dict[str, Any] | None = None) -> Any:
        """The payload handed to the work (Parameters / Arguments), or the effective input."""
        ctx = context if context is not None else self.context
        if self.jsonata:
            if "Arguments" not in self.spec:
                return effective
            states = {"input": self.raw, "context": ctx}
            return jsonata_eval.evaluate_template(self.spec["Arguments"], states, self.variables,
                                                  "Arguments")  # fmt: skip
        if "Parameters" not in self.spec:
            return effective
        return template(self.spec["Parameters"], effective, ctx, self.variables)

    def output(self, result: Any) -> Any:
        """The state's output from the work's result."""
        if self.jsonata:
            if "Output" in self.spec:
                return self.expr(self.spec["Output"], "Output", result=result)
            return result
        if "ResultSelector" in self.spec:
            result = template(self.spec["ResultSelector"], result, self.context, self.variables)
        return self.output_path(self.result_path(result))

    def result_path(self, result: Any) -> Any:
        if "ResultPath" not in self.spec:
            return result
        rp = self.spec["ResultPath"]
        if rp is None:
            return self.raw
        return paths.assign(rp, self.raw, result)

    def output_path(self, value: Any) -> Any:
        if "OutputPath" not in self.spec:
            return value
        if self.spec["OutputPath"] is None:
            return {}
        return paths.require(self.spec["OutputPath"], value, self.context, self.variables)

    def assignments(self, result: Any, spec: dict[str, Any] | None = None) -> dict[str, Any]:
        """Variables the state (or a Choice rule / catcher: ``spec``) assigns."""
        source = (spec if spec is not None else self.spec).get("Assign")
        if not isinstance(source, dict):
            return {}
        if self.jsonata:
            return dict(self.expr(source, "Assign", result=result))
        return dict(template(source, result, self.context, self.variables))
