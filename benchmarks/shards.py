"""One archive, 1, 2 and 4 workers (`hdsctl dicom upload --shard I/N` processes at once) into the
local service, with a simulated link: the local service holds each request `--latency-ms` (20)
before answering, as a round trip to an Azure region would.

    .venv/bin/python benchmarks/shards.py [--instances 400] [--latency-ms 20]

Each worker runs with the upload's defaults (4 requests in flight). On 2 shared cores the
workers, the local service and Orthanc compete; the figures give the throughput per worker that
the scaling model in benchmarks/README.md starts from. One run per worker count.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus import ct_corpus, megabytes

from hdsctl.emulator.orthanc import OrthancEngine
from hdsctl.emulator.server import Emulator

REPO = Path(__file__).resolve().parent.parent
AS_INSTALLED = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def corpus(folder: Path, count: int) -> float:
    """`count` instances into `folder`; their total size in MB."""
    return megabytes(ct_corpus(folder, count, per_series=10))


def run_workers(url: str, folder: Path, journals: Path, workers: int) -> float:
    started = time.perf_counter()
    processes = [subprocess.Popen(
        [str(REPO / ".venv/bin/hdsctl"), "--stacks-dir", str(REPO / "stacks"), "dicom", "upload", str(folder),
         "--stack", "local", "--url", url, "--shard", f"{index}/{workers}", "--journal",
         str(journals / f"{workers}-{index}.sqlite"), "--json"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=AS_INSTALLED)
        for index in range(workers)]
    for process in processes:
        assert process.wait() == 0, process.stderr.read()[-2000:]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hdsctl-shards-bench-") as work:
        work = Path(work)
        for workers in (1, 2, 4):
            folder = work / f"archive-{workers}"
            mb = corpus(folder, args.instances)  # new UIDs for each count: nothing stored already
            with Emulator(engine=OrthancEngine()) as emulator:
                emulator.knobs.latency_ms = args.latency_ms
                rows.append((workers, run_workers(emulator.url, folder, work, workers), mb))
    print(f"{args.instances} instances of about 525 KB, {args.latency_ms} ms added per request, "
          f"{os.cpu_count()} cores, one run per worker count")
    single = rows[0][1]
    for workers, seconds, mb in rows:
        print(f"  {workers} worker(s)  {seconds:6.1f} s  {args.instances / seconds:6.1f} inst/s  "
              f"{mb / seconds:6.1f} MB/s  {single / seconds:4.2f}x one worker")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
