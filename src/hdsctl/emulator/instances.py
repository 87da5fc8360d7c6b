"""Synthetic DICOM instances with the attributes radiology teams index, seeded and repeatable."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from hdsctl.dicom import keys

# A private element of SIEMENS MR HEADER: private tags have no keyword, so its number is used.
PRIVATE_VENDOR = "00191002"
# Values per attribute (path → choices); anything else the instances simply lack.
VALUES = {keys.KEYS[keyword]: choices for keyword, choices in {
    "BodyPartExamined": ["CHEST", "HEAD", "ABDOMEN", "KNEE", "PELVIS", "SPINE"],
    "ProtocolName": ["CT CHEST W/O", "MR BRAIN T1", "XR KNEE 2V", "CT ABD PELVIS"],
    "StationName": ["CT01", "CT02", "MR01", "XR03"],
    "InstitutionName": ["ST MARY HOSPITAL", "ST MARY CLINIC NORTH"],
    "PatientSex": ["F", "M", "O"],
    "Modality": ["CT", "MR", "CR", "DX"],
    "Manufacturer": ["SIEMENS", "GE MEDICAL SYSTEMS", "PHILIPS"],
    "DeviceSerialNumber": ["SN1001", "SN2002", "SN3003"],
}.items()} | {PRIVATE_VENDOR: ["VENDOR-A", "VENDOR-B"]}
STUDY_LEVEL = {keys.KEYS["InstitutionName"], keys.KEYS["PatientSex"]}
SERIES_LEVEL = {keys.KEYS[keyword] for keyword in (
    "BodyPartExamined", "ProtocolName", "StationName", "Modality", "Manufacturer", "DeviceSerialNumber")
} | {PRIVATE_VENDOR}

# Length limits and character rules of the string VRs the service indexes.
_MAX_LENGTH = {"AE": 16, "AS": 4, "CS": 16, "DA": 8, "DT": 26, "LO": 64, "PN": 64, "SH": 16,
               "TM": 14, "UI": 64, "IS": 12, "DS": 16}
_CS = re.compile(r"^[A-Z0-9 _]*$")
_DA = re.compile(r"^\d{8}$")
_NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")
BAD_VALUE = "not a valid value for this attribute " * 3


def value_error(vr: str, value: str) -> str | None:
    """Why `value` cannot be indexed under `vr`, or None when it can."""
    limit = _MAX_LENGTH.get(vr)
    if limit and len(value) > limit:
        return f"value exceeds the maximum length of {limit} for VR {vr}"
    if vr == "CS" and not _CS.match(value):
        return "value contains characters not allowed in a CS element"
    if vr == "DA" and not _DA.match(value):
        return "value is not a valid DA (YYYYMMDD)"
    if vr in {"DS", "IS", "SL", "SS", "UL", "US", "FL", "FD"} and not _NUMBER.match(value):
        return f"value is not a number of VR {vr}"
    return None


NOT_INDEXED_VRS = {"SQ", "OB", "OD", "OF", "OL", "OV", "OW", "UN"}


def index_values(dataset) -> dict[str, str]:
    """Top-level values as text, keyed by 8-hex tag path, the way the index stores them."""
    from pydicom.multival import MultiValue

    values = {}
    for element in dataset:
        if element.VR in NOT_INDEXED_VRS or element.value is None or element.tag.group == 0x7FE0:
            continue
        value = element.value
        text = "\\".join(map(str, value)) if isinstance(value, (MultiValue, list, tuple)) else str(value)
        values[f"{int(element.tag):08X}"] = text
    return values


@dataclass
class Instance:
    study_uid: str
    series_uid: str
    sop_uid: str
    known_values: dict[str, str] | None = None
    header: bytes = field(default=b"", repr=False)  # the stored file up to its pixel data

    @property
    def values(self) -> dict[str, str]:
        """The indexed values: read from the header when a reindex or a search first asks, not
        on the upload's path (converting every element of every header is the front's largest
        cost per instance)."""
        if self.known_values is None:
            self.known_values = header_values(self.header)
        return self.known_values

    def uid_at(self, resource: str) -> str:
        """The UID that identifies it among QIDO results of `resource` (studies, series, instances)."""
        return {"studies": self.study_uid, "series": self.series_uid, "instances": self.sop_uid}[resource]


def synthetic_instances(count: int, seed: int = 7) -> list[Instance]:
    """`count` instances in studies of 2 series × up to 10 instances, oldest first."""
    rng = random.Random(seed)
    root = "1.2.826.0.1.3680043.10.1234"
    instances: list[Instance] = []
    study = series = 0
    while len(instances) < count:
        study += 1
        study_values = {path: rng.choice(VALUES[path]) for path in STUDY_LEVEL}
        for _ in range(2):
            series += 1
            series_values = {path: rng.choice(VALUES[path]) for path in SERIES_LEVEL}
            for number in range(1, rng.randint(3, 10) + 1):
                if len(instances) == count:
                    break
                instances.append(Instance(
                    f"{root}.{study}", f"{root}.{study}.{series}", f"{root}.{study}.{series}.{number}",
                    {**study_values, **series_values},
                ))
    return instances


def header_values(header: bytes) -> dict[str, str]:
    import io

    import pydicom

    if not header:
        return {}
    return index_values(pydicom.dcmread(io.BytesIO(header), stop_before_pixels=True, force=True))
