"""`hdsctl dicom upload --shard J/M --reshard OLD_JOURNAL...`: a migration cut again into another
number of shards, without sending anything twice.

A journal keeps the one shard it was made for; a new cut gives each worker a new journal, which
first takes from the old cut's journals every file of a study that now falls in its shard (and
the files that are not DICOM, which belong to no study), as those journals recorded them. The
old journals are only read, and refused while a worker of the old cut still holds one.
"""

from __future__ import annotations

import fcntl
import sqlite3
from pathlib import Path

from hdsctl.dicom.journal import Journal, JournalRefused
from hdsctl.dicom.shards import Shard, shard_of

COLUMNS = "key, size, modified, sop_uid, status, reason, detail, study_uid"


def carry_over(journal: Journal, shard: Shard, old: list[Path], service_url: str) -> tuple[int, list[str]]:
    """Rows of the old journals that belong to `shard`, put into `journal` where it has none for
    that file yet. Returns how many were taken, and notes on the old cut (shards missing)."""
    if journal.path.resolve() in {path.resolve() for path in old}:
        raise JournalRefused(f"--reshard: {journal.path} is one of the old cut's journals; give this shard "
                             "a new journal (--journal)")
    taken, cuts = [], {}
    for path in old:
        rows, cut = _read(path, service_url)
        if cut is not None:
            cuts.setdefault(cut[1], set()).add(cut[0])
        taken += [row for row in rows if row[7] is None or shard_of(row[7], shard.count) == shard.index]
    have = set(journal.entries())
    fresh = [row for row in taken if row[0] not in have]
    journal.record(fresh)
    notes = [f"the old cut into {count} has no journal for shard(s) "
             f"{', '.join(map(str, sorted(set(range(count)) - indexes)))}: their files are sent again, and "
             "the service answers 'already stored' for those it holds"
             for count, indexes in cuts.items() if len(indexes) < count]
    return len(fresh), notes


def _read(path: Path, service_url: str) -> tuple[list[tuple], tuple[int, int] | None]:
    if not path.is_file():
        raise JournalRefused(f"--reshard: no journal at {path}")
    with open(path, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JournalRefused(f"--reshard: {path} is in use by a worker of the old cut: stop the old "
                                 "workers (the old Job) first, or both cuts send the same files") from None
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                service = db.execute("select url from service").fetchone()
                has_shard = db.execute("select 1 from sqlite_master where name = 'shard'").fetchone()
                cut = db.execute("select shard_index, shard_count from shard").fetchone() if has_shard else None
                rows = db.execute(f"select {COLUMNS} from files").fetchall()
            finally:
                db.close()
        except sqlite3.Error as err:
            raise JournalRefused(f"--reshard: {path} is not an upload journal this hdsctl reads ({err})"
                                 ) from None
    if service is None or service[0] != service_url:
        raise JournalRefused(f"--reshard: {path} records an upload to "
                             f"{service[0] if service else 'no service yet'}, not to {service_url}")
    return rows, cut
