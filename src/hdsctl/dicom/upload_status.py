"""`hdsctl dicom upload --status JOURNAL...`: one answer for a migration run by many workers.
The shard journals are read (never written), merged file by file, and checked for shards that
are missing or unfinished. Done only when every DICOM file of every shard is stored or was
already there. Files copied into the Data Lake and not yet indexed (`--no-wait`) are looked up
once on the service when a stack is given (`confirm_waiting`); the journals stay as they are:
the next upload run records what was found."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from hdsctl.dicom.journal import ALREADY, FAILED, GONE, NOT_DICOM, STORED, JournalRefused
from hdsctl.dicom.upload_report import COPIED

DONE = (STORED, ALREADY)


@dataclass
class MergedStatus:
    journals: list[str] = field(default_factory=list)
    services: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    waiting: list[dict] = field(default_factory=list)  # copied into the Data Lake, not yet indexed
    gone: list[dict] = field(default_factory=list)  # never stored, no longer in the source
    unfinished: list[dict] = field(default_factory=list)  # journals whose last run did not reach its end
    shard_count: int | None = None
    shards: dict[int, str] = field(default_factory=dict)  # shard index → its journal
    confirmed: bool = False  # the waiting files were looked up on the service (confirm_waiting)

    @property
    def missing_shards(self) -> list[int]:
        if self.shard_count is None:
            return []
        return [index for index in range(self.shard_count) if index not in self.shards]

    @property
    def ok(self) -> bool:
        return not (self.failures or self.waiting or self.missing_shards or self.unfinished)

    def to_json(self) -> dict:
        return {"ok": self.ok, "journals": self.journals, "services": sorted(self.services),
                "shardCount": self.shard_count, "missingShards": self.missing_shards,
                "unfinished": self.unfinished, "counts": self.counts, "failures": self.failures,
                "waiting": self.waiting, "gone": self.gone}


def merge(paths: list[Path]) -> MergedStatus:
    status = MergedStatus()
    for path in paths:
        service, shard, rows, run = _read(path)
        status.journals.append(str(path))
        why = _unfinished(run)
        if why:
            status.unfinished.append({"journal": str(path), "why": why})
        status.services.add(service)
        if shard is not None:
            index, count = shard
            if status.shard_count not in (None, count):
                raise JournalRefused(f"{path} is shard {index}/{count}, but other journals cut the archive "
                                     f"into {status.shard_count}: give the journals of one cut")
            if index in status.shards:
                raise JournalRefused(f"{path} and {status.shards[index]} are both shard {index}/{count}")
            status.shard_count, status.shards[index] = count, str(path)
        for key, sop, state, reason, detail, study in rows:
            status.counts[state] = status.counts.get(state, 0) + 1
            entry = {"file": key, "sopInstanceUid": sop, "studyInstanceUid": study, "reason": reason,
                     "detail": detail, "journal": str(path)}
            if state == FAILED:
                status.failures.append(entry)
            elif state == COPIED:
                status.waiting.append(entry)
            elif state == GONE:
                status.gone.append(entry)
    if len(status.services) > 1:
        services = ", ".join(sorted(status.services))
        raise JournalRefused(f"the journals record uploads to more than one service ({services}): give the "
                             "journals of one migration")
    if status.shards and len(status.shards) != len(paths):
        raise JournalRefused("some journals are shards and some are not: give the journals of one cut")
    return status


def confirm_waiting(status: MergedStatus, follower, dicom) -> None:
    """Look up, once, each file still waiting to be indexed: stored, refused or still waiting."""
    from hdsctl.dicom.upload_report import Outcome

    waiting = {e["sopInstanceUid"]: Outcome(e["file"], COPIED, e["sopInstanceUid"]) for e in status.waiting
               if e["sopInstanceUid"]}
    studies = {e["sopInstanceUid"]: e["studyInstanceUid"] for e in status.waiting if e["studyInstanceUid"]}
    settled = {o.sop_uid: o for o in follower.settle(dicom, waiting, studies)}
    still = []
    for entry in status.waiting:
        outcome = settled.get(entry["sopInstanceUid"])
        if outcome is None:
            still.append(entry)
            continue
        status.counts[COPIED] -= 1
        status.counts[outcome.status] = status.counts.get(outcome.status, 0) + 1
        if outcome.status == FAILED:
            status.failures.append({**entry, "reason": outcome.reason, "detail": outcome.detail})
    status.waiting = still
    status.confirmed = True


def _read(path: Path):
    if not path.is_file():
        raise JournalRefused(f"no journal at {path}")
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            service = db.execute("select url from service").fetchone()
            shard = (db.execute("select shard_index, shard_count from shard").fetchone()
                     if _has(db, "shard") else None)
            rows = db.execute("select key, sop_uid, status, reason, detail, study_uid from files "
                              "where status != ?", (NOT_DICOM,)).fetchall()
            run = (db.execute("select ended, not_sent, stopped from run_state").fetchone()
                   if _has(db, "run_state") else None)
        finally:
            db.close()
    except sqlite3.Error as err:
        raise JournalRefused(f"{path} is not an upload journal this hdsctl reads ({err})") from None
    if service is None:
        raise JournalRefused(f"{path} records no upload yet")
    return service[0], shard, rows, run


def _unfinished(run: tuple | None) -> str | None:
    """Why the journal's files may not be all of its files: its last run did not reach the end."""
    if run is None:
        return "no run of it is recorded as ended: run its upload again (nothing stored is sent again)"
    ended, not_sent, stopped = run
    if ended is None:
        return "its last run has not ended: still running, or killed (run it again: it resumes)"
    if not_sent or stopped:
        return f"its last run stopped ({stopped or 'early'}), {not_sent or 0} file(s) not sent: run it again"
    return None


def _has(db, table: str) -> bool:
    found = db.execute("select 1 from sqlite_master where type = 'table' and name = ?", (table,)).fetchone()
    return found is not None


def render(status: MergedStatus, shown: int = 20) -> str:
    services = ", ".join(sorted(status.services))
    lines = [f"Migration status from {len(status.journals)} journal(s), service {services}"]
    if status.shard_count is not None:
        missing = ", ".join(map(str, status.missing_shards))
        lines.append(f"  shards             {len(status.shards)} of {status.shard_count}"
                     + (f" (missing: {missing})" if missing else ""))
    for state in (STORED, ALREADY, COPIED, FAILED):
        lines.append(f"  {state:<18} {status.counts.get(state, 0)}")
    if status.counts.get(GONE):
        lines.append(f"  {'gone from source':<18} {status.counts[GONE]} (never stored, no longer in the "
                     "source; --json lists them)")
    waiting_title = ("Copied, not indexed yet (looked up on the service now):" if status.confirmed
                     else "Copied, not yet indexed (--stack looks them up on the service):")
    if status.unfinished:
        lines.append("Unfinished (files its run did not reach are in no journal):")
        lines += [f"  {u['journal']}: {u['why']}" for u in status.unfinished]
    for title, entries in (("Not stored:", status.failures), (waiting_title, status.waiting)):
        if entries:
            lines.append(title)
            lines += [f"  {e['file']}: {e['reason'] or ''} {e['detail'] or ''}".rstrip()
                      for e in entries[:shown]]
            if len(entries) > shown:
                lines.append(f"  ... and {len(entries) - shown} more (--json lists every one)")
    lines.append("OK: every DICOM file of every shard is stored" if status.ok else "NOT OK: see above")
    return "\n".join(lines)
