"""`hdsctl fhir link`: every stored study in FHIR as an ImagingStudy, kept in step, against the
local DICOM service (Orthanc), the local FHIR stand-in, and Azurite's queue for the events."""

from __future__ import annotations

import base64
import json
import time

import pytest
from conftest import STACKS

from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.synthetic import synthetic_study
from hdsctl.emulator.medplum import LocalFhir
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from hdsctl.fhir.client import FhirClient
from hdsctl.fhir.link import CREATED, DELETED, UNCHANGED, UPDATED, Linker

PATIENT_SYSTEM = "urn:oid:2.16.840.1.113883.19.5"


@pytest.fixture
def fhir(shared_fhir_engine):
    """FHIR from an engine no one here wrote (Medplum), behind the front that adds Azure's rules;
    empty at the start of each test."""
    with LocalFhir(engine=shared_fhir_engine) as local:
        yield local


@pytest.fixture
def linker(shared_dicom, fhir):
    with DicomClient(shared_dicom.url) as dicom, FhirClient(fhir.url) as client:
        yield Linker(dicom, client, PATIENT_SYSTEM)


def store(url: str, study=None, **kwargs):
    study = study or synthetic_study(instances_per_series=2, size=16, **kwargs)
    with DicomClient(url) as client:
        client.store([instance.data for instance in study.instances])
    return study


def more_series(study):
    return synthetic_study(instances_per_series=1, size=16, study_uid=study.study_uid,
                           patient_id=study.patient_id)


def only_study(fhir) -> dict:
    studies = fhir.resources("ImagingStudy")
    assert len(studies) == 1, studies
    return studies[0]


def test_a_new_study_becomes_endpoint_patient_and_imaging_study(shared_dicom, fhir, linker):
    study = store(shared_dicom.url)
    result = linker.link(study.study_uid)
    assert result.action == CREATED and linker.transactions == 1
    imaging = only_study(fhir)
    assert {"use": "official", "system": "urn:dicom:uid", "value": f"urn:oid:{study.study_uid}"} in \
        imaging["identifier"]
    assert imaging["status"] == "available"
    assert imaging["numberOfInstances"] == len(study.instances)
    series_uids = {i.series_uid for i in study.instances}
    assert {s["uid"] for s in imaging["series"]} == series_uids
    assert imaging["numberOfSeries"] == len(series_uids)
    instances = {i["uid"]: i for s in imaging["series"] for i in s["instance"]}
    assert set(instances) == {i.sop_uid for i in study.instances}
    assert all(i["sopClass"]["system"] == "urn:ietf:rfc:3986"
               and i["sopClass"]["code"].startswith("urn:oid:1.2.840") for i in instances.values())
    endpoint, = fhir.resources("Endpoint")
    assert endpoint["address"] == f"{shared_dicom.url}/v2"
    assert endpoint["connectionType"]["code"] == "dicom-wado-rs"
    assert imaging["endpoint"] == [{"reference": f"Endpoint/{endpoint['id']}"}]
    patient, = fhir.resources("Patient")
    assert patient["identifier"] == [{"system": PATIENT_SYSTEM, "value": study.patient_id}]
    assert imaging["subject"]["reference"] == f"Patient/{patient['id']}"


def test_a_study_that_gains_a_series_is_updated(shared_dicom, fhir, linker):
    study = store(shared_dicom.url)
    linker.link(study.study_uid)
    more = more_series(study)
    store(shared_dicom.url, more)
    result = linker.link(study.study_uid)
    imaging = only_study(fhir)
    assert result.action == UPDATED and imaging["meta"]["versionId"] == "2"
    assert imaging["numberOfInstances"] == len(study.instances) + len(more.instances)
    assert {s["uid"] for s in imaging["series"]} >= {i.series_uid for i in more.instances}


def test_a_deleted_instance_leaves_the_study_and_a_deleted_study_leaves_fhir(shared_dicom, fhir, linker):
    study = store(shared_dicom.url)
    linker.link(study.study_uid)
    gone = study.instances[0]
    with DicomClient(shared_dicom.url) as client:
        client.delete(study.study_uid, gone.series_uid, gone.sop_uid)
    assert linker.link(study.study_uid).action == UPDATED
    imaging = only_study(fhir)
    assert gone.sop_uid not in {i["uid"] for s in imaging["series"] for i in s["instance"]}
    assert imaging["numberOfInstances"] == len(study.instances) - 1
    with DicomClient(shared_dicom.url) as client:
        client.delete(study.study_uid)
    assert linker.link(study.study_uid).action == DELETED
    assert fhir.resources("ImagingStudy") == []


