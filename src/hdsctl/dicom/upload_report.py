"""What an upload did, file by file, and the one question a re-run asks first: is all of it
done already? Kept apart from the sending machinery, so a re-run over a finished archive loads
this module and the journal, and nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hdsctl.dicom import archive
from hdsctl.dicom.archive import Unusable
from hdsctl.dicom.journal import ALREADY, DONE, FAILED, NOT_DICOM, STORED

PENDING = "pending"  # not sent; never journaled
COPIED = "copied"  # --via datalake: in the Data Lake, not yet confirmed indexed


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
    special: int = 0  # FIFOs, devices, sockets: never opened
    other_shards: int = 0  # with --shard: DICOM files of other shards' studies, left to them
    gone: int = 0  # journaled not stored, no longer in the source: recorded as gone
    done_before: int = 0
    verified: int | None = None  # of done_before, confirmed on the service by QIDO
    resent: int = 0  # journaled as stored, not on the service: sent again
    batches: int = 0
    sent_bytes: int = 0
    seconds: float = 0.0
    scan_seconds: float = 0.0  # of `seconds`, reading the archive's headers before sending
    stopped: str | None = None  # why the run ended early
    # With --via datalake --no-wait: a file copied for the service to index counts as done here.
    copied_is_done: bool = False

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def found_nothing(self) -> bool:
        """No DICOM file at all under the paths (none of any shard, none recorded before): an
        archive not where it was said to be, or a volume not mounted, rather than a finished job."""
        return not (self.outcomes or self.done_before or self.other_shards or self.gone)

    @property
    def ok(self) -> bool:
        """Every DICOM file is stored or was already there, and the run was not cut short."""
        done = (STORED, ALREADY, COPIED) if self.copied_is_done else (STORED, ALREADY)
        return (self.stopped is None and not self.found_nothing
                and all(o.status in done for o in self.outcomes))

    def to_json(self) -> dict:
        return {
            "url": self.url, "journal": self.journal, "ok": self.ok, "stopped": self.stopped,
            "foundNoDicom": self.found_nothing,
            "counts": {"stored": self.count(STORED), "alreadyStored": self.count(ALREADY) + self.done_before,
                       "failed": self.count(FAILED), "pending": self.count(PENDING),
                       "copiedNotYetIndexed": self.count(COPIED),
                       "notDicom": self.not_dicom, "specialFiles": self.special,
                       "doneInEarlierRuns": self.done_before, "verifiedOnService": self.verified,
                       "resentMissing": self.resent, "otherShards": self.other_shards,
                       "goneFromSource": self.gone},
            "batches": self.batches, "sentBytes": self.sent_bytes, "seconds": round(self.seconds, 3),
            "scanSeconds": round(self.scan_seconds, 3),
            "failures": [{"file": o.key, "sopInstanceUid": o.sop_uid, "reason": o.reason, "detail": o.detail}
                         for o in self.outcomes if o.status in (FAILED, PENDING)],
        }


def already_done(paths: list[Path], entries: dict) -> tuple[list, int, int] | None:
    """(the entries stored earlier, not DICOM, special files) when every file under `paths` is
    journaled as one or the other with its size and time unchanged, or is a FIFO, device or
    socket; None as soon as one is not (the full run decides then)."""
    stored, not_dicom, special = [], 0, 0
    for found in archive.walk(paths):
        if isinstance(found, Unusable):
            if found.kind != "special":
                return None
            special += 1
            continue
        source, modified = found
        entry = entries.get(source.key)
        if entry is None or not entry.unchanged(source.size, modified):
            return None
        if entry.status in DONE:
            stored.append(entry)
        elif entry.status == NOT_DICOM:
            not_dicom += 1
        else:
            return None
    return stored, not_dicom, special


def render(report: UploadReport, shown: int = 20) -> str:
    rate = report.count(STORED) / report.seconds if report.seconds else 0.0
    lines = [f"Upload to {report.url} (journal {report.journal})",
             f"  stored             {report.count(STORED)}",
             f"  already stored     {report.count(ALREADY) + report.done_before}"
             + (f"  ({report.done_before} recorded by earlier runs" + (
                 f", {report.verified} confirmed on the service" if report.verified is not None else "") + ")"
                if report.done_before else "")
             + (f"; {report.resent} journaled but missing on the service: sent again" if report.resent else ""),
             f"  failed             {report.count(FAILED)}",
             f"  not sent           {report.count(PENDING)}",
             *([f"  copied, indexing   {report.count(COPIED)} (in the Data Lake; the service indexes them)"]
               if report.count(COPIED) else []),
             *([f"  other shards       {report.other_shards} (their studies are other workers')"]
               if report.other_shards else []),
             *([f"  gone from source   {report.gone} (not stored by earlier runs, no longer at their path)"]
               if report.gone else []),
             f"  not DICOM          {report.not_dicom} (skipped)"
             + (f"; {report.special} FIFO/device/socket file(s) not opened" if report.special else ""),
             f"  {report.batches} request(s), {report.sent_bytes / 1e6:.1f} MB in {report.seconds:.1f} s "
             f"({rate:.1f} stored/s; headers scanned in {report.scan_seconds:.1f} s)"]
    problems = [o for o in report.outcomes if o.status in (FAILED, PENDING)]
    if problems:
        lines.append("Files not stored:")
        lines += [f"  {o.key}: {o.reason or ''} {o.detail or ''}".rstrip() for o in problems[:shown]]
        if len(problems) > shown:
            lines.append(f"  ... and {len(problems) - shown} more (--json lists every one)")
    if report.stopped:
        lines.append(f"STOPPED: {report.stopped}")
        lines.append("  run the same command again: it sends only what is not stored yet")
    done = "stored, or copied for the service to index" if report.copied_is_done else "stored"
    if report.found_nothing:
        lines.append(f"NOT OK: no DICOM file under the paths given ({report.not_dicom} other file(s) looked "
                     "at): is the archive there (a volume mounted)?")
    else:
        lines.append(f"OK: every DICOM file is {done}" if report.ok else "NOT OK: see above")
    return "\n".join(lines)

