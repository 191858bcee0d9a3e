"""User-facing errors (in the base layer: every einloom package imports them from here).

Every problem with something a user wrote (a spec, an architecture, a workload, a mapping, an
experiment, a command-line value) is raised as an :class:`EinloomError` (or a subclass) that names
where the problem is and what to write instead.  The CLI prints ``str(error)`` as one line and exits
with status 2; it never shows a Python traceback for these.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in a user file a problem is.  Every field is optional."""

    file: str | None = None
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file if self.line is None else f"{self.file}:{self.line}")
        elif self.line is not None:
            parts.append(f"line {self.line}")
        if self.field:
            parts.append(self.field)
        return ": ".join(parts)


class EinloomError(Exception):
    """A problem with user input, reported as ``LOCATION: PROBLEM (hint: ...)``."""

    exit_code = 2

    def __init__(self, message: str, *, location: Location | None = None, hint: str | None = None):
        self.message = message
        self.location = location or Location()
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = str(self.location)
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return _one_line(text)


def _one_line(text: str) -> str:
    """Control characters (a newline in a quoted key, a NUL in a path) shown escaped: one line, always."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


class SpecError(EinloomError):
    """A malformed cascade spec (einsum/)."""


class ArchError(EinloomError):
    """A malformed or unusable architecture description (cost_models/)."""


class WorkloadError(EinloomError):
    """A malformed workload description."""


class MappingError(EinloomError):
    """A malformed or infeasible mapping (mapper/)."""


class ExperimentError(EinloomError):
    """A malformed experiment file."""


class ToolError(EinloomError):
    """An external tool (Verilator, Yosys, nextpnr) failed or is missing."""


class InputError(EinloomError):
    """A malformed command-line value or input data file (``--inputs``, ``--ranks``, ``--out``)."""


class CheckFailed(EinloomError):
    """A requested check ran and failed (exit status 1, not 2: the input was fine, the result is not)."""

    exit_code = 1