def test_linking_twice_changes_nothing_and_writes_nothing(shared_dicom, fhir, linker):
    study = store(shared_dicom.url)
    linker.link(study.study_uid)
    before = (only_study(fhir), linker.transactions, linker.fhir.requests)
    assert linker.link(study.study_uid).action == UNCHANGED
    assert only_study(fhir) == before[0] and linker.transactions == before[1]
    assert linker.fhir.requests == before[2] + 1  # one search, no transaction


def test_a_patient_already_in_fhir_is_reused(shared_dicom, fhir, linker):
    study = synthetic_study(instances_per_series=1, size=16)
    with FhirClient(fhir.url) as client:
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [{
            "resource": {"resourceType": "Patient", "identifier": [{"system": PATIENT_SYSTEM,
                                                                    "value": study.patient_id}],
                         "name": [{"family": "Registered", "given": ["Already"]}]},
            "request": {"method": "POST", "url": "Patient"}}]})
    existing, = fhir.resources("Patient")
    store(shared_dicom.url, study)
    linker.link(study.study_uid)
    assert fhir.resources("Patient") == [existing]  # not created again, not overwritten
    assert only_study(fhir)["subject"]["reference"] == f"Patient/{existing['id']}"


def test_a_concurrent_update_is_read_again_and_retried(shared_dicom, fhir, linker, monkeypatch):
    study = store(shared_dicom.url)
    linker.link(study.study_uid)
    more = more_series(study)
    store(shared_dicom.url, more)
    original = FhirClient.transaction
    interfered = []

    def another_writer_first(self, bundle):
        if not interfered:  # someone else updates the ImagingStudy between our read and our write
            interfered.append(True)
            current = only_study(fhir)
            original(self, {"resourceType": "Bundle", "type": "transaction", "entry": [{
                "resource": {**current, "description": "edited by someone else"},
                "request": {"method": "PUT", "url": f"ImagingStudy/{current['id']}"}}]})
        return original(self, bundle)

    monkeypatch.setattr(FhirClient, "transaction", another_writer_first)
    assert linker.link(study.study_uid).action == UPDATED
    imaging = only_study(fhir)
    assert imaging["meta"]["versionId"] == "3"  # theirs (2), then ours on top of it (3)
    assert imaging["numberOfInstances"] == len(study.instances) + len(more.instances)
    assert 412 in fhir.statuses


def test_two_dicom_services_link_into_one_fhir_service_with_an_endpoint_each(shared_dicom, fhir, linker):
    from hdsctl.emulator.orthanc import OrthancEngine
    from hdsctl.emulator.server import Emulator

    first = store(shared_dicom.url)
    linker.link(first.study_uid)
    with Emulator(engine=OrthancEngine()) as other, DicomClient(other.url) as dicom, \
            FhirClient(fhir.url) as client:
        second = store(other.url)
        Linker(dicom, client, PATIENT_SYSTEM).link(second.study_uid)
        addresses = sorted(e["address"] for e in fhir.resources("Endpoint"))
        assert addresses == sorted([f"{shared_dicom.url}/v2", f"{other.url}/v2"])
    by_endpoint = {s["endpoint"][0]["reference"] for s in fhir.resources("ImagingStudy")}
    assert len(by_endpoint) == 2


def test_a_study_without_patient_id_is_skipped_with_the_reason(shared_dicom, fhir, linker):
    study = store(shared_dicom.url, patient_id="")
    result = linker.link(study.study_uid)
    assert result.action == "skipped" and "PatientID" in result.detail
    assert fhir.resources("ImagingStudy") == []


def test_a_403_names_the_role(shared_dicom, fhir, linker):
    from hdsctl.fhir.client import FhirAccessDenied

    study = store(shared_dicom.url)
    fhir.fail_next(403)
    with pytest.raises(FhirAccessDenied, match="FHIR Data Contributor"):
        linker.link(study.study_uid)


# -- from the queue of events -------------------------------------------------------------

def _drain(storage):
    from azure.storage.queue import QueueClient

    with QueueClient.from_connection_string(storage.connection_string, "dicom-events") as queue:
        queue.clear_messages()


