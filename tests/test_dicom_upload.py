"""`hdsctl dicom upload` against the local service: what is stored is stored, what is not is
named, and a second run sends only what is missing."""

from __future__ import annotations

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile

import pytest
from conftest import STACKS, load_yaml

from hdsctl.dicom import errors
from hdsctl.dicom.archive import Candidate, Source
from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.journal import Journal
from hdsctl.dicom.progress import UploadProgress
from hdsctl.dicom.synthetic import IMPLICIT_VR_LITTLE_ENDIAN, synthetic_study
from hdsctl.dicom.upload import Options, Upload, plan_batches
from hdsctl.dicom.upload_report import UploadReport
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK


@pytest.fixture
def stack(write_stack):
    return write_stack("local", load_yaml(STACKS / "Pulumi.local.yaml"))


def write_studies(folder, studies: int = 2, per_series: int = 3):
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number in range(studies):
        study = synthetic_study(instances_per_series=per_series)
        for index, instance in enumerate(study.instances):
            path = folder / f"study{number}-{index}.dcm"
            path.write_bytes(instance.data)
            written.append((path, instance))
    return written


def upload(run_cli, stack, url, *args):
    code, out, err = run_cli("--stacks-dir", str(stack.parent), "dicom", "upload", *map(str, args),
                             "--stack", "local", "--url", url, "--json")
    return code, json.loads(out), err


def stow_instances(emulator, start: int) -> int:
    return sum(1 for r in emulator.requests[start:] if r.method in {"POST", "PUT"} and "/studies" in r.path)


def test_an_archive_is_stored_and_a_second_run_sends_nothing(run_cli, stack, shared_dicom, tmp_path):
    archive = tmp_path / "archive"
    files = write_studies(archive / "disk")
    with zipfile.ZipFile(archive / "exported.zip", "w", zipfile.ZIP_DEFLATED) as bundle:
        for index, instance in enumerate(synthetic_study(instances_per_series=2).instances):
            bundle.writestr(f"cd/{index}.dcm", instance.data)
    (archive / "notes.txt").write_text("not an image")
    code, report, _ = upload(run_cli, stack, shared_dicom.url, archive)
    assert code == EXIT_OK, report
    assert report["counts"]["stored"] == len(files) + 3 and report["counts"]["notDicom"] == 1
    assert report["batches"] == 3  # one study each
    assert 0 < report["scanSeconds"] <= report["seconds"]  # the headers are read before sending
    with DicomClient(shared_dicom.url) as client:
        for path, instance in files:
            assert client.search("instances", {"SOPInstanceUID": instance.sop_uid}), path
    start = len(shared_dicom.requests)
    code, report, _ = upload(run_cli, stack, shared_dicom.url, archive)
    assert code == EXIT_OK and report["counts"]["doneInEarlierRuns"] == len(files) + 3
    assert report["counts"]["stored"] == 0 and stow_instances(shared_dicom, start) == 0


def test_without_the_journal_already_stored_instances_are_a_success(run_cli, stack, shared_dicom, tmp_path):
    files = write_studies(tmp_path / "a", studies=1)
    assert upload(run_cli, stack, shared_dicom.url, tmp_path / "a")[0] == EXIT_OK
    fresh = tmp_path / "fresh.db"
    code, report, _ = upload(run_cli, stack, shared_dicom.url, tmp_path / "a", "--journal", fresh)
    assert code == EXIT_OK
    assert report["counts"]["alreadyStored"] == len(files) and report["counts"]["stored"] == 0
    again = tmp_path / "again.db"
    code, report, _ = upload(run_cli, stack, shared_dicom.url, tmp_path / "a", "--journal", again, "--upsert")
    assert code == EXIT_OK and report["counts"]["stored"] == len(files)


