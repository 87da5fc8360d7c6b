"""The DICOMweb client and `hdsctl dicom smoke` against the local service: Orthanc storing and
serving real files, behind the Azure DICOM service's behaviour."""

from __future__ import annotations

import io
import json
import time

import pydicom
import pytest
from conftest import STACKS, load_yaml

from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.errors import BadRequest, NotFound
from hdsctl.dicom.synthetic import IMPLICIT_VR_LITTLE_ENDIAN, synthetic_study
from hdsctl.dicom.web import ALREADY_STORED
from hdsctl.dicomtags import check_tag
from hdsctl.emulator.process import LOOPBACK_ADDRESSES, listening_addresses
from hdsctl.errors import EXIT_FAILED, EXIT_OK


@pytest.fixture
def client(shared_dicom):
    with DicomClient(shared_dicom.url, retry_backoff_factor=0.01) as dicom:
        yield dicom


@pytest.fixture
def local_stack(write_stack, shared_dicom):
    """The shipped local stack, its tags synced on the session's service."""
    path = write_stack("local", load_yaml(STACKS / "Pulumi.local.yaml"))
    return path


def stack_name(stack) -> str:
    return stack.stem.split(".")[1]


def smoke(run_cli, stack, url, *extra):
    code, out, err = run_cli("--stacks-dir", str(stack.parent), "dicom", "smoke", "--stack", stack_name(stack),
                             "--url", url, "--json", *extra)
    return code, json.loads(out) if out.strip().startswith("{") else out, err


def sync_tags(run_cli, stack, url):
    code, _, err = run_cli("--stacks-dir", str(stack.parent), "tags", "sync", "--stack", stack_name(stack),
                           "--url", url, "--poll-interval", "0.02")
    assert code == EXIT_OK, err


def test_the_engine_listens_on_loopback_only(shared_dicom):
    addresses = listening_addresses(shared_dicom.engine.port)
    assert addresses and addresses <= LOOPBACK_ADDRESSES


def test_smoke_passes_and_leaves_nothing_behind(run_cli, local_stack, shared_dicom, client):
    sync_tags(run_cli, local_stack, shared_dicom.url)
    code, report, _ = smoke(run_cli, local_stack, shared_dicom.url)
    assert code == EXIT_OK, report
    steps = {step["name"]: step for step in report["steps"]}
    assert all(step["status"] == "passed" for step in report["steps"]), report["steps"]
    for name in ("store (STOW-RS)", "search by StudyInstanceUID", "search by PatientID",
                 "search by StudyDate range", "search by BodyPartExamined (Series)",
                 "search by 00191002 (Series)", "retrieve instance (WADO-RS)", "retrieve metadata",
                 "retrieve rendered image/jpeg", "retrieve rendered image/png", "retrieve one frame",
                 "delete study, then search: gone"):
        assert name in steps, name
    assert report["cleanup"] == "deleted"
    assert client.search("studies", {"StudyInstanceUID": report["studyInstanceUid"]}) == []


def test_smoke_finds_its_study_on_a_service_holding_pages_of_todays_studies(run_cli, local_stack,
                                                                              shared_dicom, client):
    sync_tags(run_cli, local_stack, shared_dicom.url)
    from concurrent.futures import ThreadPoolExecutor

    # Three pages of today's studies: the smoke study lands on the first page by chance one time in three.
    busy = [synthetic_study(instances_per_series=1, frames=1, size=8) for _ in range(300)]
    assert client.store([i.data for study in busy for i in study.instances]).status == 200
    try:
        code, report, _ = smoke(run_cli, local_stack, shared_dicom.url)
        assert code == EXIT_OK, [s for s in report["steps"] if s["status"] != "passed"]
    finally:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(client.delete, [study.study_uid for study in busy]))


def test_a_declared_tag_not_yet_synced_is_reported_skipped(run_cli, write_stack, shared_dicom):
    document = load_yaml(STACKS / "Pulumi.local.yaml")
    document["config"]["hdsctl:dicomServices"][0]["extendedQueryTags"].append(
        {"path": "Manufacturer", "level": "Series"})
    stack = write_stack("unsynced", document)
    code, report, _ = smoke(run_cli, stack, shared_dicom.url)
    assert code == EXIT_OK, report
    step = next(s for s in report["steps"] if s["name"] == "search by Manufacturer (Series)")
    assert step["status"] == "skipped" and "answered 400" in step["detail"] and "tags sync" in step["detail"]


