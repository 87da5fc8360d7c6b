"""What a platform engineer needs to decide, per service: each declared tag's state,
what was planned or done, and why the run failed if it did."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hdsctl.dicom.models import ObservedTag, OperationState, TagError
from hdsctl.dicomtags import TagDefinition
from hdsctl.tags.plan import Action, TagPlan

ERROR_SAMPLE = 3


@dataclass
class TagState:
    desired: TagDefinition
    observed: ObservedTag | None
    errors: list[TagError] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.observed.status if self.observed else "missing"

    @property
    def problem(self) -> str | None:
        if self.observed is None:
            return "not on the service"
        if self.observed.status != "ready":
            return f"status {self.observed.status}"
        if self.desired.query_enabled and not self.observed.query_enabled:
            if self.observed.error_count:
                return f"query disabled by {self.observed.error_count} indexing error(s)"
            return "query disabled"
        if not self.desired.query_enabled and self.observed.query_enabled:
            return "query enabled, declared disabled"
        if not self.desired.same_index(self.observed.definition()):
            return "definition differs from the declared one"
        return None

    @property
    def failed(self) -> bool:
        """A failure, as opposed to work still to do: the service refused the data."""
        return bool(self.observed and self.observed.error_count and not self.observed.query_enabled)

    def to_json(self) -> dict[str, Any]:
        observed = self.observed
        return {
            "path": self.desired.path,
            "keyword": self.desired.keyword,
            "status": self.status,
            "queryStatus": None if observed is None else (
                "enabled" if observed.query_enabled else "disabled"),
            "errorCount": observed.error_count if observed else 0,
            "errors": [
                {"studyInstanceUid": e.study_instance_uid, "seriesInstanceUid": e.series_instance_uid,
                 "sopInstanceUid": e.sop_instance_uid, "message": e.message}
                for e in self.errors
            ],
            "ok": self.problem is None,
            "problem": self.problem,
        }


@dataclass
class ServiceReport:
    service: str
    url: str
    desired: Sequence[TagDefinition]
    states: list[TagState]
    plan: TagPlan
    taken: list[Action] = field(default_factory=list)
    operations: dict[str, OperationState] = field(default_factory=dict)
    failure: str | None = None

    @property
    def converged(self) -> bool:
        return self.failure is None and self.plan.in_sync and all(s.problem is None for s in self.states)

    @property
    def failed(self) -> bool:
        return (self.failure is not None or any(s.failed for s in self.states)
                or any(op.status in {"failed", "canceled"} for op in self.operations.values()))

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "url": self.url,
            "desired": [
                {"path": t.path, "keyword": t.keyword, "vr": t.vr, "level": t.level,
                 "privateCreator": t.private_creator,
                 "queryStatus": "enabled" if t.query_enabled else "disabled"}
                for t in self.desired
            ],
            "plan": self.plan.to_json(),
            "taken": [{"kind": a.kind, "path": a.path, "reason": a.reason} for a in self.taken],
            "operations": [
                {"id": op.id, "status": op.status, "percentComplete": op.percent_complete}
                for op in self.operations.values()
            ],
            "tags": [state.to_json() for state in self.states],
            "converged": self.converged,
            "failure": self.failure,
        }


def tag_states(
    desired: Sequence[TagDefinition], observed: Sequence[ObservedTag], client=None
) -> list[TagState]:
    """Pair each declared tag with what the service holds; fetch a few errors where any."""
    by_path = {tag.path: tag for tag in observed}
    states = []
    for tag in desired:
        current = by_path.get(tag.path)
        sample = []
        if client is not None and current is not None and current.error_count:
            sample = client.list_errors(tag.path, limit=ERROR_SAMPLE)
        states.append(TagState(tag, current, sample))
    return states


def render(report: ServiceReport, heading: str) -> str:
    lines = [f"{heading} — DICOM service '{report.service}' at {report.url}"]
    if report.taken:
        lines.append("  done:")
        lines += [f"    {a.kind:<8} {a.path}  {a.reason}" for a in report.taken]
    elif report.plan.actions:
        lines.append("  planned:")
        lines += [f"    {a.kind:<8} {a.path}  {a.reason}" for a in report.plan.actions]
    elif report.plan.in_sync and not report.failure:
        lines.append("  in sync: nothing to change")
    for operation in report.operations.values():
        lines.append(f"  reindex {operation.id}: {operation.status} ({operation.percent_complete}%)")
    lines.append(f"  {'tag':<10} {'keyword':<28} {'level':<9} {'vr':<3} {'status':<9} {'query':<9} errors")
    for state in report.states:
        tag, observed = state.desired, state.observed
        query = "-" if observed is None else ("enabled" if observed.query_enabled else "disabled")
        lines.append(
            f"  {tag.path:<10} {(tag.keyword or tag.private_creator or ''):<28.28} {tag.level:<9} "
            f"{tag.vr:<3} {state.status:<9} {query:<9} {observed.error_count if observed else 0}"
        )
        for error in state.errors:
            lines.append(f"      ! {error.sop_instance_uid or error.series_instance_uid}: {error.message}")
    for blocked in report.plan.blocked:
        lines.append(f"  blocked  {blocked.path}: {blocked.reason}")
    if report.plan.unmanaged:
        lines.append(f"  unmanaged (left alone; --prune removes): {', '.join(report.plan.unmanaged)}")
    if report.failure:
        lines.append(f"  FAILED: {report.failure}")
    return "\n".join(lines)