def _queued(storage) -> int:
    from azure.storage.queue import QueueClient

    with QueueClient.from_connection_string(storage.connection_string, "dicom-events") as queue:
        return queue.get_queue_properties().approximate_message_count


def _wait_for_events(storage, at_least: int):
    deadline = time.monotonic() + 20
    while _queued(storage) < at_least and time.monotonic() < deadline:
        time.sleep(0.1)


def _link_queue(run_cli, emulator, storage, fhir, *extra):
    return run_cli("--stacks-dir", str(STACKS), "fhir", "link", "--stack", "local", "--from-queue",
                   "--url", emulator.url, "--fhir-url", fhir.url, "--queue-url", storage.queue_url, *extra)


def test_events_link_their_studies_once_and_leave_the_queue_empty(shared_events, fhir, run_cli):
    emulator, storage = shared_events
    _drain(storage)
    studies = [store(emulator.url) for _ in range(2)]
    events = sum(len(s.instances) for s in studies)
    _wait_for_events(storage, events)
    code, out, err = _link_queue(run_cli, emulator, storage, fhir, "--json")
    assert code == EXIT_OK, err
    report = json.loads(out)
    assert sorted(r["study"] for r in report["results"]) == sorted(s.study_uid for s in studies)
    assert report["transactions"] == 2  # one per study, however many events named it
    assert report["messagesDone"] == events and _queued(storage) == 0
    assert len(fhir.resources("ImagingStudy")) == 2


def test_events_out_of_order_and_twice_end_in_the_current_state(shared_events, fhir, run_cli):
    from azure.storage.queue import BinaryBase64EncodePolicy, QueueClient

    emulator, storage = shared_events
    _drain(storage)
    study = store(emulator.url)
    _wait_for_events(storage, len(study.instances))
    with QueueClient.from_connection_string(storage.connection_string, "dicom-events") as queue:
        created = [m.content for m in queue.receive_messages(max_messages=32)]
        queue.clear_messages()
    gone = study.instances[0]
    with DicomClient(emulator.url) as client:
        client.delete(study.study_uid, gone.series_uid, gone.sop_uid)
    _wait_for_events(storage, 1)
    # The deletion's event first, then every creation twice: what FHIR ends with is the study as it is.
    with QueueClient.from_connection_string(storage.connection_string, "dicom-events",
                                            message_encode_policy=BinaryBase64EncodePolicy()) as queue:
        for content in created + created:
            queue.send_message(base64.b64decode(content))
    code, out, err = _link_queue(run_cli, emulator, storage, fhir, "--json")
    assert code == EXIT_OK, err
    assert json.loads(out)["transactions"] == 1
    imaging = only_study(fhir)
    assert gone.sop_uid not in {i["uid"] for s in imaging["series"] for i in s["instance"]}
    assert imaging["numberOfInstances"] == len(study.instances) - 1
    assert _queued(storage) == 0


def test_a_fhir_5xx_leaves_the_messages_on_the_queue(shared_events, fhir, run_cli):
    emulator, storage = shared_events
    _drain(storage)
    study = store(emulator.url)
    _wait_for_events(storage, len(study.instances))
    fhir.fail_next(503, 1000)
    code, out, err = _link_queue(run_cli, emulator, storage, fhir, "--timeout", "1")
    assert code == EXIT_FAILED and "stay queued" in out
    assert _queued(storage) == len(study.instances) and fhir.resources("ImagingStudy") == []
    fhir._failures.clear()
    code, _, err = _link_queue(run_cli, emulator, storage, fhir)
    assert code == EXIT_OK, err
    assert _queued(storage) == 0 and len(fhir.resources("ImagingStudy")) == 1


def test_what_is_not_an_event_of_this_service_goes_to_the_poison_queue(shared_events, fhir, run_cli):
    from azure.storage.queue import QueueClient

    emulator, storage = shared_events
    _drain(storage)
    other = {"type": "Microsoft.HealthcareApis.DicomImageCreated",
             "data": {"imageStudyInstanceUid": "1.2.3",
                      "serviceHostName": "elsewhere.dicom.azurehealthcareapis.com"}}
    with QueueClient.from_connection_string(storage.connection_string, "dicom-events") as queue:
        queue.send_message("not json at all")
        queue.send_message(base64.b64encode(json.dumps(other).encode()).decode())
    code, out, err = _link_queue(run_cli, emulator, storage, fhir, "--json")
    assert code == EXIT_OK, err
    poisoned = json.loads(out)["poisoned"]
    assert len(poisoned) == 2 and any("another DICOM service" in p for p in poisoned)
    with QueueClient.from_connection_string(storage.connection_string, "dicom-events-poison") as poison:
        reasons = [json.loads(m.content)["reason"] for m in poison.receive_messages(max_messages=32)]
        poison.clear_messages()
    assert any("not an event" in r for r in reasons) and _queued(storage) == 0


