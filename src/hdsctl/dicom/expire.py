"""Retention by rule, plan then act: the studies past an age are planned into a reviewed list,
and only that list is deleted, each study re-checked just before its DELETE.

A study's age is its StudyDate, read and validated here (the service's date-range answer is
not trusted: an empty or malformed date never makes a study old); a study without a valid date
is as old as its data (the earliest stored instance still present, from the change feed). No
age under the service's declared `retention.minimumYears` is ever accepted.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from hdsctl.dicom import keys
from hdsctl.dicom.expiry_journal import ExpiryJournal
from hdsctl.dicom.web import dicom_values, first_value, is_uid
from hdsctl.errors import BadInput, HdsctlError

MAX_YEARS = 200
STUDY_DATE, STORED = "StudyDate", "stored"
GONE = "not on the service any more"
STUDY_UID, STUDY_DATE_TAG = keys.STUDY_INSTANCE_UID, keys.STUDY_DATE
MODALITIES, INSTANCES = keys.MODALITIES_IN_STUDY, keys.NUMBER_OF_STUDY_RELATED_INSTANCES


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
    """`10y`, `18mo`, `400d`, or a combination such as `7y6mo`; at most 200 years in all."""
    match = re.fullmatch(r"(?:(\d{1,6})y)?(?:(\d{1,6})mo)?(?:(\d{1,7})d)?", text.strip().lower())
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not an age: write years, months and days as 10y, 18mo, 400d or 7y6mo")
    age = Age(*(int(g or 0) for g in match.groups()))
    if age.years * 366 + age.months * 31 + age.days > MAX_YEARS * 366:
        raise ValueError(f"{text!r} is longer than {MAX_YEARS} years: no study is that old")
    return age


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


def study_date(text) -> datetime.date | None:
    """A StudyDate (DA, YYYYMMDD) this client accepts as the study's age, or None: empty,
    malformed (`2020`, `20201301`) or implausible values never date a study."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{8}", text.strip()):
        return None
    try:
        value = datetime.datetime.strptime(text.strip(), "%Y%m%d").date()
    except ValueError:
        return None
    return value if datetime.date(1850, 1, 1) <= value <= datetime.date.today() else None


@dataclass(frozen=True)
class Candidate:
    study: str
    date: str  # YYYYMMDD: the day the age is counted from
    basis: str  # StudyDate | stored
    modalities: str = ""
    instances: int | None = None
    why: str = ""

    def to_json(self) -> dict:
        return {"study": self.study, "date": self.date, "basis": self.basis, "modalities": self.modalities,
                "instances": self.instances, "why": self.why}

    @classmethod
    def from_json(cls, item: dict) -> Candidate:
        return cls(str(item["study"]), str(item["date"]), str(item["basis"]), str(item.get("modalities") or ""),
                   item.get("instances"), str(item.get("why") or ""))


def _text(dataset: dict, tag: str) -> str:
    return "\\".join(str(v) for v in dicom_values(dataset, tag))


def _instances(dataset: dict) -> int | None:
    value = first_value(dataset, INSTANCES)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def find_candidates(client, journal: ExpiryJournal, cutoff: datetime.date,
                    modality: str | None = None) -> list[Candidate]:
    """Studies whose validated StudyDate is before `cutoff`, and studies without a valid date
    whose data was stored before it (the journal's change-feed checkpoint is brought up to date)."""
    journal.follow_change_feed(client)
    last_day = (cutoff - datetime.timedelta(days=1)).strftime("%Y%m%d")
    filters = {"StudyDate": f"-{last_day}", **({"ModalitiesInStudy": modality} if modality else {})}
    found: dict[str, Candidate] = {}
    for study in client.search_all("studies", filters, includefield=(MODALITIES, INSTANCES)):
        uid, day = _text(study, STUDY_UID), study_date(_text(study, STUDY_DATE_TAG))
        if is_uid(uid) and day is not None and day < cutoff:
            why = f"StudyDate {day.isoformat()} is before {cutoff.isoformat()}"
            found[uid] = Candidate(uid, day.strftime("%Y%m%d"), STUDY_DATE, _text(study, MODALITIES),
                                   _instances(study), why)
    for uid, stored in journal.stored_before(cutoff):
        if uid in found or not is_uid(uid):
            continue
        matches = client.search("studies", {"StudyInstanceUID": uid}, limit=1,
                                includefield=(MODALITIES, INSTANCES))
        if not matches or study_date(_text(matches[0], STUDY_DATE_TAG)) is not None:
            continue  # gone, or dated (then its StudyDate decides, above)
        modalities = _text(matches[0], MODALITIES)
        if modality is None or modality in modalities.split("\\"):
            raw = _text(matches[0], STUDY_DATE_TAG)
            why = f"StudyDate {raw or 'empty'!r} is not a date; first stored {stored[:10]}"
            day = stored[:10].replace("-", "")
            found[uid] = Candidate(uid, day, STORED, modalities, _instances(matches[0]), why)
    return sorted(found.values(), key=lambda c: (c.date, c.study))


