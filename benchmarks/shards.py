"""One archive, 1, 2 and 4 workers (`hdsctl dicom upload --shard I/N` processes at once) into the
local service, through a simulated link: a proxy in this benchmark (delay_proxy) delays every
byte by half of `--round-trip-ms` (20) each way, as a link to an Azure region would.

    .venv/bin/python benchmarks/shards.py [--instances 400] [--round-trip-ms 20] [--runs 3]

Each worker runs with the upload's defaults (4 requests in flight). On 2 shared cores the
workers, the local service and Orthanc compete; the figures give the throughput per worker that
the scaling model in benchmarks/README.md starts from (no target is set). Each worker count runs
`--runs` times, each into a freshly started local service.
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
from delay_proxy import DelayProxy

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
    import statistics

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=400)
    parser.add_argument("--round-trip-ms", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="hdsctl-shards-bench-") as work:
        work = Path(work)
        for workers in (1, 2, 4):
            folder = work / f"archive-{workers}"
            mb = corpus(folder, args.instances)
            seconds = []
            for run in range(args.runs):
                journals = work / f"journals-{workers}-{run}"
                journals.mkdir()
                with Emulator(engine=OrthancEngine()) as emulator:  # empty: nothing stored already
                    host, port = emulator.url.removeprefix("http://").split(":")
                    with DelayProxy(host, int(port), round_trip_ms=args.round_trip_ms) as link:
                        seconds.append(run_workers(f"http://127.0.0.1:{link.port}", folder, journals, workers))
            rows.append((workers, sorted(seconds), mb))
    print(f"{args.instances} instances of about 525 KB through a {args.round_trip_ms} ms round-trip link, "
          f"{os.cpu_count()} cores, {args.runs} runs per worker count")
    single = statistics.median(rows[0][1])
    for workers, seconds, mb in rows:
        median = statistics.median(seconds)
        print(f"  {workers} worker(s)  min {seconds[0]:5.1f}  median {median:5.1f}  max {seconds[-1]:5.1f} s  "
              f"{args.instances / median:6.1f} inst/s  {mb / median:6.1f} MB/s  {single / median:4.2f}x one "
              "worker (medians)")
    print("target: none set (the per-worker figure is the scaling model's input)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
