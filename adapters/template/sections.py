"""The template-wide sections, checked before any resource is declared.

The top level (known sections, ``AWSTemplateFormatVersion``, the SAM
``Transform``, a non-empty ``Resources``), ``Metadata.lambdabus``, and the
shape of ``Mappings`` and ``Conditions``; a problem here is reported against
the section (``(template)``, ``Mappings``, ``Conditions``), not a resource.
"""

from __future__ import annotations

import re
from typing import Any

from . import schema as s
from .errors import Invalid, did_you_mean, show

LOGICAL_ID = re.compile(r"[A-Za-z0-9]+")
TEMPLATE = "(template)"


def top_level(doc: Any) -> dict[str, Any]:
    if doc is None:
        raise Invalid("-", "the template is empty", TEMPLATE)
    if not isinstance(doc, dict):
        raise Invalid("-", f"the top level must be a mapping, got {show(doc)}", TEMPLATE)
    known = s.TOP_LEVEL_KEYS | s.IGNORED_TOP_LEVEL_KEYS
    for key in doc:
        if key not in known:
            raise Invalid(
                str(key), "unknown top-level section" + did_you_mean(str(key), known), TEMPLATE
            )
    version = doc.get("AWSTemplateFormatVersion")
    if version is not None and str(version) != "2010-09-09":
        raise Invalid(
            "AWSTemplateFormatVersion", f"must be 2010-09-09, got {show(version)}", TEMPLATE
        )
    transform = doc.get("Transform")
    if transform is not None and transform not in (s.SAM_TRANSFORM, [s.SAM_TRANSFORM]):
        raise Invalid("Transform", f"must be {s.SAM_TRANSFORM}, got {show(transform)}", TEMPLATE)
    resources = doc.get("Resources")
    if resources is None:
        raise Invalid("Resources", "required, but missing", TEMPLATE)
    if not isinstance(resources, dict):
        raise Invalid("Resources", f"expected a mapping, got {show(resources)}", TEMPLATE)
    if not resources:
        raise Invalid("Resources", "declares no resources", TEMPLATE)
    return doc


def template_settings(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise Invalid("Metadata", f"expected a mapping, got {show(metadata)}", TEMPLATE)
    settings = metadata.get("lambdabus") or {}
    if not isinstance(settings, dict):
        raise Invalid("Metadata.lambdabus", f"expected a mapping, got {show(settings)}", TEMPLATE)
    return dict(settings)


def mappings(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Invalid("-", f"expected a mapping, got {show(raw)}", "Mappings")
    for name, top in raw.items():
        if not LOGICAL_ID.fullmatch(str(name)):
            raise Invalid(str(name), "a mapping name must be alphanumeric", "Mappings")
        if not isinstance(top, dict) or not all(isinstance(v, dict) for v in top.values()):
            raise Invalid(str(name), "expected a mapping of mappings", "Mappings")
    return raw


def conditions(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise Invalid("-", f"expected a mapping, got {show(raw)}", "Conditions")
    for name in raw:
        if not LOGICAL_ID.fullmatch(str(name)):
            raise Invalid(str(name), "a condition name must be alphanumeric", "Conditions")
    return raw
