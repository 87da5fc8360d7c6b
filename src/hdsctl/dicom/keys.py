"""The DICOM attributes the project names, as DICOM JSON keys (group and element, 8 hex digits).

The one place a tag number is written: everything else names an attribute by its keyword or by
a constant here. Read without pydicom (its dictionary costs a command 0.16 s to load); the
suite checks every entry against pydicom's data dictionary (tests/test_dicom_keys.py).
"""

from __future__ import annotations

# keyword → key
KEYS = {
    "ErrorComment": "00000902",
    "SOPClassUID": "00080016",
    "SOPInstanceUID": "00080018",
    "StudyDate": "00080020",
    "ContentDate": "00080023",
    "StudyTime": "00080030",
    "ContentTime": "00080033",
    "AccessionNumber": "00080050",
    "Modality": "00080060",
    "ModalitiesInStudy": "00080061",
    "Manufacturer": "00080070",
    "InstitutionName": "00080080",
    "ReferringPhysicianName": "00080090",
    "TimezoneOffsetFromUTC": "00080201",
    "StationName": "00081010",
    "StudyDescription": "00081030",
    "SeriesDescription": "0008103E",
    "ManufacturerModelName": "00081090",
    "ReferencedSOPClassUID": "00081150",
    "ReferencedSOPInstanceUID": "00081155",
    "RetrieveURL": "00081190",
    "WarningReason": "00081196",
    "FailureReason": "00081197",
    "FailedSOPSequence": "00081198",
    "ReferencedSOPSequence": "00081199",
    "PatientName": "00100010",
    "PatientID": "00100020",
    "IssuerOfPatientID": "00100021",
    "PatientBirthDate": "00100030",
    "PatientSex": "00100040",
    "BodyPartExamined": "00180015",
    "DeviceSerialNumber": "00181000",
    "ProtocolName": "00181030",
    "StudyInstanceUID": "0020000D",
    "SeriesInstanceUID": "0020000E",
    "SeriesNumber": "00200011",
    "InstanceNumber": "00200013",
    "NumberOfStudyRelatedInstances": "00201208",
    "SamplesPerPixel": "00280002",
    "NumberOfFrames": "00280008",
    "Rows": "00280010",
    "Columns": "00280011",
    "BitsAllocated": "00280100",
    "PerformedProcedureStepStartDate": "00400244",
    "FailedAttributesSequence": "00741048",
}
KEYWORDS = {key: keyword for keyword, key in KEYS.items()}

STUDY_INSTANCE_UID = KEYS["StudyInstanceUID"]
SERIES_INSTANCE_UID = KEYS["SeriesInstanceUID"]
SOP_INSTANCE_UID = KEYS["SOPInstanceUID"]
SOP_CLASS_UID = KEYS["SOPClassUID"]
STUDY_DATE = KEYS["StudyDate"]
MODALITIES_IN_STUDY = KEYS["ModalitiesInStudy"]
NUMBER_OF_STUDY_RELATED_INSTANCES = KEYS["NumberOfStudyRelatedInstances"]
# The STOW-RS answer
RETRIEVE_URL = KEYS["RetrieveURL"]
FAILED_SOP_SEQUENCE = KEYS["FailedSOPSequence"]
REFERENCED_SOP_SEQUENCE = KEYS["ReferencedSOPSequence"]
REFERENCED_SOP_CLASS_UID = KEYS["ReferencedSOPClassUID"]
REFERENCED_SOP_INSTANCE_UID = KEYS["ReferencedSOPInstanceUID"]
FAILURE_REASON = KEYS["FailureReason"]
WARNING_REASON = KEYS["WarningReason"]
FAILED_ATTRIBUTES_SEQUENCE = KEYS["FailedAttributesSequence"]
ERROR_COMMENT = KEYS["ErrorComment"]

# QIDO resource → the UID that names one of it
LEVEL_UIDS = {"studies": STUDY_INSTANCE_UID, "series": SERIES_INSTANCE_UID, "instances": SOP_INSTANCE_UID}
