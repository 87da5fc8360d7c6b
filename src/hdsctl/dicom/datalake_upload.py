"""`hdsctl dicom upload --via datalake`: the archive written straight into the service's Data Lake,
for the service to index itself (storage indexing), then followed to its outcome.

The scan, journal, batches, progress and report are the STOW path's. What differs: each file is
written as a block blob (azure-storage-blob, an MD5 per request; a large file in blocks a later
run resumes: staged_blob) under the service's folder, where the storage-indexing subscription
takes it; a file the service would refuse (implicit VR) is refused before it is copied. Then,
unless `--no-wait`, the run follows each copied file until the service holds its instance,
`<queue>-poison` names it with the service's reason, or Event Grid dead-lettered its event
(indexing_follow), within the deadline; what is still waiting then is reported as copied, not
as stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import time

from hdsctl.dicom import archive, staged_blob
from hdsctl.dicom.archive import Candidate
from hdsctl.dicom.indexing_follow import DataLakeTarget, IndexingFollower
from hdsctl.dicom.journal import FAILED
from hdsctl.dicom.upload import Upload
from hdsctl.dicom.upload_report import COPIED, Outcome, UploadReport
from hdsctl.errors import stopped_by

MAX_POLL_SECONDS = 10.0
FOLLOW_ROLES = ("Storage Queue Data Message Processor (poison queue) and Storage Blob Data Reader "
                "(dead letters)")


class DataLakeUpload(Upload):
    def __init__(self, target: DataLakeTarget, dicom_factory, journal, options, progress=None, *, budget=None,
                 wait_seconds: float | None = 600.0, poll_seconds: float = 0.2):
        super().__init__(self._container, journal, options, progress)
        self.target, self.dicom_factory, self.budget = target, dicom_factory, budget
        self.wait_seconds, self.poll_seconds = wait_seconds, poll_seconds

    def _container(self):
        from azure.storage.blob import ContainerClient

        from hdsctl.dataplane import storage_client

        return storage_client(ContainerClient, self.target.account_url, self.target.file_system,
                              budget=self.budget)

    def run(self, paths, url: str) -> UploadReport:
        from hdsctl.dataplane import StorageFailed, storage_errors

        # Files an earlier run saw may be in the Data Lake already: those are compared (one HEAD)
        # before they are sent. Others are sent at once; one another tool wrote meanwhile (or one
        # in flight when a run stopped) is refused by the write itself and compared then.
        self._seen_before = set(self.journal.entries())
        report = super().run(paths, url)
        if self.wait_seconds and not self.options.dry_run and report.stopped is None:
            queues = f"the queues and dead letters of {self.target.queue} at {self.target.queue_url}"
            try:
                with storage_errors(queues, FOLLOW_ROLES):
                    self.follow(report)
            except StorageFailed as err:
                report.stopped = f"following the indexing stopped: {err}; run the same upload again to follow"
            except KeyboardInterrupt as stop:  # everything is copied; the files are followed by the next run
                report.stopped = (f"{stopped_by(stop)} while following the indexing; run the same upload again "
                                  "to follow")
        return report

    def _missing(self, entries) -> set[str]:
        """What the journal calls stored is confirmed on the service itself, not in the Data Lake."""
        from hdsctl.dicom.verify import missing_from_service

        with self.dicom_factory() as dicom:
            return missing_from_service(dicom, entries)

    # -- copy ----------------------------------------------------------------------------

    def _send(self, batch: list[Candidate]):
        """Copy the batch; Storage refusing or going away stops the run with the rest not sent
        (what was staged of a large file is kept for the next run)."""
        from hdsctl.dataplane import storage_errors

        where = f"the Data Lake {self.target.account_url}/{self.target.file_system}"
        with storage_errors(where, "Storage Blob Data Contributor"):
            return self._copy_batch(batch)

    def _copy_batch(self, batch: list[Candidate]):
        container = self._client()
        local: dict[str, tuple[str, str]] = {}
        copied = set()
        for candidate in batch:
            if self._changed(candidate, local):
                continue
            try:
                conflict = self._copy(container, candidate)
            except OSError as err:
                local[candidate.sop_uid] = ("changed", f"unreadable while copying: {err}")
                continue
            if conflict:
                local[candidate.sop_uid] = ("conflict", conflict)
                continue
            copied.add(candidate.sop_uid)
        return copied, local

    def _copy(self, container, candidate: Candidate) -> str | None:
        """Write the file (with its MD5, which later runs compare); a different file already at its
        name is a conflict unless --upsert. None when the file is in the Data Lake as it is here."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import ContentSettings

        data = (archive.explicit_copy(candidate.source) if candidate.implicit_vr  # --convert-implicit
                else None)
        digest = hashlib.md5(usedforsecurity=False)
        if data is not None:
            digest.update(data)
        else:
            with candidate.source.open() as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
        name = self.target.name_of(candidate.study_uid, candidate.sop_uid)
        conflict = (f"another file is at {name} in the Data Lake: --upsert replaces it (the service indexes "
                    "the new one)")
        if not self.options.upsert and candidate.source.key in self._seen_before:
            held = _held_md5(container, name)
            if held is not None:
                return None if held == digest.digest() else conflict
        if data is None and candidate.source.size > staged_blob.LARGE_FILE_BYTES:
            return self._copy_large(container, name, candidate, digest.digest(), conflict)
        try:  # the write itself still refuses a name taken meanwhile
            with contextlib.nullcontext(data) if data is not None else candidate.source.open() as body:
                size = len(data) if data is not None else candidate.source.size
                container.upload_blob(name, body, length=size,
                                      overwrite=self.options.upsert, validate_content=True,
                                      content_settings=ContentSettings(content_md5=bytearray(digest.digest())))
        except ResourceExistsError:
            return None if _held_md5(container, name) == digest.digest() else conflict
        return None

    def _copy_large(self, container, name: str, candidate: Candidate, md5: bytes, conflict: str) -> str | None:
        """In blocks a later run resumes (staged_blob)."""
        try:
            with candidate.source.open() as stream:
                staged_blob.write_in_blocks(container.get_blob_client(name), stream, candidate.source.size, md5,
                                            replace=self.options.upsert)
        except staged_blob.NameTaken:
            return None if _held_md5(container, name) == md5 else conflict
        return None

    @staticmethod
    def _outcomes(batch: list[Candidate], result, local: dict) -> list[Outcome]:
        outcomes = []
        for candidate in batch:
            key, sop, size = candidate.source.key, candidate.sop_uid, candidate.source.size
            if sop in local:
                outcomes.append(Outcome(key, FAILED, sop, *local[sop], size))
            else:
                outcomes.append(Outcome(key, COPIED, sop, COPIED, "in the Data Lake; the service indexes it "
                                                                  "from its queue", size))
        return outcomes

    # -- follow --------------------------------------------------------------------------

    def follow(self, report: UploadReport) -> None:
        """Until every copied file is indexed or refused, or the wait is over."""
        waiting = {o.sop_uid: o for o in report.outcomes if o.status == COPIED}
        studies = self._studies()
        follower = IndexingFollower(self.target, self.budget)
        deadline = time.monotonic() + self.wait_seconds
        pause = self.poll_seconds
        with self.dicom_factory() as dicom:
            while waiting:
                settled = follower.settle(dicom, waiting, studies)
                self._settle_followed(settled, report)
                for outcome in settled:
                    waiting.pop(outcome.sop_uid, None)
                if not waiting or time.monotonic() > deadline:
                    break
                time.sleep(pause)
                pause = min(pause * 1.5, MAX_POLL_SECONDS)  # indexing may take minutes: ask less often
        if waiting:
            report.stopped = (
                f"{len(waiting)} file(s) copied but not indexed within {self.wait_seconds:.0f} s: run the "
                "same upload again later to follow them. If they stay so, their events were lost (a queue "
                "message lives 7 days; a purged queue): --upsert writes them again, which raises new events")

    def _studies(self) -> dict[str, str]:
        """SOP instance UID → study UID, from the journal (every file this run or an earlier one sent)."""
        return {entry.sop_uid: entry.study_uid for entry in self.journal.entries().values() if entry.sop_uid}

    def _settle_followed(self, settled: list[Outcome], report: UploadReport) -> None:
        if not settled:
            return
        by_key = {o.key: o for o in settled}
        entries = self.journal.entries()
        self.journal.record([(o.key, o.size, entries[o.key].modified, o.sop_uid, o.status, o.reason, o.detail,
                              entries[o.key].study_uid) for o in settled])
        report.outcomes = [by_key.get(o.key, o) if o.status == COPIED else o for o in report.outcomes]


def _held_md5(container, name: str) -> bytes | None:
    """The MD5 stored with the blob at the name (empty when it has none); None when no blob is there."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        held = container.get_blob_client(name).get_blob_properties().content_settings.content_md5
    except ResourceNotFoundError:
        return None
    return bytes(held) if held else b""
