"""The local FHIR service (Medplum's engine behind the front that adds Azure's rules) follows the
FHIR R4 HTTP rules the linker relies on, shown with the specification's own examples
(tests/fixtures/fhir)."""

from __future__ import annotations

import json

import pytest
import requests
from conftest import FIXTURES

from hdsctl.emulator.medplum import LocalFhir

EXAMPLES = FIXTURES / "fhir"
JSON = {"Content-Type": "application/fhir+json"}


def example(name: str) -> dict:
    return json.loads((EXAMPLES / name).read_text())


@pytest.fixture
def fhir(shared_fhir_engine):
    with LocalFhir(engine=shared_fhir_engine) as local:
        yield local


def test_examples_are_stored_read_and_versioned(fhir):
    for name in ("patient-example.json", "imagingstudy-example.json", "endpoint-example-wadors.json"):
        resource = example(name)
        kind, resource_id = resource["resourceType"], resource["id"]
        put = requests.put(f"{fhir.url}/{kind}/{resource_id}", json=resource, headers=JSON)
        assert put.status_code == 201 and put.headers["ETag"] == 'W/"1"'  # an update that creates
        read = requests.get(f"{fhir.url}/{kind}/{resource_id}").json()
        assert read["meta"]["versionId"] == "1"
        assert {k: v for k, v in read.items() if k != "meta"} == resource
    patient = example("patient-example.json")
    patient["active"] = False
    second = requests.put(f"{fhir.url}/Patient/example", json=patient, headers={**JSON, "If-Match": 'W/"1"'})
    assert second.status_code == 200 and second.headers["ETag"] == 'W/"2"'
    assert requests.get(f"{fhir.url}/Patient/example/_history/1").json()["active"] is True
    history = requests.get(f"{fhir.url}/Patient/example/_history").json()
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]


def test_a_stale_if_match_is_412_and_changes_nothing(fhir):
    patient = example("patient-example.json")
    requests.put(f"{fhir.url}/Patient/example", json=patient, headers=JSON)
    requests.put(f"{fhir.url}/Patient/example", json=patient, headers={**JSON, "If-Match": 'W/"1"'})
    stale = requests.put(f"{fhir.url}/Patient/example", json={**patient, "active": False},
                         headers={**JSON, "If-Match": 'W/"1"'})
    assert stale.status_code == 412 and stale.json()["resourceType"] == "OperationOutcome"
    assert requests.get(f"{fhir.url}/Patient/example").json()["meta"]["versionId"] == "2"


def test_search_by_identifier_token(fhir):
    requests.put(f"{fhir.url}/ImagingStudy/example", json=example("imagingstudy-example.json"), headers=JSON)
    uid = "urn:oid:2.16.124.113543.6003.1154777499.30246.19789.3503430045"
    for token in (f"urn:dicom:uid|{uid}", uid):
        found = requests.get(f"{fhir.url}/ImagingStudy", params={"identifier": token}).json()
        assert found["type"] == "searchset" and [e["resource"]["id"] for e in found["entry"]] == ["example"]
    other = requests.get(f"{fhir.url}/ImagingStudy", params={"identifier": f"other|{uid}"}).json()
    assert not other.get("entry")


def test_conditional_create_creates_once_and_refuses_ambiguity(fhir):
    patient = {k: v for k, v in example("patient-example.json").items() if k != "id"}
    condition = {"If-None-Exist": "identifier=urn:oid:1.2.36.146.595.217.0.1|12345"}
    first = requests.post(f"{fhir.url}/Patient", json=patient, headers={**JSON, **condition})
    again = requests.post(f"{fhir.url}/Patient", json=patient, headers={**JSON, **condition})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"] and len(fhir.resources("Patient")) == 1
    requests.post(f"{fhir.url}/Patient", json=patient, headers=JSON)  # a second one, unconditionally
    ambiguous = requests.post(f"{fhir.url}/Patient", json=patient, headers={**JSON, **condition})
    assert ambiguous.status_code == 412


def test_a_transaction_resolves_references_and_a_failing_entry_fails_it(fhir):
    """Medplum's in-memory repository keeps entries applied before a failing one (not all or
    nothing); the linker's bundles put their one guarded write last, so the answer is what counts."""
    patient = {k: v for k, v in example("patient-example.json").items() if k != "id"}
    study = {k: v for k, v in example("imagingstudy-example.json").items() if k != "id"}
    study["subject"] = {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", "resource": patient,
         "request": {"method": "POST", "url": "Patient",
                     "ifNoneExist": "identifier=urn:oid:1.2.36.146.595.217.0.1|12345"}},
        {"resource": study, "request": {"method": "POST", "url": "ImagingStudy"}},
    ]}
    answer = requests.post(fhir.url, json=bundle, headers=JSON)
    assert answer.status_code == 200 and answer.json()["type"] == "transaction-response"
    assert [e["response"]["status"].split()[0] for e in answer.json()["entry"]] == ["201", "201"]
    stored, = fhir.resources("ImagingStudy")
    assert stored["subject"]["reference"] == f"Patient/{fhir.resources('Patient')[0]['id']}"
    stale = {"method": "PUT", "url": f"ImagingStudy/{stored['id']}", "ifMatch": 'W/"9"'}
    bundle["entry"].append({"request": stale, "resource": {**stored, "meta": {}}})
    refused = requests.post(fhir.url, json=bundle, headers=JSON)
    assert refused.status_code == 412 and refused.json()["resourceType"] == "OperationOutcome"
    broken = {"request": {"method": "POST", "url": "ImagingStudy"},
              "resource": {**study, "numberOfSeries": "x"}}
    invalid = {**bundle, "entry": [*bundle["entry"][:2], broken]}
    before = len(fhir.resources("ImagingStudy"))
    assert requests.post(fhir.url, json=invalid, headers=JSON).status_code == 400
    assert len(fhir.resources("ImagingStudy")) == before  # refused before the engine saw any of it


def test_invalid_resources_are_refused_with_an_outcome(fhir):
    bad = example("imagingstudy-example.json")
    bad["numberOfSeries"] = "one"
    answer = requests.put(f"{fhir.url}/ImagingStudy/example", json=bad, headers=JSON)
    assert answer.status_code == 400 and answer.json()["issue"][0]["code"] == "invalid"
    assert "numberOfSeries" in answer.json()["issue"][0]["diagnostics"]
    assert requests.get(f"{fhir.url}/ImagingStudy/example").status_code == 404
    unknown = requests.post(f"{fhir.url}/Scan", json={"resourceType": "Scan"}, headers=JSON)
    assert unknown.status_code == 400 and unknown.json()["issue"][0]["code"] == "not-supported"
    garbled = requests.post(f"{fhir.url}/Patient", data=b"{not json", headers=JSON)
    assert garbled.status_code == 400
