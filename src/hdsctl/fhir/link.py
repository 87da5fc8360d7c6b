"""Keep FHIR in step with a DICOM service: one ImagingStudy per study, written in one FHIR
transaction per change.

The linker never trusts an event's content or order: for each study it reads the study's
current metadata and makes FHIR say exactly that. So the same event twice changes nothing the
second time, and events that arrive out of order end in the same state as in order. Two
linkers never overwrite each other: an update carries `If-Match` on the version it read, and a
412 makes it read again and recompute.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from urllib.parse import quote

from hdsctl.dicom import errors as dicom_errors
from hdsctl.fhir import mapping
from hdsctl.fhir.client import FhirClient, FhirVersionConflict

CREATED, UPDATED, UNCHANGED, DELETED, ABSENT, SKIPPED = (
    "created", "updated", "unchanged", "deleted", "absent", "skipped")
CONFLICT_RETRIES = 3


@dataclass
class LinkResult:
    study: str
    action: str
    detail: str = ""
    imaging_study: str | None = None  # ImagingStudy/<id>

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


@dataclass
class Linker:
    dicom: object  # hdsctl.dicom.client.DicomClient
    fhir: FhirClient
    patient_system: str | None = None
    dry_run: bool = False
    transactions: int = field(default=0, init=False)

    @property
    def wado_root(self) -> str:
        return self.dicom.wado_root

    def link(self, study_uid: str) -> LinkResult:
        for _ in range(CONFLICT_RETRIES):
            try:
                return self._link_once(study_uid)
            except FhirVersionConflict:
                continue  # someone wrote in between: read both sides again
        return LinkResult(study_uid, SKIPPED,
                          f"FHIR kept changing under {CONFLICT_RETRIES} attempts; try again")

    def _link_once(self, study_uid: str) -> LinkResult:
        metadata = self._metadata(study_uid)
        existing = self.fhir.search("ImagingStudy", identifier=mapping.study_uid_token(study_uid))
        current = existing[0] if existing else None
        if len(existing) > 1:
            return LinkResult(study_uid, SKIPPED, f"{len(existing)} ImagingStudy resources carry this study's "
                                                  "UID; resolve the duplicates in FHIR first")
        if not metadata:
            return self._remove(study_uid, current)
        try:
            patient = mapping.patient_key(metadata, self.patient_system)
        except mapping.NotLinkable as err:
            return LinkResult(study_uid, SKIPPED, str(err))
        endpoint_url, patient_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
        wanted = mapping.imaging_study_resource(metadata, patient_ref=patient_url, patient=patient,
                                                endpoint_ref=endpoint_url, wado_root=self.wado_root)
        if current is not None and mapping.comparable(current) == mapping.comparable(wanted):
            return LinkResult(study_uid, UNCHANGED, imaging_study=f"ImagingStudy/{current['id']}")
        endpoint = mapping.endpoint_resource(self.wado_root)
        patient_resource = mapping.patient_resource(metadata, patient)
        mapping.check_resources(endpoint, patient_resource, wanted)
        if current is None:
            study_entry = {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": wanted, "request": {
                "method": "POST", "url": "ImagingStudy",
                "ifNoneExist": f"identifier={mapping.study_uid_token(study_uid)}"}}
        else:
            study_entry = {"resource": {**wanted, "id": current["id"]}, "request": {
                "method": "PUT", "url": f"ImagingStudy/{current['id']}",
                "ifMatch": f'W/"{current["meta"]["versionId"]}"'}}
        action = CREATED if current is None else UPDATED
        if self.dry_run:
            return LinkResult(study_uid, action, "dry run: nothing written")
        answer = self._transaction([
            {"fullUrl": endpoint_url, "resource": endpoint, "request": {
                "method": "POST", "url": "Endpoint",
                "ifNoneExist": mapping.endpoint_condition(self.wado_root)}},
            {"fullUrl": patient_url, "resource": patient_resource, "request": {
                "method": "POST", "url": "Patient",
                "ifNoneExist": f"identifier={quote(patient.token(), safe=':/|')}"}},
            study_entry,
        ])
        response = answer["entry"][2]["response"]
        if current is None and response["status"].startswith("200"):
            # Another linker created it between our search and our write: make it right.
            raise FhirVersionConflict(412, "created concurrently", method="POST", url="ImagingStudy")
        return LinkResult(study_uid, action, imaging_study=_reference(response.get("location")))

    def _remove(self, study_uid: str, current: dict | None) -> LinkResult:
        """The study is gone from DICOM: delete its ImagingStudy, if this linker made it."""
        if current is None:
            return LinkResult(study_uid, ABSENT, "not in DICOM and not in FHIR")
        reference = f"ImagingStudy/{current['id']}"
        if not mapping.made_by_linker(current):
            return LinkResult(study_uid, SKIPPED, f"{reference} was not made by this linker: left as it is",
                              reference)
        if self.dry_run:
            return LinkResult(study_uid, DELETED, "dry run: nothing written", reference)
        self._transaction([{"request": {"method": "DELETE", "url": reference,
                                        "ifMatch": f'W/"{current["meta"]["versionId"]}"'}}])
        return LinkResult(study_uid, DELETED, imaging_study=reference)

    def _metadata(self, study_uid: str) -> list[dict]:
        try:
            return self.dicom.retrieve_metadata(study_uid)
        except dicom_errors.NotFound:
            return []

    def _transaction(self, entries: list[dict]) -> dict:
        self.transactions += 1
        return self.fhir.transaction({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def line_of(result: LinkResult) -> str:
    where = f" → {result.imaging_study}" if result.imaging_study else ""
    detail = f" ({result.detail})" if result.detail else ""
    return f"{result.action:<9}{result.study}{where}{detail}"


def _reference(location: str | None) -> str | None:
    """`ImagingStudy/7/_history/2` (or an absolute URL) → `ImagingStudy/7`."""
    if not location:
        return None
    parts = location.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:])
