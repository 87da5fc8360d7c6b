"""Command-line argument types and a parser whose usage errors mean "bad input" (exit 3).

Exit 2 is the documented "drift found" code, so argparse's own exit 2 is not used.
"""

from __future__ import annotations

import argparse
import math
import sys

from hdsctl.errors import EXIT_BAD_INPUT


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _parsed(text: str, convert, what: str):
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


def positive_seconds(text: str) -> float:
    value = _parsed(text, float, "a number of seconds")
    if not math.isfinite(value) or value <= 0 or value > MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds greater than 0 and at most "
                                         f"{MAX_SECONDS:.0f} (30 days)")
    return value


MAX_SECONDS = 30 * 86400.0


def megabytes(text: str) -> float:
    value = _parsed(text, float, "a number of megabytes")
    if not math.isfinite(value) or not 0 < value <= 4096:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of megabytes greater than 0, at most 4096")
    return value


def bounded_count(low: int, high: int, what: str):
    """An argument type: a whole number from `low` to `high`, named `what` in its error."""

    def parse(text: str) -> int:
        value = _parsed(text, int, "a whole number")
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value}: give {what} from {low} to {high}")
        return value

    return parse


def add_budget_arguments(parser, *, deadline: float | None = None, deadline_help: str = "") -> None:
    """The two time budgets every data-plane command takes the same way: `--timeout`, how long
    one request may keep retrying, and `--deadline`, an end for the whole command."""
    parser.add_argument("--timeout", type=positive_seconds, default=300,
                        help="seconds one request may keep retrying (429, 503, dropped connections; "
                             "default 300); also bounds how long one answer is awaited")
    default = f"default {deadline:.0f}" if deadline else "default: none"
    parser.add_argument("--deadline", type=positive_seconds, default=deadline,
                        help=f"seconds for the whole command ({default}){deadline_help}")


def budget_of(args):
    """The retry budget the budget arguments describe."""
    from hdsctl.retry import Budget

    return Budget.of(args.timeout, getattr(args, "deadline", None))


def port(text: str) -> int:
    value = _parsed(text, int, "a port number")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0-65535; 0 picks a free one)")
    return value


def count(text: str) -> int:
    value = _parsed(text, int, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: give 0 or more")
    return value
