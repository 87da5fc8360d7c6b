"""DICOM study metadata (WADO-RS, DICOM JSON) → the FHIR resources that link it: Endpoint,
Patient and ImagingStudy, shaped as Microsoft's DICOM cast and its successor sample do.

Pure functions: the same metadata always gives the same resources (series and instances in a
fixed order), so comparing what FHIR holds with what the study says is a plain equality.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from hdsctl.dicom import keys
from hdsctl.dicom.web import first_value

DICOM_UID_SYSTEM = "urn:dicom:uid"
URI_SYSTEM = "urn:ietf:rfc:3986"
DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"
CONNECTION_TYPES = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
IDENTIFIER_TYPES = "http://terminology.hl7.org/CodeSystem/v2-0203"
# Marks what this linker made: it deletes only ImagingStudy resources that carry it.
LINKER_TAG = {"system": "urn:hdsctl", "code": "dicom-link"}
GENDERS = {"M": "male", "F": "female", "O": "other"}


class NotLinkable(ValueError):
    """The study lacks what an ImagingStudy needs (the reason says what)."""


def _text(dataset: dict, keyword: str) -> str | None:
    value = first_value(dataset, keys.KEYS[keyword])
    if isinstance(value, dict):  # a person name
        value = value.get("Alphabetic")
    return str(value).strip() if value not in (None, "") else None


@dataclass(frozen=True)
class PatientKey:
    system: str | None
    value: str

    def token(self) -> str:
        return f"{self.system or ''}|{self.value}"

    def identifier(self) -> dict:
        return {"system": self.system, "value": self.value} if self.system else {"value": self.value}


def study_uid_token(study_uid: str) -> str:
    return f"{DICOM_UID_SYSTEM}|urn:oid:{study_uid}"


def endpoint_resource(wado_root: str) -> dict:
    return {
        "resourceType": "Endpoint",
        "identifier": [{"system": URI_SYSTEM, "value": wado_root}],
        "status": "active",
        "connectionType": {"system": CONNECTION_TYPES, "code": "dicom-wado-rs"},
        "name": f"DICOM WADO-RS {wado_root}",
        "payloadType": [{"text": "DICOM WADO-RS"}],
        "payloadMimeType": ["application/dicom"],
        "address": wado_root,
    }


def endpoint_condition(wado_root: str) -> str:
    return f"identifier={quote(URI_SYSTEM + '|' + wado_root, safe=':/|')}"


def patient_key(metadata: list[dict], default_system: str | None) -> PatientKey:
    first = metadata[0]
    patient_id = _text(first, "PatientID")
    if not patient_id:
        raise NotLinkable("the study has no PatientID (0010,0020): an ImagingStudy needs its patient")
    return PatientKey(_text(first, "IssuerOfPatientID") or default_system, patient_id)


def patient_resource(metadata: list[dict], key: PatientKey) -> dict:
    first = metadata[0]
    patient: dict = {"resourceType": "Patient", "identifier": [key.identifier()]}
    name = _text(first, "PatientName")
    if name:
        family, given, middle, prefix, suffix = ([*name.split("^"), "", "", "", ""])[:5]
        human = {"use": "usual", "family": family or None, "given": [g for g in (given, middle) if g] or None,
                 "prefix": [prefix] if prefix else None, "suffix": [suffix] if suffix else None}
        patient["name"] = [{k: v for k, v in human.items() if v}]
    gender = GENDERS.get((_text(first, "PatientSex") or "").upper())
    if gender:
        patient["gender"] = gender
    birth = _text(first, "PatientBirthDate")
    if birth and len(birth) == 8 and birth.isdigit():
        patient["birthDate"] = f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"
    return patient


def _started(dataset: dict) -> str | None:
    date, time = _text(dataset, "StudyDate"), _text(dataset, "StudyTime") or ""
    if not date or len(date) != 8 or not date.isdigit():
        return None
    if len(time) < 4 or not time[:6].replace(".", "").isdigit():
        return f"{date[:4]}-{date[4:6]}-{date[6:]}"
    seconds = time[4:6] or "00"
    offset = _text(dataset, "TimezoneOffsetFromUTC")
    zone = f"{offset[:3]}:{offset[3:5]}" if offset and len(offset) == 5 else "Z"
    return f"{date[:4]}-{date[4:6]}-{date[6:]}T{time[:2]}:{time[2:4]}:{seconds}{zone}"


def _number(dataset: dict, keyword: str) -> int | None:
    value = first_value(dataset, keys.KEYS[keyword])
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def imaging_study_resource(metadata: list[dict], *, patient_ref: str, patient: PatientKey, endpoint_ref: str,
                           wado_root: str) -> dict:
    first = metadata[0]
    study_uid = _text(first, "StudyInstanceUID")
    series: dict[str, list[dict]] = {}
    for dataset in metadata:
        series.setdefault(_text(dataset, "SeriesInstanceUID") or "", []).append(dataset)

    def series_entry(uid: str, datasets: list[dict]) -> dict:
        head = datasets[0]
        instances = sorted(datasets,
                           key=lambda d: (_number(d, "InstanceNumber") or 0, _text(d, "SOPInstanceUID") or ""))
        entry = {"uid": uid, "number": _number(head, "SeriesNumber"),
                 "modality": {"system": DCM_SYSTEM, "code": _text(head, "Modality") or "OT"},
                 "description": _text(head, "SeriesDescription"), "numberOfInstances": len(instances),
                 "instance": [{k: v for k, v in {
                     "uid": _text(d, "SOPInstanceUID"),
                     "sopClass": {"system": URI_SYSTEM, "code": f"urn:oid:{_text(d, 'SOPClassUID')}"},
                     "number": _number(d, "InstanceNumber")}.items() if v is not None} for d in instances]}
        return {k: v for k, v in entry.items() if v is not None}

    ordered = sorted(series.items(), key=lambda item: (_number(item[1][0], "SeriesNumber") or 0, item[0]))
    modalities = sorted({_text(d, "Modality") for d in metadata if _text(d, "Modality")})
    identifiers = [{"use": "official", "system": DICOM_UID_SYSTEM, "value": f"urn:oid:{study_uid}"}]
    accession = _text(first, "AccessionNumber")
    if accession:
        identifiers.append({"type": {"coding": [{"system": IDENTIFIER_TYPES, "code": "ACSN"}]},
                            "value": accession})
    study = {
        "resourceType": "ImagingStudy",
        "meta": {"source": wado_root, "tag": [LINKER_TAG]},
        "identifier": identifiers,
        "status": "available",
        "modality": [{"system": DCM_SYSTEM, "code": m} for m in modalities] or None,
        # The patient's identifier rides along with the reference, so a changed PatientID is seen
        # without reading the Patient.
        "subject": {"reference": patient_ref, "identifier": patient.identifier()},
        "started": _started(first),
        "endpoint": [{"reference": endpoint_ref}],
        "numberOfSeries": len(ordered),
        "numberOfInstances": len(metadata),
        "description": _text(first, "StudyDescription"),
        "series": [series_entry(uid, datasets) for uid, datasets in ordered],
    }
    return {k: v for k, v in study.items() if v is not None}


def comparable(study: dict) -> dict:
    """What must match for FHIR to be in step: the content, not ids, versions or the server's
    resolution of references inside one transaction."""
    kept = {k: v for k, v in study.items() if k not in {"id", "meta", "text"}}
    kept["subject"] = {k: v for k, v in (study.get("subject") or {}).items() if k != "reference"}
    kept["endpoint"] = len(study.get("endpoint") or [])
    kept["tag"] = [t for t in (study.get("meta") or {}).get("tag") or [] if t == LINKER_TAG]
    return kept


def made_by_linker(study: dict) -> bool:
    return LINKER_TAG in ((study.get("meta") or {}).get("tag") or [])


def check_resources(*resources: dict) -> None:
    """Checked against the FHIR models before anything is sent (R4B models: these resources
    are the same in R4)."""
    from fhir.resources.R4B import get_fhir_model_class

    for resource in resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
