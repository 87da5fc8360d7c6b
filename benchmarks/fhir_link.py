"""Linking studies into FHIR: studies per second and FHIR requests per study.

    .venv/bin/python benchmarks/fhir_link.py [--studies 100]

Stores synthetic studies (two series, four instances each) in the local DICOM service (Orthanc
behind the Azure behaviour), then links them into the local FHIR service (Medplum's engine behind
the front that adds Azure's rules) three ways: every
study new, every study again with nothing changed, and every study after it gained a series.
Target: one FHIR transaction per study per change (and none when nothing changed).
"""

from __future__ import annotations

import argparse
import time

from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.synthetic import synthetic_study
from hdsctl.emulator.medplum import LocalFhir
from hdsctl.emulator.orthanc import OrthancEngine
from hdsctl.emulator.server import Emulator
from hdsctl.fhir.client import FhirClient
from hdsctl.fhir.link import Linker


def link_all(linker: Linker, studies: list[str]) -> tuple[float, int, int, dict[str, int]]:
    requests, transactions = linker.fhir.requests, linker.transactions
    actions: dict[str, int] = {}
    started = time.perf_counter()
    for study in studies:
        action = linker.link(study).action
        actions[action] = actions.get(action, 0) + 1
    return (time.perf_counter() - started, linker.fhir.requests - requests, linker.transactions - transactions,
            actions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100)
    args = parser.parse_args()
    with Emulator(engine=OrthancEngine()) as dicom_service, LocalFhir() as fhir_service, \
            DicomClient(dicom_service.url) as dicom, FhirClient(fhir_service.url) as fhir:
        studies = [synthetic_study(instances_per_series=3, size=16) for _ in range(args.studies)]
        for study in studies:
            dicom.store([i.data for i in study.instances])
        uids = [s.study_uid for s in studies]
        linker = Linker(dicom, fhir, "urn:oid:2.16.840.1.113883.19.5")
        print(f"{args.studies} studies of {len(studies[0].instances)} instances, local DICOM service and "
              "Medplum's FHIR engine")
        print(f"{'':28}{'seconds':>9}{'studies/s':>11}{'FHIR req/study':>16}{'transactions/study':>20}"
              "  outcome")
        rounds = [("new", None), ("again, unchanged", None), ("after a new series", "grow")]
        for label, change in rounds:
            if change == "grow":
                for study in studies:
                    more = synthetic_study(instances_per_series=1, size=16, study_uid=study.study_uid,
                                           patient_id=study.patient_id)
                    dicom.store([i.data for i in more.instances])
            seconds, requests, transactions, actions = link_all(linker, uids)
            outcome = ", ".join(f"{n} {action}" for action, n in sorted(actions.items()))
            print(f"{label:28}{seconds:9.2f}{len(uids) / seconds:11.1f}{requests / len(uids):16.2f}"
                  f"{transactions / len(uids):20.2f}  {outcome}")


if __name__ == "__main__":
    main()
