"""What each resource answers to ``Ref`` and ``Fn::GetAtt``: names, ARNs, URLs.

Values are the ones AWS would give, built from the physical name, the
region and :data:`ACCOUNT_ID` (moto's default account, so ARNs match what
the embedded moto server reports). A resource without an explicit name gets
``{stack}-{LogicalId}`` (buckets lowercased and trimmed to S3's rules, FIFO
queues and topics suffixed ``.fifo``) — deterministic, unlike
CloudFormation's random suffix, so restarts find the same queues and tables.

Identities are computed lazily, on first reference, because a name may itself
be an intrinsic that refers to another resource; cycles are errors.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bus.runtime_env import DEFAULT_ACCOUNT, DEFAULT_REGION

from . import schema as s
from .errors import Invalid, blame, show
from .intrinsics import NO_VALUE, Context, resolve

ACCOUNT_ID = DEFAULT_ACCOUNT
"""The account in every ARN: moto's default, so ARNs agree with the embedded moto."""


def current_region() -> str:
    """``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else :data:`DEFAULT_REGION`.

    Read per load, not at import, so a process (or test) that sets the region
    after importing still gets it.
    """
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


STREAM_LABEL = "1970-01-01T00:00:00.000"
"""The fixed label of every table's stream ARN (AWS uses the stream's creation time)."""


@dataclass
class Declaration:
    """A resource as written (Globals merged), before its properties are resolved."""

    logical_id: str
    type: str
    properties: dict[str, Any]
    condition: str | None = None
    implicit: bool = False
    """Created by SAM, not written (``ServerlessRestApi``, ``<Function>Role``)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Its ``Metadata.lambdabus`` (functions only), checked."""


@dataclass(frozen=True)
class Identity:
    name: str
    ref: str
    arn: str | None
    attributes: Mapping[str, str] = field(default_factory=dict)
    any_attribute: bool = False
    """Ignored resources: any attribute resolves (to a placeholder), as we can't know them."""


Property = Callable[[str], Any]


class ResourceTable:
    """The :class:`~adapters.template.intrinsics.Targets` of a loaded template."""

    def __init__(self, declarations: Mapping[str, Declaration], stack: str, region: str) -> None:
        self.declarations = declarations
        self.stack, self.region = stack, region
        self.left_out: dict[str, str] = {}
        """Logical id -> the false Condition that leaves it out."""
        self._identities: dict[str, Identity] = {}
        self._busy: set[str] = set()

    def __contains__(self, logical_id: object) -> bool:
        return logical_id in self.declarations

    def names(self) -> Iterable[str]:
        return self.declarations.keys()

    def ref(self, logical_id: str, ctx: Context) -> Any:
        return self.identity(logical_id, ctx).ref

    def get_att(self, logical_id: str, attribute: str, ctx: Context) -> Any:
        ident = self.identity(logical_id, ctx)
        if attribute in ident.attributes:
            return ident.attributes[attribute]
        if ident.any_attribute:
            return ident.arn if attribute == "Arn" else f"{ident.name}-{attribute}"
        known = ", ".join(ident.attributes) or "none"
        kind = self.declarations[logical_id].type
        raise LookupError(f"{kind} has no attribute {attribute!r} (it has: {known})")

    def identity(self, logical_id: str, ctx: Context) -> Identity:
        """Name, Ref value, ARN and attributes of a resource that is in the stack."""
        if logical_id in self.left_out:
            condition = self.left_out[logical_id]
            raise LookupError(f"{logical_id} is left out: its Condition {condition} is false")
        known = self._identities.get(logical_id)
        if known is not None:
            return known
        decl = self.declarations[logical_id]
        if logical_id in self._busy:
            raise LookupError(f"the name of {logical_id} depends on itself (circular reference)")
        self._busy.add(logical_id)
        try:
            with blame(logical_id):
                ident = self._build(decl, ctx)
        finally:
            self._busy.discard(logical_id)
        self._identities[logical_id] = ident
        return ident

    def find(self, value: Any, types: Iterable[str], ctx: Context) -> str | None:
        """The logical id of the resource of one of ``types`` whose Ref, ARN or an attribute
        equals ``value`` (how an event's ``Queue: arn:...`` finds its queue)."""
        wanted = set(types)
        for logical_id, decl in self.declarations.items():
            if decl.type not in wanted or logical_id in self.left_out:
                continue
            ident = self.identity(logical_id, ctx)
            if value in (ident.ref, ident.arn, *ident.attributes.values()):
                return logical_id
        return None

    def _build(self, decl: Declaration, ctx: Context) -> Identity:
        def prop(name: str) -> Any:
            value = resolve(decl.properties.get(name), ctx, name)
            return None if value is NO_VALUE else value

        builder = _BUILDERS.get(decl.type, _generic)
        return builder(decl, prop, self)

    def default_name(self, logical_id: str) -> str:
        return f"{self.stack}-{logical_id}"

    def arn(self, service: str, resource: str, *, regional: bool = True) -> str:
        region = self.region if regional else ""
        return f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{resource}"