def test_link_by_study_from_the_cli(shared_dicom, fhir, run_cli):
    study = store(shared_dicom.url)
    args = ("--stacks-dir", str(STACKS), "fhir", "link", "--stack", "local", "--url", shared_dicom.url,
            "--fhir-url", fhir.url, "--study", study.study_uid)
    code, out, err = run_cli(*args, "--dry-run")
    assert code == EXIT_OK and "created" in out and fhir.resources("ImagingStudy") == []
    code, out, err = run_cli(*args)
    assert code == EXIT_OK and out.startswith("created") and "1 FHIR transaction(s)" in err
    code, out, err = run_cli(*args)
    assert code == EXIT_OK and out.startswith("unchanged")


def test_a_service_without_fhir_link_is_bad_input(run_cli, write_stack, dev_document):
    dev_document["config"]["hdsctl:dicomServices"][0].pop("fhirLink")
    path = write_stack("dev", dev_document)
    code, _, err = run_cli("--stacks-dir", str(path.parent), "fhir", "link", "--stack", "dev", "--study",
                           "1.2.3")
    assert code == EXIT_BAD_INPUT and "has no fhirLink" in err


def test_since_links_the_studies_the_change_feed_names(shared_dicom, fhir, run_cli):
    import datetime

    # From now: the session's service also holds what earlier tests stored
    since = datetime.datetime.now(datetime.UTC).isoformat()
    studies = [store(shared_dicom.url) for _ in range(2)]
    with DicomClient(shared_dicom.url) as client:
        client.delete(studies[1].study_uid)
        feed = list(client.change_feed(since, page_limit=2))  # paged by 2, read to the end
    assert [e["Sequence"] for e in feed] == sorted(e["Sequence"] for e in feed)
    assert {e["StudyInstanceUid"] for e in feed} >= {s.study_uid for s in studies}
    assert {e["Action"] for e in feed} == {"Create", "Delete"}
    code, out, err = run_cli("--stacks-dir", str(STACKS), "fhir", "link", "--stack", "local", "--url",
                             shared_dicom.url, "--fhir-url", fhir.url, "--since", since, "--json")
    assert code == EXIT_OK, out + err
    actions = {r["study"]: r["action"] for r in json.loads(out)["results"]}
    assert actions[studies[0].study_uid] == CREATED and actions[studies[1].study_uid] == "absent"
    assert [s["identifier"][0]["value"] for s in fhir.resources("ImagingStudy")
            if s["identifier"][0]["value"].endswith(studies[0].study_uid)]


def test_since_refuses_what_is_not_a_time(run_cli, capsys):
    with pytest.raises(SystemExit) as ended:
        run_cli("--stacks-dir", str(STACKS), "fhir", "link", "--stack", "local", "--since", "yesterday")
    assert ended.value.code == EXIT_BAD_INPUT and "ISO 8601" in capsys.readouterr().err


def test_a_message_failing_max_tries_times_goes_to_the_poison_queue(shared_events, fhir, run_cli):
    from azure.storage.queue import QueueClient

    emulator, storage = shared_events
    _drain(storage)
    study = store(emulator.url, synthetic_study(instances_per_series=1, frames=1, size=16))
    _wait_for_events(storage, len(study.instances))
    fhir.fail_next(503, 1000)
    for _ in range(2):  # each run receives the messages once more
        code, out, err = _link_queue(run_cli, emulator, storage, fhir, "--timeout", "1", "--max-tries", "2")
        assert code == EXIT_FAILED, out + err
    code, out, _ = _link_queue(run_cli, emulator, storage, fhir, "--timeout", "1", "--max-tries", "2", "--json")
    assert code == EXIT_OK and len(json.loads(out)["poisoned"]) == len(study.instances)
    assert _queued(storage) == 0
    with QueueClient.from_connection_string(storage.connection_string, "dicom-events-poison") as poison:
        reasons = [json.loads(m.content)["reason"] for m in poison.receive_messages(max_messages=32)]
        poison.clear_messages()
    assert reasons and all(r == "failed 2 times" for r in reasons)
    fhir._failures.clear()


