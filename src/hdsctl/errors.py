"""Errors a user can act on. The CLI prints them without a traceback."""

from __future__ import annotations

from dataclasses import dataclass

# Exit codes shared by every command (documented in the README).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_DRIFT = 2
EXIT_BAD_INPUT = 3


class HdsctlError(Exception):
    """An error the user caused or can fix; carries the exit code the CLI should use."""

    exit_code = EXIT_FAILED


class Terminated(KeyboardInterrupt):
    """SIGTERM (a pod or machine going away), stopping a long run the way Ctrl-C does: what was
    answered is kept, the rest reported not sent."""


def stopped_by(stop: KeyboardInterrupt) -> str:
    """How a run was stopped, as reports say it."""
    return "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted (Ctrl-C)"


class BadInput(HdsctlError):
    """Bad input: a flag, a file, a URL, a credential. The message says what and where."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong in a stack file: where (a key path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class SpecError(HdsctlError):
    """A stack file that does not describe a valid environment."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, source: str, problems: list[SpecProblem]):
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s) in the environment spec"]
        lines += [f"  - {problem}" for problem in problems]
        super().__init__("\n".join(lines))