def flag(value: Any) -> bool:
    """A resolved boolean property, which may still be the string ``"true"``."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _name(prop: Property, key: str) -> str | None:
    value = prop(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise Invalid(key, f"expected a string, got {show(value)}")


def _function(decl: Declaration, prop: Property, t: ResourceTable) -> Identity:
    name = decl.logical_id
    arn = t.arn("lambda", f"function:{name}")
    return Identity(name, name, arn, {"Arn": arn})


def _queue(decl: Declaration, prop: Property, t: ResourceTable) -> Identity:
    fifo = flag(prop("FifoQueue"))
    name = _name(prop, "QueueName") or t.default_name(decl.logical_id) + (".fifo" if fifo else "")
    url = f"https://sqs.{t.region}.amazonaws.com/{ACCOUNT_ID}/{name}"
    arn = t.arn("sqs", name)
    return Identity(name, url, arn, {"Arn": arn, "QueueName": name, "QueueUrl": url})


def _topic(decl: Declaration, prop: Property, t: ResourceTable) -> Identity:
    fifo = flag(prop("FifoTopic"))
    name = _name(prop, "TopicName") or t.default_name(decl.logical_id) + (".fifo" if fifo else "")
    arn = t.arn("sns", name)
    return Identity(name, arn, arn, {"TopicArn": arn, "TopicName": name})


def _subscription(decl: Declaration, prop: Property, t: ResourceTable) -> Identity:
    name = t.default_name(decl.logical_id)
    arn = t.arn("sns", f"{name}:{uuid.uuid5(uuid.NAMESPACE_URL, name)}")
    return Identity(name, arn, arn, {"Arn": arn})


def bucket_name(text: str) -> str:
    """A valid S3 bucket name from ``text``: lowercase, ``[a-z0-9.-]``, 3 to 63 characters."""
    name = re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip(".-")[:63].rstrip(".-")
    return name.ljust(3, "0")


def _bucket(decl: Declaration, prop: Property, t: ResourceTable) -> Identity:
    name = _name(prop, "BucketName") or bucket_name(t.default_name(decl.logical_id))
    arn = f"arn:aws:s3:::{name}"
    attributes = {
        "Arn": arn,
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{t.region}.amazonaws.com",
        "DualStackDomainName": f"{name}.s3.dualstack.{t.region}.amazonaws.com",
        "WebsiteURL": f"http://{name}.s3-website-{t.region}.amazonaws.com",
    }
    return Identity(name, name, arn, attributes)


def _table(decl: Declaration, prop: Property, t: ResourceTable) -> Identity:
    name = _name(prop, "TableName") or t.default_name(decl.logical_id)
    arn = t.arn("dynamodb", f"table/{name}")
    attributes = {"Arn": arn}
    if decl.type == s.TABLE and prop("StreamSpecification") is not None:
        attributes["StreamArn"] = f"{arn}/stream/{STREAM_LABEL}"
    return Identity(name, name, arn, attributes)


def _state_machine(decl: Declaration, prop: Property, t: ResourceTable) -> Identity:
    key = "Name" if decl.type == s.SAM_STATE_MACHINE else "StateMachineName"
    name = _name(prop, key) or t.default_name(decl.logical_id)
    arn = t.arn("states", f"stateMachine:{name}")
    return Identity(name, arn, arn, {"Arn": arn, "Name": name})


def api_id(stack: str, logical_id: str) -> str:
    """A stable 10-character id, shaped like API Gateway's."""
    return hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:10]


def _api(decl: Declaration, prop: Property, t: ResourceTable) -> Identity:
    name = _name(prop, "Name") or t.default_name(decl.logical_id)
    ident = api_id(t.stack, decl.logical_id)
    if decl.type == s.API:
        root = api_id(ident, "/")
        arn = f"arn:aws:apigateway:{t.region}::/restapis/{ident}"
        return Identity(name, ident, arn, {"RootResourceId": root})
    endpoint = f"https://{ident}.execute-api.{t.region}.amazonaws.com"
    arn = f"arn:aws:apigateway:{t.region}::/apis/{ident}"
    return Identity(name, ident, arn, {"ApiEndpoint": endpoint, "ApiId": ident})


def _generic(decl: Declaration, prop: Property, t: ResourceTable) -> Identity:
    """Resources lambdabus ignores: plausible values, so references to them still resolve."""
    name = t.default_name(decl.logical_id)
    parts = decl.type.split("::")
    service, kind = (parts[1].lower(), parts[-1].lower()) if len(parts) == 3 else ("x", "x")
    if service == "iam":
        arn = f"arn:aws:iam::{ACCOUNT_ID}:{kind}/{name}"
    else:
        arn = t.arn(service, f"{kind}/{name}")
    return Identity(name, name, arn, {}, any_attribute=True)


_BUILDERS: dict[str, Callable[[Declaration, Property, ResourceTable], Identity]] = {
    s.FUNCTION: _function,
    s.QUEUE: _queue,
    s.TOPIC: _topic,
    s.SUBSCRIPTION: _subscription,
    s.BUCKET: _bucket,
    s.TABLE: _table,
    s.SIMPLE_TABLE: _table,
    s.SAM_STATE_MACHINE: _state_machine,
    s.SFN_STATE_MACHINE: _state_machine,
    s.API: _api,
    s.HTTP_API: _api,
}
