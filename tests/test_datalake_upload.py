"""`hdsctl dicom upload --via datalake` against the local platform: files written into the
Data Lake (Azurite) are indexed by the local service's storage indexing, and the command follows
each one to its outcome, as the STOW path reports it."""

from __future__ import annotations

import json

from conftest import STACKS, journaled, load_yaml, until_journaled

from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.synthetic import synthetic_study
from hdsctl.environment.load import load_environment
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from hdsctl.events.schema import indexing_filter


def upload(run_cli, shared_events, folder, *extra):
    emulator, storage = shared_events
    code, out, err = run_cli("--stacks-dir", str(STACKS), "dicom", "upload", str(folder), "--stack", "local",
                             "--url", emulator.url, "--via", "datalake", "--storage-url", storage.blob_url,
                             "--queue-url", storage.queue_url, "--wait", "60", "--json", *extra)
    return code, (json.loads(out) if out.strip().startswith("{") else out), err


def write(folder, study):
    folder.mkdir(parents=True, exist_ok=True)
    for number, instance in enumerate(study.instances):
        (folder / f"{number}.dcm").write_bytes(instance.data)


def test_files_copied_into_the_data_lake_are_indexed_and_found(run_cli, shared_events, tmp_path):
    study = synthetic_study(instances_per_series=2, size=16)
    write(tmp_path / "archive", study)
    code, report, err = upload(run_cli, shared_events, tmp_path / "archive")
    assert code == EXIT_OK, (report, err)
    assert report["counts"]["stored"] == len(study.instances) and report["counts"]["copiedNotYetIndexed"] == 0
    with DicomClient(shared_events[0].url) as client:
        assert len(client.search("instances", study=study.study_uid)) == len(study.instances)
    code, again, _ = upload(run_cli, shared_events, tmp_path / "archive")  # the journal knows: nothing to do
    assert code == EXIT_OK and again["counts"]["doneInEarlierRuns"] == len(study.instances)


def test_what_the_service_refuses_is_reported_with_its_reason(run_cli, shared_events, tmp_path, monkeypatch):
    """The service's indexing refuses a file the scan found fine (here: the engine answers 43264 for
    one instance); its reason comes back from <queue>-poison, the rest is stored."""
    from hdsctl.emulator.dicomweb import _failed, _stow_answer
    from hdsctl.emulator.part10 import read_header

    study = synthetic_study(instances_per_series=2, size=16)
    write(tmp_path / "archive", study)
    refused = study.instances[1].sop_uid
    front = shared_events[0].front
    real = front.stow

    def stow(method, base, study_in_path, headers, body):
        header = read_header(body, 0, len(body)).dataset
        if str(header.SOPInstanceUID) == refused:
            failed = _failed(str(header.SOPClassUID), refused, 43264, "PatientID VR")
            return _stow_answer(base, None, [], [failed])
        return real(method, base, study_in_path, headers, body)

    monkeypatch.setattr(front, "stow", stow)
    code, report, _ = upload(run_cli, shared_events, tmp_path / "archive")
    assert code == EXIT_FAILED
    failure, = report["failures"]
    assert failure["file"].endswith("1.dcm") and failure["reason"] == "not-indexed"
    assert "43264" in failure["detail"] and "PatientID VR" in failure["detail"]
    assert report["counts"]["stored"] == len(study.instances) - 1


def test_another_file_at_the_name_is_a_conflict_until_upsert(run_cli, shared_events, tmp_path):
    from azure.storage.blob import ContainerClient

    _, storage = shared_events
    study = synthetic_study(instances_per_series=1, size=16)
    write(tmp_path / "archive", study)
    other = synthetic_study(instances_per_series=1, size=16, study_uid=study.study_uid,
                            patient_id=study.patient_id)
    env = load_environment(STACKS / "Pulumi.local.yaml")
    name = (f"AHDS/{env.workspace_name}/dicom/radiology/hdsctl-upload/{study.study_uid}/"
            f"{study.instances[0].sop_uid}.dcm")
    with ContainerClient.from_connection_string(storage.connection_string, "dicom") as container:
        container.upload_blob(name, other.instances[0].data)  # another tool wrote something else there
    code, report, _ = upload(run_cli, shared_events, tmp_path / "archive")
    assert code == EXIT_FAILED
    conflict, = [f for f in report["failures"] if f["reason"] == "conflict"]
    assert "--upsert replaces it" in conflict["detail"]
    code, report, _ = upload(run_cli, shared_events, tmp_path / "archive", "--upsert", "--retry-failed")
    assert code == EXIT_OK and report["counts"]["stored"] >= 1, report


