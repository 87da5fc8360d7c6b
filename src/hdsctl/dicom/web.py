"""DICOMweb on the wire: multipart/related bodies streamed from files or bytes, STOW-RS
answers read per instance, multipart answers split into their parts.

STOW answers are results, not exceptions: 200 all stored, 202 some stored or stored with
warnings, 409 none stored; each failed instance carries the service's FailureReason code.
"""

from __future__ import annotations

import io
import os
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# FailureReason (0008,1197) codes of the Azure DICOM service (conformance statement v2).
FAILURE_REASONS = {
    272: "processing failure",
    43264: "validation failed",
    43265: "StudyInstanceUID does not match the study in the request URL",
    45070: "already stored (same study, series and SOP instance UID)",
    45071: "being created by another request, or a failed create not yet cleaned up",
}
ALREADY_STORED = 45070

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

RETRIEVE_URL = "00081190"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
SOP_CLASS = "00081150"
SOP_INSTANCE = "00081155"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"
FAILED_ATTRIBUTES = "00741048"
ERROR_COMMENT = "00000902"


class PartUnreadable(Exception):
    """A part could not be read whole as it was sized when the body was made: the file changed,
    vanished, or (a zip member) failed its CRC. `index` is its place among the parts."""

    def __init__(self, index: int, reason: str):
        super().__init__(reason)
        self.index, self.reason = index, reason


class MultipartBody(io.RawIOBase):
    """multipart/related; type="application/dicom" read lazily from its parts: a file is opened
    only when the stream reaches it, so memory stays flat however large the upload. Seekable
    to the start, so the retry policy can send it again.

    A part is bytes, a file path, or an object with `size` and `open()` (a member of a zip
    archive, say) that gives a binary stream of that many bytes."""

    def __init__(self, parts: list, part_type: str = "application/dicom"):
        super().__init__()
        self.boundary = f"hdsctl-{uuid.uuid4().hex}"
        self.content_type = f'multipart/related; type="{part_type}"; boundary={self.boundary}'
        head = f"--{self.boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode()
        self._pieces: list[bytes | Path] = []
        for index, part in enumerate(parts):
            self._pieces.append(head if index == 0 else b"\r\n" + head)
            self._pieces.append(part)
        self._pieces.append(f"\r\n--{self.boundary}--\r\n".encode())
        self._sizes = [_size(p) for p in self._pieces]  # a file is read to exactly this size
        self.length = sum(self._sizes)
        self._index, self._offset, self._position, self._file = 0, 0, 0, None

    def __len__(self) -> int:
        # requests sizes a file-like body with len(): without it, it would also announce chunked
        # transfer encoding next to the Content-Length, which servers refuse.
        return self.length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if (offset, whence) not in {(0, io.SEEK_SET), (self._position, io.SEEK_SET), (0, io.SEEK_CUR)}:
            raise io.UnsupportedOperation("a multipart body rewinds only to its start")
        if offset == 0 and whence == io.SEEK_SET:
            self._close_file()
            self._index, self._offset, self._position = 0, 0, 0
        return self._position

    def readinto(self, buffer) -> int:
        view = memoryview(buffer)
        while self._index < len(self._pieces):
            piece = self._pieces[self._index]
            if isinstance(piece, bytes):
                count = min(len(view), len(piece) - self._offset)
                view[:count] = piece[self._offset:self._offset + count]
            else:
                count = self._read_part(piece, view[:self._sizes[self._index] - self._offset])
            if count:
                self._offset += count
                self._position += count
                return count
            self._close_file()
            self._index, self._offset = self._index + 1, 0
        return 0

    def _read_part(self, piece, view) -> int:
        """Straight into the transport's block; a part that ends early or runs long is refused
        (PartUnreadable) rather than sent cut or over its announced length."""
        part = (self._index - 1) // 2
        try:
            if self._file is None:
                # closed when the part ends
                self._file = open(piece, "rb") if isinstance(piece, (str, Path)) else piece.open()  # noqa: SIM115
            count = self._file.readinto(view) if len(view) else 0
            if count == 0 and len(view):
                raise PartUnreadable(part, "changed while uploading: the file is shorter than when it was read")
            if count == len(view) and self._offset + count == self._sizes[self._index] and self._file.read(1):
                raise PartUnreadable(part, "changed while uploading: the file is longer than when it was read")
            return count
        except PartUnreadable:
            self._close_file()
            raise
        except (OSError, EOFError, zipfile.BadZipFile) as err:  # a zip member's CRC is checked at its end
            self._close_file()
            raise PartUnreadable(part, f"unreadable while uploading: {err}") from None

    def _close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        self._close_file()
        super().close()


def _size(part) -> int:
    if isinstance(part, bytes):
        return len(part)
    if isinstance(part, (str, Path)):
        return os.path.getsize(part)
    return part.size


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
    for item in _items(dataset, REFERENCED_SOP_SEQUENCE):
        sop, sop_class = _instance_uids(item)
        warning = first_value(item, WARNING_REASON)
        result.stored.append(StoredInstance(sop, sop_class, first_value(item, RETRIEVE_URL),
                                            int(warning) if warning is not None else None))
    for item in _items(dataset, FAILED_SOP_SEQUENCE):
        sop, sop_class = _instance_uids(item)
        comments = tuple(str(first_value(attribute, ERROR_COMMENT) or "")
                         for attribute in _items(item, FAILED_ATTRIBUTES))
        reason = first_value(item, FAILURE_REASON)
        result.failed.append(FailedInstance(sop, sop_class, int(reason) if reason is not None else 272,
                                            comments))
    return result


def _instance_uids(item: dict) -> tuple[str, str]:
    return first_value(item, SOP_INSTANCE) or "", first_value(item, SOP_CLASS) or ""


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


def split_multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart answer, each with its headers (lower-case names)."""
    boundary = _parameter(content_type, "boundary")
    if not boundary:
        raise ValueError(f"no boundary in {content_type!r}")
    delimiter = b"--" + boundary.encode()
    parts = []
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk.removeprefix(b"\r\n")
        head, _, payload = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        parts.append((headers, payload.removesuffix(b"\r\n")))
    return parts


def _parameter(header: str, name: str) -> str | None:
    for piece in header.split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return None