def test_problem_files_are_named_and_the_rest_is_stored(run_cli, stack, shared_dicom, tmp_path):
    folder = tmp_path / "mixed"
    good = write_studies(folder, studies=1, per_series=2)
    implicit = synthetic_study(instances_per_series=1, transfer_syntax=IMPLICIT_VR_LITTLE_ENDIAN)
    (folder / "implicit.dcm").write_bytes(implicit.instances[0].data)
    (folder / "truncated.dcm").write_bytes(good[0][1].data[:300])
    (folder / "garbage.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\xff" * 64)
    (folder / "gone.dcm").symlink_to(folder / "nowhere")
    code, report, _ = upload(run_cli, stack, shared_dicom.url, folder)
    assert code == EXIT_FAILED
    failures = {f["file"].rsplit("/", 1)[-1]: f for f in report["failures"]}
    assert set(failures) == {"implicit.dcm", "truncated.dcm", "garbage.dcm", "gone.dcm"}
    assert failures["implicit.dcm"]["reason"] == "implicit-vr"
    assert "--convert-implicit" in failures["implicit.dcm"]["detail"]
    assert failures["truncated.dcm"]["reason"] == "corrupt" and failures["gone.dcm"]["reason"] == "unreadable"
    assert report["counts"]["stored"] == len(good)
    code, report, _ = upload(run_cli, stack, shared_dicom.url, folder / "implicit.dcm", "--convert-implicit",
                             "--journal", tmp_path / "j.db")
    assert code == EXIT_OK and report["counts"]["stored"] == 1
    with DicomClient(shared_dicom.url) as client:
        (metadata,) = client.retrieve_metadata(implicit.study_uid, implicit.instances[0].series_uid,
                                               implicit.instances[0].sop_uid)
        assert metadata["00080018"]["Value"] == [implicit.instances[0].sop_uid]


def test_duplicate_sop_instance_uids(run_cli, stack, shared_dicom, tmp_path):
    folder = tmp_path / "dups"
    (path, instance), *_ = write_studies(folder, studies=1, per_series=1)
    (folder / "copy.dcm").write_bytes(path.read_bytes())  # the same file twice: fine
    code, report, _ = upload(run_cli, stack, shared_dicom.url, folder)
    assert code == EXIT_OK and report["counts"]["alreadyStored"] == 1
    other = folder.parent / "conflict"
    other.mkdir()
    (other / "one.dcm").write_bytes(instance.data)
    changed = bytearray(instance.data)
    changed[-1] ^= 0xFF  # same UIDs, other pixels
    (other / "two.dcm").write_bytes(bytes(changed))
    code, report, _ = upload(run_cli, stack, shared_dicom.url, other)
    assert code == EXIT_FAILED
    assert {f["reason"] for f in report["failures"]} == {"conflict"} and len(report["failures"]) == 2


