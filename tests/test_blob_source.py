"""An archive in Blob storage as the upload's source (Azurite here): listed, read by ranged GETs
pinned to each blob's ETag, sent by STOW or copied into the Data Lake, resumed from its journal;
bad source URLs are refused before anything is read."""

from __future__ import annotations

import contextlib
import json

import pytest
from conftest import STACKS

from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.synthetic import synthetic_study
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK


def _container(storage, name: str):
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import ContainerClient

    container = ContainerClient.from_connection_string(storage.connection_string, name)
    with contextlib.suppress(ResourceExistsError):  # another test made it
        container.create_container()
    return container


def _source(storage, container: str, prefix: str) -> str:
    return f"{storage.blob_url}/{container}/{prefix}"


def upload(run_cli, shared_events, source, journal, *extra):
    emulator, _ = shared_events
    code, out, err = run_cli("--stacks-dir", str(STACKS), "dicom", "upload", source, "--stack", "local",
                             "--url", emulator.url, "--journal", str(journal), "--json", *extra)
    return code, (json.loads(out) if out.strip().startswith("{") else out), err


@pytest.fixture
def archive(shared_events):
    """Two studies under export/2019/ in a container, and a note that is not DICOM."""
    _, storage = shared_events
    studies = [synthetic_study(instances_per_series=2, size=16) for _ in range(2)]
    with _container(storage, "pacs-export") as container:
        for number, study in enumerate(studies):
            for index, instance in enumerate(study.instances):
                container.upload_blob(f"export/{studies[0].study_uid}/s{number}/{index}.dcm", instance.data)
        container.upload_blob(f"export/{studies[0].study_uid}/README.txt", b"exported by the PACS")
    return _source(storage, "pacs-export", f"export/{studies[0].study_uid}"), studies


def test_a_container_is_uploaded_and_a_rerun_sends_nothing(run_cli, shared_events, archive, tmp_path):
    source, studies = archive
    total = sum(len(s.instances) for s in studies)
    code, report, err = upload(run_cli, shared_events, source, tmp_path / "j.sqlite")
    assert code == EXIT_OK, err
    assert report["counts"]["stored"] == total and report["counts"]["notDicom"] == 1
    with DicomClient(shared_events[0].url) as dicom:
        for study in studies:
            assert len(dicom.search("instances", study=study.study_uid)) == len(study.instances)
    code, report, _ = upload(run_cli, shared_events, source, tmp_path / "j.sqlite")
    assert code == EXIT_OK and report["counts"]["doneInEarlierRuns"] == total
    assert report["counts"]["stored"] == 0


def test_a_blob_written_again_after_the_listing_fails_as_changed(run_cli, shared_events, archive, tmp_path,
                                                                  monkeypatch):
    """The header was read from one version; by the time it is sent another is there: the read
    pinned to the listing's ETag fails, and the file is reported changed, not sent mixed."""
    from hdsctl.dicom.blob_source import BlobSource

    source, studies = archive
    _, storage = shared_events
    opened: dict[str, int] = {}
    real_open = BlobSource.open

    def open_then_written_again(self):
        opened[self.name] = opened.get(self.name, 0) + 1
        if self.name.endswith("s1/0.dcm") and opened[self.name] == 2:  # the scan read it once already
            other = synthetic_study(instances_per_series=1, size=16).instances[0].data
            with _container(storage, "pacs-export") as container:
                container.upload_blob(self.name, other, overwrite=True)
        return real_open(self)

    monkeypatch.setattr(BlobSource, "open", open_then_written_again)
    code, report, _ = upload(run_cli, shared_events, source, tmp_path / "j.sqlite", "--batch-mb", "0.001")
    assert code == EXIT_FAILED
    failure, = report["failures"]
    assert failure["file"].endswith("s1/0.dcm") and failure["reason"] == "changed"
    assert "written again or removed since it was listed" in failure["detail"]
    assert report["counts"]["stored"] == sum(len(s.instances) for s in studies) - 1


def test_a_container_copied_into_the_data_lake_is_indexed(run_cli, shared_events, archive, tmp_path):
    source, studies = archive
    _, storage = shared_events
    code, report, err = upload(run_cli, shared_events, source, tmp_path / "j.sqlite", "--via", "datalake",
                               "--storage-url", storage.blob_url, "--queue-url", storage.queue_url,
                               "--wait", "60")
    assert code == EXIT_OK, err
    assert report["counts"]["stored"] == sum(len(s.instances) for s in studies)


@pytest.mark.parametrize("url, words", [
    ("https://acct.blob.core.windows.net/c/x?sv=2024&sig=secret", "without a SAS"),
    ("https://evil.example/c/x", "not a Storage account host"),
    ("https://acct.blob.core.windows.net", "name the container"),
])
def test_a_source_url_that_is_not_one_to_read_is_refused(run_cli, tmp_path, url, words):
    code, out, err = run_cli("--stacks-dir", str(STACKS), "dicom", "upload", url, "--stack", "local", "--url",
                             "http://127.0.0.1:9", "--journal", str(tmp_path / "j.sqlite"))
    assert code == EXIT_BAD_INPUT and words in err and "secret" not in out + err


def test_a_blob_source_needs_a_journal_and_a_missing_container_is_named(run_cli, shared_events, tmp_path):
    _, storage = shared_events
    source = _source(storage, "no-such-container", "x")
    code, _, err = run_cli("--stacks-dir", str(STACKS), "dicom", "upload", source, "--stack", "local")
    assert code == EXIT_BAD_INPUT and "give --journal FILE" in err
    code, _, err = upload(run_cli, shared_events, source, tmp_path / "j.sqlite")
    assert code == EXIT_FAILED and "Traceback" not in err
    assert "no-such-container does not exist (404)" in err