def test_no_wait_returns_after_the_copy_and_a_later_run_follows(run_cli, shared_events, tmp_path):
    study = synthetic_study(instances_per_series=1, size=16)
    write(tmp_path / "archive", study)
    code, report, _ = upload(run_cli, shared_events, tmp_path / "archive", "--no-wait")
    assert code == EXIT_OK and report["counts"]["copiedNotYetIndexed"] == len(study.instances)
    code, report, _ = upload(run_cli, shared_events, tmp_path / "archive")
    assert code == EXIT_OK and report["counts"]["stored"] == len(study.instances)


def test_a_journal_of_one_path_is_refused_by_the_other(run_cli, shared_events, tmp_path):
    emulator, _ = shared_events
    study = synthetic_study(instances_per_series=1, size=16)
    write(tmp_path / "archive", study)
    code, _, err = run_cli("--stacks-dir", str(STACKS), "dicom", "upload", str(tmp_path / "archive"), "--stack",
                           "local", "--url", emulator.url, "--json")
    assert code == EXIT_OK, err
    code, _, err = upload(run_cli, shared_events, tmp_path / "archive")
    assert code == EXIT_BAD_INPUT and "one journal follows one service" in err and "via datalake" in err


def test_a_service_without_indexing_is_a_usage_error(run_cli, write_stack, dev_document, tmp_path):
    study = synthetic_study(instances_per_series=1, size=16)
    write(tmp_path / "archive", study)
    path = write_stack("dev", dev_document)
    code, _, err = run_cli("--stacks-dir", str(path.parent), "dicom", "upload", str(tmp_path / "archive"),
                           "--stack", "dev", "--via", "datalake")
    assert code == EXIT_BAD_INPUT and "declare storage with indexing" in err


def test_the_local_indexer_admits_what_the_programs_subscription_admits():
    """Azurite has no Event Grid: the local stand-in must filter as the declared subscription does."""
    from conftest import shipped_plan

    env = load_environment(STACKS / "Pulumi.local.yaml")
    storage = env.spec.dicom_services[0].storage
    local = indexing_filter(storage.file_system_name, env.workspace_name, "radiology",
                            storage.indexing.partitions)
    subscription = next(r for r in shipped_plan("local").resources
                        if r.type.endswith("SystemTopicEventSubscription") and "indexing" in r.name)
    declared = subscription.inputs["filter"]
    assert local.prefixes == (declared["subjectBeginsWith"],) and local.suffix == declared["subjectEndsWith"]
    assert list(local.event_types) == declared["includedEventTypes"]
    assert [local.own_writes] == declared["advancedFilters"][0]["values"]
    prefix = declared["subjectBeginsWith"]
    assert local.admits("Microsoft.Storage.BlobCreated", f"{prefix}a/b.dcm")
    assert not local.admits("Microsoft.Storage.BlobCreated", f"{prefix}a/b.txt")
    assert not local.admits("Microsoft.Storage.BlobCreated", prefix.replace("radiology", "other") + "b.dcm")
    assert not local.admits("Microsoft.Storage.BlobCreated", f"{prefix}b.dcm", local.own_writes + "x")


def _wait(predicate, seconds: float = 20.0):
    import time

    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.1)
    return predicate()


