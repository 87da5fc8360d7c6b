"""Retention by rule: the studies past an age, listed, then deleted through the DELETE API.

A study's age is its StudyDate; a study without one is as old as the day it was stored (its
first entry in the change feed). No duration shorter than the service's declared
`retention.minimumYears` is ever accepted, whatever the flags. Deletions are journaled as they
happen, so an interrupted run is simply run again: what is gone stays gone, the rest follows.
"""

from __future__ import annotations

import datetime
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from hdsctl.dicom.web import dicom_values
from hdsctl.errors import BadInput, HdsctlError

PAGE = 200
EPOCH = "1970-01-01T00:00:00Z"


class ExpiryRefused(BadInput):
    """The duration breaks the declared retention, or no retention is declared."""


@dataclass(frozen=True)
class Age:
    years: int = 0
    months: int = 0
    days: int = 0

    def cutoff(self, today: datetime.date) -> datetime.date:
        """Studies dated before this day are older than the age."""
        months = today.year * 12 + today.month - 1 - self.years * 12 - self.months
        year, month = divmod(months, 12)
        day = min(today.day, _days_in(year, month + 1))
        return datetime.date(year, month + 1, day) - datetime.timedelta(days=self.days)

    def __str__(self) -> str:
        parts = ((self.years, "y"), (self.months, "mo"), (self.days, "d"))
        return "".join(f"{n}{u}" for n, u in parts if n) or "0d"


def _days_in(year: int, month: int) -> int:
    following = datetime.date(year + month // 12, month % 12 + 1, 1)
    return (following - datetime.timedelta(days=1)).day


def parse_age(text: str) -> Age:
    """`10y`, `18mo`, `400d`, or a combination such as `7y6mo`."""
    match = re.fullmatch(r"(?:(\d+)y)?(?:(\d+)mo)?(?:(\d+)d)?", text.strip().lower())
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not an age: write years, months and days as 10y, 18mo, 400d or 7y6mo")
    return Age(*(int(g or 0) for g in match.groups()))


def check_retention(age: Age, minimum_years: int | None, today: datetime.date, where: str) -> datetime.date:
    """The cutoff, once the age is at least the declared minimum; refused otherwise."""
    if minimum_years is None:
        raise ExpiryRefused(f"{where} declares no retention: add retention: {{minimumYears: N}} to the service "
                            "before expiring anything (many jurisdictions require 7 to 10 years)")
    cutoff, latest = age.cutoff(today), Age(years=minimum_years).cutoff(today)
    if cutoff > latest:
        raise ExpiryRefused(f"--older-than {age} is shorter than the {minimum_years} years {where} must keep "
                            f"studies (retention.minimumYears); nothing was listed or deleted")
    return cutoff


@dataclass(frozen=True)
class Candidate:
    study: str
    date: str  # YYYYMMDD
    basis: str  # StudyDate | stored
    modalities: str = ""

    def to_json(self) -> dict:
        return {"study": self.study, "date": self.date, "basis": self.basis, "modalities": self.modalities}


def _value(dataset: dict, tag: str) -> str:
    return "\\".join(str(v) for v in dicom_values(dataset, tag))


def plan(client, cutoff: datetime.date, modality: str | None = None) -> list[Candidate]:
    """Studies dated before `cutoff`, and studies without a date stored before it."""
    last_day = (cutoff - datetime.timedelta(days=1)).strftime("%Y%m%d")
    filters = {"StudyDate": f"-{last_day}", **({"ModalitiesInStudy": modality} if modality else {})}
    found: dict[str, Candidate] = {}
    offset = 0
    while True:
        page = client.search("studies", filters, limit=PAGE, offset=offset)
        for study in page:
            uid = _value(study, "0020000D")
            found[uid] = Candidate(uid, _value(study, "00080020"), "StudyDate", _value(study, "00080061"))
        if len(page) < PAGE:
            break
        offset += len(page)
    stored_before = cutoff.strftime("%Y-%m-%dT00:00:00Z")
    first_stored: dict[str, str] = {}
    for change in client.change_feed(EPOCH, end_time=stored_before):
        if change.get("Action") == "Create":
            first_stored.setdefault(change["StudyInstanceUid"], change.get("Timestamp", ""))
    for uid, when in first_stored.items():
        if uid in found:
            continue
        matches = client.search("studies", {"StudyInstanceUID": uid}, limit=1)
        if matches and not _value(matches[0], "00080020"):
            modalities = _value(matches[0], "00080061")
            if modality is None or modality in modalities.split("\\"):
                found[uid] = Candidate(uid, when[:10].replace("-", ""), "stored", modalities)
    return sorted(found.values(), key=lambda c: (c.date, c.study))


class ExpiryJournal:
    """One row per study this expiry deleted (or found gone): the record of what retention did."""

    SCHEMA = """
    create table if not exists service (url text not null);
    create table if not exists studies (
        study text primary key, date text, basis text, status text not null, detail text, at real not null);
    """

    def __init__(self, path: Path, service_url: str):
        self.path = path
        try:
            self.db = sqlite3.connect(path)
            self.db.executescript(self.SCHEMA)
            row = self.db.execute("select url from service").fetchone()
        except sqlite3.Error as err:
            raise ExpiryRefused(f"{path} cannot be the expiry journal ({err}): use another --journal") from None
        if row is None:
            self.db.execute("insert into service values (?)", (service_url,))
            self.db.commit()
        elif row[0] != service_url:
            self.db.close()
            raise ExpiryRefused(f"{path} is the expiry journal of {row[0]}, not {service_url}: "
                                "use another --journal")

    def done(self) -> set[str]:
        rows = self.db.execute("select study from studies where status in ('deleted', 'gone')")
        return {row[0] for row in rows}

    def record(self, candidate: Candidate, status: str, detail: str = "") -> None:
        self.db.execute("insert or replace into studies values (?, ?, ?, ?, ?, ?)",
                        (candidate.study, candidate.date, candidate.basis, status, detail, time.time()))
        self.db.commit()

    def close(self) -> None:
        self.db.close()


@dataclass
class ExpiryReport:
    cutoff: str
    candidates: list[Candidate]
    deleted: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)  # already deleted (by an earlier run or someone else)
    failed: dict[str, str] = field(default_factory=dict)
    listed_only: bool = True

    def to_json(self) -> dict:
        return {"cutoff": self.cutoff, "listedOnly": self.listed_only,
                "candidates": [c.to_json() for c in self.candidates], "deleted": self.deleted,
                "alreadyGone": self.gone, "failed": self.failed}


def expire(client, candidates: list[Candidate], journal: ExpiryJournal, report: ExpiryReport,
           on_deleted=lambda candidate: None) -> ExpiryReport:
    """Delete each candidate through the DELETE API, journaling each answer before the next."""
    report.listed_only = False
    done = journal.done()
    for candidate in candidates:
        if candidate.study in done:
            report.gone.append(candidate.study)
            continue
        try:
            existed = client.delete(candidate.study)
        except HdsctlError as err:
            journal.record(candidate, "failed", str(err).splitlines()[0])
            report.failed[candidate.study] = str(err).splitlines()[0]
            continue
        journal.record(candidate, "deleted" if existed else "gone")
        (report.deleted if existed else report.gone).append(candidate.study)
        on_deleted(candidate)
    return report
