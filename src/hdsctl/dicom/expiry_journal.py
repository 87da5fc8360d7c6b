"""The expiry journal: what retention did to one DICOM service (each deletion's intent written
before its DELETE, its answer after), and a checkpoint of the service's change feed, so each
run reads only the changes since the last one (`--full` reads it all again).

The journal records; it never decides. Whether a study is present and due is what the
service shows when the study is re-checked.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

from hdsctl.dicom.service_journal import open_bound
from hdsctl.dicom.web import utc_text
from hdsctl.errors import BadInput

EPOCH = "1970-01-01T00:00:00Z"
SCHEMA = """
create table if not exists service (url text not null);
create table if not exists studies (
    study text primary key, date text, basis text, status text not null, detail text, at real not null);
-- Every instance the change feed says is stored now, with when it was stored (UTC, ISO 8601).
create table if not exists instances (sop text primary key, study text not null, stored text not null);
create index if not exists instances_by_study on instances (study);
create table if not exists feed (last_sequence integer not null, last_time text not null);
"""


STUDY_COLUMNS = "select study, date, basis, status, detail, at from studies limit 1"


class ExpiryJournalRefused(BadInput):
    """A file that cannot be this service's expiry journal."""


class ExpiryJournal:
    def __init__(self, path: Path, service_url: str):
        self.path = path
        self.db = open_bound(path, service_url, SCHEMA, what="expiry journal", refused=ExpiryJournalRefused,
                             check=lambda db: db.execute(STUDY_COLUMNS).fetchall())

    # -- the change feed's checkpoint ----------------------------------------------------

    def follow_change_feed(self, client, *, full: bool = False) -> int:
        """Read the changes since the checkpoint (all of them with `full`); how many were read."""
        if full:
            with self.db:
                self.db.execute("delete from instances")
                self.db.execute("delete from feed")
        row = self.db.execute("select last_sequence, last_time from feed").fetchone()
        last_sequence, start = row if row else (0, EPOCH)
        read = 0
        batch: list[dict] = []
        for change in client.change_feed(start):
            sequence = int(change.get("Sequence") or 0)
            if sequence and sequence <= last_sequence:
                continue  # the checkpoint's own second: already applied
            batch.append(change)
            if len(batch) >= 1000:
                read += self._apply(batch)
                batch = []
        return read + self._apply(batch)

    def _apply(self, changes: list[dict]) -> int:
        if not changes:
            return 0
        with self.db:
            for change in changes:
                sop, study = change.get("SopInstanceUid"), change.get("StudyInstanceUid")
                if not sop or not study:
                    continue
                if change.get("Action") == "Create":
                    self.db.execute("insert or ignore into instances values (?, ?, ?)",
                                    (sop, study, utc_text(change.get("Timestamp") or EPOCH)))
                elif change.get("Action") == "Delete":
                    self.db.execute("delete from instances where sop = ?", (sop,))
            last = changes[-1]
            self.db.execute("delete from feed")
            self.db.execute("insert into feed values (?, ?)",
                            (int(last.get("Sequence") or 0), utc_text(last.get("Timestamp") or EPOCH)))
        return len(changes)

    def stored_before(self, cutoff: datetime.date) -> list[tuple[str, str]]:
        """(study, when its earliest instance still present was stored), for studies stored
        before `cutoff`."""
        rows = self.db.execute("select study, min(stored) from instances group by study having min(stored) < ?",
                               (cutoff.strftime("%Y-%m-%dT00:00:00"),))
        return list(rows)

    def first_stored(self, study: str) -> str | None:
        row = self.db.execute("select min(stored) from instances where study = ?", (study,)).fetchone()
        return row[0] if row else None

    # -- what was done -------------------------------------------------------------------

    def record(self, candidate, status: str, detail: str = "") -> None:
        """Written and committed before the caller reports it."""
        with self.db:
            self.db.execute("insert or replace into studies values (?, ?, ?, ?, ?, ?)",
                            (candidate.study, candidate.date, candidate.basis, status, detail, time.time()))

    def status(self, study: str) -> str | None:
        row = self.db.execute("select status from studies where study = ?", (study,)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self.db.close()