def test_files_written_by_other_tools_are_indexed_refused_or_removed(shared_events):
    """What the local service's storage indexing does with files no hdsctl command wrote."""
    import base64

    from azure.storage.blob import ContainerClient
    from azure.storage.queue import QueueClient

    emulator, storage = shared_events
    env = load_environment(STACKS / "Pulumi.local.yaml")
    folder = f"AHDS/{env.workspace_name}/dicom/radiology/other-tool/"
    study = synthetic_study(instances_per_series=1, size=16)
    with ContainerClient.from_connection_string(storage.connection_string, "dicom") as container, \
            QueueClient.from_connection_string(storage.connection_string, "storage-events-poison") as poison, \
            DicomClient(emulator.url) as dicom:
        container.upload_blob(f"{folder}a.dcm", study.instances[0].data)
        container.upload_blob(f"{folder}notes.txt", b"not for the service")  # not .dcm: no event
        container.upload_blob(f"{folder}broken.dcm", b"\0" * 128 + b"DICM" + b"\xff" * 40)
        container.upload_blob(f"AHDS/{env.workspace_name}/dicom/another/b.dcm", study.instances[1].data)

        def held() -> int:
            return len(dicom.search("instances", study=study.study_uid))

        def poisoned() -> list[dict]:
            return [json.loads(base64.b64decode(m.content)) for m in poison.peek_messages(max_messages=32)]

        assert _wait(lambda: held() == 1)  # another service's folder is not this service's
        assert _wait(lambda: any(p["subject"].endswith("/other-tool/broken.dcm") for p in poisoned()))
        broken = next(p for p in poisoned() if p["subject"].endswith("/other-tool/broken.dcm"))
        assert broken["reason"].startswith("User: not indexed (FailureReason 43264")
        assert not any(p["subject"].endswith("notes.txt") for p in poisoned())
        container.delete_blob(f"{folder}a.dcm")  # removed from the Data Lake: removed from the index
        assert _wait(lambda: held() == 0)
        container.delete_blob(f"{folder}broken.dcm")  # never indexed: its removal changes nothing


def test_a_partition_the_service_or_its_indexing_does_not_have_is_refused(run_cli, write_stack, tmp_path):
    document = load_yaml(STACKS / "Pulumi.local.yaml")
    write(tmp_path / "archive", synthetic_study(instances_per_series=1, size=16))
    path = write_stack("local", document)

    def run(*extra):
        return run_cli("--stacks-dir", str(path.parent), "dicom", "upload", str(tmp_path / "archive"),
                       "--stack", "local", "--url", "http://127.0.0.1:9", *extra)

    code, _, err = run("--partition", "ct")
    assert code == EXIT_BAD_INPUT and "radiology has no data partitions" in err
    service = document["config"]["hdsctl:dicomServices"][0]
    service["dataPartitions"] = True
    service["storage"]["indexing"]["partitions"] = ["ct", "mr"]
    path = write_stack("local", document)
    code, _, err = run("--partition", "us", "--via", "datalake")
    assert code == EXIT_BAD_INPUT and "indexing covers only partitions ct, mr" in err
    code, _, err = run("--partition", "bad/name")
    assert code == EXIT_BAD_INPUT and "a partition name is" in err


def test_shards_take_the_data_lake_path_too(run_cli, shared_events, tmp_path):
    from hdsctl.dicom.shards import shard_of

    studies = [synthetic_study(instances_per_series=1, size=16) for _ in range(4)]
    folder = tmp_path / "archive"
    folder.mkdir()
    for number, study in enumerate(studies):
        for index, instance in enumerate(study.instances):
            (folder / f"s{number}-{index}.dcm").write_bytes(instance.data)
    stored = 0
    for index in range(2):
        code, report, err = upload(run_cli, shared_events, folder, "--shard", f"{index}/2", "--journal",
                                   str(tmp_path / f"shard{index}.sqlite"))
        assert code == EXIT_OK, err
        mine = sum(len(s.instances) for s in studies if shard_of(s.study_uid, 2) == index)
        assert report["counts"]["stored"] == mine
        stored += mine
    assert stored == sum(len(s.instances) for s in studies)
    code, out, _ = run_cli("dicom", "upload", "--status", str(tmp_path / "shard0.sqlite"),
                           str(tmp_path / "shard1.sqlite"), "--json")
    assert code == EXIT_OK and json.loads(out)["ok"]


def _version(data: bytes, comment: str) -> bytes:
    """The same instance (same UIDs) with other content: what a tool writing a file again writes."""
    import io

    import pydicom

    dataset = pydicom.dcmread(io.BytesIO(data))
    dataset.ImageComments = comment
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def _comment(dicom, study, instance) -> str:
    import io

    import pydicom

    data = dicom.retrieve_instance(study.study_uid, instance.series_uid, instance.sop_uid)
    return str(pydicom.dcmread(io.BytesIO(data)).get("ImageComments", ""))


