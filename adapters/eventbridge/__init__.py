"""EventBridge custom events: ``PutEvents`` on the edge, routed by the template's rules.

- :mod:`.put_events`: the API operation (validation as AWS does it, per-entry results);
- :mod:`.routing`: ``EventBridgeRule``/``CloudWatchEvent`` events → rules → envelopes;
- :mod:`.transform`: ``Input``, ``InputPath`` and ``InputTransformer``;
- :mod:`.metrics`: ``lambdabus_custom_events_total{outcome}``.

Patterns are matched by :mod:`adapters.patterns`. The template loader checks every rule
with :func:`.routing.check_rule`, so a bad pattern or input transformer fails the load.
Import the submodules; this package imports nothing, so the loader can use it cheaply.
"""