def test_a_failing_middle_step_still_deletes_the_study(run_cli, local_stack, shared_dicom, client):
    shared_dicom.knobs.refuse_rendered = True
    try:
        code, report, _ = smoke(run_cli, local_stack, shared_dicom.url)
    finally:
        shared_dicom.knobs.refuse_rendered = False
    assert code == EXIT_FAILED
    failed = [s for s in report["steps"] if s["status"] == "failed"]
    assert [s["name"] for s in failed] == ["retrieve rendered image/jpeg", "retrieve rendered image/png"]
    assert "406" in failed[0]["detail"]
    assert report["cleanup"] == "deleted"
    assert client.search("studies", {"StudyInstanceUID": report["studyInstanceUid"]}) == []


def test_access_denied_names_the_role(run_cli, local_stack, shared_dicom):
    shared_dicom.knobs.deny_next = 1
    code, report, _ = smoke(run_cli, local_stack, shared_dicom.url)
    assert code == EXIT_FAILED
    first = report["steps"][0]
    assert first["status"] == "failed" and "403" in first["detail"] and "DICOM Data Owner" in first["detail"]


def test_the_same_instance_stored_twice_is_45070(client):
    study = synthetic_study()
    first = client.store([study.instances[0].data])
    assert first.status == 200 and [s.sop_instance_uid for s in first.stored] == [study.instances[0].sop_uid]
    again = client.store([study.instances[0].data])
    assert again.status == 409 and not again.stored
    failures = [(f.sop_instance_uid, f.reason) for f in again.failed]
    assert failures == [(study.instances[0].sop_uid, ALREADY_STORED)]
    replaced = client.store([study.instances[0].data], upsert=True)  # PUT replaces it
    assert replaced.status == 200 and len(replaced.stored) == 1
    assert client.delete(study.study_uid)


def test_a_partial_stow_is_202_with_the_failed_instance_named(client):
    study, other = synthetic_study(), synthetic_study()
    result = client.store([study.instances[0].data, other.instances[0].data], study=study.study_uid)
    assert result.status == 202
    assert [s.sop_instance_uid for s in result.stored] == [study.instances[0].sop_uid]
    assert [(f.sop_instance_uid, f.reason) for f in result.failed] == [(other.instances[0].sop_uid, 43265)]
    assert client.delete(study.study_uid) and not client.delete(other.study_uid)


def test_implicit_vr_files_are_refused(client):
    study = synthetic_study(transfer_syntax=IMPLICIT_VR_LITTLE_ENDIAN, instances_per_series=1)
    result = client.store([study.instances[0].data])
    assert result.status == 409 and result.failed[0].reason == 43264


def test_a_file_that_is_not_dicom_is_refused_not_stored(client):
    result = client.store([b"this is not a DICOM file" * 10])
    assert result.status == 409 and result.failed[0].reason == 43264


def test_search_on_an_attribute_that_is_not_searchable_is_400_naming_it(client):
    with pytest.raises(BadRequest, match="'OperatorsName'"):
        client.search("studies", {"OperatorsName": "x"})


def test_an_attribute_given_twice_or_named_by_the_path_is_400_as_on_azure(client):
    study = synthetic_study(instances_per_series=1)
    assert client.store([i.data for i in study.instances]).status == 200
    try:
        with pytest.raises(BadRequest, match="specified more than once"):
            client.search("studies", {"StudyInstanceUID": study.study_uid, "0020000D": study.study_uid})
        with pytest.raises(BadRequest, match="the request path names it"):
            client.search("series", {"StudyInstanceUID": study.study_uid}, study=study.study_uid)
        assert len(client.search("series", {"Modality": "CT"}, study=study.study_uid)) == 1
    finally:
        client.delete(study.study_uid)


def test_retrieval_returns_what_was_stored(client):
    tag = check_tag("SliceThickness", "Instance")
    study = synthetic_study([tag])
    assert client.store([i.data for i in study.instances]).status == 200
    instance, multiframe = study.instances[0], study.multiframe
    stored = pydicom.dcmread(io.BytesIO(client.retrieve_instance(study.study_uid, instance.series_uid,
                                                                 instance.sop_uid)))
    assert stored.SOPInstanceUID == instance.sop_uid and stored.PixelData
    (metadata,) = client.retrieve_metadata(study.study_uid, instance.series_uid, instance.sop_uid)
    assert metadata["00180050"]["Value"] == [1.5]
    frames = client.retrieve_frames(study.study_uid, multiframe.series_uid, multiframe.sop_uid, [1, 3])
    assert [len(f) for f in frames] == [multiframe.rows * multiframe.columns * 2] * 2
    assert frames[0] != frames[1]  # each frame is its own pixels
    assert client.delete(study.study_uid, instance.series_uid, instance.sop_uid)
    remaining = client.search("instances", study=study.study_uid)
    assert instance.sop_uid not in {r["00080018"]["Value"][0] for r in remaining} and len(remaining) == 2
    assert client.delete(study.study_uid)
    assert not client.delete(study.study_uid)


