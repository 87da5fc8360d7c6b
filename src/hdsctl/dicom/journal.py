"""The upload journal: one SQLite row per file with its outcome, written as each answer comes
back, so Ctrl-C, a crash or a lost connection loses nothing and the next run sends only what
is not stored yet. A journal belongs to one DICOM service: another service's is refused.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from hdsctl.dicom.service_journal import open_bound
from hdsctl.errors import EXIT_FAILED, BadInput, HdsctlError

FILE_NAME = ".hdsctl-upload.sqlite"
STORED, ALREADY, FAILED = "stored", "already", "failed"
NOT_DICOM = "not-dicom"  # looked at once: not a DICOM Part 10 file, never opened again
GONE = "gone"  # not stored, and no longer in the source (removed or moved since)
DONE = (STORED, ALREADY)
SCHEMA = """
create table if not exists service (url text not null);
create table if not exists files (
    key text primary key,          -- the file's path, or archive!member
    size integer not null,
    modified real not null,
    sop_uid text,
    study_uid text,                -- to confirm with QIDO that what is journaled stored is there
    status text not null,          -- STORED | ALREADY | FAILED
    reason text,                   -- the service's FailureReason code, or a local reason
    detail text,
    updated real not null
);
-- The last run's inputs: when they are the same and every file is done, a re-run needs
-- neither the stack's model nor the service (see quick_rerun).
create table if not exists last_run (
    stack text, service_option text, url_option text, stack_digest text, service text, url text
);
-- With --shard I/N: the one shard this journal records (a journal never changes shard).
create table if not exists shard (shard_index integer not null, shard_count integer not null);
-- How the last run ended: files it did not reach are in no row above, so a run killed or
-- stopped early leaves its journal unfinished for --status (ended empty, or files not sent).
create table if not exists run_state (started real not null, ended real, not_sent integer, stopped text);
"""


class JournalRefused(BadInput):
    """A journal that is not this upload's."""


class JournalBusy(JournalRefused):
    """A journal another worker holds now: worth trying again later (exit 1, which a Job
    retries), unlike a journal that can never be this upload's (exit 3)."""

    exit_code = EXIT_FAILED


class JournalWriteFailed(HdsctlError):
    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class Entry:
    key: str
    size: int
    modified: float
    status: str
    reason: str | None
    detail: str | None
    sop_uid: str | None = None
    study_uid: str | None = None

    def unchanged(self, size: int, modified: float) -> bool:
        """The file is as it was when journaled: a re-run need not open it."""
        return self.size == size and self.modified == modified


def _entries(db: sqlite3.Connection) -> dict[str, Entry]:
    rows = db.execute("select key, size, modified, status, reason, detail, sop_uid, study_uid from files")
    return {row[0]: Entry(*row) for row in rows}


def _upgrade(db: sqlite3.Connection) -> None:
    """Journals written before study_uid was kept get the column (empty: verified by SOP UID)."""
    columns = {row[1] for row in db.execute("pragma table_info(files)")}
    if "study_uid" not in columns:
        db.execute("alter table files add column study_uid text")


def _journal_mode(path: Path) -> str:
    """SQLite's write-ahead log on a local disk; its rollback journal on a network share (an
    Azure Files claim of a Job), where the log's shared memory does not work; refused where
    nothing would hold a lock or keep a write."""
    from hdsctl import filesystems

    kind = filesystems.file_system_of(path)
    if kind in filesystems.NO_LOCKS:
        raise JournalRefused(f"{path} is on Blob storage mounted by blobfuse ({kind}), which holds no locks "
                             "and writes a file to storage only when it is closed: keep the journal on a disk "
                             "or a file share (Azure Files)")
    return "delete" if kind in filesystems.NETWORK else "wal"