def test_a_file_written_again_even_while_it_is_read_ends_as_its_last_version(shared_events):
    """A tool writes a file, then writes it again twice, the second time while the indexer is
    reading it: the service serves the last version, and nothing lands in <queue>-poison."""
    from azure.storage.blob import ContainerClient

    emulator, storage = shared_events
    indexer = emulator.indexer
    env = load_environment(STACKS / "Pulumi.local.yaml")
    study = synthetic_study(instances_per_series=1, size=16)
    instance = study.instances[0]
    name = f"AHDS/{env.workspace_name}/dicom/radiology/rewritten/{instance.sop_uid}.dcm"
    with ContainerClient.from_connection_string(storage.connection_string, "dicom") as container, \
            DicomClient(emulator.url) as dicom:
        container.upload_blob(name, _version(instance.data, "v1"))
        assert _wait(lambda: len(dicom.search("instances", study=study.study_uid)) == 1)
        assert _comment(dicom, study, instance) == "v1"

        real_download = indexer.container.download_blob

        def download_then_written_again(blob, *args, **kwargs):
            downloader = real_download(blob, *args, **kwargs)
            if blob == name and not written_during_read:
                written_during_read.append(True)
                container.upload_blob(name, _version(instance.data, "v3"), overwrite=True)
            return downloader

        written_during_read: list[bool] = []
        indexer.container.download_blob = download_then_written_again
        try:
            container.upload_blob(name, _version(instance.data, "v2"), overwrite=True)
            assert _wait(lambda: _comment(dicom, study, instance) == "v3")
        finally:
            del indexer.container.download_blob
        assert written_during_read
        assert len(dicom.search("instances", study=study.study_uid)) == 1
        container.delete_blob(name)


def test_a_refusal_far_down_a_long_poison_queue_is_found_and_nothing_is_taken_off(shared_events):
    """More poison messages than one read returns (32), the file's own last and without a reason
    (as a bare CloudEvent): it is found, the reason says where the service logs it, and every
    message is still on the queue."""
    import base64

    from azure.storage.queue import QueueClient

    from hdsctl.dicom.indexing_follow import DataLakeTarget, IndexingFollower
    from hdsctl.dicom.upload_report import COPIED, Outcome
    from hdsctl.events.schema import blob_subject

    emulator, storage = shared_events
    target = DataLakeTarget(storage.blob_url, "dicom", "AHDS/ws/dicom/svc/", "far", storage.queue_url)
    study, sop = "1.2.3", "1.2.3.4"

    def message(record: dict) -> str:
        return base64.b64encode(json.dumps(record).encode()).decode()

    with QueueClient.from_connection_string(storage.connection_string, "far-poison") as poison, \
            DicomClient(emulator.url) as dicom:
        poison.create_queue()
        for number in range(60):
            poison.send_message(message({"subject": blob_subject("dicom", f"other/{number}.dcm"),
                                         "reason": "User: someone else's file"}))
        poison.send_message(message({"specversion": "1.0", "type": "Microsoft.Storage.BlobCreated",
                                     "subject": blob_subject("dicom", target.name_of(study, sop))}))
        waiting = {sop: Outcome("archive/a.dcm", COPIED, sop, size=10)}
        settled, = IndexingFollower(target).settle(dicom, waiting, {sop: study})
        assert (settled.key, settled.status, settled.reason) == ("archive/a.dcm", "failed", "not-indexed")
        assert "AHDSDicomDiagnosticLogs" in settled.detail
        assert poison.get_queue_properties().approximate_message_count == 61
        poison.delete_queue()


def test_events_lost_from_the_queue_are_raised_again_by_upsert(run_cli, shared_events, tmp_path):
    """The service fell behind and the queue lost the events (their time to live ran out): the
    run says the files are copied, not stored, and how to raise new events; --upsert does."""
    from azure.storage.queue import QueueClient

    emulator, storage = shared_events
    study = synthetic_study(instances_per_series=1, size=16)
    write(tmp_path / "archive", study)
    emulator.indexer.paused.set()
    try:
        code, report, _ = upload(run_cli, shared_events, tmp_path / "archive", "--wait", "1")
        assert code == EXIT_FAILED and report["counts"]["copiedNotYetIndexed"] == len(study.instances)
        with QueueClient.from_connection_string(storage.connection_string, "storage-events") as queue:
            assert _wait(lambda: queue.get_queue_properties().approximate_message_count >= len(study.instances))
            queue.clear_messages()  # their time to live is over
    finally:
        emulator.indexer.paused.clear()
    code, report, _ = upload(run_cli, shared_events, tmp_path / "archive", "--wait", "2")
    assert code == EXIT_FAILED and report["counts"]["copiedNotYetIndexed"] == len(study.instances)
    assert "--upsert writes them again" in report["stopped"]
    code, report, _ = upload(run_cli, shared_events, tmp_path / "archive", "--upsert")
    assert code == EXIT_OK and report["counts"]["stored"] == len(study.instances), report


