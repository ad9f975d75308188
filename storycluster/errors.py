"""Errors the library raises; the CLI turns them into a message on stderr and exit code 1."""

from __future__ import annotations

from dataclasses import dataclass, replace

#: what to do about a bad record, when nothing more particular applies
HINT_FIX = "fix the record or rerun with --on-error skip"


@dataclass(frozen=True, slots=True)
class Problem:
    """One input record that could not be stored, with where it is and what to do about it."""

    path: str
    line: int | None
    field: str | None
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        what = f"field '{self.field}': {self.message}" if self.field else self.message
        return f"{where}: {what}" + (f" ({self.hint})" if self.hint else "")

    def as_skipped(self) -> str:
        """The problem as reported when it was skipped: the hint to rerun with --on-error skip is left out."""
        return str(replace(self, hint="")) if self.hint == HINT_FIX else str(self)


class StoryclusterError(Exception):
    """Base class of every error storycluster raises on purpose."""


class InputError(StoryclusterError):
    """Bad input in fail mode; carries the first problem found, and the others when the whole input was checked
    (``more``: up to a limit; ``total``: how many there were)."""

    def __init__(self, problem: Problem, more: list[Problem] | None = None, total: int | None = None) -> None:
        self.problem, self.more = problem, list(more or [])
        self.total = total if total is not None else 1 + len(self.more)
        lines = [str(problem), *map(str, self.more)]
        if self.total > len(lines):
            lines.append(f"... and {self.total - len(lines)} more")
        if self.total > 1:
            lines.append(f"{self.total} bad records; nothing was stored (fix them, or rerun with --on-error skip)")
        super().__init__("\n".join(lines))


class StoreError(StoryclusterError):
    """The store folder is missing, locked, or was written by an incompatible version."""


class NotFoundError(StoryclusterError):
    """An article id that is not in the store."""