def _exclusive(path: Path):
    """A lock held while this journal is open: a second worker given the same journal (the same
    shard twice, say) is refused instead of sending the same files at the same time."""
    import fcntl

    # flock on the file itself: independent of the POSIX locks SQLite takes, and no extra file
    try:
        handle = open(path, "ab")  # noqa: SIM115 - held for the journal's lifetime
    except OSError as err:
        raise JournalRefused(f"cannot open the journal {path}: {err.strerror or err}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):  # an SMB share answers a held lock with EACCES
        handle.close()
        raise JournalBusy(f"{path} is in use by another upload (another worker with the same shard?): "
                             "wait for it, or give this one another --journal") from None
    except OSError as err:
        handle.close()
        raise JournalRefused(f"cannot lock {path}: {err.strerror or err}") from None
    return handle


def expand(patterns: list[str], option: str) -> list[Path]:
    """Journals given to `option`: paths, or patterns such as /journals/shard-*-of-4.sqlite
    (expanded here, as a pod's command has no shell)."""
    import glob

    paths: list[Path] = []
    for pattern in map(str, patterns):
        found = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not found:
            raise JournalRefused(f"{option} {pattern}: no journal matches")
        paths += [Path(path) for path in found]
    return paths


def default_path(paths: list[Path]) -> Path:
    """Next to the data: in the first folder given, or beside the first file."""
    first = paths[0]
    return (first if first.is_dir() else first.parent) / FILE_NAME


@dataclass(frozen=True)
class RunRecord:
    stack: str
    service_option: str  # --service as given ("" when not)
    url_option: str  # --url as given ("" when not)
    stack_digest: str  # sha256 of the stack file
    service: str  # the DICOM service it resolved to
    url: str  # the service URL it resolved to


def quick_rerun(path: Path, wanted: RunRecord) -> tuple[RunRecord, dict[str, Entry]] | None:
    """The journal's record and entries when its last run had these same inputs (stack file
    unchanged, same options); None otherwise, or when it cannot be read."""
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = db.execute("select * from last_run").fetchone()
        if row is None or _sharded(db):  # a shard's journal: the full path checks the shard
            return None
        record = RunRecord(*row)
        same = (record.stack, record.service_option, record.url_option, record.stack_digest) == (
            wanted.stack, wanted.service_option, wanted.url_option, wanted.stack_digest)
        if not same:
            return None
        return record, _entries(db)
    except (sqlite3.Error, TypeError):
        return None  # an older journal, or not one: the full path reads it and says what is wrong
    finally:
        db.close()


def _sharded(db: sqlite3.Connection) -> bool:
    has_table = db.execute("select 1 from sqlite_master where type = 'table' and name = 'shard'").fetchone()
    return bool(has_table and db.execute("select 1 from shard").fetchone())


class Journal:
    def __init__(self, path: Path, service_url: str, shard=None):
        self.path = path
        mode = _journal_mode(path)
        self._lock = _exclusive(path)

        def readable(db: sqlite3.Connection) -> None:
            db.execute(f"pragma journal_mode={mode}")
            _upgrade(db)
            _entries(db)  # every column this hdsctl reads is there

        try:
            self._db = open_bound(path, service_url, SCHEMA, what="upload journal", refused=JournalRefused,
                                  check=readable, isolation_level=None, check_same_thread=False)
            self.shard = self._bind_shard(shard)
        except BaseException:
            self._lock.close()
            raise

    def _bind_shard(self, shard):
        """The journal's shard, written by its first run; a run for another shard is refused."""
        from hdsctl.dicom.shards import Shard

        row = self._db.execute("select shard_index, shard_count from shard").fetchone()
        held = Shard(*row) if row else None
        if held is None and shard is not None:
            if self.entries():
                raise JournalRefused(f"{self.path} records an upload of the whole archive, not of shard "
                                     f"{shard}: give each shard a journal of its own")
            self._write(("insert into shard values (?, ?)", [(shard.index, shard.count)]))
            return shard
        if held != shard:
            wanted = f"shard {shard}" if shard else "the whole archive (no --shard)"
            raise JournalRefused(f"{self.path} is the journal of shard {held}, not of {wanted}: a journal "
                                 "follows one shard of one count; keep --shard as it was, or cut again with a "
                                 "new journal per shard and --reshard OLD_JOURNAL... (nothing is sent twice)")
        return held

    def close(self) -> None:
        self._db.close()
        self._lock.close()

    def remember_run(self, run: RunRecord) -> None:
        self._write(("delete from last_run", [()]),
                    ("insert into last_run values (?, ?, ?, ?, ?, ?)",
                     [(run.stack, run.service_option, run.url_option, run.stack_digest, run.service, run.url)]))

    def run_started(self) -> None:
        self._write(("delete from run_state", [()]),
                    ("insert into run_state (started) values (?)", [(time.time(),)]))

    def run_ended(self, not_sent: int, stopped: str | None) -> None:
        self._write(("update run_state set ended = ?, not_sent = ?, stopped = ?",
                     [(time.time(), not_sent, stopped)]))

    def entries(self) -> dict[str, Entry]:
        return _entries(self._db)

    def record(self, outcomes: list[tuple]) -> None:
        """(key, size, modified, sop uid, status, reason, detail, study uid) for each file, in one
        commit."""
        now = time.time()
        rows = [(*outcome, now) for outcome in outcomes]
        self._write(("insert or replace into files (key, size, modified, sop_uid, status, reason, detail, "
                     "study_uid, updated) values (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows))

    def _write(self, *statements: tuple[str, list[tuple]]) -> None:
        """The statements (each with its rows) in one transaction; a full disk stops the run."""
        try:
            with self._db:
                self._db.execute("begin immediate")
                for sql, rows in statements:
                    self._db.executemany(sql, rows)
        except sqlite3.OperationalError as err:
            raise JournalWriteFailed(
                f"cannot write the journal {self.path} ({err}); the upload stopped so that nothing is "
                "reported stored that was not recorded. Free some space and run it again: it resumes") from None
