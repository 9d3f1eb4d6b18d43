"""The SAM template loader: a ``template.yaml`` becomes a :class:`bus.spec.Stack` plus
the resources, event sources and settings the rest of lambdabus needs.

Three tiers, each explicit in :mod:`.schema` and :mod:`.event_schema`
(DESIGN.md, "The template (SAM)"):

- **supported** resources and properties are resolved, checked and used;
- **accepted and ignored** ones (IAM, tracing, tags, layers, deployment
  preferences, ``Outputs``, …) load, with one warning line each:
  ``<file>: <resource>: <property>: ignored (only matters on AWS)``;
- **everything else** is a :class:`TemplateError` whose message is one line:
  ``<file>: <resource>: <property>: <what is wrong>``.

Template-wide problems use a section in the resource slot: ``(file)``,
``(yaml)``, ``(template)``, ``Parameters``, ``Mappings``, ``Conditions``,
``Globals``. Hostile input (alias bombs, deep nesting, files over 1 MiB,
non-UTF-8 text) is a ``TemplateError`` too, found before anything expands.

References resolve to the values AWS would give, in :data:`ACCOUNT_ID` and the
region of ``AWS_REGION``/``AWS_DEFAULT_REGION`` (else :data:`DEFAULT_REGION`),
read at each load.
"""

from .errors import TemplateError
from .loaded import EventSource, FailureDestination, LoadedTemplate, Resource
from .loader import load_template
from .models import ACCOUNT_ID, DEFAULT_REGION, current_region
from .yaml_load import MAX_TEMPLATE_BYTES

__all__ = [
    "ACCOUNT_ID",
    "DEFAULT_REGION",
    "MAX_TEMPLATE_BYTES",
    "EventSource",
    "FailureDestination",
    "LoadedTemplate",
    "Resource",
    "TemplateError",
    "current_region",
    "load_template",
]
