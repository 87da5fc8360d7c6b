"""Linking studies into FHIR: studies per second and FHIR requests per study.

    .venv/bin/python benchmarks/fhir_link.py [--studies 100] [--runs 3]

Stores synthetic studies (two series, four instances each) in the local DICOM service (Orthanc
behind the Azure behaviour), then links them into the local FHIR service (Medplum's engine behind
the front that adds Azure's rules) three ways: every
study new, every study again with nothing changed, and every study after it gained a series.
Target: one FHIR transaction per study per change (and none when nothing changed). Each run
starts both services afresh.
"""

from __future__ import annotations

import argparse
import time

from figures import figure

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


ROUNDS = (("new", 1.0), ("again, unchanged", 0.0), ("after a new series", 1.0))  # transactions/study


def one_run(count: int) -> dict[str, tuple[float, float, float]]:
    """Per round: (studies/s, FHIR requests per study, transactions per study)."""
    figures = {}
    with Emulator(engine=OrthancEngine()) as dicom_service, LocalFhir() as fhir_service, \
            DicomClient(dicom_service.url) as dicom, FhirClient(fhir_service.url) as fhir:
        studies = [synthetic_study(instances_per_series=3, size=16) for _ in range(count)]
        for study in studies:
            dicom.store([i.data for i in study.instances])
        uids = [s.study_uid for s in studies]
        linker = Linker(dicom, fhir, "urn:oid:2.16.840.1.113883.19.5")
        for label, _ in ROUNDS:
            if label == "after a new series":
                for study in studies:
                    more = synthetic_study(instances_per_series=1, size=16, study_uid=study.study_uid,
                                           patient_id=study.patient_id)
                    dicom.store([i.data for i in more.instances])
            seconds, requests, transactions, _ = link_all(linker, uids)
            figures[label] = (len(uids) / seconds, requests / len(uids), transactions / len(uids))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.studies) for _ in range(args.runs)]
    per_study = len(synthetic_study(instances_per_series=3, size=16).instances)
    print(f"{args.studies} studies of {per_study} instances, local DICOM service and Medplum's FHIR engine, "
          f"{args.runs} runs")
    for label, wanted in ROUNDS:
        print(figure(f"{label}: studies/s", [run[label][0] for run in runs], "/s", digits=1))
        print(figure(f"{label}: FHIR requests/study", [run[label][1] for run in runs], "", digits=2))
        print(figure(f"{label}: transactions/study", [run[label][2] for run in runs], "", digits=2,
                     target=wanted))


if __name__ == "__main__":
    main()
