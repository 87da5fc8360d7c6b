"""What the DICOM service reports about tags and operations, read case-insensitively."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hdsctl.dicomtags import LEVELS, TagDefinition

TERMINAL = frozenset({"succeeded", "failed", "canceled"})
_STATUS_WORDS = {s.lower(): s for s in ("notStarted", "running", "succeeded", "failed", "canceled", "unknown")}


def lower_keys(body: Any) -> dict[str, Any]:
    """The service reads and writes property names case-insensitively: compare them lowered."""
    return {str(key).lower(): value for key, value in (body or {}).items()}


def _word(value: Any) -> str:
    return str(value or "").strip().lower()


def operation_status(value: Any) -> str:
    """Operation status in v2 words: v1's `completed` is v2's `succeeded`."""
    word = _word(value)
    if word == "completed":
        return "succeeded"
    return _STATUS_WORDS.get(word, "unknown")


def level_name(value: Any) -> str:
    word = _word(value)
    return next((level for level in LEVELS if level.lower() == word), str(value))


def operation_id_from_url(url: str | None) -> str | None:
    if not url:
        return None
    return url.rstrip("/").rsplit("/", 1)[-1] or None


@dataclass(frozen=True)
class ObservedTag:
    path: str
    vr: str
    level: str
    private_creator: str | None
    status: str  # adding | ready | deleting
    query_enabled: bool
    error_count: int
    operation_id: str | None

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> ObservedTag:
        fields = lower_keys(body)
        errors = lower_keys(fields.get("errors"))
        operation = lower_keys(fields.get("operation"))
        return cls(
            path=str(fields.get("path", "")).upper(),
            vr=str(fields.get("vr") or "").upper(),
            level=level_name(fields.get("level")),
            private_creator=fields.get("privatecreator") or None,
            status=_word(fields.get("status")),
            query_enabled=_word(fields.get("querystatus")) != "disabled",
            error_count=int(errors.get("count") or 0),
            operation_id=operation_id_from_url(operation.get("href")) or operation.get("id"),
        )

    def definition(self) -> TagDefinition:
        return TagDefinition(self.path, self.vr, self.level, self.private_creator)


@dataclass(frozen=True)
class OperationState:
    id: str
    type: str
    status: str
    percent_complete: int
    created_time: str | None = None
    last_updated_time: str | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> OperationState:
        fields = lower_keys(body)
        return cls(
            id=str(fields.get("operationid", "")).replace("-", ""),
            type=_word(fields.get("type")),
            status=operation_status(fields.get("status")),
            percent_complete=int(fields.get("percentcomplete") or 0),
            created_time=fields.get("createdtime"),
            last_updated_time=fields.get("lastupdatedtime"),
        )


@dataclass(frozen=True)
class TagError:
    study_instance_uid: str | None
    series_instance_uid: str | None
    sop_instance_uid: str | None
    message: str
    created_time: str | None = None

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> TagError:
        fields = lower_keys(body)
        return cls(
            study_instance_uid=fields.get("studyinstanceuid"),
            series_instance_uid=fields.get("seriesinstanceuid"),
            sop_instance_uid=fields.get("sopinstanceuid"),
            message=str(fields.get("errormessage") or ""),
            created_time=fields.get("createdtime"),
        )
