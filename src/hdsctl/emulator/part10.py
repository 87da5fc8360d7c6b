"""STOW parts read as DICOM Part 10 files where they lie in the request body: the header only,
within the part's bounds, with truncation caught; and a part that starts with its File Meta
group (no preamble) made into the Part 10 file the service stores."""

from __future__ import annotations

import io
from dataclasses import dataclass

from hdsctl.dicom import multipart
from hdsctl.emulator.store import ApiError


@dataclass(frozen=True)
class PartHeader:
    dataset: object  # pydicom Dataset, pixel data not read
    length: int  # bytes of the part the header takes
    preamble: bool  # False: File Meta first, to be stored with one


class NotPart10(ValueError):
    """Why a part is not a DICOM Part 10 file the service would read."""


def stow_spans(content_type: str, body: bytes) -> tuple[str | None, list[tuple[int, int]]]:
    """The boundary of a STOW body and where each instance lies in it (multipart/related, or
    one application/dicom file: no boundary, one span)."""
    kind = multipart.media_type(content_type)
    if kind == "application/dicom":
        return None, [(0, len(body))]
    if kind != "multipart/related":
        raise ApiError(415, f"The content type '{content_type}' is not supported; use multipart/related; "
                            "type=\"application/dicom\".")
    try:
        spans = [(start, end) for _, start, end in multipart.spans(content_type, body)]
    except multipart.MultipartError as err:
        raise ApiError(400, f"The multipart body cannot be read: {err}.") from None
    return multipart.parameter(content_type, "boundary"), spans


def read_header(body: bytes, start: int, end: int) -> PartHeader:
    import pydicom

    preamble = has_preamble(body, start, end)
    if not preamble and not meta_first(body, start, end):
        raise NotPart10("no preamble and DICM, nor a File Meta group first")
    part = Window(body, start, end)  # each header is parsed where it lies, within its part
    try:
        dataset = pydicom.dcmread(part, stop_before_pixels=True, force=True)
    except Exception as err:  # pydicom raises many kinds for bytes that are not DICOM
        raise NotPart10(str(err)) from None
    if cut_short(dataset, part.tell(), end - start):
        raise NotPart10("the part ends inside an element")
    return PartHeader(dataset, part.tell(), preamble)


class Window(io.RawIOBase):
    """One part of a body, read in place: a reader stops at the part's end (a part without
    pixel data, such as an SR, would otherwise be read into the next one)."""

    def __init__(self, body: bytes, start: int, end: int):
        super().__init__()
        self._view, self._start, self._end, self._at = memoryview(body), start, end, start

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = max(0, min(len(buffer), self._end - self._at))
        buffer[:count] = self._view[self._at:self._at + count]
        self._at += count
        return count

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: self._start, io.SEEK_CUR: self._at, io.SEEK_END: self._end}[whence]
        self._at = min(max(self._start, base + offset), self._end)
        return self._at - self._start

    def tell(self) -> int:
        return self._at - self._start


def cut_short(dataset, stopped_at: int, size: int) -> bool:
    """The last element read does not end where reading stopped (a part cut inside an element's
    header or value; pydicom stops quietly at a short read)."""
    raw = [element for element in dataset._dict.values() if getattr(element, "value_tell", None) is not None]
    if not raw:
        return False
    last = max(raw, key=lambda element: element.value_tell)
    if last.length == 0xFFFFFFFF:
        return False  # a sequence of undefined length: its items were read whole or not at all
    return last.value_tell + last.length != stopped_at or stopped_at > size


def has_preamble(body: bytes, start: int, end: int) -> bool:
    return end - start >= 132 and body[start + 128:start + 132] == b"DICM"


def meta_first(body: bytes, start: int, end: int) -> bool:
    """The File Meta group first, without preamble and DICM: fo-dicom, the service's parser,
    reads such parts too."""
    head = body[start:min(end, start + 8)]
    return len(head) == 8 and head[:2] == b"\x02\x00" and head[4:6].isalpha() and head[4:6].isupper()


def as_part10(part, media_storage: dict[str, str]) -> bytes:
    """A part that starts with its File Meta group, as the service stores it: a null preamble,
    DICM, and the File Meta group with its group length (as fo-dicom writes a file), then the
    dataset's bytes unchanged. Missing Media Storage UIDs are taken from the dataset."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.filereader import read_dataset
    from pydicom.filewriter import write_file_meta_info

    source = io.BytesIO(part)
    meta = FileMetaDataset(read_dataset(source, is_implicit_VR=False, is_little_endian=True,
                                        stop_when=lambda tag, vr, length: tag >> 16 != 2))
    for name, value in media_storage.items():
        if name not in meta:
            setattr(meta, name, value)
    out = io.BytesIO()
    out.write(bytes(128) + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)
    out.write(part[source.tell():])
    return out.getvalue()
