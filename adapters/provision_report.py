"""What provisioning tells its caller: a report of lines, or one error line.

The CLI prints both as they are, so every entry is one human line naming the
resource (type, logical id or ``Function.Event``, physical name) and what
happened to it; AWS errors never reach the user as tracebacks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

MAX_LINE = 500
"""Longest error line: an AWS message echoing a hostile value can't make it a page."""

CREATED, KEPT, UPDATED, SKIPPED = "created", "kept", "updated", "skipped"


class ProvisionError(Exception):
    """Provisioning stopped; ``str(error)`` is one line naming the resource and the cause."""

    def __init__(self, label: str, problem: str) -> None:
        text = " ".join(f"{label}: {problem}".split())
        super().__init__(text if len(text) <= MAX_LINE else text[: MAX_LINE - 3] + "...")
        self.label = label


@dataclass(frozen=True)
class ProvisionReport:
    """What one run did, one line per resource or piece of wiring."""

    created: list[str]
    kept: list[str]
    updated: list[str]
    skipped: list[str] = field(default_factory=list)
    """What the template asks for that lambdabus does not realise (an ``email``
    subscription, a bucket's ``LambdaConfigurations``), each with the reason. Not a change."""

    def changed(self) -> bool:
        """Whether the run created or updated anything; False on an idempotent rerun."""
        return bool(self.created or self.updated)

    def lines(self) -> list[str]:
        """Every line, in the order the CLI prints them."""
        return [*self.created, *self.updated, *self.kept, *self.skipped]


class Ledger:
    """Collects the report while a run goes, and turns AWS failures into one error line."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {CREATED: [], KEPT: [], UPDATED: [], SKIPPED: []}

    def note(self, outcome: str, label: str, detail: str = "") -> None:
        """Record ``label: outcome`` (with ``detail`` in parentheses when given)."""
        self._lines[outcome].append(f"{label}: {outcome}" + (f" ({detail})" if detail else ""))

    def report(self) -> ProvisionReport:
        return ProvisionReport(
            created=list(self._lines[CREATED]),
            kept=list(self._lines[KEPT]),
            updated=list(self._lines[UPDATED]),
            skipped=list(self._lines[SKIPPED]),
        )

    @staticmethod
    @contextmanager
    def blame(label: str) -> Iterator[None]:
        """Any AWS error inside becomes a :class:`ProvisionError` naming ``label``."""
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code") or "Error"
            message = error.get("Message") or str(exc)
            operation = exc.operation_name
            raise ProvisionError(label, f"{operation} failed: {code}: {message}") from None
        except BotoCoreError as exc:
            raise ProvisionError(label, str(exc)) from None


def aws_code(exc: ClientError) -> str:
    """The error code of a ClientError ('' if AWS sent none)."""
    return str(exc.response.get("Error", {}).get("Code", ""))
