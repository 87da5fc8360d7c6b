"""`hdsctl dicom upload --via datalake`: the archive written straight into the service's Data Lake,
for the service to index itself (storage indexing), then followed to its outcome.

The scan, journal, batches, progress and report are the STOW path's. What differs: each file is
written as a block blob (azure-storage-blob: staged blocks for large files, an MD5 per request)
under the service's folder, where the storage-indexing subscription takes it; a file the service
would refuse (implicit VR) is refused before it is copied. Then, unless `--no-wait`, the run
follows each copied file until the service holds its instance (QIDO, one listing per study) or
`<queue>-poison` names it with the service's reason, within the deadline; what is still waiting
then is reported as copied, not as stored.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import time
from dataclasses import dataclass

from hdsctl.dicom import archive, keys
from hdsctl.dicom.archive import Candidate
from hdsctl.dicom.journal import FAILED, STORED
from hdsctl.dicom.upload import Upload
from hdsctl.dicom.upload_report import COPIED, Outcome, UploadReport
from hdsctl.dicom.web import first_value
from hdsctl.events.schema import blob_subject

UPLOAD_FOLDER = "hdsctl-upload"
MAX_POLL_SECONDS = 10.0


@dataclass(frozen=True)
class DataLakeTarget:
    account_url: str
    file_system: str
    folder: str  # AHDS/<workspace>/dicom/<service>/[<partition>/]
    queue: str
    queue_url: str  # the account's queue service, where `<queue>-poison` is read

    def blob_name(self, candidate: Candidate) -> str:
        return self.name_of(candidate.study_uid, candidate.sop_uid)

    def name_of(self, study_uid: str, sop_uid: str) -> str:
        return f"{self.folder}{UPLOAD_FOLDER}/{study_uid}/{sop_uid}.dcm"

    def journal_url(self, service_root: str) -> str:
        """What the journal is bound to: a STOW journal (bound to the service alone) is refused."""
        return f"{service_root} via datalake {self.account_url}/{self.file_system}"


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
        report = super().run(paths, url)
        if self.wait_seconds and not self.options.dry_run and report.stopped is None:
            self.follow(report)
        return report

    def _missing(self, entries) -> set[str]:
        """What the journal calls stored is confirmed on the service itself, not in the Data Lake."""
        from hdsctl.dicom.verify import missing_from_service

        with self.dicom_factory() as dicom:
            return missing_from_service(dicom, entries)

    # -- copy ----------------------------------------------------------------------------

    def _send(self, batch: list[Candidate]):
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
        name = self.target.blob_name(candidate)
        try:
            with contextlib.nullcontext(data) if data is not None else candidate.source.open() as body:
                size = len(data) if data is not None else candidate.source.size
                container.upload_blob(name, body, length=size,
                                      overwrite=self.options.upsert, validate_content=True,
                                      content_settings=ContentSettings(content_md5=bytearray(digest.digest())))
        except ResourceExistsError:
            held = container.get_blob_client(name).get_blob_properties().content_settings.content_md5
            if held is None or bytes(held) != digest.digest():
                return (f"another file is at {name} in the Data Lake: --upsert replaces it (the service "
                        "indexes the new one)")
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
        deadline = time.monotonic() + self.wait_seconds
        pause = self.poll_seconds
        with self.dicom_factory() as dicom:
            while waiting:
                settled = self._indexed(dicom, waiting, studies) + self._refused(waiting)
                self._settle_followed(settled, report)
                for outcome in settled:
                    waiting.pop(outcome.sop_uid, None)
                if not waiting or time.monotonic() > deadline:
                    break
                time.sleep(pause)
                pause = min(pause * 1.5, MAX_POLL_SECONDS)  # indexing may take minutes: ask less often
        if waiting:
            report.stopped = (f"{len(waiting)} file(s) copied but not indexed within "
                              f"{self.wait_seconds:.0f} s: run the same upload again later to follow them")

    def _studies(self) -> dict[str, str]:
        """SOP instance UID → study UID, from the journal (every file this run or an earlier one sent)."""
        return {entry.sop_uid: entry.study_uid for entry in self.journal.entries().values() if entry.sop_uid}

    @staticmethod
    def _indexed(dicom, waiting: dict[str, Outcome], studies: dict[str, str]) -> list[Outcome]:
        found = []
        for study in {studies.get(sop) for sop in waiting} - {None}:
            held = {str(first_value(item, keys.SOP_INSTANCE_UID) or "")
                    for item in dicom.search_all("instances", study=study,
                                                 includefield=(keys.SOP_INSTANCE_UID,))}
            found += [Outcome(o.key, STORED, sop, size=o.size) for sop, o in waiting.items()
                      if sop in held and studies.get(sop) == study]
        return found

    def _refused(self, waiting: dict[str, Outcome]) -> list[Outcome]:
        """What `<queue>-poison` says the service failed to index, by the file it names."""
        from azure.storage.queue import QueueClient

        from hdsctl.dataplane import storage_client

        studies = self._studies()
        by_subject = {blob_subject(self.target.file_system, self.target.name_of(studies[sop], sop)): outcome
                      for sop, outcome in waiting.items() if sop in studies}
        refused = []
        poison_name = f"{self.target.queue}-poison"
        with storage_client(QueueClient, self.target.queue_url, poison_name, budget=self.budget) as poison:
            for message in poison.peek_messages(max_messages=32):
                record = _decoded(message.content)
                outcome = by_subject.get(str(record.get("subject") or record.get("data", {}).get("url", "")))
                if outcome is not None:
                    reason = str(record.get("reason") or "refused by the service's indexing")[:300]
                    refused.append(Outcome(outcome.key, FAILED, outcome.sop_uid, "not-indexed", reason,
                                           outcome.size))
        return refused

    def _settle_followed(self, settled: list[Outcome], report: UploadReport) -> None:
        if not settled:
            return
        by_key = {o.key: o for o in settled}
        entries = self.journal.entries()
        self.journal.record([(o.key, o.size, entries[o.key].modified, o.sop_uid, o.status, o.reason, o.detail,
                              entries[o.key].study_uid) for o in settled])
        report.outcomes = [by_key.get(o.key, o) if o.status == COPIED else o for o in report.outcomes]


def _decoded(content) -> dict:
    text = content.decode() if isinstance(content, bytes) else str(content)
    for attempt in (lambda: base64.b64decode(text, validate=True).decode(), lambda: text):
        try:
            value = json.loads(attempt())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        return value if isinstance(value, dict) else {}
    return {}
