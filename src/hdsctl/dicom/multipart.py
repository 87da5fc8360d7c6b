"""multipart/related, the one encoder and parser of the project: bodies streamed from files,
zip members or bytes (the client's STOW, the local service's STOW to its engine), and bodies
split where they lie, without copying a part (the local service's STOW, the client's retrieve
answers)."""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from pathlib import Path


class MultipartError(ValueError):
    """A body that is not the multipart it says it is: no boundary, no part, cut short."""


def parameter(content_type: str, name: str) -> str | None:
    """A parameter of a Content-Type header (`boundary`, `type`), unquoted; None when absent."""
    for piece in content_type.split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        if key.strip().lower() == name:
            return value.strip().strip('"')
    return None


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


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
            if isinstance(piece, (bytes, memoryview)):
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


def _size(part) -> int:
    if isinstance(part, (bytes, memoryview)):
        return len(part)
    if isinstance(part, (str, Path)):
        return os.path.getsize(part)
    return part.size


def encode(parts: list, part_type: str = "application/dicom") -> tuple[bytes, str]:
    """A whole body of these parts (bytes or memoryviews), and its Content-Type."""
    body = MultipartBody(parts, part_type)
    return body.read(), body.content_type


def spans(content_type: str, body: bytes) -> list[tuple[int, int, int]]:
    """Where each part lies in a multipart body: (headers start, payload start, payload end).
    One pass with bytes.find (the standard library's email parser takes a second per 15 MB),
    and no copy."""
    boundary = parameter(content_type, "boundary")
    if not boundary:
        raise MultipartError("the multipart content type has no boundary")
    delimiter = f"--{boundary}".encode()
    found = []
    start = body.find(delimiter)
    if start < 0:
        raise MultipartError("the multipart body holds no part")
    while True:
        start += len(delimiter)
        if body[start:start + 2] == b"--":
            return found
        headers_end = body.find(b"\r\n\r\n", start)
        end = body.find(b"\r\n" + delimiter, headers_end)
        if headers_end < 0 or end < 0:
            raise MultipartError("the multipart body is cut short")
        found.append((start + 2, headers_end + 4, end))
        start = end + 2


def split(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart answer, each with its headers (lower-case names)."""
    parts = []
    for head_start, payload_start, end in spans(content_type, body):
        headers = {}
        for line in body[head_start:payload_start].decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip():
                headers[name.strip().lower()] = value.strip()
        parts.append((headers, body[payload_start:end]))
    return parts
