"""What every journal of hdsctl shares: a SQLite file bound to one DICOM service. The first run
writes the service's URL into it; a later run for another service, or a file that is not such a
journal, is refused with a message naming the file, never written to."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

from hdsctl.errors import BadInput


def open_bound(path: Path, service_url: str, schema: str, *, what: str, refused: type[BadInput],
               check: Callable[[sqlite3.Connection], object] = lambda db: None,
               **connect) -> sqlite3.Connection:
    """Open (or create) the journal at `path` for `service_url`: `schema` holds a one-column
    `service (url)` table; `check` reads what this hdsctl needs, so an older or foreign file fails
    here; `connect` goes to sqlite3.connect."""
    db = None
    try:
        db = sqlite3.connect(path, **connect)
        db.executescript(schema)
        row = db.execute("select url from service").fetchone()
        check(db)
    except sqlite3.DatabaseError as err:
        if db is not None:
            db.close()
        raise refused(f"{path} is not a usable {what} ({err}); move it away or name another with --journal"
                      ) from None
    if row is None:
        with db:
            db.execute("insert into service (url) values (?)", (service_url,))
    elif row[0].rstrip("/") != service_url.rstrip("/"):
        db.close()
        raise refused(f"{path} is the {what} of {row[0]}, not of {service_url}: one journal follows one "
                      "service. Name another with --journal (or remove this one to start over)")
    return db
