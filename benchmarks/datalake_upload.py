"""Archive-scale ingest: the STOW path against the Data Lake path (storage indexing), each from the
command's start until every instance is indexed and searchable, on the local platform.

    .venv/bin/python benchmarks/datalake_upload.py [--gb 2]

A corpus of synthetic CT instances of 512x512x16 bit (about 525 KB each), new UIDs for each path:
1. `hdsctl dicom upload` (STOW, defaults): done when the command ends (every answer is an index);
2. `hdsctl dicom upload --via datalake`: the files written into Azurite's file system, indexed by
   the local service's storage indexing, the command following them until QIDO finds each one.
Peak RSS of the hdsctl process for each (GNU time). One run each: the figures say where the time
goes on this machine (2 shared cores: client, Azurite, indexer and Orthanc compete); the
100 TB estimate in benchmarks/README.md scales them with what Azure publishes.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="corpus size per path (default 2)")
    args = parser.parse_args()
    count = int(args.gb * 1e9 / INSTANCE_BYTES)
    env = load_environment(STACKS / "Pulumi.local.yaml")
    rows = []
    with tempfile.TemporaryDirectory(prefix="hdsctl-datalake-bench-") as work:
        work = Path(work)
        storage = Azurite().start()
        try:
            with Emulator(engine=OrthancEngine()) as emulator:
                indexer = LocalIndexer(storage.connection_string, emulator.front, base_url=f"{emulator.url}/v2",
                                       **indexing_of(env, "radiology")).start()
                try:
                    for label, extra in (
                            ("STOW (hdsctl dicom upload, defaults)", ()),
                            ("Data Lake (--via datalake, until indexed)",
                             ("--via", "datalake", "--storage-url", storage.blob_url,
                              "--queue-url", storage.queue_url, "--wait", "3600"))):
                        folder = work / str(len(rows))
                        mb = corpus(folder, count)
                        seconds, peak_kb, report = upload(folder, work / f"{len(rows)}.sqlite", "--url",
                                                          emulator.url, *extra)
                        assert report["counts"]["stored"] == count, report["counts"]
                        rows.append((label, seconds, peak_kb, mb, report["seconds"]))
                finally:
                    indexer.stop()
        finally:
            storage.stop()
    print(f"{count} instances of about {INSTANCE_BYTES // 1000} KB per path, {os.cpu_count()} cores, "
          "one run each")
    for label, seconds, peak_kb, mb, _ in rows:
        print(f"  {label:<44} {seconds:7.1f} s  {count / seconds:7.1f} inst/s  {mb / seconds:6.1f} MB/s  "
              f"peak RSS {peak_kb / 1024:4.0f} MB")
    stow, lake = rows[0][1], rows[1][1]
    copy = rows[1][4]  # the report's time ends when every file is copied, before following
    print(f"    of which copying into the Data Lake: {copy:.1f} s ({rows[1][3] / copy:.1f} MB/s); the rest, "
          f"{lake - copy:.1f} s, is the local indexer (one file at a time into the engine)")
    print(f"  Data Lake path / STOW path, to indexed and searchable: {lake / stow:.2f}x the time")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