def test_expiry_headers_delete_the_study_when_due_and_a_later_store_cancels(client):
    due, kept = synthetic_study(), synthetic_study()
    client.store([due.instances[0].data], expiry_ms=300)
    client.store([kept.instances[0].data], expiry_ms=300)
    client.store([kept.instances[1].data])  # without the headers: the study stays
    deadline = time.monotonic() + 10
    while client.search("studies", {"StudyInstanceUID": due.study_uid}) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.search("studies", {"StudyInstanceUID": due.study_uid}) == []
    time.sleep(0.6)  # a kept expiry would be due by now too: the service sweeps every 0.25 s
    assert len(client.search("studies", {"StudyInstanceUID": kept.study_uid})) == 1
    assert client.delete(kept.study_uid)


def test_a_reindex_walks_the_instances_really_stored(client):
    from hdsctl.tags.apply import PollSchedule, sync

    study = synthetic_study()
    assert client.store([i.data for i in study.instances]).status == 200
    content_date = check_tag("ContentDate", "Instance")
    try:
        outcome = sync(client, [content_date], schedule=PollSchedule(first=0.02))
        assert any(t.path == content_date.path and t.status == "ready" for t in outcome.observed)
        # Scoped to the study: the session's service holds other studies of today, past one page.
        found = client.search("instances", {"ContentDate": study.study_date}, study=study.study_uid)
        assert {r["00080018"]["Value"][0] for r in found} == {i.sop_uid for i in study.instances}
        assert client.search("instances", {"ContentDate": "19000101"}, study=study.study_uid) == []
    finally:
        client.delete_tag(content_date.path)
        client.delete(study.study_uid)


def test_faults_are_messages_with_a_non_zero_exit(run_cli, local_stack, shared_dicom):
    import socket

    shared_dicom.knobs.fail_dependency_next = 1
    code, report, _ = smoke(run_cli, local_stack, shared_dicom.url)
    assert code == EXIT_FAILED
    first = report["steps"][0]["detail"]
    assert "424" in first and "storage account or its key vault" in first

    with socket.socket() as probe:  # held bound, not listening: refused, and no other test takes it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        code, report, err = smoke(run_cli, local_stack, f"http://127.0.0.1:{port}", "--timeout", "5")
    assert code == EXIT_FAILED and "Traceback" not in err
    assert "got no answer" in report["steps"][0]["detail"] and report["cleanup"] == "not needed"

    code, report, _ = smoke(run_cli, local_stack, f"{shared_dicom.url}/v9")  # a wrong URL path
    assert code == EXIT_FAILED and "404" in report["steps"][0]["detail"]


def test_a_service_with_data_partitions_is_used_through_its_partition(shared_dicom):
    study = synthetic_study()
    start = len(shared_dicom.requests)
    with DicomClient(shared_dicom.url, partition="Microsoft.Default") as partitioned:
        assert partitioned.store([study.instances[0].data]).status == 200
        assert len(partitioned.search("studies", {"StudyInstanceUID": study.study_uid})) == 1
        assert partitioned.delete(study.study_uid)
    paths = [r.path for r in shared_dicom.requests[start:]]
    assert len(paths) == 3 and all(p.startswith("/v2/partitions/Microsoft.Default/studies") for p in paths)
    with DicomClient(shared_dicom.url, partition="Research") as unknown, pytest.raises(NotFound):
        unknown.search("studies")


def test_a_stored_value_the_tag_vr_cannot_hold_is_an_indexing_error(client):
    from hdsctl.tags.apply import PollSchedule, sync

    study = synthetic_study(instances_per_series=1)
    dataset = pydicom.dcmread(io.BytesIO(study.instances[0].data))
    dataset.InstitutionName = "x" * 80  # LO holds 64 characters
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    assert client.store([buffer.getvalue()]).status == 200
    institution = check_tag("InstitutionName", "Study")
    try:
        outcome = sync(client, [institution], schedule=PollSchedule(first=0.02))
        (observed,) = [t for t in outcome.observed if t.path == institution.path]
        assert observed.status == "ready" and not observed.query_enabled and observed.error_count >= 1
        sop = study.instances[0].sop_uid
        (error,) = [e for e in client.list_errors(institution.path) if e.sop_instance_uid == sop]
        assert "maximum length of 64" in error.message
    finally:
        client.delete_tag(institution.path)
        client.delete(study.study_uid)


