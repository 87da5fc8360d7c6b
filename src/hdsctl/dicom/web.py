"""DICOMweb on the wire: UIDs, STOW-RS answers read per instance, DICOM JSON values and
change-feed times (multipart bodies: hdsctl.dicom.multipart).

STOW answers are results, not exceptions: 200 all stored, 202 some stored or stored with
warnings, 409 none stored; each failed instance carries the service's FailureReason code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hdsctl.dicom import keys

# FailureReason (0008,1197) codes of the Azure DICOM service (conformance statement v2).
PROCESSING_FAILURE, VALIDATION_FAILED, STUDY_MISMATCH, ALREADY_STORED, BEING_CREATED = (
    272, 43264, 43265, 45070, 45071)
FAILURE_REASONS = {
    PROCESSING_FAILURE: "processing failure",
    VALIDATION_FAILED: "validation failed",
    STUDY_MISMATCH: "StudyInstanceUID does not match the study in the request URL",
    ALREADY_STORED: "already stored (same study, series and SOP instance UID)",
    BEING_CREATED: "being created by another request, or a failed create not yet cleaned up",
}

# PS3.5 9.1: a UID is digits and dots, at most 64 characters.
UID_PATTERN = re.compile(r"[0-9]+(?:\.[0-9]+)*")
UID_MAX = 64


def is_uid(value) -> bool:
    return isinstance(value, str) and len(value) <= UID_MAX and UID_PATTERN.fullmatch(value) is not None


def check_uid(value, what: str = "UID") -> str:
    """`value` when it is a DICOM UID; InvalidUid naming it otherwise (before it reaches a URL)."""
    if not is_uid(value):
        from hdsctl.dicom.errors import InvalidUid

        shown = repr(value)[:80]
        raise InvalidUid(f"{what} {shown} is not a DICOM UID (digits and dots, at most {UID_MAX} characters)")
    return value



@dataclass(frozen=True)
class StoredInstance:
    sop_instance_uid: str
    sop_class_uid: str
    url: str | None = None
    warning: int | None = None


@dataclass(frozen=True)
class FailedInstance:
    sop_instance_uid: str
    sop_class_uid: str
    reason: int
    comments: tuple[str, ...] = ()

    @property
    def meaning(self) -> str:
        return FAILURE_REASONS.get(self.reason, f"failure reason {self.reason}")


@dataclass
class StowResult:
    """The service's answer to one STOW request, instance by instance."""

    status: int
    stored: list[StoredInstance] = field(default_factory=list)
    failed: list[FailedInstance] = field(default_factory=list)


def parse_stow_answer(status: int, body: Any) -> StowResult:
    dataset = body if isinstance(body, dict) else {}
    result = StowResult(status)
    for item in _items(dataset, keys.REFERENCED_SOP_SEQUENCE):
        sop, sop_class = _instance_uids(item)
        warning = first_value(item, keys.WARNING_REASON)
        result.stored.append(StoredInstance(sop, sop_class, first_value(item, keys.RETRIEVE_URL),
                                            int(warning) if warning is not None else None))
    for item in _items(dataset, keys.FAILED_SOP_SEQUENCE):
        sop, sop_class = _instance_uids(item)
        comments = tuple(str(first_value(attribute, keys.ERROR_COMMENT) or "")
                         for attribute in _items(item, keys.FAILED_ATTRIBUTES_SEQUENCE))
        reason = first_value(item, keys.FAILURE_REASON)
        result.failed.append(FailedInstance(sop, sop_class, int(reason) if reason is not None else 272,
                                            comments))
    return result


def _instance_uids(item: dict) -> tuple[str, str]:
    return (first_value(item, keys.REFERENCED_SOP_INSTANCE_UID) or "",
            first_value(item, keys.REFERENCED_SOP_CLASS_UID) or "")


def utc_text(value: str) -> str:
    """An ISO 8601 time as the change feed takes it, and as its timestamps are compared: UTC,
    microseconds, Z (a time without a zone is UTC; digits past the microsecond are dropped)."""
    import datetime

    text = re.sub(r"(\.\d{6})\d+", r"\1", str(value).strip().replace("Z", "+00:00"))
    moment = datetime.datetime.fromisoformat(text)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dicom_values(dataset: dict, tag: str) -> list:
    """An attribute's values in DICOM JSON (PS3.18 F.2), by its 8-hex tag in either case."""
    element = dataset.get(tag) or dataset.get(tag.lower()) or {}
    return element.get("Value") or []


def first_value(dataset: dict, tag: str, default: Any = None) -> Any:
    values = dicom_values(dataset, tag)
    return values[0] if values else default


def _items(dataset: dict, tag: str) -> list[dict]:
    return [item for item in dicom_values(dataset, tag) if isinstance(item, dict)]
