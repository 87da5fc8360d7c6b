"""`hdsctl dicom upload`: an archive into the DICOM service, fast, resumably, losing nothing.

Plan, then act: the archive is scanned (headers only), compared with the journal, and cut into
batches of one study each, up to a size; then `concurrency` STOW requests are in flight, each
streamed from the files. Every answer is read per instance and written to the journal before
the next is counted, so what the report says is stored, is stored and recorded.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from hdsctl.dicom import archive, errors
from hdsctl.dicom.archive import Candidate, Source, Unusable
from hdsctl.dicom.journal import (
    ALREADY,
    DONE,
    FAILED,
    GONE,
    NOT_DICOM,
    STORED,
    Entry,
    Journal,
    JournalWriteFailed,
)
from hdsctl.dicom.multipart import PartUnreadable
from hdsctl.dicom.upload_report import PENDING, Outcome, UploadReport
from hdsctl.dicom.verify import missing_from_service, stored_differently
from hdsctl.dicom.web import ALREADY_STORED, StowResult
from hdsctl.errors import HdsctlError, stopped_by


@dataclass(frozen=True)
class Options:
    concurrency: int = 4
    batch_bytes: int = 16 << 20
    upsert: bool = False
    convert_implicit: bool = False
    retry_failed: bool = False
    dry_run: bool = False
    verify: bool = False
    shard: object = None  # shards.Shard: only the studies of this shard


def plan_batches(candidates: list[Candidate], batch_bytes: int) -> list[list[Candidate]]:
    """One study per batch, in the order studies first appear, each cut at `batch_bytes` (a
    file larger than that travels alone)."""
    by_study: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        by_study.setdefault(candidate.study_uid, []).append(candidate)
    batches = []
    for files in by_study.values():
        batch, size = [], 0
        for candidate in files:
            if batch and size + candidate.source.size > batch_bytes:
                batches.append(batch)
                batch, size = [], 0
            batch.append(candidate)
            size += candidate.source.size
        if batch:
            batches.append(batch)
    return batches


class Upload:
    def __init__(self, client_factory: Callable, journal: Journal, options: Options, progress=None):
        self.client_factory = client_factory
        self.journal = journal
        self.options = options
        self.progress = progress
        self._local = threading.local()
        self._clients: list = []
        self._lock = threading.Lock()

    # -- scan ----------------------------------------------------------------------------

    def scan(self, paths: list[Path], report: UploadReport) -> list[Candidate]:
        done = self.journal.entries()
        self.skipped_by_journal: list[tuple[Entry, Source, float]] = []
        first_seen: dict[str, Candidate] = {}
        to_send, not_dicom = [], []
        walked: set[str] = set()
        for seen, found in enumerate(archive.walk(paths), 1):
            if self.progress:
                self.progress.scanned(seen)
            walked.add(found.source.key if isinstance(found, Unusable) else found[0].key)
            modified = None  # known for files the walk found, not for what it refused
            if not isinstance(found, Unusable):
                source, modified = found
                earlier = done.get(source.key)
                same_file = earlier is not None and earlier.unchanged(source.size, modified)
                if same_file and earlier.status in (*DONE, NOT_DICOM):  # not even opened
                    report.done_before += earlier.status != NOT_DICOM
                    report.not_dicom += earlier.status == NOT_DICOM
                    if earlier.status != NOT_DICOM:
                        self.skipped_by_journal.append((earlier, source, modified))
                    continue
                found = archive.read_header(source, modified)
            item = found
            if self.options.shard is not None and not isinstance(item, Unusable) \
                    and not self.options.shard.takes(item.study_uid):
                report.other_shards += 1  # another worker's: not journaled here
                continue
            if isinstance(item, Unusable):
                if item.kind == "special":
                    report.special += 1
                elif item.kind == "not-dicom":
                    report.not_dicom += 1
                    if modified is not None:
                        not_dicom.append((item.source.key, item.source.size, modified, None, NOT_DICOM, None,
                                          None, None))
                else:
                    report.outcomes.append(Outcome(item.source.key, FAILED, reason=item.kind,
                                                   detail=item.reason, size=item.source.size))
                continue
            if same_file and earlier.status == FAILED and not self.options.retry_failed:
                report.outcomes.append(Outcome(source.key, FAILED, item.sop_uid, earlier.reason,
                                               f"{earlier.detail} (earlier run; --retry-failed sends it again)",
                                               source.size))
                continue
            twin = first_seen.get(item.sop_uid)
            if twin is not None:
                report.outcomes.append(self._duplicate(item, twin))
                continue
            first_seen[item.sop_uid] = item
            if item.implicit_vr and not self.options.convert_implicit:
                report.outcomes.append(Outcome(source.key, FAILED, item.sop_uid, "implicit-vr",
                                               "implicit VR little endian: the service's v2 API refuses it; "
                                               "--convert-implicit sends an explicit-VR copy", source.size))
                continue
            to_send.append(item)
        if not_dicom and not self.options.dry_run:
            self.journal.record(not_dicom)
        self._record_gone(done, walked, paths, report)
        return to_send

    def _record_gone(self, done: dict[str, Entry], walked: set[str], paths: list[Path],
                     report: UploadReport) -> None:
        """Files an earlier run did not store (failed, not sent, copied) that are no longer in the
        source: recorded as gone, so the journal and --status stop counting them as to do. Only
        when their path is gone too (a folder that cannot be listed now is not an empty one)."""
        roots = [getattr(path, "key_prefix", None) or str(path).rstrip("/") + "/" for path in paths]
        gone = [entry for key, entry in done.items()
                if entry.status not in (*DONE, NOT_DICOM, GONE) and key not in walked
                and any(key.startswith(root) or f"{key}/" == root for root in roots)
                # a blob the listing did not give is gone; a file, only when its path is
                and (key.startswith(("https://", "http://")) or not os.path.lexists(key.split("!", 1)[0]))]
        report.gone = len(gone)
        if gone and not self.options.dry_run:
            self.journal.record([(e.key, e.size, e.modified, e.sop_uid, GONE, "gone-from-source",
                                  f"no longer at its path (an earlier run: {e.status}, {e.reason})",
                                  e.study_uid) for e in gone])

    @staticmethod
    def _duplicate(item: Candidate, twin: Candidate) -> Outcome:
        if archive.file_digest(item.source) == archive.file_digest(twin.source):
            return Outcome(item.source.key, ALREADY, item.sop_uid, "duplicate",
                           f"the same file as {twin.source.key}", item.source.size)
        return Outcome(item.source.key, FAILED, item.sop_uid, "conflict",
                       f"same SOPInstanceUID as {twin.source.key} but different content; neither is "
                       "chosen for you: remove the wrong one", item.source.size)

    def _not_on_service(self, report: UploadReport) -> list[Candidate]:
        """What the journal calls stored but the service does not hold (a restore, an expiry,
        a service rebuilt): confirmed with QIDO, read again and sent."""
        entries = [entry for entry, _, _ in self.skipped_by_journal]
        missing = self._missing(entries)
        resend = []
        for entry, source, modified in self.skipped_by_journal:
            if entry.key not in missing:
                continue
            found = archive.read_header(source, modified)
            report.done_before -= 1
            if isinstance(found, Unusable):
                report.outcomes.append(Outcome(source.key, FAILED, entry.sop_uid, found.kind, found.reason,
                                               source.size))
                continue
            report.resent += 1
            resend.append(found)
        report.verified = len(entries) - len(missing)
        return resend

    def _missing(self, entries) -> set[str]:
        return missing_from_service(self._client(), entries)

    # -- send ----------------------------------------------------------------------------

    def run(self, paths: list[Path], url: str) -> UploadReport:
        report = UploadReport(url, str(self.journal.path))
        started = time.perf_counter()
        candidates = self.scan(paths, report)
        if self.skipped_by_journal and (self.options.verify or not self.options.dry_run):
            candidates += self._not_on_service(report)
        report.scan_seconds = time.perf_counter() - started
        conflicts = {o.sop_uid for o in report.outcomes if o.reason == "conflict"}
        report.outcomes += [Outcome(c.source.key, FAILED, c.sop_uid, "conflict",
                                    "another file in the archive has this SOPInstanceUID with other content",
                                    c.source.size) for c in candidates if c.sop_uid in conflicts]
        candidates = [c for c in candidates if c.sop_uid not in conflicts]
        batches = plan_batches(candidates, self.options.batch_bytes)
        report.batches = len(batches)
        if self.options.dry_run:
            report.outcomes += [Outcome(c.source.key, PENDING, c.sop_uid, "dry-run", "would be sent",
                                        c.source.size) for batch in batches for c in batch]
            report.stopped = "dry run: nothing was sent"
            return report
        if self.progress:
            self.progress.start(sum(len(b) for b in batches), sum(c.source.size for b in batches for c in b),
                                report)
        try:
            self._send_all(batches, report)
        finally:
            report.seconds = time.perf_counter() - started
            for client in self._clients:
                client.close()
            if self.progress:
                self.progress.finish()
        return report

    def _send_all(self, batches: list[list[Candidate]], report: UploadReport) -> None:
        pending = list(batches)
        running: dict[Future, list[Candidate]] = {}
        with ThreadPoolExecutor(max_workers=self.options.concurrency) as pool:
            try:
                while pending or running:
                    while pending and len(running) < self.options.concurrency and report.stopped is None:
                        batch = pending.pop(0)
                        running[pool.submit(self._send, batch)] = batch
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        self._settle(running.pop(future), future, report)
            except KeyboardInterrupt as stop:  # what was answered is journaled; the rest is pending
                report.stopped = stopped_by(stop)
                for future in running:
                    future.cancel()
            finally:
                for future, batch in running.items():  # answers that came while stopping
                    if future.done() and not future.cancelled():
                        self._settle(batch, future, report)
                    else:
                        self._mark_pending(batch, report, "not sent: the run stopped")
                for batch in pending:
                    self._mark_pending(batch, report, "not sent: the run stopped")

    def _client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.client_factory()
            with self._lock:
                self._clients.append(client)
        return client

    def _send(self, batch: list[Candidate]) -> tuple[StowResult | None, dict[str, tuple[str, str]]]:
        """Store the batch; a file that changed since the scan (or cannot be read whole) fails
        alone, with its reason, and the rest is sent without it. Instances the service already
        holds are compared with it: a different content is a conflict, not 'already stored'."""
        client = self._client()
        local: dict[str, tuple[str, str]] = {}  # sop uid → (reason, detail), decided here
        sending = [c for c in batch if not self._changed(c, local)]
        while sending:
            parts = [archive.explicit_copy(c.source) if c.implicit_vr else c.source for c in sending]
            try:
                result = client.store(parts, study=sending[0].study_uid, upsert=self.options.upsert)
            except PartUnreadable as err:
                gone = sending.pop(err.index)
                local[gone.sop_uid] = ("changed", err.reason)
                continue
            already = {f.sop_instance_uid for f in result.failed if f.reason == ALREADY_STORED}
            if already:
                local.update(stored_differently(client, [c for c in sending if c.sop_uid in already]))
            return result, local
        return None, local

    @staticmethod
    def _changed(candidate: Candidate, local: dict[str, tuple[str, str]]) -> bool:
        why = candidate.source.changed_since(candidate.source.size, candidate.modified)
        if why is not None:
            local[candidate.sop_uid] = ("changed", why)
        return why is not None

    def _settle(self, batch: list[Candidate], future: Future, report: UploadReport) -> None:
        try:
            result = future.result()
        except (errors.AccessDenied, errors.ServiceUnreachable, errors.ServiceBusy) as err:
            self._mark_pending(batch, report, str(err).splitlines()[0])
            if report.stopped is None:
                report.stopped = str(err)
            return
        except errors.DicomApiError as err:
            if err.status == 424:  # the service cannot reach its storage: nothing else will store
                self._mark_pending(batch, report, str(err).splitlines()[0])
                report.stopped = report.stopped or str(err)
                return
            outcomes = [Outcome(c.source.key, FAILED, c.sop_uid, str(err.status), str(err).splitlines()[0],
                                c.source.size) for c in batch]
            self._record(outcomes, batch, report)
            return
        except HdsctlError as err:
            self._mark_pending(batch, report, str(err))
            report.stopped = report.stopped or str(err)
            return
        result, local = result
        self._record(self._outcomes(batch, result, local), batch, report)
        report.sent_bytes += sum(c.source.size for c in batch if c.sop_uid not in local)

    @staticmethod
    def _outcomes(batch: list[Candidate], result: StowResult | None, local: dict) -> list[Outcome]:
        stored = {s.sop_instance_uid for s in result.stored} if result else set()
        failed = {f.sop_instance_uid: f for f in result.failed} if result else {}
        outcomes = []
        for candidate in batch:
            key, sop, size = candidate.source.key, candidate.sop_uid, candidate.source.size
            if sop in local:
                outcomes.append(Outcome(key, FAILED, sop, *local[sop], size))
            elif sop in stored:
                outcomes.append(Outcome(key, STORED, sop, size=size))
            elif sop in failed and failed[sop].reason == ALREADY_STORED:
                outcomes.append(Outcome(key, ALREADY, sop, str(ALREADY_STORED), failed[sop].meaning, size))
            elif sop in failed:
                detail = "; ".join((failed[sop].meaning, *failed[sop].comments))
                outcomes.append(Outcome(key, FAILED, sop, str(failed[sop].reason), detail, size))
            else:
                outcomes.append(Outcome(key, FAILED, sop, "no-answer",
                                        f"the service's answer ({result.status}) does not mention it", size))
        return outcomes

    def _record(self, outcomes: list[Outcome], batch: list[Candidate], report: UploadReport) -> None:
        modified = {c.source.key: c.modified for c in batch}
        study = {c.source.key: c.study_uid for c in batch}
        try:
            self.journal.record([(o.key, o.size, modified[o.key], o.sop_uid, o.status, o.reason, o.detail,
                                  study[o.key]) for o in outcomes])
        except JournalWriteFailed as err:
            # Not journaled: the next run sends these again, and meets 45070 for what was stored.
            self._mark_pending(batch, report, "answered, but the journal could not record it")
            report.stopped = report.stopped or str(err)
            return
        report.outcomes += outcomes
        if self.progress:
            self.progress.advance(outcomes)

    def _mark_pending(self, batch: list[Candidate], report: UploadReport, why: str) -> None:
        report.outcomes += [Outcome(c.source.key, PENDING, c.sop_uid, "not-sent", why, c.source.size)
                            for c in batch]
