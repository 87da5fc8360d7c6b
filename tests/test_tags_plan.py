"""plan(desired, observed) is pure: every kind of action from plain values."""

from __future__ import annotations

from hdsctl.dicom.models import ObservedTag, OperationState
from hdsctl.dicomtags import check_tag
from hdsctl.tags.plan import plan

BODY_PART = check_tag("BodyPartExamined", "Series")
PROTOCOL = check_tag("ProtocolName", "Series")


def observed(tag, status="ready", enabled=True, errors=0, operation=None, **changes):
    values = {"path": tag.path, "vr": tag.vr, "level": tag.level,
              "private_creator": tag.private_creator, **changes}
    return ObservedTag(values["path"], values["vr"], values["level"], values["private_creator"],
                       status, enabled, errors, operation)


def op(status, op_id="a" * 32):
    return {op_id: OperationState(op_id, "reindex", status, 40)}


def kinds(result):
    return [(a.kind, a.path) for a in result.actions]


def test_missing_tags_are_added():
    result = plan([BODY_PART, PROTOCOL], [], {})
    assert kinds(result) == [("add", BODY_PART.path), ("add", PROTOCOL.path)]
    assert not result.in_sync


def test_converged_service_needs_nothing():
    result = plan([BODY_PART], [observed(BODY_PART)], {})
    assert result.in_sync and result.actions == ()


def test_disabled_query_without_errors_is_enabled():
    result = plan([BODY_PART], [observed(BODY_PART, enabled=False)], {})
    assert kinds(result) == [("enable", BODY_PART.path)]


def test_disabled_by_indexing_errors_is_blocked_not_silently_enabled():
    result = plan([BODY_PART], [observed(BODY_PART, enabled=False, errors=4)], {})
    assert result.actions == ()
    assert "query disabled by 4 indexing error(s)" in result.blocked[0].reason


def test_declared_disabled_is_disabled():
    declared = check_tag("BodyPartExamined", "Series", query_enabled=False)
    result = plan([declared], [observed(BODY_PART)], {})
    assert kinds(result) == [("disable", BODY_PART.path)]


def test_undeclared_tags_are_unmanaged_unless_pruned():
    kept = plan([], [observed(PROTOCOL)], {})
    assert kept.actions == () and kept.unmanaged == (PROTOCOL.path,)
    pruned = plan([], [observed(PROTOCOL)], {}, prune=True)
    assert kinds(pruned) == [("remove", PROTOCOL.path)] and pruned.unmanaged == ()


def test_changed_level_needs_allow_replace():
    on_service = observed(BODY_PART, level="Study")
    blocked = plan([BODY_PART], [on_service], {})
    assert blocked.actions == ()
    assert "level Study → Series" in blocked.blocked[0].reason
    assert "--allow-replace" in blocked.blocked[0].reason
    allowed = plan([BODY_PART], [on_service], {}, allow_replace=True)
    assert kinds(allowed) == [("replace", BODY_PART.path)]
    assert allowed.actions[0].deletes and allowed.actions[0].adds


def test_adding_tag_of_a_running_operation_is_waited_for():
    result = plan([BODY_PART], [observed(BODY_PART, "adding", operation="a" * 32)], op("running"))
    assert kinds(result) == [("wait", BODY_PART.path)]
    assert result.actions[0].operation_id == "a" * 32
    assert result.writes == ()


def test_adding_tag_after_failed_or_canceled_operation_is_recovered():
    for status in ("failed", "canceled"):
        result = plan([BODY_PART], [observed(BODY_PART, "adding", operation="a" * 32)], op(status))
        assert kinds(result) == [("recover", BODY_PART.path)]
        assert status in result.actions[0].reason


def test_adding_tag_whose_operation_is_unknown_is_recovered():
    result = plan([BODY_PART], [observed(BODY_PART, "adding", operation="b" * 32)], {})
    assert kinds(result) == [("recover", BODY_PART.path)]


def test_tag_stuck_deleting_is_finished_or_recovered():
    declared = plan([BODY_PART], [observed(BODY_PART, "deleting")], {})
    assert kinds(declared) == [("recover", BODY_PART.path)]
    undeclared = plan([], [observed(BODY_PART, "deleting")], {})
    assert kinds(undeclared) == [("remove", BODY_PART.path)]


def test_adds_past_128_are_blocked():
    present = [observed(check_tag(f"0009{0x1000 + i:04X}", "Series", "LO", "ACME")) for i in range(127)]
    result = plan([BODY_PART, PROTOCOL], present, {})
    assert [a.kind for a in result.actions] == []
    assert all("more than 128" in b.reason for b in result.blocked)
    assert len(result.blocked) == 2
    pruned = plan([BODY_PART, PROTOCOL], present, {}, prune=True)
    assert sum(a.kind == "add" for a in pruned.actions) == 2


def test_plan_serializes_to_json():
    result = plan([BODY_PART], [observed(PROTOCOL)], {})
    document = result.to_json()
    assert document["actions"][0]["kind"] == "add"
    assert document["actions"][0]["desired"]["path"] == BODY_PART.path
    assert document["unmanaged"] == [PROTOCOL.path]
