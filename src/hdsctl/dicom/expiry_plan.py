"""An expiry plan on disk: the studies a person reviews before `--apply` deletes exactly them.

The file carries what it was made for (stack, service, URL), the retention it was checked
against, and a digest of its content: a plan for another service, an edited plan, or one made
before a retention change is refused whole.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from hdsctl.dicom.expire import Candidate, check_retention, parse_age
from hdsctl.errors import BadInput

KIND = "hdsctl-expiry-plan"
VERSION = 1


class PlanRefused(BadInput):
    """A plan file that `--apply` will not carry out."""


@dataclass(frozen=True)
class ExpiryPlan:
    stack: str
    service: str
    url: str
    older_than: str
    cutoff: datetime.date
    minimum_years: int
    modality: str | None
    created: str
    candidates: list[Candidate]

    def body(self) -> dict:
        return {"kind": KIND, "version": VERSION, "stack": self.stack, "service": self.service, "url": self.url,
                "olderThan": self.older_than, "cutoff": self.cutoff.isoformat(),
                "minimumYears": self.minimum_years, "modality": self.modality, "created": self.created,
                "studies": [c.to_json() for c in self.candidates]}

    def to_text(self) -> str:
        body = self.body()
        return json.dumps({**body, "digest": _digest(body)}, indent=2) + "\n"


def _digest(body: dict) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def read_plan(path: Path) -> ExpiryPlan:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise PlanRefused(f"--apply {path}: cannot read it ({err.strerror or err})") from None
    except (ValueError, UnicodeDecodeError):
        raise PlanRefused(f"--apply {path}: not an expiry plan (not JSON); make one with --plan-out") from None
    if not isinstance(document, dict) or document.get("kind") != KIND or document.get("version") != VERSION:
        raise PlanRefused(f"--apply {path}: not an expiry plan of this hdsctl (kind {KIND}, version {VERSION})")
    digest = document.pop("digest", None)
    if digest != _digest(document):
        raise PlanRefused(f"--apply {path}: the plan was changed after it was made (its digest does not "
                          "match); plan again with --plan-out and review that file")
    try:
        return ExpiryPlan(str(document["stack"]), str(document["service"]), str(document["url"]),
                          str(document["olderThan"]), datetime.date.fromisoformat(document["cutoff"]),
                          int(document["minimumYears"]), document.get("modality"), str(document["created"]),
                          [Candidate.from_json(item) for item in document["studies"]])
    except (KeyError, TypeError, ValueError) as err:
        raise PlanRefused(f"--apply {path}: incomplete expiry plan ({err})") from None


def check_plan(plan: ExpiryPlan, path: Path, *, stack: str, service: str, url: str, minimum_years: int | None,
               today: datetime.date) -> None:
    """Refuse a plan made for another service, or under another retention than the stack's now."""
    if (plan.stack, plan.service, plan.url.rstrip("/")) != (stack, service, url.rstrip("/")):
        raise PlanRefused(f"--apply {path}: the plan is for {plan.service} of stack {plan.stack} at "
                          f"{plan.url}, not {service} of stack {stack} at {url}")
    if minimum_years != plan.minimum_years:
        raise PlanRefused(f"--apply {path}: retention.minimumYears is {minimum_years} now, "
                          f"{plan.minimum_years} when the plan was made: plan again under the current "
                          "retention")
    check_retention(parse_age(plan.older_than), minimum_years, today, f"DICOM service {service}")
