"""The reconciler over real HTTP on loopback against the emulator."""

from __future__ import annotations

import threading

import pytest
from support.tokens import DICOM_AUDIENCE, jwt

from hdsctl.dicom import errors
from hdsctl.dicom.client import DicomClient
from hdsctl.dicomtags import TagDefinition, check_tag
from hdsctl.emulator.server import Emulator
from hdsctl.emulator.store import Knobs
from hdsctl.retry import Budget
from hdsctl.tags.apply import PollSchedule, SyncTimeout, sync

FAST = PollSchedule(first=0.02, factor=1.5, longest=0.1)
DESIRED = [check_tag("BodyPartExamined", "Series"), check_tag("ProtocolName", "Series"),
           check_tag("StationName", "Series"), check_tag("PatientSex", "Study"),
           check_tag("00191002", "Series", "LO", "SIEMENS MR HEADER")]


@pytest.fixture
def emulator():
    knobs = Knobs(instances_per_second=50_000, batch_size=50)
    with Emulator(instances=400, knobs=knobs) as emu:
        yield emu


def client_for(emu, **kwargs) -> DicomClient:
    return DicomClient(emu.url, retry_backoff_factor=0.01, retry_backoff_max=0.05, **kwargs)


def run_sync(emu, desired=DESIRED, **kwargs):
    with client_for(emu) as client:
        return sync(client, desired, schedule=FAST, **kwargs)


def states(emu):
    with emu.store.lock:
        return {path: (t.status, t.query_enabled, len(t.errors), t.level) for path, t in emu.store.tags.items()}


def all_ready(emu, desired=DESIRED):
    current = states(emu)
    return all(current.get(t.path, ("missing",))[0] == "ready" for t in desired)


def test_all_adds_go_in_one_post_and_one_reindex(emulator):
    outcome = run_sync(emulator)
    assert len(emulator.data_requests("POST")) == 1
    assert len(emulator.store.operations) == 1
    assert [a.kind for a in outcome.taken] == ["add"] * 5
    assert all_ready(emulator)
    assert outcome.final_plan.in_sync


def test_second_run_sends_no_write(emulator):
    run_sync(emulator)
    before = len(emulator.requests)
    outcome = run_sync(emulator)
    new = emulator.requests[before:]
    assert [r.method for r in new] == ["GET"] and outcome.taken == []


def test_enable_a_disabled_tag(emulator):
    run_sync(emulator)
    emulator.store.tags[DESIRED[0].path].query_enabled = False
    outcome = run_sync(emulator)
    assert [(a.kind, a.path) for a in outcome.taken] == [("enable", DESIRED[0].path)]
    assert states(emulator)[DESIRED[0].path][1] is True
    assert len(emulator.data_requests("PATCH")) == 1


def test_disable_a_tag_declared_disabled(emulator):
    run_sync(emulator)
    declared = [check_tag("BodyPartExamined", "Series", query_enabled=False), *DESIRED[1:]]
    outcome = run_sync(emulator, declared)
    assert [a.kind for a in outcome.taken] == ["disable"]
    assert states(emulator)[DESIRED[0].path][1] is False


def test_prune_off_leaves_unmanaged_tags_and_prune_on_removes_them(emulator):
    run_sync(emulator)
    kept = run_sync(emulator, DESIRED[:3])
    assert set(kept.final_plan.unmanaged) == {DESIRED[3].path, DESIRED[4].path}
    assert emulator.data_requests("DELETE") == []
    pruned = run_sync(emulator, DESIRED[:3], prune=True)
    assert sorted(a.path for a in pruned.taken if a.kind == "remove") == sorted(
        [DESIRED[3].path, DESIRED[4].path])
    assert set(states(emulator)) == {t.path for t in DESIRED[:3]}


def test_replace_only_when_allowed(emulator):
    run_sync(emulator)
    moved = [check_tag("BodyPartExamined", "Study"), *DESIRED[1:]]
    blocked = run_sync(emulator, moved)
    assert blocked.taken == [] and "needs --allow-replace" in blocked.final_plan.blocked[0].reason
    replaced = run_sync(emulator, moved, allow_replace=True)
    assert [a.kind for a in replaced.taken] == ["replace"]
    assert states(emulator)[DESIRED[0].path][3] == "Study"
    assert len(emulator.store.operations) == 2


@pytest.mark.parametrize("how", ["fail", "cancel"])
def test_tags_left_adding_by_a_failed_or_canceled_operation_are_recovered(emulator, how):
    setattr(emulator.knobs, f"{how}_next_operation", True)
    first = run_sync(emulator)
    (operation,) = first.operations_followed.values()
    assert operation.status == ("failed" if how == "fail" else "canceled")
    assert all(s[0] == "adding" for s in states(emulator).values())
    assert [a.kind for a in first.final_plan.actions] == ["recover"] * 5
    second = run_sync(emulator)
    assert [a.kind for a in second.taken] == ["recover"] * 5
    assert len(emulator.data_requests("DELETE")) == 5
    assert all_ready(emulator)


def test_indexing_errors_disable_a_tag_and_are_reported(emulator):
    emulator.store.mark_bad_values("BodyPartExamined", 7)
    outcome = run_sync(emulator)
    status, enabled, error_count, _ = states(emulator)[DESIRED[0].path]
    assert (status, enabled, error_count) == ("ready", False, 7)
    assert "7 indexing error(s)" in outcome.final_plan.blocked[0].reason
    with client_for(emulator) as client:
        sample = client.list_errors(DESIRED[0].path, limit=3)
    assert len(sample) == 3
    assert sample[0].sop_instance_uid.startswith("1.2.826.0.1.3680043.10.1234.")
    assert "maximum length" in sample[0].message