def test_files_kept_with_data_are_served_again_after_a_restart(tmp_path):
    from hdsctl.emulator.orthanc import OrthancEngine
    from hdsctl.emulator.server import Emulator

    study = synthetic_study(instances_per_series=1)
    with Emulator(engine=OrthancEngine(tmp_path / "data")) as emulator, DicomClient(emulator.url) as first:
        assert first.store([i.data for i in study.instances]).status == 200
    with Emulator(engine=OrthancEngine(tmp_path / "data")) as emulator, DicomClient(emulator.url) as second:
        assert len(second.search("studies", {"StudyInstanceUID": study.study_uid})) == 1
        again = second.store([study.instances[0].data])  # known again, so 45070
        assert again.status == 409 and again.failed[0].reason == ALREADY_STORED


def test_a_store_while_the_engine_is_down_is_503_and_nothing_is_recorded_stored(shared_dicom):
    """(`shared_dicom` only makes the test skip visibly where the engine is not installed.)"""
    from hdsctl.dicom.errors import ServiceBusy
    from hdsctl.emulator.orthanc import OrthancEngine
    from hdsctl.emulator.server import Emulator
    from hdsctl.retry import Budget

    study = synthetic_study(instances_per_series=1)
    with Emulator(engine=OrthancEngine()) as emulator:
        emulator.engine.stop()  # the engine goes away under the running service
        with (DicomClient(emulator.url, budget=Budget(per_request=1), retry_backoff_factor=0.01) as client,
              pytest.raises(ServiceBusy, match="the local engine did not store the instances")):
            client.store([i.data for i in study.instances])
        assert not any(emulator.store.holds(i.sop_uid) for i in study.instances)


def test_the_emulator_command_stops_its_engine_on_sigterm(tmp_path, shared_dicom):
    """(`shared_dicom` only makes the test skip visibly where the engine is not installed.)"""
    import os
    import signal
    import subprocess
    import sys

    from hdsctl.emulator.process import listening_addresses

    url_file = tmp_path / "url"
    process = subprocess.Popen([sys.executable, "-m", "hdsctl.cli", "emulator", "--port", "0", "--url-file",
                                str(url_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not url_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert url_file.exists(), process.stderr.read()
        engines = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == process.pid]
        assert engines, "the emulator started no engine"
        dicom_url = json.loads(url_file.read_text())["dicomUrl"]
        with DicomClient(dicom_url) as client:
            assert client.search("studies") == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert all(not os.path.exists(f"/proc/{pid}") or _state(pid) == "Z" for pid in engines)
    finally:
        if process.poll() is None:
            process.kill()
    assert listening_addresses(int(dicom_url.rsplit(":", 1)[1])) == set()
    assert not url_file.exists()  # its endpoints are gone, and so is the file naming them


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_throttled_stow_is_sent_again_whole(shared_dicom):
    study = synthetic_study()
    start = len(shared_dicom.requests)
    shared_dicom.knobs.burst_503 = 2
    with DicomClient(shared_dicom.url, retry_backoff_factor=0.01) as client:
        result = client.store([i.data for i in study.instances])
        assert result.status == 200 and len(result.stored) == len(study.instances)
        posts = [r for r in shared_dicom.requests[start:] if r.method == "POST"]
        assert [r.status for r in posts] == [503, 503, 200]
        assert client.delete(study.study_uid)


def test_a_part_cut_short_inside_its_header_is_refused_and_the_next_part_is_stored(client):
    cut_study, whole_study = synthetic_study(instances_per_series=1), synthetic_study(instances_per_series=1)
    data = cut_study.instances[0].data
    # Ends 3 bytes into an element's header, before the pixel data (a part that ends exactly
    # between two elements is a whole dataset without pixel data, which the service takes).
    cut = data[:data.find(b"\xe0\x7f\x10\x00") - 37]
    result = client.store([cut, whole_study.instances[0].data])
    assert result.status == 202 and [f.reason for f in result.failed] == [43264]
    assert [s.sop_instance_uid for s in result.stored] == [whole_study.instances[0].sop_uid]
    assert client.search("instances", study=cut_study.study_uid) == []
    assert client.delete(whole_study.study_uid)