def test_an_imaging_study_this_linker_did_not_make_is_never_deleted(shared_dicom, fhir, linker):
    study = store(shared_dicom.url)
    linker.link(study.study_uid)
    theirs = only_study(fhir)
    theirs["meta"] = {}  # as another system wrote it: without the linker's tag
    with FhirClient(fhir.url) as client:
        client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"resource": theirs, "request": {"method": "PUT", "url": f"ImagingStudy/{theirs['id']}"}}]})
    with DicomClient(shared_dicom.url) as client:
        client.delete(study.study_uid)
    result = linker.link(study.study_uid)
    assert result.action == "skipped" and "not made by this linker" in result.detail
    assert len(fhir.resources("ImagingStudy")) == 1


def test_issuer_of_patient_id_is_the_identifier_system_when_present():
    from hdsctl.fhir.mapping import patient_key

    patient_id = {"00100020": {"vr": "LO", "Value": ["MRN-7"]}}
    with_issuer = [{**patient_id, "00100021": {"vr": "LO", "Value": ["urn:oid:1.2.3.4"]}}]
    assert patient_key(with_issuer, "urn:oid:9.9").token() == "urn:oid:1.2.3.4|MRN-7"
    assert patient_key([patient_id], "urn:oid:9.9").token() == "urn:oid:9.9|MRN-7"
    assert patient_key([patient_id], None).token() == "|MRN-7"


def _follow(emulator, storage, fhir, *, until: str, max_tries: int, budget: float):
    """Follow the queue in a thread until a line starts with `until`; the lines it printed and
    what went to the poison queue."""
    import threading

    from azure.core.exceptions import ResourceExistsError
    from azure.storage.queue import QueueClient

    from hdsctl.fhir.from_queue import link_from_queue
    from hdsctl.retry import Budget

    stop, lines = threading.Event(), []

    def emit(line):
        lines.append(line)
        if line.startswith(until):
            stop.set()

    with DicomClient(emulator.url) as dicom, FhirClient(fhir.url, budget=Budget(budget)) as client, \
            QueueClient.from_connection_string(storage.connection_string, "dicom-events") as queue, \
            QueueClient.from_connection_string(storage.connection_string, "dicom-events-poison") as poison:
        try:
            poison.create_queue()
        except ResourceExistsError:
            poison.clear_messages()
        follower = threading.Thread(target=link_from_queue, args=(Linker(dicom, client, PATIENT_SYSTEM), queue,
                                                                  poison),
                                    kwargs={"serves": lambda host: True, "max_tries": max_tries, "follow": True,
                                            "emit": emit, "stop": stop, "idle_seconds": 0.2, "retry_after": 1})
        follower.start()
        follower.join(timeout=60)
        stop.set()
        follower.join(timeout=10)
        poisoned = list(poison.peek_messages(max_messages=32))
    assert not follower.is_alive()
    return lines, poisoned


def test_following_the_queue_retries_a_failed_study_when_it_reappears(shared_events, fhir):
    emulator, storage = shared_events
    _drain(storage)
    study = store(emulator.url)
    _wait_for_events(storage, len(study.instances))
    fhir.fail_next(400, 1)  # refused once (not a busy service): the study fails, its events come back
    lines, poisoned = _follow(emulator, storage, fhir, until="created", max_tries=5, budget=0.5)
    assert lines[0].startswith("failed") and any(line.startswith("created") for line in lines)
    assert len(fhir.resources("ImagingStudy")) == 1 and _queued(storage) == 0 and not poisoned


def test_following_the_queue_waits_out_throttling_past_many_request_timeouts(shared_events, fhir):
    """Issue 20, finding 11: throttling that outlasts the per-request budget several times over is
    waited out: the events are neither failed nor poisoned, even with --max-tries 1."""
    emulator, storage = shared_events
    _drain(storage)
    study = store(emulator.url)
    _wait_for_events(storage, len(study.instances))
    fhir.fail_next(429, 6)  # at most two fit in one request's budget: three budgets at least
    lines, poisoned = _follow(emulator, storage, fhir, until="created", max_tries=1, budget=0.3)
    waits = [line for line in lines if line.startswith("waiting")]
    assert len(waits) >= 3 and all("429" in line for line in waits), lines  # each: one budget used up
    assert fhir.statuses.count(429) == 6 and not fhir._failures
    assert lines[-1].startswith("created") and not any(line.startswith("failed") for line in lines)
    assert not poisoned and _queued(storage) == 0 and len(fhir.resources("ImagingStudy")) == 1