def test_error_list_pages_through_more_than_one_page(emulator):
    emulator.store.mark_bad_values("BodyPartExamined", 260)
    run_sync(emulator)
    with client_for(emulator) as client:
        assert len(client.list_errors(DESIRED[0].path)) == 260
    pages = [r for r in emulator.data_requests("GET") if r.path.endswith("/errors")]
    assert len(pages) == 2


def test_bursts_of_429_and_503_are_retried(emulator):
    emulator.knobs.burst_429 = 3
    outcome = run_sync(emulator)
    emulator.knobs.burst_503 = 3
    run_sync(emulator, [*DESIRED, check_tag("InstitutionName", "Study")])
    assert outcome.final_plan.in_sync
    assert all_ready(emulator, [*DESIRED, check_tag("InstitutionName", "Study")])
    assert emulator.knobs.burst_429 == 0 and emulator.knobs.burst_503 == 0


def test_a_429_on_the_post_itself_is_retried(emulator):
    with client_for(emulator) as client:
        client.list_tags()
        emulator.knobs.burst_429 = 2
        operation = client.add_tags(DESIRED)
    assert len(emulator.data_requests("POST")) == 3
    assert operation in emulator.store.operations


def test_connection_reset_before_an_answer_is_retried(emulator):
    emulator.knobs.reset_next = 2
    run_sync(emulator)
    assert all_ready(emulator)


def test_lost_answer_to_the_post_does_not_start_a_second_reindex(emulator):
    emulator.knobs.instances_per_second = 2_000  # the reindex is still running at the retry
    emulator.knobs.reset_after_next_write = 1
    outcome = run_sync(emulator)
    assert len(emulator.store.operations) == 1
    assert all_ready(emulator) and outcome.final_plan.in_sync


def test_a_409_from_a_concurrent_operation_is_waited_out(emulator):
    emulator.knobs.instances_per_second = 800  # half a second: still running when our POST comes
    other = check_tag("InstitutionName", "Study")
    with client_for(emulator) as client:
        foreign = client.add_tags([other])
    outcome = run_sync(emulator)
    assert foreign in outcome.operations_followed
    assert len(emulator.store.operations) == 2
    assert all_ready(emulator) and outcome.final_plan.unmanaged == (other.path,)


def test_two_reconcilers_at_once_converge_without_duplicates(emulator):
    emulator.knobs.instances_per_second = 4_000
    results, failures = [], []

    def reconcile():
        try:
            results.append(run_sync(emulator))
        except Exception as err:  # recorded and asserted on below
            failures.append(err)

    threads = [threading.Thread(target=reconcile) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert len(emulator.store.operations) == 1
    assert all(r.final_plan.in_sync for r in results) and all_ready(emulator)


def test_restart_mid_operation_picks_up_the_running_reindex(emulator):
    emulator.knobs.instances_per_second = 2_000
    with client_for(emulator) as client, pytest.raises(SyncTimeout, match="run sync again"):
        sync(client, DESIRED, schedule=FAST, timeout=0.05)
    assert len(emulator.store.operations) == 1
    outcome = run_sync(emulator)  # a new run, as after the first was killed
    assert outcome.taken == [] and outcome.operations_started == []
    assert len(emulator.store.operations) == 1
    assert len(emulator.data_requests("POST")) == 1
    assert all_ready(emulator)


def test_the_128_limit_blocks_adds_and_sends_nothing(emulator):
    many = [check_tag(f"0009{0x1000 + i:04X}", "Series", "LO", "ACME") for i in range(126)]
    run_sync(emulator, many)
    outcome = run_sync(emulator, [*many, *DESIRED[:3]])
    assert outcome.taken == []
    assert len(outcome.final_plan.blocked) == 3
    assert len(emulator.data_requests("POST")) == 1


def test_the_service_refuses_a_129th_tag(emulator):
    many = [check_tag(f"0009{0x1000 + i:04X}", "Series", "LO", "ACME") for i in range(128)]
    run_sync(emulator, many)
    # The service answers 503, which is retried like any 503 until the time budget is spent.
    with client_for(emulator, budget=Budget(per_request=1)) as client, \
            pytest.raises(errors.ServiceBusy, match="maximum number"):
        client.add_tags([DESIRED[0]])


def test_plain_text_errors_reach_the_user(emulator):
    default_tag = TagDefinition("00080090", "PN", "Study")  # ReferringPhysicianName
    with client_for(emulator) as client, pytest.raises(errors.BadRequest) as caught:
        client.add_tags([default_tag])
    assert caught.value.status == 400
    assert "already searchable by default" in str(caught.value)


def test_v1_completed_is_treated_as_succeeded(emulator):
    with DicomClient(emulator.url + "/v1", retry_backoff_factor=0.01) as client:
        assert client.api_version == "v1"
        outcome = sync(client, DESIRED, schedule=FAST)
    (operation,) = outcome.operations_followed.values()
    assert operation.status == "succeeded"
    assert all(r.path.startswith("/v1/") for r in emulator.data_requests())


def test_no_token_over_plain_http_even_when_one_is_configured(emulator, monkeypatch):
    monkeypatch.setenv("HDSCTL_DICOM_TOKEN", jwt(DICOM_AUDIENCE, secret="never-send-me"))
    run_sync(emulator)
    assert emulator.requests and not any(r.authorization for r in emulator.requests)


@pytest.mark.parametrize("url", ["http://10.0.0.5", "http://dicom.example.org", "http://127.0.0.1.nip.io"])
def test_plain_http_to_a_remote_host_is_refused(url):
    with pytest.raises(errors.InsecureUrl, match="refusing plain http"):
        DicomClient(url)
