"""Adding 40 extended query tags to a service holding 2,000 instances, on the emulator:
hdsctl's reconciler against the naive way of the seed article (one POST per tag, then a
polling loop on the tag's status until it is ready, before the next tag).

Run from the repository root:  .venv/bin/python benchmarks/tags_reconcile.py [--runs 3]
Targets: one reindex for any number of new tags; total requests within 2x of the minimum
(read the tags, one POST, the operation polls, read the tags back); at least 10x less wall
time than the naive way.
"""

from __future__ import annotations

import argparse
import time

from figures import check, figure

from hdsctl.dicom.client import DicomClient
from hdsctl.dicomtags import TagRuleError, check_tag
from hdsctl.emulator.server import Emulator
from hdsctl.emulator.store import Knobs
from hdsctl.tags.apply import PollSchedule, sync

KEYWORDS = [
    "BodyPartExamined", "ProtocolName", "StationName", "InstitutionName", "PatientSex",
    "Manufacturer", "DeviceSerialNumber", "SoftwareVersions", "InstitutionalDepartmentName",
    "PerformingPhysicianName", "OperatorsName", "SeriesDescription", "ContrastBolusAgent",
    "ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "SequenceName",
    "SliceThickness", "RepetitionTime", "EchoTime", "MagneticFieldStrength", "SpacingBetweenSlices",
    "EchoTrainLength", "ViewPosition", "PatientPosition", "AcquisitionNumber", "SeriesNumber",
    "InstanceNumber", "ImageType", "PatientAge", "PatientWeight", "PatientSize", "StudyID",
    "RequestedProcedureDescription", "PerformedProcedureStepDescription", "Laterality",
    "BodyPartThickness", "KVP", "ExposureTime", "Manufacturer", "StationName",
    "ReferencedSOPClassUID", "AccessionNumber", "StudyTime", "SeriesTime", "SeriesDate",
    "ContentDate", "ContentTime", "AcquisitionDate", "AcquisitionTime", "PatientComments",
    "ReasonForStudy", "RequestingPhysician", "ScheduledStationName", "DeviceSerialNumber",
]
LEVELS = {"PatientSex": "Study", "InstitutionName": "Study", "PatientAge": "Study",
          "PatientWeight": "Study", "PatientSize": "Study", "StudyID": "Study",
          "InstanceNumber": "Instance", "ImageType": "Instance", "AcquisitionNumber": "Instance"}


def desired_tags(count: int):
    """The first `count` keywords the service accepts (DS attributes and defaults are not)."""
    tags = {}
    for keyword in KEYWORDS:
        try:
            tag = check_tag(keyword, LEVELS.get(keyword, "Series"))
        except TagRuleError:
            continue
        tags.setdefault(tag.path, tag)
    return list(tags.values())[:count]


def run(way: str, tags, instances: int, speed: float, poll: float) -> dict:
    with Emulator(instances=instances, knobs=Knobs(instances_per_second=speed)) as emu:
        client = DicomClient(emu.url)
        start = time.perf_counter()
        if way == "hdsctl":
            sync(client, tags, schedule=PollSchedule(first=poll))
        else:
            for tag in tags:  # the seed article's way, one tag at a time
                client.add_tags([tag])
                # polled on hdsctl's own schedule, so the comparison is of the ways, not of the pace
                for delay in PollSchedule(first=poll).delays():
                    if client.get_tag(tag.path).status == "ready":
                        break
                    time.sleep(delay)
        wall = time.perf_counter() - start
        client.close()
        assert all(t.status == "ready" for t in emu.store.tags.values()) and len(emu.store.tags) == len(tags)
        polls = len([r for r in emu.data_requests("GET") if "/operations/" in r.path])
        return {"writes": client.counter.writes, "operations": len(emu.store.operations),
                "requests": client.counter.total, "polls": polls, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=40)
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--instances-per-second", type=float, default=4000.0,
                        help="emulator reindex speed (default 4000: half a second per reindex)")
    parser.add_argument("--poll", type=float, default=1.0, help="first poll interval of both ways")
    parser.add_argument("--runs", type=int, default=3, help="runs of both ways (default 3)")
    args = parser.parse_args()
    tags = desired_tags(args.tags)
    print(f"{len(tags)} new tags, {args.instances} instances, reindex at "
          f"{args.instances_per_second:.0f} instances/s, first poll after {args.poll} s, {args.runs} runs")
    runs = [tuple(run(way, tags, args.instances, args.instances_per_second, args.poll)
                  for way in ("hdsctl", "naive")) for _ in range(args.runs)]
    for key, label in (("writes", "write requests"), ("operations", "reindex operations"),
                       ("requests", "total requests"), ("wall", "wall time")):
        unit, digits = ("s", 2) if key == "wall" else ("", 0)
        print(figure(f"{label}, hdsctl", [ours[key] for ours, _ in runs], unit, digits=digits))
        print(figure(f"{label}, naive", [naive[key] for _, naive in runs], unit, digits=digits))
    # the minimum: read the tags, one POST, the polls, read back
    print(figure("hdsctl's requests / the minimum", [o["requests"] / (3 + o["polls"]) for o, _ in runs],
                 "x", target=2))
    print(figure("naive wall time / hdsctl's", [n["wall"] / o["wall"] for o, n in runs], "x", target=10,
                 at_most=False))
    print(check("one reindex operation (every run)", [ours["operations"] == 1 for ours, _ in runs]))


if __name__ == "__main__":
    main()
