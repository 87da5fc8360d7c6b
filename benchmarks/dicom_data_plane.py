"""The local DICOM service's cost: the smoke check's wall time, and the client's STOW rate for
100 small instances against the engine (Orthanc) directly and through the emulator's Azure
behaviour in front of it.

    .venv/bin/python benchmarks/dicom_data_plane.py [--instances 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import time

from figures import figure

from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.smoke import SmokeRun
from hdsctl.dicom.synthetic import synthetic_study
from hdsctl.dicomtags import check_tag
from hdsctl.emulator.orthanc import OrthancEngine
from hdsctl.emulator.server import Emulator
from hdsctl.tags.apply import PollSchedule, sync


class EngineClient(DicomClient):
    """The same client (multipart body, pipeline, answer parsing) on Orthanc's own DICOMweb
    root, which has no /v2 prefix."""

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"


def instances(count: int) -> list[bytes]:
    files: list[bytes] = []
    while len(files) < count:
        files += [i.data for i in synthetic_study(instances_per_series=8, size=64).instances]
    return files[:count]


def rate(client: DicomClient, files: list[bytes], batch: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(files), batch):
        result = client.store(files[start:start + batch])
        assert len(result.stored) == len(files[start:start + batch]), result
    return len(files) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tags = [check_tag("BodyPartExamined", "Series"),
            check_tag("00191002", "Series", "LO", "SIEMENS MR HEADER")]
    figures: dict[str, list[float]] = {}
    with Emulator(engine=OrthancEngine()) as emulator, DicomClient(emulator.url) as front, \
            EngineClient(emulator.engine.dicomweb) as engine:
        sync(front, tags, schedule=PollSchedule(first=0.05))
        for _ in range(args.runs):
            started = time.perf_counter()
            report = SmokeRun(front, tags).run()
            assert report.passed, report
            figures.setdefault("smoke check (s)", []).append(time.perf_counter() - started)
            for batch, label in ((1, "one per request"), (args.instances, f"{args.instances} per request")):
                for name, client in (("engine", engine), ("emulator", front)):
                    files = instances(args.instances)  # new UIDs: nothing is already stored
                    figures.setdefault(f"STOW {label}, {name} (instances/s)", []).append(
                        rate(client, files, batch))
    print(f"{args.instances} instances of 64x64x16 bit, {args.runs} runs")
    for name, values in figures.items():
        label, unit = name.rsplit(" (", 1)
        print(figure(label, values, unit.rstrip(")"), width=48))
    for label in ("one per request", f"{args.instances} per request"):
        engine = figures[f"STOW {label}, engine (instances/s)"]
        front = figures[f"STOW {label}, emulator (instances/s)"]
        print(figure(f"emulator overhead, {label}", [e / f for e, f in zip(engine, front, strict=True)],
                     "x the engine's time", width=48))
    print("target: none set (the emulator's overhead, as a ratio)")

if __name__ == "__main__":
    main()
