"""Synthetic, de-identified DICOM studies: unique UIDs, small images, a value for every
declared extended query tag. Nothing in them comes from a patient."""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass, field

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from hdsctl.dicomtags import TagDefinition

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MULTIFRAME_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7.3"  # grayscale word
EXPLICIT_VR_LITTLE_ENDIAN = str(ExplicitVRLittleEndian)
IMPLICIT_VR_LITTLE_ENDIAN = str(ImplicitVRLittleEndian)

# A value each supported VR holds, for the study's extended query tags.
SAMPLE_VALUES = {
    "AE": "HDSCTL", "AS": "042Y", "CS": "HDSCTL", "DA": None, "DS": "1.5", "DT": None, "FD": 1.5, "FL": 1.5,
    "IS": "3", "LO": "hdsctl synthetic", "PN": "Synthetic^Smoke", "SH": "HDSCTL", "SL": 3, "SS": 3,
    "TM": "120000", "UI": "1.2.826.0.1.3680043.10.1234.1", "UL": 3, "US": 3,
}


@dataclass
class SyntheticInstance:
    series_uid: str
    sop_uid: str
    frames: int
    rows: int
    columns: int
    data: bytes


@dataclass
class SyntheticStudy:
    study_uid: str
    patient_id: str
    study_date: str
    instances: list[SyntheticInstance] = field(default_factory=list)
    tag_values: dict[str, str] = field(default_factory=dict)  # tag path → value as QIDO matches it

    @property
    def multiframe(self) -> SyntheticInstance:
        return next(i for i in self.instances if i.frames > 1)


def tag_value(vr: str, today: datetime.date):
    value = SAMPLE_VALUES[vr]
    if vr == "DA":
        return today.strftime("%Y%m%d")
    if vr == "DT":
        return today.strftime("%Y%m%d") + "120000"
    return value


EMPTY_DATE = datetime.date.min  # as study_date: a study without a StudyDate


def synthetic_study(tags: list[TagDefinition] = (), *, instances_per_series: int = 2, frames: int = 3,
                    size: int = 32, transfer_syntax: str = EXPLICIT_VR_LITTLE_ENDIAN,
                    study_uid: str | None = None, patient_id: str | None = None,
                    study_date: datetime.date | None = None) -> SyntheticStudy:
    """Two series: `instances_per_series` CT images, then one multi-frame image. With `study_uid`,
    two new series of an existing study (of `patient_id`)."""
    from pydicom.uid import generate_uid

    today = datetime.date.today()
    study = SyntheticStudy(study_uid or generate_uid(),
                           f"HDSCTL-{generate_uid()[-12:]}" if patient_id is None else patient_id,
                           (study_date or today).strftime("%Y%m%d") if study_date != EMPTY_DATE else "")
    for index, tag in enumerate(tags):
        value = tag_value(tag.vr, today)
        study.tag_values[tag.path] = str(value) if tag.vr not in {"UI"} else f"{value}.{index}"
    series = [(generate_uid(), CT_IMAGE, "CT", 1), (generate_uid(), MULTIFRAME_SECONDARY_CAPTURE, "OT", frames)]
    for number, (series_uid, sop_class, modality, frame_count) in enumerate(series, start=1):
        count = instances_per_series if frame_count == 1 else 1
        for instance_number in range(1, count + 1):
            sop_uid = generate_uid()
            data = _instance_bytes(study, tags, series_uid, number, sop_class, modality, sop_uid,
                                   instance_number, frame_count, size, transfer_syntax)
            study.instances.append(SyntheticInstance(series_uid, sop_uid, frame_count, size, size, data))
    return study


def _instance_bytes(study: SyntheticStudy, tags, series_uid: str, series_number: int, sop_class: str,
                    modality: str, sop_uid: str, instance_number: int, frames: int, size: int,
                    transfer_syntax: str) -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.dicomio import dcmwrite

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = transfer_syntax
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = sop_class, sop_uid
    dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study.study_uid, series_uid
    dataset.PatientName, dataset.PatientID = "Synthetic^Smoke", study.patient_id
    dataset.PatientBirthDate, dataset.PatientSex = "19700101", "O"
    dataset.StudyDate = dataset.SeriesDate = dataset.ContentDate = study.study_date
    dataset.StudyTime = dataset.SeriesTime = dataset.ContentTime = "120000"
    dataset.AccessionNumber = study.patient_id[-8:]
    dataset.StudyDescription = "hdsctl synthetic study"
    dataset.Modality = modality
    dataset.SeriesNumber, dataset.InstanceNumber = series_number, instance_number
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.Rows = dataset.Columns = size
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 12, 11, 0
    if frames > 1:
        dataset.NumberOfFrames = frames
    dataset.PixelData = b"".join(_frame(size, frame) for frame in range(frames))
    for tag in tags:
        _set_tag(dataset, tag, study.tag_values[tag.path])
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True,
             implicit_vr=transfer_syntax == IMPLICIT_VR_LITTLE_ENDIAN, little_endian=True)
    return buffer.getvalue()


def _frame(size: int, frame: int) -> bytes:
    """A gradient whose rows and frames differ, built a row at a time (a 512x512 frame in
    well under a millisecond)."""
    row = b"".join(((column * 16 + frame * 512) % 4096).to_bytes(2, "little") for column in range(size))
    shift = 2 * ((frame * 7) % size)
    rows = [row[(2 * r + shift) % len(row):] + row[:(2 * r + shift) % len(row)] for r in range(size)]
    return b"".join(rows)


def _set_tag(dataset, tag: TagDefinition, text: str) -> None:
    value = {"FD": float, "FL": float, "SL": int, "SS": int, "UL": int, "US": int}.get(tag.vr, str)(text)
    group, element = int(tag.path[:4], 16), int(tag.path[4:], 16)
    if tag.private_creator:
        block = dataset.private_block(group, tag.private_creator, create=True)
        block.add_new(element & 0xFF, tag.vr, value)
    else:
        dataset.add_new((group << 16) | element, tag.vr, value)
