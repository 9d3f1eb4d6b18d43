"""SAM's ``Globals`` section: shared properties merged into every resource of a type.

Merging follows SAM's own rules (samtranslator's ``GlobalProperties``), so a
template behaves as ``sam deploy`` would make it: mappings merge key by key
(recursively), lists concatenate (global items first), and anything else —
scalars, intrinsic functions, values of different kinds — is taken from the
resource. Only the properties SAM allows in ``Globals`` are accepted there.

An ignored property given in ``Globals`` is warned about once, here, and not
merged, so it doesn't produce a warning per resource.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import Invalid, did_you_mean, show
from .intrinsics import intrinsic_name
from .schema import API, FUNCTION, HTTP_API, RESOURCE_SCHEMAS, SAM_STATE_MACHINE, SIMPLE_TABLE
from .shapes import words

GLOBALS_PROPERTIES: dict[str, frozenset[str]] = {
    "Function": frozenset(
        words(
            "Handler Runtime CodeUri DeadLetterQueue Description MemorySize Timeout VpcConfig "
            "Environment Tags PropagateTags Tracing KmsKeyArn AutoPublishAlias "
            "AutoPublishAliasAllProperties Layers DeploymentPreference RolePath "
            "PermissionsBoundary ReservedConcurrentExecutions ProvisionedConcurrencyConfig "
            "AssumeRolePolicyDocument EventInvokeConfig FileSystemConfigs "
            "CodeSigningConfigArn Architectures SnapStart EphemeralStorage FunctionUrlConfig "
            "RuntimeManagementConfig LoggingConfig RecursiveLoop SourceKMSKeyArn"
        )
    ),
    "Api": frozenset(
        words(
            "Auth Name DefinitionUri CacheClusterEnabled CacheClusterSize MergeDefinitions "
            "Variables EndpointConfiguration MethodSettings BinaryMediaTypes "
            "MinimumCompressionSize Cors GatewayResponses AccessLogSetting CanarySetting "
            "TracingEnabled OpenApiVersion Domain AlwaysDeploy PropagateTags"
        )
    ),
    "HttpApi": frozenset(
        words(
            "Auth AccessLogSettings StageVariables Tags CorsConfiguration "
            "DefaultRouteSettings Domain RouteSettings FailOnWarnings PropagateTags"
        )
    ),
    "SimpleTable": frozenset({"SSESpecification"}),
    "StateMachine": frozenset({"PropagateTags"}),
    "LayerVersion": frozenset({"PublishLambdaVersion"}),
}
SECTION_TYPES = {
    "Function": FUNCTION,
    "Api": API,
    "HttpApi": HTTP_API,
    "SimpleTable": SIMPLE_TABLE,
    "StateMachine": SAM_STATE_MACHINE,
    "LayerVersion": "AWS::Serverless::LayerVersion",
}

Globals = dict[str, dict[str, Any]]
"""Resource type -> the global properties lambdabus merges into it."""


def parse_globals(raw: Any, warn: Callable[[str, str], None]) -> Globals:
    """Validate the ``Globals`` section; ``warn(property, reason)`` for ignored ones."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Invalid("-", f"expected a mapping, got {show(raw)}", "Globals")
    parsed: Globals = {}
    for section, properties in raw.items():
        if section not in GLOBALS_PROPERTIES:
            hint = did_you_mean(str(section), GLOBALS_PROPERTIES)
            raise Invalid(str(section), f"not a Globals section{hint}", "Globals")
        if not isinstance(properties, dict):
            raise Invalid(section, f"expected a mapping, got {show(properties)}", "Globals")
        resource_type = SECTION_TYPES[section]
        schema = RESOURCE_SCHEMAS.get(resource_type)
        kept: dict[str, Any] = {}
        for key, value in properties.items():
            where = f"{section}.{key}"
            if key not in GLOBALS_PROPERTIES[section]:
                hint = did_you_mean(str(key), GLOBALS_PROPERTIES[section])
                raise Invalid(where, f"not allowed in Globals{hint}", "Globals")
            if schema is None:
                warn(where, "only matters on AWS")
            elif key in schema.ignored:
                warn(where, schema.ignored[key])
            elif key in schema.refused:
                raise Invalid(where, schema.refused[key], "Globals")
            else:
                kept[key] = value
        parsed[resource_type] = kept
    return parsed


def apply_globals(
    globals_: Globals, resource_type: str, properties: dict[str, Any], ignore: Any = None
) -> dict[str, Any]:
    """``properties`` with the type's globals merged in, minus those ``IgnoreGlobals`` names."""
    shared = globals_.get(resource_type)
    if not shared or ignore == "*":
        return properties
    if ignore is not None:
        if not isinstance(ignore, list) or not all(isinstance(k, str) for k in ignore):
            raise Invalid("IgnoreGlobals", "expected '*' or a list of property names")
        shared = {k: v for k, v in shared.items() if k not in ignore}
    merged = merge(shared, properties)
    assert isinstance(merged, dict)
    return merged


def merge(global_value: Any, local_value: Any) -> Any:
    """SAM's merge: maps key by key, lists concatenated, anything else the local value."""
    kind_global, kind_local = _kind(global_value), _kind(local_value)
    if kind_global != kind_local or kind_global == "scalar":
        return local_value
    if kind_global == "list":
        return [*global_value, *local_value]
    merged = dict(global_value)
    for key, value in local_value.items():
        merged[key] = merge(merged[key], value) if key in merged else value
    return merged


def _kind(value: Any) -> str:
    """An intrinsic function counts as a scalar: it resolves to one on AWS."""
    if isinstance(value, dict):
        return "scalar" if intrinsic_name(value) is not None else "map"
    if isinstance(value, list):
        return "list"
    return "scalar"