def test_a_fhir_url_the_token_must_not_reach_is_refused_by_validate(run_cli, write_stack, dev_document):
    dev_document["config"]["hdsctl:fhirServices"][0]["url"] = "http://fhir.example.org"
    path = write_stack("dev", dev_document)
    code, out, err = run_cli("--stacks-dir", str(path.parent), "validate", "--stack", "dev")
    assert code == EXIT_BAD_INPUT and "hdsctl:fhirServices[0].url" in out + err and "plain http" in out + err


def test_malformed_and_oversized_messages_are_poisoned_and_never_block_the_batch(shared_events, fhir,
                                                                                 run_cli):
    """Finding 10: data as a string or list, or fields of the wrong type, crashed the run with a
    traceback; a 64 KiB message could not be copied to the poison queue and stopped the run;
    Finding 8: a study UID with a path in it made a second ImagingStudy."""
    from azure.storage.queue import QueueClient

    emulator, storage = shared_events
    _drain(storage)
    host = emulator.url.split("://", 1)[1]
    study = store(emulator.url)
    kind = "Microsoft.HealthcareApis.DicomImageCreated"
    bad = [{"type": kind, "data": "a string"}, {"type": kind, "data": ["a", "list"]},
           {"type": kind, "data": {"imageStudyInstanceUid": 12, "serviceHostName": host}},
           {"type": kind, "data": {"imageStudyInstanceUid": "1.2", "serviceHostName": ["x"]}},
           {"type": kind, "data": {"imageStudyInstanceUid": f"{study.study_uid}/series/1.2",
                                   "serviceHostName": host}},
           {"type": kind, "data": {"imageStudyInstanceUid": "1.2?x=1", "serviceHostName": host}},
           {"type": ["not", "text"], "data": {}}]
    large = {"type": kind, "data": {"imageStudyInstanceUid": "x" * 47_000, "serviceHostName": host}}
    good = {"type": kind, "data": {"imageStudyInstanceUid": study.study_uid, "serviceHostName": host}}
    with QueueClient.from_connection_string(storage.connection_string, "dicom-events") as queue:
        for message in [*bad, large, good]:
            queue.send_message(json.dumps(message))
    code, out, err = _link_queue(run_cli, emulator, storage, fhir, "--json")
    assert code == EXIT_OK, err
    assert "Traceback" not in err
    report = json.loads(out)
    assert len(report["poisoned"]) == len(bad) + 1
    assert [r["study"] for r in report["results"]] == [study.study_uid]
    with QueueClient.from_connection_string(storage.connection_string, "dicom-events-poison") as poison:
        records = [json.loads(m.content) for m in poison.receive_messages(max_messages=32)]
        poison.clear_messages()
    by_reference = [r for r in records if "contentBytes" in r]
    assert len(by_reference) == 1 and by_reference[0]["contentBytes"] > 47_000
    assert any("is not a DICOM UID" in r["reason"] for r in records)
    assert any("data is str" in r["reason"] for r in records) and _queued(storage) == 0
    assert len([s for s in fhir.resources("ImagingStudy")
                if study.study_uid in json.dumps(s.get("identifier"))]) == 1


def test_the_fronts_azure_rules_over_the_engine(fhir):
    """What the front adds to Medplum's engine: whole-number versions (also in _history reads),
    and errors that say what went wrong in diagnostics, as Azure's FHIR service answers."""
    import requests

    created = requests.post(f"{fhir.url}/Patient", json={"resourceType": "Patient", "active": True})
    patient = created.json()
    assert patient["meta"]["versionId"] == "1" and created.headers["ETag"] == 'W/"1"'
    updated = requests.put(f"{fhir.url}/Patient/{patient['id']}", json={**patient, "active": False},
                           headers={"If-Match": 'W/"1"'})
    assert updated.status_code == 200 and updated.json()["meta"]["versionId"] == "2"
    first = requests.get(f"{fhir.url}/Patient/{patient['id']}/_history/1").json()
    assert first["active"] is True and first["meta"]["versionId"] == "1"
    stale = requests.put(f"{fhir.url}/Patient/{patient['id']}", json={**patient, "active": True},
                         headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["issue"][0]["diagnostics"]  # Azure's shape: the reason in diagnostics
