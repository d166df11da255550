"""Errors that reach users.

Every error OpenIR raises for bad input names what was wrong and where (file, field), so the CLI
can print one clear line and exit non-zero instead of showing a traceback.
"""

from __future__ import annotations

from pathlib import Path


class OpenIRError(Exception):
    """Base of all errors meant for a user; the CLI prints ``str(err)`` and exits with ``exit_code``."""

    exit_code: int = 1


class InputError(OpenIRError):
    """A file, folder or value given by the user cannot be used.

    ``source`` is the file (or other origin) and ``field`` the element inside it, when known.
    """

    exit_code = 2

    def __init__(self, problem: str, source: str | Path | None = None, field: str | None = None):
        self.problem = problem
        self.source = str(source) if source is not None else None
        self.field = field
        where = ""
        if self.source:
            where = f"{self.source}"
            if field:
                where += f" [{field}]"
            where += ": "
        elif field:
            where = f"[{field}] "
        super().__init__(f"{where}{problem}")


class GeometryError(OpenIRError):
    """Two grids, affines or points that should agree do not."""

    exit_code = 2


class UnknownLabelError(OpenIRError, KeyError):
    """A label name or value that the label map does not hold."""

    exit_code = 2

    def __init__(self, name: str | int, available: list[str]):
        self.name = name
        self.available = available
        shown = ", ".join(available) if available else "(none)"
        super().__init__(f"unknown label {name!r}; available labels: {shown}")

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class DataFileError(OpenIRError):
    """A packaged or user-supplied YAML data file fails validation."""

    exit_code = 2
