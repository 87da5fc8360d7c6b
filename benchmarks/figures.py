"""What every benchmark prints for a figure measured over several runs: min, median and max, and
the median's verdict against the figure's target (when one is set)."""

from __future__ import annotations

import statistics


def figure(label: str, values: list[float], unit: str, *, target: float | None = None, at_most: bool = True,
           digits: int = 2, width: int = 46, note: str = "") -> str:
    low, median, high = min(values), statistics.median(values), max(values)
    unit = f" {unit}" if unit else ""
    text = f"{label:<{width}} min {low:8.{digits}f}  median {median:8.{digits}f}  max {high:8.{digits}f}{unit}"
    if target is not None:
        met = median <= target if at_most else median >= target
        text += (f"  target {'<=' if at_most else '>='} {target:g}{unit}: "
                 f"{'met' if met else 'NOT met'} (median){note}")
    return text


def check(label: str, held: list[bool]) -> str:
    """A yes/no target over the runs: met only when it held in every run."""
    verdict = "met" if all(held) else f"NOT met ({held.count(False)} of {len(held)} runs)"
    return f"{label:<46} {verdict}"
