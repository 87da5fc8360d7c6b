"""The pure half of the reconciler: (desired, observed) → a plan. No network, no clock.

Actions, in the order the executor carries them out:
  wait     a reindex that adds a declared tag is still running: follow it, add nothing
  remove   an undeclared tag, only with prune (or finishing a tag stuck in `deleting`)
  replace  vr, level or privateCreator changed: delete, then add again (reindexes)
  recover  a tag stuck `adding` after its operation failed or was canceled: delete, re-add
  enable / disable  queryStatus differs from the declared one
  add      declared but absent; every add of a run goes into one POST, so one reindex
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from hdsctl.dicom.models import ObservedTag, OperationState
from hdsctl.dicomtags import MAX_EXTENDED_QUERY_TAGS, TagDefinition

WRITE_KINDS = ("remove", "replace", "recover", "enable", "disable", "add")


@dataclass(frozen=True)
class Action:
    kind: str
    path: str
    reason: str
    desired: TagDefinition | None = None
    operation_id: str | None = None

    @property
    def deletes(self) -> bool:
        return self.kind in {"remove", "replace", "recover"}

    @property
    def adds(self) -> bool:
        return self.kind in {"add", "replace", "recover"}


@dataclass(frozen=True)
class Blocked:
    path: str
    reason: str


@dataclass(frozen=True)
class TagPlan:
    actions: tuple[Action, ...] = ()
    blocked: tuple[Blocked, ...] = ()
    unmanaged: tuple[str, ...] = ()

    @property
    def writes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind in WRITE_KINDS)

    @property
    def waits(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.kind == "wait")

    @property
    def in_sync(self) -> bool:
        return not self.actions and not self.blocked

    def to_json(self) -> dict[str, Any]:
        return {
            "actions": [
                {key: value for key, value in asdict(action).items() if value is not None}
                for action in self.actions
            ],
            "blocked": [asdict(b) for b in self.blocked],
            "unmanaged": list(self.unmanaged),
        }


def plan(
    desired: Sequence[TagDefinition],
    observed: Sequence[ObservedTag],
    operations: Mapping[str, OperationState],
    *,
    prune: bool = False,
    allow_replace: bool = False,
) -> TagPlan:
    """What to do so the service holds exactly the desired tags (and no more, with prune)."""
    by_path = {tag.path: tag for tag in observed}
    wanted = {tag.path for tag in desired}
    actions: list[Action] = []
    blocked: list[Blocked] = []

    for tag in desired:
        current = by_path.get(tag.path)
        if current is None:
            actions.append(Action("add", tag.path, "declared, not on the service", tag))
        elif current.status == "deleting":
            actions.append(Action("recover", tag.path, "stuck in deleting; delete again and re-add", tag))
        elif current.status == "adding":
            actions.append(_adding(tag, current, operations))
        elif not tag.same_index(current.definition()):
            change = _index_change(tag, current)
            if allow_replace:
                actions.append(Action("replace", tag.path, f"{change}; delete and re-add (reindexes)", tag))
            else:
                blocked.append(Blocked(tag.path, f"{change}; re-adding reindexes every instance, "
                                                 "so it needs --allow-replace"))
        elif tag.query_enabled and not current.query_enabled:
            if current.error_count:
                blocked.append(Blocked(tag.path, f"query disabled by {current.error_count} indexing "
                                                 "error(s); fix or delete those instances, then re-add "
                                                 "the tag or enable its queries"))
            else:
                actions.append(Action("enable", tag.path, "queries disabled on the service", tag))
        elif not tag.query_enabled and current.query_enabled:
            actions.append(Action("disable", tag.path, "declared with queries disabled", tag))

    unmanaged = []
    for current in observed:
        if current.path in wanted:
            continue
        if prune or current.status == "deleting":
            reason = "not declared (prune)" if prune else "stuck in deleting; finish the delete"
            actions.append(Action("remove", current.path, reason))
        else:
            unmanaged.append(current.path)

    return _within_limit(TagPlan(tuple(actions), tuple(blocked), tuple(unmanaged)), len(observed))


def _adding(tag: TagDefinition, current: ObservedTag, operations: Mapping[str, OperationState]) -> Action:
    operation = operations.get(current.operation_id or "")
    if operation is None:
        return Action("recover", tag.path, "stuck in adding with no operation; delete and re-add", tag)
    if operation.status in {"failed", "canceled"}:
        return Action("recover", tag.path,
                      f"stuck in adding after operation {operation.id} {operation.status}; "
                      "delete and re-add", tag)
    return Action("wait", tag.path, f"reindex {operation.id} is {operation.status}",
                  tag, operation_id=operation.id)


def _index_change(tag: TagDefinition, current: ObservedTag) -> str:
    changes = [
        f"{name} {old or '-'} → {new or '-'}"
        for name, old, new in (
            ("vr", current.vr, tag.vr), ("level", current.level, tag.level),
            ("privateCreator", current.private_creator, tag.private_creator))
        if old != new
    ]
    return ", ".join(changes)


def _within_limit(result: TagPlan, observed_count: int) -> TagPlan:
    removed = sum(1 for a in result.actions if a.kind == "remove")
    added = sum(1 for a in result.actions if a.kind == "add")
    if observed_count - removed + added <= MAX_EXTENDED_QUERY_TAGS:
        return result
    reason = (f"the service would hold {observed_count - removed + added} tags, more than "
              f"{MAX_EXTENDED_QUERY_TAGS}; remove unmanaged tags (--prune) or declare fewer")
    return TagPlan(
        tuple(a for a in result.actions if a.kind != "add"),
        result.blocked + tuple(Blocked(a.path, reason) for a in result.actions if a.kind == "add"),
        result.unmanaged,
    )