def test_a_zip_bomb_is_refused_without_decompressing(run_cli, stack, shared_dicom, tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("huge.dcm", b"\0" * (64 << 20))
    code, report, _ = upload(run_cli, stack, shared_dicom.url, bomb)
    assert code == EXIT_FAILED
    (failure,) = report["failures"]
    assert failure["reason"] == "refused-archive" and "not decompressed" in failure["detail"]


def test_a_journal_of_another_service_is_refused(run_cli, stack, shared_dicom, tmp_path):
    write_studies(tmp_path / "a", studies=1, per_series=1)
    other = tmp_path / "other.db"
    Journal(other, "https://ws-other.dicom.azurehealthcareapis.com").close()
    code, _, err = run_cli("--stacks-dir", str(stack.parent), "dicom", "upload", str(tmp_path / "a"),
                           "--stack", "local", "--url", shared_dicom.url, "--journal", str(other))
    assert code == EXIT_BAD_INPUT and "is the upload journal of https://ws-other" in err


def test_the_service_going_away_mid_run_loses_nothing(shared_dicom, tmp_path):
    folder = tmp_path / "big"
    write_studies(folder, studies=4, per_series=1)
    calls = []

    class GoesAway(DicomClient):
        def store(self, parts, **kwargs):
            calls.append(len(parts))
            if len(calls) > 2:
                raise errors.ServiceUnreachable("POST ... got no answer (connection refused)")
            return super().store(parts, **kwargs)

    def factory():
        return GoesAway(shared_dicom.url, retry_backoff_factor=0.01)

    journal = Journal(tmp_path / "j.db", shared_dicom.url)
    report = Upload(factory, journal, Options(concurrency=1)).run([folder], shared_dicom.url)
    assert not report.ok and "got no answer" in report.stopped
    assert report.count("stored") == 4 and report.count("pending") == 4
    assert sum(1 for e in journal.entries().values() if e.status == "stored") == 4
    report = Upload(lambda: DicomClient(shared_dicom.url), journal, Options()).run([folder], shared_dicom.url)
    journal.close()
    assert report.ok and report.done_before == 4 and report.count("stored") == 4


def test_a_journal_that_cannot_be_written_stops_the_run(shared_dicom, tmp_path):
    folder = tmp_path / "full"
    write_studies(folder, studies=2, per_series=1)
    journal = Journal(tmp_path / "j.db", shared_dicom.url)

    class FullDisk:
        def __init__(self, real):
            self.real = real

        def execute(self, *args):
            return self.real.execute(*args)

        def executemany(self, *args):
            raise sqlite3.OperationalError("database or disk is full")

        def __enter__(self):
            return self.real.__enter__()

        def __exit__(self, *exc):
            return self.real.__exit__(*exc)

    journal._db = FullDisk(journal._db)
    report = Upload(lambda: DicomClient(shared_dicom.url), journal, Options(concurrency=1)).run(
        [folder], shared_dicom.url)
    assert not report.ok and "cannot write the journal" in report.stopped and "disk is full" in report.stopped
    assert report.count("stored") == 0  # nothing reported stored that was not recorded


def test_dry_run_sends_nothing(run_cli, stack, shared_dicom, tmp_path):
    files = write_studies(tmp_path / "d", studies=1)
    start = len(shared_dicom.requests)
    code, report, _ = upload(run_cli, stack, shared_dicom.url, tmp_path / "d", "--dry-run")
    assert code == EXIT_OK and report["counts"]["pending"] == len(files)
    assert stow_instances(shared_dicom, start) == 0


def _candidate(study: str, size: int, number: int) -> Candidate:
    return Candidate(Source(f"/f{number}", size=size), study, f"{study}.1", f"{study}.1.{number}", "1.2",
                     "1.2.840", 0.0)


def test_batches_hold_one_study_each_and_respect_the_size():
    files = [_candidate("A", 6, 1), _candidate("B", 6, 2), _candidate("A", 6, 3), _candidate("A", 6, 4),
             _candidate("B", 30, 5)]
    batches = plan_batches(files, batch_bytes=12)
    assert [[c.sop_uid for c in b] for b in batches] == [["A.1.1", "A.1.3"], ["A.1.4"], ["B.1.2"], ["B.1.5"]]


SETPRIV = shutil.which("setpriv")


@pytest.mark.skipif(not SETPRIV or os.geteuid() != 0,
                    reason="needs setpriv and root, to run the upload without the right to bypass permissions")
def test_an_unreadable_folder_is_named_and_the_rest_is_stored(stack, shared_dicom, tmp_path):
    folder = tmp_path / "archive"
    good = write_studies(folder / "readable", studies=1, per_series=1)
    locked = folder / "locked"
    write_studies(locked, studies=1, per_series=1)
    locked.chmod(0)
    try:
        # Root reads everything; without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH it is refused
        # like any user, which is how a hospital's share with a folder one may not read behaves.
        result = subprocess.run(
            [SETPRIV, "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-m", "hdsctl.cli",
             "--stacks-dir", str(stack.parent), "dicom", "upload", str(folder), "--stack", "local", "--url",
             shared_dicom.url, "--journal", str(tmp_path / "journal.sqlite"), "--json"],
            capture_output=True, text=True, timeout=120)
    finally:
        locked.chmod(0o755)
    assert result.returncode == EXIT_FAILED, result.stderr
    report = json.loads(result.stdout)
    failure, = report["failures"]
    assert failure["file"] == str(locked) and "folder cannot be listed" in failure["detail"]
    assert report["counts"]["stored"] == len(good)


def test_a_rerun_of_an_archive_the_journal_holds_whole_reads_neither_stack_model_nor_service(
        stack, shared_dicom, tmp_path):
    archive = tmp_path / "archive"
    files = write_studies(archive, studies=1, per_series=2)
    (archive / "notes.txt").write_text("not an image")
    journal = tmp_path / "journal.sqlite"
    command = [sys.executable, "-X", "importtime", "-m", "hdsctl.cli", "--stacks-dir", str(stack.parent),
               "dicom", "upload", str(archive), "--stack", "local", "--url", shared_dicom.url, "--journal",
               str(journal), "--json"]

    def run():
        start = len(shared_dicom.requests)
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == EXIT_OK, result.stderr[-2000:]
        imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
        return json.loads(result.stdout), imported, len(shared_dicom.requests) - start

    first, imported, requests = run()
    assert first["counts"]["stored"] == len(files) and "hdsctl.environment.model" in imported and requests
    again, imported, requests = run()
    assert again["counts"]["alreadyStored"] == len(files) and again["counts"]["notDicom"] == 1
    assert again["stack"] == "local" and again["service"] == "radiology"
    # The journal answers, confirmed by one QIDO listing for the one study: no stack model, no
    # DICOM library, no sending machinery.
    assert requests == 1 and again["counts"]["verifiedOnService"] == len(files)
    assert not {"hdsctl.environment.model", "pydicom", "hdsctl.dicom.upload"} & imported
    (archive / "notes.txt").write_text("changed since")  # anything new or changed: the full path decides
    third, imported, _ = run()
    assert "hdsctl.environment.model" in imported and third["counts"]["notDicom"] == 1
    stack.write_text(stack.read_text() + "\n# reviewed\n")  # so does a changed stack file
    _, imported, _ = run()
    assert "hdsctl.environment.model" in imported


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("stream", [io.StringIO(), Terminal()], ids=["ci-log", "terminal"])
def test_progress_shows_the_header_scan_then_rates_and_counts(shared_dicom, tmp_path, stream):
    folder = tmp_path / "progress"
    files = write_studies(folder, studies=2, per_series=2)
    journal = Journal(tmp_path / "j.db", shared_dicom.url)
    progress = UploadProgress(stream, plain_every=0)
    report = Upload(lambda: DicomClient(shared_dicom.url), journal, Options(), progress).run([folder],
                                                                                          shared_dicom.url)
    journal.close()
    shown = stream.getvalue()
    assert report.ok and "reading headers" in shown and f"{len(files)} file" in shown
    assert "inst/s" in shown and "MB/s" in shown and f"stored {len(files)}" in shown
    if isinstance(stream, Terminal):  # tqdm redraws its bars in place
        assert "\r" in shown
    else:
        assert "\r" not in shown and f"{len(files)}/{len(files)} instances" in shown


def _recoded(data: bytes, **changes) -> bytes:
    import pydicom

    dataset = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in changes.items():
        setattr(dataset, keyword, value)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_an_instance_stored_earlier_with_other_content_is_a_conflict(run_cli, stack, shared_dicom, tmp_path):
    """Finding 3: a file whose SOPInstanceUID an earlier run (another journal) stored with other
    content was reported 'already stored', exit 0: the new content was silently dropped."""
    (path, instance), = write_studies(tmp_path / "first", studies=1, per_series=1)[:1]
    assert upload(run_cli, stack, shared_dicom.url, path.parent)[0] == EXIT_OK
    same = tmp_path / "same"
    same.mkdir()
    (same / "copy.dcm").write_bytes(instance.data)
    code, report, _ = upload(run_cli, stack, shared_dicom.url, same)  # a new journal, the same content
    assert code == EXIT_OK and report["counts"]["alreadyStored"] == 1
    fixed = tmp_path / "fixed"
    fixed.mkdir()
    (fixed / "renamed.dcm").write_bytes(_recoded(instance.data, PatientName="Corrected^Name"))
    code, report, _ = upload(run_cli, stack, shared_dicom.url, fixed)
    assert code == EXIT_FAILED
    failure, = report["failures"]
    assert failure["reason"] == "conflict"
    assert "PatientName" in failure["detail"] and "--upsert" in failure["detail"]
    code, report, _ = upload(run_cli, stack, shared_dicom.url, fixed, "--upsert", "--journal",
                             tmp_path / "u.db")
    assert code == EXIT_OK and report["counts"]["stored"] == 1


def test_a_rerun_sends_again_what_the_service_lost(run_cli, stack, shared_dicom, tmp_path):
    """Finding 4: after the service lost data, a re-run said 'every DICOM file is stored' with 0
    requests, trusting its journal."""
    files = write_studies(tmp_path / "lost", studies=1, per_series=2)
    assert upload(run_cli, stack, shared_dicom.url, tmp_path / "lost")[0] == EXIT_OK
    import pydicom

    synthetic_uid = pydicom.dcmread(files[0][0], stop_before_pixels=True).StudyInstanceUID
    with DicomClient(shared_dicom.url) as client:
        assert client.delete(synthetic_uid)  # an expiry, a restore, a rebuilt service
    code, report, _ = upload(run_cli, stack, shared_dicom.url, tmp_path / "lost")
    assert code == EXIT_OK, report
    assert report["counts"]["resentMissing"] == len(files) and report["counts"]["stored"] == len(files)
    with DicomClient(shared_dicom.url) as client:
        assert len(client.search("instances", study=synthetic_uid)) == len(files)


def test_a_truncated_copy_fails_alone_and_the_whole_file_is_stored(run_cli, stack, shared_dicom, tmp_path):
    """Finding 5: a truncated copy made the intact file a conflict, and a truncated implicit-VR
    file was stored with half its pixels."""
    folder = tmp_path / "cut"
    folder.mkdir()
    study = synthetic_study(instances_per_series=1, size=64)
    whole = study.instances[0].data
    (folder / "a-whole.dcm").write_bytes(whole)
    (folder / "b-cut.dcm").write_bytes(whole[:len(whole) - 1000])
    implicit = synthetic_study(instances_per_series=1, size=64, transfer_syntax=IMPLICIT_VR_LITTLE_ENDIAN)
    (folder / "c-implicit-cut.dcm").write_bytes(implicit.instances[0].data[:-2000])
    code, report, _ = upload(run_cli, stack, shared_dicom.url, folder, "--convert-implicit")
    assert code == EXIT_FAILED
    failed = {f["file"].rsplit("/", 1)[-1]: f for f in report["failures"]}
    assert set(failed) == {"b-cut.dcm", "c-implicit-cut.dcm"}
    assert all(f["reason"] == "truncated" and "short" in f["detail"] for f in failed.values())
    assert report["counts"]["stored"] == 1


def test_files_without_a_preamble_and_structured_reports_are_stored(run_cli, stack, shared_dicom, tmp_path):
    """Finding 6: File Meta first (no preamble) was 'not DICOM'; an SR in a multipart body was
    refused by the local service."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = tmp_path / "kinds"
    folder.mkdir()
    study = synthetic_study(instances_per_series=1, size=16)
    (folder / "no-preamble.dcm").write_bytes(study.instances[0].data[132:])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    report_sr = Dataset()
    report_sr.file_meta = meta
    report_sr.SOPClassUID = meta.MediaStorageSOPClassUID
    report_sr.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    report_sr.StudyInstanceUID, report_sr.SeriesInstanceUID = study.study_uid, generate_uid()
    report_sr.Modality, report_sr.PatientID = "SR", study.patient_id
    report_sr.save_as(folder / "report.dcm", enforce_file_format=True)
    (folder / "after.dcm").write_bytes(study.instances[1].data)
    code, report, _ = upload(run_cli, stack, shared_dicom.url, folder)
    assert code == EXIT_OK, report["failures"]
    assert report["counts"]["stored"] == 3 and report["counts"]["notDicom"] == 0


def test_the_scan_ends_on_link_loops_and_skips_special_files(run_cli, stack, shared_dicom, tmp_path):
    """Finding 12: two links to '.' made the scan run forever; a FIFO hung it."""
    folder = tmp_path / "loops"
    files = write_studies(folder / "data", studies=1, per_series=1)
    (folder / "data" / "here").symlink_to(".")
    (folder / "data" / "again").symlink_to(".")
    os.mkfifo(folder / "data" / "pipe.dcm")
    command = [sys.executable, "-m", "hdsctl.cli", "--stacks-dir", str(stack.parent), "dicom", "upload",
               str(folder), "--stack", "local", "--url", shared_dicom.url, "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_OK, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["counts"]["stored"] == len(files) and report["counts"]["specialFiles"] == 1


def test_a_file_changed_between_scan_and_send_fails_alone(shared_dicom, tmp_path):
    """Finding 12: a file shrunk, grown or deleted after the scan stalled or failed its batch-mates."""
    folder = tmp_path / "changing"
    files = write_studies(folder, studies=1, per_series=4)
    journal = Journal(tmp_path / "j.db", shared_dicom.url)
    upload_run = Upload(lambda: DicomClient(shared_dicom.url), journal, Options())
    scanned = upload_run.scan([folder], UploadReport(shared_dicom.url, "j"))
    shrunk, grown, removed = files[0][0], files[1][0], files[2][0]
    shrunk.write_bytes(shrunk.read_bytes()[:-100])
    with open(grown, "ab") as stream:
        stream.write(b"\0" * 100)
    removed.unlink()
    result, local = upload_run._send(scanned)
    journal.close()
    assert {sop: reason for sop, (reason, _) in local.items()} == {
        c.sop_uid: "changed" for c in scanned if c.source.path in (shrunk, grown, removed)}
    assert all("changed while uploading" in detail for _, detail in local.values())
    assert len(result.stored) == len(files) - 3


def test_a_file_that_changes_while_it_is_sent_is_refused_not_sent_cut(tmp_path):
    from hdsctl.dicom.multipart import MultipartBody, PartUnreadable

    path = tmp_path / "f.dcm"
    path.write_bytes(b"x" * 5000)
    body = MultipartBody([b"first", path])
    path.write_bytes(b"x" * 10)  # shrunk after the body was sized
    with pytest.raises(PartUnreadable) as caught:
        body.read()
    assert caught.value.index == 1 and "shorter" in caught.value.reason
    path.write_bytes(b"x" * 6000)
    body = MultipartBody([path])
    path.write_bytes(b"x" * 7000)
    with pytest.raises(PartUnreadable, match="longer"):
        body.read()


def test_odd_names_and_broken_zip_members_are_reported_without_a_traceback(run_cli, stack, shared_dicom,
                                                                           tmp_path, capsys):
    """Finding 15: a non-UTF-8 file name crashed every re-run; a zip member with a bad CRC
    crashed the upload."""
    folder = tmp_path / "odd"
    folder.mkdir()
    study = synthetic_study(instances_per_series=1, size=16)
    odd = os.fsdecode(b"caf\xe9.dcm")
    (folder / odd).write_bytes(study.instances[0].data)
    with zipfile.ZipFile(folder / "bad.zip", "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("member.dcm", study.instances[1].data)
    raw = bytearray((folder / "bad.zip").read_bytes())
    at = raw.rfind(b"\x00" * 16)  # inside the member's pixel data: the CRC no longer matches
    raw[at:at + 4] = b"\x01\x02\x03\x04"
    (folder / "bad.zip").write_bytes(bytes(raw))
    for _ in range(2):
        code, out, err = run_cli("--stacks-dir", str(stack.parent), "dicom", "upload", str(folder), "--stack",
                                 "local", "--url", shared_dicom.url)
        assert "Traceback" not in err and code == EXIT_FAILED  # the broken member, every run
        assert "bad.zip!member.dcm" in out and "CRC" in out and "caf" not in out.split("Files not stored")[1]
    journal = sqlite3.connect(folder / ".hdsctl-upload.sqlite")
    assert ("stored",) in journal.execute("select status from files where key like '%caf\\xe9.dcm'").fetchall()
    for batch in ("1e308", "-3"):
        with pytest.raises(SystemExit) as usage:
            run_cli("--stacks-dir", str(stack.parent), "dicom", "upload", str(folder), "--stack", "local",
                    "--url", shared_dicom.url, "--batch-mb", batch)
        err = capsys.readouterr().err
        assert usage.value.code == EXIT_BAD_INPUT and "megabytes" in err and "seconds" not in err


def test_a_journal_missing_columns_is_refused_with_a_message(run_cli, stack, shared_dicom, tmp_path):
    """Issue 20, finding 15: a journal missing columns ended in a traceback."""
    write_studies(tmp_path / "data", studies=1, per_series=1)
    journal = tmp_path / "old.sqlite"
    with sqlite3.connect(journal) as db:
        db.execute("create table service (url text not null)")
        db.execute("create table files (key text primary key, status text)")
    code, _, err = run_cli("--stacks-dir", str(stack.parent), "dicom", "upload", str(tmp_path / "data"),
                             "--stack", "local", "--url", shared_dicom.url, "--journal", str(journal))
    assert code == EXIT_BAD_INPUT and "not a usable upload journal" in err and "Traceback" not in err
