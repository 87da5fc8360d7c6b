"""What tests and benchmarks steer the local service with: the knobs (faults, latency, reindex
speed) under /_emulator, and the faults they inject into the next requests."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from hdsctl.emulator.store import ApiError, Knobs, Store


@dataclass(frozen=True)
class Fault:
    """An answer the knobs ask for instead of the real one; no status means a TCP reset."""

    status: int | None
    text: str = ""
    headers: dict[str, str] | None = None
    discard_body: bool = True


def injected_fault(knobs: Knobs, chance: Callable[[], float], path: str) -> Fault | None:
    """The fault the next request meets, if any (each burst counts down by one). Latency is
    added here, before the request is served."""
    if knobs.fail_dependency_next > 0:
        knobs.fail_dependency_next -= 1
        return Fault(424, "The storage account or key vault of the service cannot be reached.")
    if knobs.refuse_rendered and path.endswith("/rendered"):
        return Fault(406, "The requested DICOM instance is too large to be rendered.", discard_body=False)
    if knobs.latency_ms:
        time.sleep(knobs.latency_ms / 1000)
    if knobs.deny_next > 0:
        knobs.deny_next -= 1
        return Fault(403, "The caller is not authorized to perform this action.")
    if knobs.reset_next > 0:
        knobs.reset_next -= 1
        return Fault(None)
    for status, burst, odds in ((503, "burst_503", knobs.chance_503), (429, "burst_429", knobs.chance_429)):
        if getattr(knobs, burst) > 0 or (odds and chance() < odds):
            if getattr(knobs, burst) > 0:
                setattr(knobs, burst, getattr(knobs, burst) - 1)
            text = "Too many requests." if status == 429 else "The server is busy (deadlock)."
            after = ({"Retry-After": str(knobs.retry_after)}
                     if status == 429 and knobs.retry_after is not None else None)
            return Fault(status, text, after)
    return None


def set_knobs(store: Store, body: Any, requests_seen: int) -> tuple[int, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "knobs are a JSON object of name: value")
    problems = [problem for name, value in body.items() if (problem := knob_problem(name, value))]
    if problems:
        raise ApiError(400, "; ".join(problems))
    for name, value in body.items():
        setattr(store.knobs, name, value)
    return 200, asdict(store.knobs)


def mark_bad_values(store: Store, body: Any, requests_seen: int) -> tuple[int, Any]:
    if not isinstance(body, dict) or not all(
            isinstance(count, int) and not isinstance(count, bool) and count >= 0 for count in body.values()):
        raise ApiError(400, "bad-values is a JSON object of tag path: count (a whole number >= 0)")
    for tag_path, count in body.items():
        store.mark_bad_values(tag_path, count)
    return 204, None


def state(store: Store, body: Any, requests_seen: int) -> tuple[int, Any]:
    with store.lock:
        return 200, {"instances": len(store.instances), "knobs": asdict(store.knobs), "tags": len(store.tags),
                     "operations": len(store.operations), "requests": requests_seen}


# (method, path) → what answers it; POST routes take a JSON body
ROUTES: dict[tuple[str, str], Callable[[Store, Any, int], tuple[int, Any]]] = {
    ("POST", "/_emulator/knobs"): set_knobs,
    ("POST", "/_emulator/bad-values"): mark_bad_values,
    ("GET", "/_emulator/state"): state,
}


def knob_problem(name: str, value: Any) -> str | None:
    """Why a knob cannot take `value`, judged by the type its field declares."""
    declared = {f.name: f.type for f in fields(Knobs)}
    if name not in declared:
        return f"unknown knob {name!r} (knobs: {', '.join(sorted(declared))})"
    kind = str(declared[name])
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "float":
        ok = number and value >= 0
    elif kind == "int | None":
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
    else:  # int
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if ok and name == "instances_per_second" and value <= 0:
        ok = False
    return None if ok else f"knob {name!r} takes {kind} (>= 0), not {json.dumps(value)}"