def test_a_topic_denied_its_queue_role_is_named_and_the_files_sent_again(run_cli, shared_events, tmp_path):
    """The account's system topic lacks Storage Queue Data Message Sender: Event Grid dead-letters
    each event (a 403 is not retried); the run names the role, and once it is granted,
    --upsert --retry-failed writes the files again and they are indexed."""
    emulator, _ = shared_events
    study = synthetic_study(instances_per_series=1, size=16)
    write(tmp_path / "archive", study)
    emulator.indexer.deny_delivery = True
    try:
        code, report, _ = upload(run_cli, shared_events, tmp_path / "archive", "--wait", "20")
    finally:
        emulator.indexer.deny_delivery = False
    assert code == EXIT_FAILED
    assert len(report["failures"]) == len(study.instances)
    for failure in report["failures"]:
        assert failure["reason"] == "not-delivered"
        assert "Forbidden, HTTP 403" in failure["detail"]
        assert "Storage Queue Data Message Sender (c6a89b2d-59bc-44d0-9896-0f6e12d7b80a)" in failure["detail"]
    code, report, _ = upload(run_cli, shared_events, tmp_path / "archive", "--upsert", "--retry-failed")
    assert code == EXIT_OK and report["counts"]["stored"] == len(study.instances), report


def test_status_looks_up_what_no_wait_left_copied(run_cli, shared_events, tmp_path):
    """`--no-wait` then `--status JOURNAL --stack`: the files are looked up on the service (stored)
    without another upload; without --stack they are reported as waiting; another service's
    journal is refused."""
    emulator, storage = shared_events
    study = synthetic_study(instances_per_series=1, size=16)
    write(tmp_path / "archive", study)
    journal = tmp_path / "archive" / ".hdsctl-upload.sqlite"
    code, report, _ = upload(run_cli, shared_events, tmp_path / "archive", "--no-wait")
    assert code == EXIT_OK and report["counts"]["copiedNotYetIndexed"] == len(study.instances)
    code, out, _ = run_cli("dicom", "upload", "--status", str(journal))
    assert code == EXIT_FAILED and "--stack looks them up" in out

    def status(*extra):
        return run_cli("--stacks-dir", str(STACKS), "dicom", "upload", "--status", str(journal), "--stack",
                       "local", "--storage-url", storage.blob_url, "--queue-url", storage.queue_url, *extra)

    found = {}
    assert _wait(lambda: found.update(json.loads(status("--url", emulator.url, "--json")[1])) or found["ok"])
    assert found["counts"]["stored"] == len(study.instances) and found["waiting"] == []
    code, _, err = status("--url", "http://127.0.0.1:9")
    assert code == EXIT_BAD_INPUT and "--stack local resolves to http://127.0.0.1:9" in err


def test_a_large_file_cut_off_mid_copy_resumes_from_the_blocks_already_staged(run_cli, shared_events, tmp_path,
                                                                              monkeypatch):
    """A file copied in blocks loses its connection after three: the run stops with the file not
    sent; the next run sends only the blocks not staged yet, and the service stores the file whole."""
    from azure.core.exceptions import ServiceRequestError
    from azure.storage.blob import BlobClient

    from hdsctl.dicom import staged_blob

    emulator, _ = shared_events
    monkeypatch.setattr(staged_blob, "BLOCK_BYTES", 64 << 10)
    monkeypatch.setattr(staged_blob, "LARGE_FILE_BYTES", 128 << 10)
    study = synthetic_study(instances_per_series=1, size=512, frames=1)
    instance = max(study.instances, key=lambda i: len(i.data))
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "large.dcm").write_bytes(instance.data)
    blocks = len(staged_blob.block_ids(b"\0" * 16, len(instance.data)))
    assert blocks > 4
    real_stage = BlobClient.stage_block
    staged: list[str] = []

    def stage(self, block_id, data, *args, **kwargs):
        if cut_after is not None and len(staged) == cut_after:
            raise ServiceRequestError("the connection was lost")
        staged.append(block_id)
        return real_stage(self, block_id, data, *args, **kwargs)

    monkeypatch.setattr(BlobClient, "stage_block", stage)
    cut_after = 3
    code, report, _ = upload(run_cli, shared_events, tmp_path / "archive")
    assert code != EXIT_OK and report["counts"]["stored"] == 0 and len(staged) == 3
    cut_after, staged = None, []
    code, report, _ = upload(run_cli, shared_events, tmp_path / "archive")
    assert code == EXIT_OK and report["counts"]["stored"] == 1, report
    assert len(staged) == blocks - 3  # the three already staged are not sent again
    with DicomClient(emulator.url) as dicom:
        assert dicom.retrieve_instance(study.study_uid, instance.series_uid, instance.sop_uid)[132:] \
            .endswith(instance.data[-4096:])


