"""How the loader reports a bad template: one line, naming file, resource and property.

Users fix templates from that line alone, so deep code raises :class:`Invalid`
with the property path it knows; the code that knows which resource it is
working on fills in the resource (:func:`blame`), and :func:`load_template`
adds the file name and turns it into :class:`TemplateError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

MAX_LINE = 1000


class TemplateError(Exception):
    """One line: ``'<file>: <resource>: <property>: <what is wrong>'``."""


class Invalid(Exception):
    """A problem found before the file name is known: property path plus message.

    ``resource`` is the logical id (or a section such as ``Parameters``,
    ``Globals``, ``(template)``, ``(file)``, ``(yaml)``) once someone knows it.
    """

    def __init__(self, prop: str, problem: str, resource: str | None = None) -> None:
        super().__init__(f"{resource or '?'}: {prop}: {problem}")
        self.prop = prop
        self.problem = problem
        self.resource = resource

    def line(self, file: str) -> str:
        """The user-facing line: whitespace flattened so it stays one line, and capped at
        :data:`MAX_LINE` characters so a hostile value can't make it a megabyte."""
        text = f"{file}: {self.resource or '(template)'}: {self.prop or '-'}: {self.problem}"
        text = " ".join(text.split())
        return text if len(text) <= MAX_LINE else text[: MAX_LINE - 3] + "..."


@contextmanager
def blame(resource: str) -> Iterator[None]:
    """Attribute any :class:`Invalid` raised inside to ``resource`` unless already attributed.

    A nested resource's own problem (found while resolving a reference to it)
    keeps its own name: the user must fix that resource, not the referrer.
    """
    try:
        yield
    except Invalid as exc:
        if exc.resource is None:
            exc.resource = resource
        raise


def show(value: Any) -> str:
    """A short description of a wrong value, for error lines."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean X?)`` when a candidate is close, else an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""
