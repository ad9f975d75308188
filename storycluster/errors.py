"""Errors the library raises; the CLI turns them into a message on stderr and exit code 1."""

from __future__ import annotations

from dataclasses import dataclass


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


class StoryclusterError(Exception):
    """Base class of every error storycluster raises on purpose."""


class InputError(StoryclusterError):
    """Bad input in fail mode; carries the first problem found."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


class StoreError(StoryclusterError):
    """The store folder is missing, locked, or was written by an incompatible version."""


class NotFoundError(StoryclusterError):
    """An article id that is not in the store."""
