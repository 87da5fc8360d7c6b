"""The acting half of the reconciler: carry a plan out against one DICOM service.

Level-triggered: every round reads the service, plans, and acts; a round that finds
nothing to do ends the run. Running it again changes nothing. A reindex that another
run (or a killed earlier run) started is followed, never duplicated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hdsctl.dicom import errors
from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.models import ObservedTag, OperationState
from hdsctl.dicomtags import TagDefinition
from hdsctl.errors import HdsctlError
from hdsctl.tags.plan import Action, TagPlan, plan

MAX_ROUNDS = 6


class SyncTimeout(HdsctlError):
    pass


@dataclass(frozen=True)
class PollSchedule:
    """No Retry-After exists on the operation endpoint, so the client picks its own pace."""

    first: float = 1.0
    factor: float = 1.5
    longest: float = 15.0

    def delays(self):
        delay = self.first
        while True:
            yield delay
            delay = min(delay * self.factor, self.longest)


@dataclass
class SyncOutcome:
    plans: list[TagPlan] = field(default_factory=list)
    taken: list[Action] = field(default_factory=list)
    operations_started: list[str] = field(default_factory=list)
    operations_followed: dict[str, OperationState] = field(default_factory=dict)
    observed: list[ObservedTag] = field(default_factory=list)

    @property
    def final_plan(self) -> TagPlan:
        return self.plans[-1]

    @property
    def failed_operations(self) -> list[OperationState]:
        return [op for op in self.operations_followed.values() if op.status in {"failed", "canceled"}]


Progress = Callable[[OperationState], None]


def read_state(client: DicomClient) -> tuple[list[ObservedTag], dict[str, OperationState]]:
    """The service's tags and the operations they are still linked to."""
    observed = client.list_tags()
    operations = {}
    for operation_id in sorted({t.operation_id for t in observed if t.operation_id}):
        try:
            operations[operation_id] = client.get_operation(operation_id)
        except errors.NotFound:
            continue  # a link to an operation the service forgot: the plan recovers the tag
    return observed, operations


def sync(
    client: DicomClient,
    desired: Sequence[TagDefinition],
    *,
    prune: bool = False,
    allow_replace: bool = False,
    timeout: float = 3600,
    schedule: PollSchedule = PollSchedule(),
    progress: Progress | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncOutcome:
    deadline = time.monotonic() + timeout
    outcome = SyncOutcome()
    for _ in range(MAX_ROUNDS):
        observed, operations = read_state(client)
        current = plan(desired, observed, operations, prune=prune, allow_replace=allow_replace)
        outcome.plans.append(current)
        outcome.observed = observed
        if current.waits:
            for operation_id in sorted({a.operation_id for a in current.waits}):
                _follow(client, operation_id, outcome, deadline, schedule, progress, sleep)
        elif not current.writes:
            return outcome
        else:
            _act(client, current, outcome, deadline, schedule, progress, sleep)
        if outcome.failed_operations:
            # A reindex that failed once is reported, not retried in a loop: the next run
            # recovers its tags, after someone has looked at why.
            break
    observed, operations = read_state(client)
    outcome.observed = observed
    outcome.plans.append(plan(desired, observed, operations, prune=prune, allow_replace=allow_replace))
    return outcome


def _act(client, current: TagPlan, outcome, deadline, schedule, progress, sleep) -> None:
    """Carry out one plan; the next round reads the service again either way."""
    for action in current.writes:
        if action.deletes:
            client.delete_tag(action.path)
            outcome.taken.append(action)
    for action in current.writes:
        if action.kind in {"enable", "disable"}:
            client.set_query_enabled(action.path, action.kind == "enable")
            outcome.taken.append(action)
    additions = [a for a in current.writes if a.adds]
    if not additions:
        return
    try:
        operation_id = client.add_tags([a.desired for a in additions])
    except errors.ActiveReindex as busy:
        # Another reconciler (or the portal) is reindexing: follow it, then plan again.
        if busy.operation_id:
            _follow(client, busy.operation_id, outcome, deadline, schedule, progress, sleep)
        else:
            sleep(next(schedule.delays()))
        return
    except errors.TagsAlreadyExist:
        return  # someone added them meanwhile: read again
    outcome.taken += [a for a in additions if a.kind == "add"]
    outcome.operations_started.append(operation_id)
    _follow(client, operation_id, outcome, deadline, schedule, progress, sleep)


def _follow(client, operation_id, outcome, deadline, schedule, progress, sleep) -> OperationState:
    delays = schedule.delays()
    while True:
        try:
            state = client.get_operation(operation_id)
        except errors.NotFound:
            return OperationState(operation_id, "reindex", "unknown", 0)
        outcome.operations_followed[operation_id] = state
        if progress is not None:
            progress(state)
        if state.terminal:
            return state
        delay = next(delays)
        if time.monotonic() + delay > deadline:
            raise SyncTimeout(
                f"reindex {operation_id} is still {state.status} at {state.percent_complete}% "
                "after the timeout; run sync again later to pick it up where it is"
            )
        sleep(delay)
