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
        """Where the file is, as the journal and reports name it."""
        return f"{self.path}!{self.member}" if self.member else str(self.path)

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
    kind: str  # not-dicom | corrupt | unreadable | refused-archive
    reason: str


def walk(paths: list[Path]) -> Iterator[tuple[Source, float] | Unusable]:
    """Every file under `paths` in a stable order, with its modification time; nothing is read
    yet (a resumed run skips what its journal holds without opening it)."""
    for path in paths:
        yield from _walk_one(path)


def _walk_one(path: Path) -> Iterator[tuple[Source, float] | Unusable]:
    try:
        info = path.stat()
    except OSError as err:
        yield Unusable(Source(path), "unreadable", err.strerror or str(err))
        return
    if stat.S_ISDIR(info.st_mode):
        try:
            children = sorted(path.iterdir())
        except OSError as err:
            yield Unusable(Source(path), "unreadable", f"folder cannot be listed: {err.strerror}")
            return
        for child in children:
            if child.name.startswith(".hdsctl-upload"):
                continue  # the journal lives next to the data
            yield from _walk_one(child)
    elif path.suffix.lower() == ".zip":
        yield from _walk_zip(path, info.st_mtime)
    elif stat.S_ISREG(info.st_mode):
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


def read_header(source: Source, modified: float) -> Candidate | Unusable:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with source.open() as stream:
            head = stream.read(PREAMBLE + len(MAGIC))
            if len(head) < PREAMBLE + len(MAGIC) or head[PREAMBLE:] != MAGIC:
                return Unusable(source, "not-dicom", "no DICOM Part 10 preamble")
            stream.seek(0)
            dataset = pydicom.dcmread(stream, stop_before_pixels=True, specific_tags=list(HEADER_TAGS))
    except OSError as err:
        return Unusable(source, "unreadable", err.strerror or str(err))
    except (InvalidDicomError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as err:
        return Unusable(source, "corrupt", f"DICOM header cannot be read: {err}"[:300])
    values = {name: str(getattr(dataset, name, "") or "") for name in HEADER_TAGS}
    missing = [name for name, value in values.items() if not value]
    if missing:
        return Unusable(source, "corrupt",
                        f"header incomplete (truncated or corrupt): missing {', '.join(missing)}")
    syntax = str(getattr(dataset.file_meta, "TransferSyntaxUID", "") or "") if dataset.file_meta else ""
    return Candidate(source, values["StudyInstanceUID"], values["SeriesInstanceUID"], values["SOPInstanceUID"],
                     values["SOPClassUID"], syntax, modified)


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
