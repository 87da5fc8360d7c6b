"""`hdsctl dicom upload`: an archive into the DICOM service, fast, resumably, losing nothing.

Plan, then act: the archive is scanned (headers only), compared with the journal, and cut into
batches of one study each, up to a size; then `concurrency` STOW requests are in flight, each
streamed from the files. Every answer is read per instance and written to the journal before
the next is counted, so what the report says is stored, is stored and recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from hdsctl.dicom import archive, errors
from hdsctl.dicom.archive import Candidate, Unusable
from hdsctl.dicom.journal import ALREADY, DONE, FAILED, STORED, Journal, JournalWriteFailed
from hdsctl.dicom.web import StowResult
from hdsctl.errors import HdsctlError

PENDING = "pending"  # not sent; never journaled


@dataclass(frozen=True)
class Options:
    concurrency: int = 4
    batch_bytes: int = 16 << 20
    upsert: bool = False
    convert_implicit: bool = False
    retry_failed: bool = False
    dry_run: bool = False


@dataclass
class Outcome:
    key: str
    status: str
    sop_uid: str | None = None
    reason: str | None = None
    detail: str | None = None
    size: int = 0


@dataclass
class UploadReport:
    url: str
    journal: str
    outcomes: list[Outcome] = field(default_factory=list)
    not_dicom: int = 0
    done_before: int = 0
    batches: int = 0
    sent_bytes: int = 0
    seconds: float = 0.0
    stopped: str | None = None  # why the run ended early

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        """Every DICOM file is stored or was already there, and the run was not cut short."""
        return self.stopped is None and all(o.status in (STORED, ALREADY) for o in self.outcomes)

    def to_json(self) -> dict:
        return {
            "url": self.url, "journal": self.journal, "ok": self.ok, "stopped": self.stopped,
            "counts": {"stored": self.count(STORED), "alreadyStored": self.count(ALREADY) + self.done_before,
                       "failed": self.count(FAILED), "pending": self.count(PENDING),
                       "notDicom": self.not_dicom, "doneInEarlierRuns": self.done_before},
            "batches": self.batches, "sentBytes": self.sent_bytes, "seconds": round(self.seconds, 3),
            "failures": [{"file": o.key, "sopInstanceUid": o.sop_uid, "reason": o.reason, "detail": o.detail}
                         for o in self.outcomes if o.status in (FAILED, PENDING)],
        }


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
        first_seen: dict[str, Candidate] = {}
        to_send = []
        for found in archive.walk(paths):
            if not isinstance(found, Unusable):
                source, modified = found
                earlier = done.get(source.key)
                same_file = earlier is not None and earlier.size == source.size and earlier.modified == modified
                if same_file and earlier.status in DONE:
                    report.done_before += 1  # recorded as stored: not even opened
                    continue
                found = archive.read_header(source, modified)
            item = found
            if isinstance(item, Unusable):
                if item.kind == "not-dicom":
                    report.not_dicom += 1
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
        return to_send

    @staticmethod
    def _duplicate(item: Candidate, twin: Candidate) -> Outcome:
        if archive.file_digest(item.source) == archive.file_digest(twin.source):
            return Outcome(item.source.key, ALREADY, item.sop_uid, "duplicate",
                           f"the same file as {twin.source.key}", item.source.size)
        return Outcome(item.source.key, FAILED, item.sop_uid, "conflict",
                       f"same SOPInstanceUID as {twin.source.key} but different content; neither is "
                       "chosen for you: remove the wrong one", item.source.size)

    # -- send ----------------------------------------------------------------------------

    def run(self, paths: list[Path], url: str) -> UploadReport:
        report = UploadReport(url, str(self.journal.path))
        started = time.perf_counter()
        candidates = self.scan(paths, report)
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
            except KeyboardInterrupt:  # what was answered is journaled; the rest is pending
                report.stopped = "interrupted (Ctrl-C)"
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

    def _send(self, batch: list[Candidate]) -> StowResult:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self.client_factory()
            with self._lock:
                self._clients.append(client)
        parts = [archive.explicit_copy(c.source) if c.implicit_vr else c.source for c in batch]
        study = batch[0].study_uid
        return client.store(parts, study=study, upsert=self.options.upsert)

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
        self._record(self._outcomes(batch, result), batch, report)
        report.sent_bytes += sum(c.source.size for c in batch)

    @staticmethod
    def _outcomes(batch: list[Candidate], result: StowResult) -> list[Outcome]:
        stored = {s.sop_instance_uid for s in result.stored}
        failed = {f.sop_instance_uid: f for f in result.failed}
        outcomes = []
        for candidate in batch:
            key, sop, size = candidate.source.key, candidate.sop_uid, candidate.source.size
            if sop in stored:
                outcomes.append(Outcome(key, STORED, sop, size=size))
            elif sop in failed and failed[sop].reason == 45070:
                outcomes.append(Outcome(key, ALREADY, sop, "45070", failed[sop].meaning, size))
            elif sop in failed:
                detail = "; ".join((failed[sop].meaning, *failed[sop].comments))
                outcomes.append(Outcome(key, FAILED, sop, str(failed[sop].reason), detail, size))
            else:
                outcomes.append(Outcome(key, FAILED, sop, "no-answer",
                                        f"the service's answer ({result.status}) does not mention it", size))
        return outcomes

    def _record(self, outcomes: list[Outcome], batch: list[Candidate], report: UploadReport) -> None:
        modified = {c.source.key: c.modified for c in batch}
        try:
            self.journal.record([(o.key, o.size, modified[o.key], o.sop_uid, o.status, o.reason, o.detail)
                                 for o in outcomes])
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


def render(report: UploadReport, shown: int = 20) -> str:
    rate = report.count(STORED) / report.seconds if report.seconds else 0.0
    lines = [f"Upload to {report.url} (journal {report.journal})",
             f"  stored             {report.count(STORED)}",
             f"  already stored     {report.count(ALREADY) + report.done_before}"
             + (f"  ({report.done_before} recorded by earlier runs)" if report.done_before else ""),
             f"  failed             {report.count(FAILED)}",
             f"  not sent           {report.count(PENDING)}",
             f"  not DICOM          {report.not_dicom} (skipped)",
             f"  {report.batches} request(s), {report.sent_bytes / 1e6:.1f} MB in {report.seconds:.1f} s "
             f"({rate:.1f} stored/s)"]
    problems = [o for o in report.outcomes if o.status in (FAILED, PENDING)]
    if problems:
        lines.append("Files not stored:")
        lines += [f"  {o.key}: {o.reason or ''} {o.detail or ''}".rstrip() for o in problems[:shown]]
        if len(problems) > shown:
            lines.append(f"  ... and {len(problems) - shown} more (--json lists every one)")
    if report.stopped:
        lines.append(f"STOPPED: {report.stopped}")
        lines.append("  run the same command again: it sends only what is not stored yet")
    lines.append("OK: every DICOM file is stored" if report.ok else "NOT OK: see above")
    return "\n".join(lines)

