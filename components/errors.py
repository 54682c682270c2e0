"""Problems found in user input, and the error that carries them.

Owns: the one-line shape every configuration problem is reported in
(`FILE:LINE: WHERE: FIELD: MESSAGE`), so the render, `check` and `pulumi up` all print
the same thing. Does not own: finding the problems (`components.config`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one input file."""

    file: str
    line: int | None
    where: str  # e.g. "service 'vbsiv'", "settings", "(YAML)"
    field: str  # dotted field path inside `where`, "" when about the whole thing
    message: str
    # A cross-stack problem filed against one stack file: the other stacks it involves,
    # whose own `pulumi up` reports it too. Not part of what the problem says.
    involves: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    def __str__(self) -> str:
        location = f"{self.file}:{self.line}" if self.line else self.file
        target = f"{self.where}: {self.field}" if self.field else self.where
        return f"{location}: {target}: {self.message}"


class ConfigError(Exception):
    """Raised when input is invalid; carries every problem, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(set(problems), key=_order)
        super().__init__("\n".join(str(p) for p in self.problems))


def _order(problem: Problem) -> tuple[str, int, str, str, str]:
    return (problem.file, problem.line or 0, problem.where, problem.field, problem.message)
