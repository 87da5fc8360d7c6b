"""Adding 40 extended query tags to a service holding 2,000 instances, on the emulator:
hdsctl's reconciler against the naive way of the seed article (one POST per tag, then a
polling loop on the tag's status until it is ready, before the next tag).

Run from the repository root:  .venv/bin/python benchmarks/tags_reconcile.py
Targets: one reindex for any number of new tags; total requests within 2x of the minimum
(read the tags, one POST, the operation polls, read the tags back); at least 10x less wall
time than the naive way.
"""

from __future__ import annotations

import argparse
import time

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
    args = parser.parse_args()
    tags = desired_tags(args.tags)
    print(f"{len(tags)} new tags, {args.instances} instances, reindex at "
          f"{args.instances_per_second:.0f} instances/s, first poll after {args.poll} s")
    ours = run("hdsctl", tags, args.instances, args.instances_per_second, args.poll)
    naive = run("naive", tags, args.instances, args.instances_per_second, args.poll)
    minimum = 3 + ours["polls"]  # read, one POST, the polls, read back
    print(f"{'':<26}{'hdsctl':>10}{'naive':>10}{'ratio':>8}")
    for key, label in (("writes", "write requests"), ("operations", "reindex operations"),
                       ("requests", "total requests"), ("wall", "wall time (s)")):
        a, b = ours[key], naive[key]
        fmt = "{:>10.2f}" if key == "wall" else "{:>10d}"
        print(f"{label:<26}{fmt.format(a)}{fmt.format(b)}{b / a:>7.1f}x")
    print(f"minimum requests for hdsctl's way: {minimum}; sent {ours['requests']} "
          f"({ours['requests'] / minimum:.2f}x)")
    verdicts = [
        ("one reindex operation", ours["operations"] == 1),
        ("requests within 2x of the minimum", ours["requests"] <= 2 * minimum),
        ("at least 10x less wall time than naive", naive["wall"] >= 10 * ours["wall"]),
    ]
    for text, ok in verdicts:
        print(f"  {'ok  ' if ok else 'MISS'} {text}")


if __name__ == "__main__":
    main()
