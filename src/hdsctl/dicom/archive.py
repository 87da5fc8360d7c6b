"""What an archive to upload holds: files, folders and .zip archives walked, DICOM Part 10
files recognised by their preamble, and only the header read (UIDs, transfer syntax, size).

Nothing here loads pixel data: an archive of any size is scanned in flat memory. Zip members
are read straight from the archive, and a member whose size or compression ratio no real
DICOM file has (a zip bomb) is refused without being decompressed.
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Implicit VR Little Endian (PS3.5 A.1): the service's v2 API refuses it. Spelled out so that
# walking an archive (all a resumed run does) needs no DICOM library.
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"

PREAMBLE = 128
MAGIC = b"DICM"
# No DICOM file in a clinical archive is larger than this, or compresses better than this.
MAX_MEMBER_BYTES = 4 << 30
MAX_COMPRESSION_RATIO = 200
HEADER_TAGS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")


@dataclass(frozen=True)
class Source:
    """A file on disk, or a member of a zip archive (`member` set)."""

    path: Path
    member: str | None = None
    size: int = 0

    @property
    def key(self) -> str:
        """Where the file is, as the journal and reports name it: printable text even for a
        name that is not UTF-8 (its bytes shown as \\xNN)."""
        key = f"{self.path}!{self.member}" if self.member else str(self.path)
        return key.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")

    def changed_since(self, size: int, modified: float) -> str | None:
        """Why the file is not as the scan saw it (None: it is). A zip member's CRC is checked
        as it is read instead."""
        if self.member is not None:
            return None
        try:
            info = self.path.stat()
        except OSError as err:
            return f"changed while uploading: {err.strerror or err}"
        if (info.st_size, info.st_mtime) != (size, modified):
            return ("changed while uploading: size or time differ from the scan; run again to send it as it "
                    "is now")
        return None

    def open(self):
        """A seekable binary stream of the file; the caller closes it."""
        if self.member is None:
            return open(self.path, "rb")
        archive = zipfile.ZipFile(self.path)
        try:
            return archive.open(self.member)  # keeps the archive's file open until it is closed
        finally:
            archive.close()


@dataclass(frozen=True)
class Candidate:
    """A DICOM Part 10 file and what its header says."""

    source: Source
    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax: str
    modified: float

    @property
    def implicit_vr(self) -> bool:
        return self.transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN


@dataclass(frozen=True)
class Unusable:
    """A file that is not sent: not DICOM (`kind` "not-dicom"), or DICOM that cannot be."""

    source: Source
    kind: str  # not-dicom | special | corrupt | truncated | unreadable | refused-archive
    reason: str


def walk(paths: list[Path]) -> Iterator[tuple[Source, float] | Unusable]:
    """Every file under `paths` in a stable order, with its modification time; nothing is read
    yet (a resumed run skips what its journal holds without opening it). Each real folder is
    walked once, however many links lead to it; FIFOs, devices and sockets are not opened."""
    seen: set[tuple[int, int]] = set()
    for path in paths:
        if hasattr(path, "walk"):  # a container in Blob storage (blob_source.BlobRoot)
            yield from path.walk()
            continue
        yield from _walk_one(path, seen)


def _walk_one(path: Path, seen: set[tuple[int, int]]) -> Iterator[tuple[Source, float] | Unusable]:
    try:
        info = path.stat()
    except OSError as err:
        yield Unusable(Source(path), "unreadable", err.strerror or str(err))
        return
    if stat.S_ISDIR(info.st_mode):
        if (info.st_dev, info.st_ino) in seen:
            return  # a link back to a folder already walked (a loop, or a second way in)
        seen.add((info.st_dev, info.st_ino))
        try:
            children = sorted(path.iterdir())
        except OSError as err:
            yield Unusable(Source(path), "unreadable", f"folder cannot be listed: {err.strerror}")
            return
        for child in children:
            if child.name.startswith(".hdsctl-upload"):
                continue  # the journal lives next to the data
            yield from _walk_one(child, seen)
    elif not stat.S_ISREG(info.st_mode):
        yield Unusable(Source(path), "special", "not a regular file (a FIFO, device or socket): not opened")
    elif path.suffix.lower() == ".zip":
        yield from _walk_zip(path, info.st_mtime)
    else:
        yield Source(path, size=info.st_size), info.st_mtime


def _walk_zip(path: Path, modified: float) -> Iterator[tuple[Source, float] | Unusable]:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        yield Unusable(Source(path), "refused-archive", f"not a readable zip archive: {err}")
        return
    with archive:
        for member in sorted(archive.infolist(), key=lambda m: m.filename):
            if member.is_dir():
                continue
            source = Source(path, member.filename, member.file_size)
            ratio = member.file_size / max(member.compress_size, 1)
            if member.file_size > MAX_MEMBER_BYTES or ratio > MAX_COMPRESSION_RATIO:
                yield Unusable(source, "refused-archive",
                               f"{member.file_size} bytes from {member.compress_size} compressed "
                               f"(ratio {ratio:.0f}): no DICOM file is like that; not decompressed")
                continue
            yield source, modified


def starts_as_dicom(head: bytes) -> bool:
    """A Part 10 file: the preamble and DICM, or the File Meta group first without them (as
    toolkits write in-memory datasets; the service's parser reads both)."""
    if len(head) >= PREAMBLE + len(MAGIC) and head[PREAMBLE:PREAMBLE + len(MAGIC)] == MAGIC:
        return True
    return len(head) >= 8 and head[:2] == b"\x02\x00" and head[3:4] == b"\x00" and head[4:6].isalpha() \
        and head[4:6].isupper()


def read_header(source: Source, modified: float) -> Candidate | Unusable:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with source.open() as stream:
            head = stream.read(PREAMBLE + len(MAGIC))
            if not starts_as_dicom(head):
                return Unusable(source, "not-dicom", "no DICOM Part 10 preamble nor File Meta group")
            stream.seek(0)
            dataset = pydicom.dcmread(stream, stop_before_pixels=True, force=True)
            syntax = str(getattr(dataset.file_meta, "TransferSyntaxUID", "") or "") if dataset.file_meta else ""
            cut = truncation(stream, source.size, syntax)
    except OSError as err:
        return Unusable(source, "unreadable", err.strerror or str(err))
    except (InvalidDicomError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        return Unusable(source, "corrupt", f"DICOM header cannot be read: {err}"[:300])
    if cut:
        return Unusable(source, "truncated", cut)
    values = {name: str(getattr(dataset, name, "") or "") for name in HEADER_TAGS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        return Unusable(source, "corrupt",
                        f"header incomplete (truncated or corrupt): missing {', '.join(missing)}")
    return Candidate(source, values["StudyInstanceUID"], values["SeriesInstanceUID"], values["SOPInstanceUID"],
                     values["SOPClassUID"], syntax, modified)


def truncation(stream, size: int, syntax: str) -> str | None:
    """Why a file whose header was just read ends before its declared lengths do (None: it is
    whole). `stream` stands where the header stopped: at the pixel data, or at the end."""
    import struct

    if syntax == "1.2.840.10008.1.2.2":
        return None  # explicit VR big endian (retired): not checked
    position = stream.tell()
    if position > size:
        return f"the header runs {position - size} bytes past the end of the file"
    element = stream.read(12)
    if not element:
        return None  # no pixel data: the header was all of it
    if len(element) < 8:
        return f"cut short {size} bytes in, inside an element's header"
    group, number = struct.unpack("<HH", element[:4])
    implicit = syntax == IMPLICIT_VR_LITTLE_ENDIAN
    if implicit or element[4:6] not in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC",
                                        b"UR"):
        value_at, length = position + 8, struct.unpack("<I", element[4:8])[0]
        if not implicit:
            length = struct.unpack("<H", element[6:8])[0]
    else:
        if len(element) < 12:
            return f"cut short {size} bytes in, inside an element's header"
        value_at, length = position + 12, struct.unpack("<I", element[8:12])[0]
    if length != 0xFFFFFFFF:
        if value_at + length > size:
            return (f"({group:04X},{number:04X}) declares {length} bytes but the file ends "
                    f"{value_at + length - size} bytes short")
        return None
    return _encapsulated_truncation(stream, value_at, size)


def _encapsulated_truncation(stream, at: int, size: int) -> str | None:
    """Encapsulated pixel data: items of declared lengths until the sequence delimiter."""
    import struct

    while True:
        stream.seek(at)
        item = stream.read(8)
        if len(item) < 8:
            return "encapsulated pixel data ends without its sequence delimiter (the file is cut short)"
        tag, length = struct.unpack("<II", item)
        if tag == 0xE0DDFFFE:  # (FFFE,E0DD) sequence delimitation item
            return None
        if tag != 0xE000FFFE or at + 8 + length > size:
            return "encapsulated pixel data ends inside an item (the file is cut short)"
        at += 8 + length


def file_digest(source: Source) -> str:
    import hashlib

    digest = hashlib.sha256()
    with source.open() as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def explicit_copy(source: Source) -> bytes:
    """The file converted in memory from implicit to explicit VR little endian."""
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    with source.open() as stream:
        dataset = pydicom.dcmread(stream)
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return buffer.getvalue()