def still_due(client, journal: ExpiryJournal, candidate: Candidate, cutoff: datetime.date) -> str | None:
    """Why `candidate` must not be deleted now (None: it is present and still past retention by
    what the service shows now); re-checked just before its DELETE."""
    matches = client.search("studies", {"StudyInstanceUID": candidate.study}, limit=1,
                            includefield=(MODALITIES, INSTANCES))
    if not matches:
        return GONE
    day = study_date(_text(matches[0], STUDY_DATE_TAG))
    if candidate.basis == STUDY_DATE:
        if day is None or day.strftime("%Y%m%d") != candidate.date:
            now = _text(matches[0], STUDY_DATE_TAG) or "empty"
            return f"its StudyDate changed since the plan (now {now!r})"
    else:
        if day is not None:
            return f"it is dated now ({day.isoformat()}): plan again"
        stored = journal.first_stored(candidate.study)
        if stored is None or stored[:10].replace("-", "") != candidate.date:
            return f"it was stored again since the plan (first stored now {stored or 'unknown'})"
    counted = datetime.datetime.strptime(candidate.date, "%Y%m%d").date()
    if counted >= cutoff:
        return f"{candidate.date} is not before the cutoff {cutoff.isoformat()}"
    now = _instances(matches[0])
    if candidate.instances is not None and now is not None and now != candidate.instances:
        return f"it holds {now} instances now, {candidate.instances} when planned: plan again"
    return None


@dataclass
class ExpiryReport:
    cutoff: str
    candidates: list[Candidate]
    deleted: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # study → why it was not deleted
    failed: dict[str, str] = field(default_factory=dict)
    listed_only: bool = True
    plan_file: str | None = None

    def to_json(self) -> dict:
        return {"cutoff": self.cutoff, "listedOnly": self.listed_only, "planFile": self.plan_file,
                "candidates": [c.to_json() for c in self.candidates], "deleted": self.deleted,
                "skipped": self.skipped, "failed": self.failed}


def carry_out(client, candidates: list[Candidate], cutoff: datetime.date, journal: ExpiryJournal,
              report: ExpiryReport, on_deleted=lambda candidate: None) -> ExpiryReport:
    """Delete exactly `candidates`, each re-checked first (against the journal's change feed as
    last followed); the journal holds the intent before each DELETE and the answer after it,
    so an interrupted run loses no record."""
    report.listed_only = False
    for candidate in candidates:
        try:
            why_not = still_due(client, journal, candidate, cutoff)
            if why_not == GONE and journal.status(candidate.study) == "deleting":
                # An interrupted run sent its DELETE; the service confirms it took effect.
                journal.record(candidate, "deleted", "confirmed gone after an interrupted run")
                report.deleted.append(candidate.study)
                continue
            if why_not is not None:
                journal.record(candidate, "skipped", why_not)
                report.skipped[candidate.study] = why_not
                continue
            journal.record(candidate, "deleting")
            existed = client.delete(candidate.study)
        except HdsctlError as err:
            journal.record(candidate, "failed", str(err).splitlines()[0])
            report.failed[candidate.study] = str(err).splitlines()[0]
            continue
        if existed:
            journal.record(candidate, "deleted")
            report.deleted.append(candidate.study)
            on_deleted(candidate)
        else:
            journal.record(candidate, "skipped", "gone before its DELETE")
            report.skipped[candidate.study] = "gone before its DELETE"
    return report
