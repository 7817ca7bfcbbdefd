"""Configuration problems: one line each, naming the file, the field path, the bad value and the fix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration."""

    path: str
    """Dotted field path, e.g. `environments.staging.vpc_cidr` (empty for the whole file)."""
    value: Any
    """The offending value as the user wrote it; None when there is no value to show."""
    message: str
    """What is wrong and what is allowed."""

    def render(self, source: str) -> str:
        where = f"{source}: {self.path}" if self.path else source
        shown = "" if self.value is None else f" (got {self.value!r})"
        return f"{where}: {self.message}{shown}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` says why, one entry per problem."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(p.render(source) for p in problems))

    def lines(self) -> list[str]:
        return [p.render(self.source) for p in self.problems]
