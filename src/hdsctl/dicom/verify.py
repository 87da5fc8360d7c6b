"""What the upload checks against the service instead of trusting itself: whether what its
journal calls stored is there (QIDO, one listing per study), and whether an instance the service
already holds (45070) is the same content as the file being sent (its stored metadata).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from hdsctl.dicom import keys
from hdsctl.dicom.web import first_value, is_uid

LISTINGS_IN_FLIGHT = 4

# Attributes that tell two files with one SOPInstanceUID apart: the patient, the study's and
# the image's identity and geometry. Pixel values themselves are not compared (that would
# mean downloading every instance).
IDENTIFYING = (
    "PatientID", "PatientName", "PatientBirthDate", "StudyDate", "StudyTime", "AccessionNumber", "Modality",
    "SeriesInstanceUID", "SeriesNumber", "InstanceNumber", "SOPClassUID", "ContentDate", "ContentTime", "Rows",
    "Columns", "NumberOfFrames", "BitsAllocated",
)


def missing_from_service(client, entries) -> set[str]:
    """Keys of the journal entries whose instance the service does not hold."""
    by_study: dict[str, list] = {}
    missing = set()
    for entry in entries:
        if is_uid(entry.study_uid):
            by_study.setdefault(entry.study_uid, []).append(entry)
        elif not is_uid(entry.sop_uid) or not client.search("instances", {"SOPInstanceUID": entry.sop_uid},
                                                            limit=1):
            missing.add(entry.key)  # journaled before study UIDs were kept: one look-up each

    # A few listings in flight: a re-run over thousands of studies waits on round trips, not work.
    with ThreadPoolExecutor(max_workers=LISTINGS_IN_FLIGHT) as pool:
        for wanted, found in zip(by_study.values(), pool.map(client.instances_held, by_study), strict=True):
            missing |= {entry.key for entry in wanted if entry.sop_uid not in found}
    return missing


def stored_differently(client, candidates) -> dict[str, tuple[str, str]]:
    """For files the service answered 45070 for: sop uid → ("conflict", what differs), for those
    whose identifying attributes differ from the stored instance's metadata."""
    import pydicom

    if not candidates:
        return {}
    stored = {str(first_value(item, keys.SOP_INSTANCE_UID) or ""): item
              for item in client.retrieve_metadata(candidates[0].study_uid)}
    conflicts = {}
    for candidate in candidates:
        held = stored.get(candidate.sop_uid)
        if held is None:
            continue
        with candidate.source.open() as stream:
            dataset = pydicom.dcmread(stream, stop_before_pixels=True, force=True)
        differences = []
        for keyword in IDENTIFYING:
            here = _text(dataset.data_element(keyword) if keyword in dataset else None)
            there = _json_text(held.get(keys.KEYS[keyword]) or {})
            if here != there:
                differences.append(f"{keyword} {there!r} stored, {here!r} here")
        if differences:
            conflicts[candidate.sop_uid] = (
                "conflict", "already stored with other content (" + "; ".join(differences[:3])
                + "): nothing was replaced; --upsert replaces it")
    return conflicts


def _text(element) -> str:
    if element is None or element.value in (None, ""):
        return ""
    values = element.value if element.VM > 1 else [element.value]
    return "\\".join(_normal(v) for v in values)


def _json_text(element: dict) -> str:
    values = element.get("Value") or []
    return "\\".join(_normal(v.get("Alphabetic", "") if isinstance(v, dict) else v) for v in values)


def _normal(value) -> str:
    """One spelling for a value read from a file or from DICOM JSON (numbers, padded text)."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)