def test_a_data_lake_that_does_not_answer_stops_the_run_with_a_message(run_cli, shared_events, tmp_path):
    emulator, storage = shared_events
    write(tmp_path / "archive", synthetic_study(instances_per_series=1, size=16))
    code, out, err = run_cli("--stacks-dir", str(STACKS), "dicom", "upload", str(tmp_path / "archive"),
                             "--stack", "local", "--url", emulator.url, "--via", "datalake", "--storage-url",
                             "http://127.0.0.1:9", "--queue-url", storage.queue_url, "--deadline", "2")
    assert code == EXIT_FAILED and "Traceback" not in out + err
    assert "STOPPED: the Data Lake http://127.0.0.1:9/dicom: no answer" in out


def test_a_copy_interrupted_by_ctrl_c_resumes_without_sending_a_file_twice(run_cli, shared_events, tmp_path,
                                                                           monkeypatch):
    """SIGINT mid-copy: the run ends cleanly with what it copied journaled; the next run sends none
    of those again, and every file ends indexed."""
    import signal
    import sqlite3
    import subprocess
    import sys

    from azure.storage.blob import ContainerClient

    emulator, storage = shared_events
    folder = tmp_path / "archive"
    studies = [synthetic_study(instances_per_series=8, size=16) for _ in range(8)]
    for number, study in enumerate(studies):
        write(folder / f"s{number}", study)
    total = sum(len(s.instances) for s in studies)
    journal = tmp_path / "journal.sqlite"

    first = subprocess.Popen(
        [sys.executable, "-m", "hdsctl.cli", "--stacks-dir", str(STACKS), "dicom", "upload", str(folder),
         "--stack", "local", "--url", emulator.url, "--via", "datalake", "--storage-url", storage.blob_url,
         "--queue-url", storage.queue_url, "--journal", str(journal), "--batch-mb", "0.01",
         "--concurrency", "1", "--no-wait", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    until_journaled(journal, first, "copied")
    assert first.poll() is None, "the copy ended before it could be interrupted"
    first.send_signal(signal.SIGINT)
    out, err = first.communicate(timeout=60)
    assert first.returncode != 0 and "Traceback" not in err
    assert json.loads(out)["stopped"] == "interrupted (Ctrl-C)"
    env = load_environment(STACKS / "Pulumi.local.yaml")
    prefix = f"AHDS/{env.workspace_name}/dicom/radiology/hdsctl-upload/"
    with ContainerClient.from_connection_string(storage.connection_string, "dicom") as container:
        present = sum(len(list(container.list_blobs(name_starts_with=f"{prefix}{s.study_uid}/")))
                      for s in studies)
    journaled_copied = journaled(journal, "copied")
    assert journaled_copied <= present < total
    db = sqlite3.connect(journal)
    try:
        recorded = {f"{prefix}{study}/{sop}.dcm" for study, sop in db.execute(
            "select study_uid, sop_uid from files where status = 'copied'")}
    finally:
        db.close()

    sent: list[str] = []
    real_upload = ContainerClient.upload_blob

    def upload_blob(self, name, *args, **kwargs):
        sent.append(name)
        return real_upload(self, name, *args, **kwargs)

    monkeypatch.setattr(ContainerClient, "upload_blob", upload_blob)
    code, report, _ = upload(run_cli, shared_events, folder, "--journal", str(journal))
    assert code == EXIT_OK and report["counts"]["stored"] == total, report
    # Nothing the journal recorded is sent again; the file in flight when the run stopped may be
    # (the Data Lake refuses to overwrite it and the MD5s are compared).
    assert not recorded & set(sent) and len(sent) == len(set(sent))
    assert total - present <= len(sent) <= total - journaled_copied
