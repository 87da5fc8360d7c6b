"""Archive-scale ingest: the STOW path against the Data Lake path (storage indexing), each from the
command's start until every instance is indexed and searchable, on the local platform.

    .venv/bin/python benchmarks/datalake_upload.py [--gb 2] [--runs 3]

A corpus of synthetic CT instances of 512x512x16 bit (about 525 KB each), new UIDs for each path:
1. `hdsctl dicom upload` (STOW, defaults): done when the command ends (every answer is an index);
2. `hdsctl dicom upload --via datalake`: the files written into Azurite's file system, indexed by
   the local service's storage indexing, the command following them until QIDO finds each one.
Peak RSS of the hdsctl process for each (GNU time). `--runs` (3) runs, each with its own local
platform: the figures say where the time goes on this machine (2 shared cores: client, Azurite,
indexer and Orthanc compete); the 100 TB estimate in benchmarks/README.md scales them with what
Azure publishes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus import ct_corpus, megabytes
from figures import figure

from hdsctl.emulator.azurite import Azurite
from hdsctl.emulator.indexer import LocalIndexer, indexing_of
from hdsctl.emulator.orthanc import OrthancEngine
from hdsctl.emulator.server import Emulator
from hdsctl.environment.load import load_environment

REPO = Path(__file__).resolve().parent.parent
STACKS = REPO / "stacks"
AS_INSTALLED = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
INSTANCE_BYTES = 525_000


def corpus(folder: Path, count: int) -> float:
    """`count` instances into `folder`; their total size in MB."""
    return megabytes(ct_corpus(folder, count, per_series=25))


def upload(folder: Path, journal: Path, *extra: str) -> tuple[float, int, dict]:
    """Wall time, peak RSS (KB) and the report of one `hdsctl dicom upload`."""
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", str(REPO / ".venv/bin/hdsctl"), "--stacks-dir",
                             str(STACKS), "dicom", "upload", str(folder), "--stack", "local", "--journal",
                             str(journal), "--json", *extra], capture_output=True, text=True, env=AS_INSTALLED)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return seconds, int(result.stderr.strip().splitlines()[-1]), json.loads(result.stdout)


PATHS = (("STOW (hdsctl dicom upload, defaults)", "stow"),
         ("Data Lake (--via datalake, until indexed)", "lake"))


def one_run(work: Path, count: int, env) -> dict[str, tuple[float, int, float, float]]:
    """Per path: wall seconds, peak RSS (KB), MB, and the report's seconds (for the Data Lake path:
    until every file is copied, before following)."""
    figures = {}
    storage = Azurite().start()
    try:
        with Emulator(engine=OrthancEngine()) as emulator:
            indexer = LocalIndexer(storage.connection_string, emulator.front, base_url=f"{emulator.url}/v2",
                                   **indexing_of(env, "radiology")).start()
            try:
                for _, path in PATHS:
                    extra = (("--via", "datalake", "--storage-url", storage.blob_url, "--queue-url",
                              storage.queue_url, "--wait", "3600") if path == "lake" else ())
                    folder = work / path
                    mb = corpus(folder, count)  # new UIDs for each path and run
                    seconds, peak_kb, report = upload(folder, work / f"{path}.sqlite", "--url", emulator.url,
                                                      *extra)
                    assert report["counts"]["stored"] == count, report["counts"]
                    figures[path] = (seconds, peak_kb, mb, report["seconds"])
            finally:
                indexer.stop()
    finally:
        storage.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="corpus size per path (default 2)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    count = int(args.gb * 1e9 / INSTANCE_BYTES)
    env = load_environment(STACKS / "Pulumi.local.yaml")
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="hdsctl-datalake-bench-") as work:
            runs.append(one_run(Path(work), count, env))
    print(f"{count} instances of about {INSTANCE_BYTES // 1000} KB per path, {os.cpu_count()} cores, "
          f"{args.runs} runs")
    for label, path in PATHS:
        print(figure(label, [run[path][0] for run in runs], "s", digits=1))
        print(figure("  instances/s", [count / run[path][0] for run in runs], "/s", digits=1))
        print(figure("  peak RSS", [run[path][1] / 1024 for run in runs], "MB", digits=0))
    print(figure("  of which copying into the Data Lake", [run["lake"][3] for run in runs], "s", digits=1))
    print(figure("  copy rate", [run["lake"][2] / run["lake"][3] for run in runs], "MB/s", digits=1))
    print(figure("  the rest: local indexer, a file at a time", [run["lake"][0] - run["lake"][3]
                                                                      for run in runs], "s", digits=1))
    print(figure("Data Lake path / STOW path, to indexed", [run["lake"][0] / run["stow"][0] for run in runs],
                 "x", digits=2))
    print("target: none set (figures for the 100 TB estimate in benchmarks/README.md)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
