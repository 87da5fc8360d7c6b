"""Moving an archive in: the seed article's loop against `hdsctl dicom upload` and the engine's
own ceiling, side by side in one run.

    .venv/bin/python benchmarks/dicom_upload.py [--instances 500] [--rss-gb 2]

500 synthetic CT instances of 512x512x16 bit (about 525 KB each), into the local DICOM service:
1. the seed's way: one file per request, one request at a time (what its Python loop does);
2. `hdsctl dicom upload` with its defaults, and a re-run over the same folder;
3. Orthanc's REST upload (POST /instances) straight into the engine, with the best of 1, 2, 4
   and 8 threads: the ceiling of the engine itself, with no Azure behaviour in front.
With --latency-ms, (1) and (2) also run with that delay added to every request by the local
service (loopback hides the round trip a link to an Azure region adds to each request).
With --rss-gb, the peak memory of `hdsctl dicom upload` over a corpus of that size.
Targets: (2) >= 1.6x (1) and >= 80 % of (3); peak RSS < 200 MB for 2 GB; re-run < 5 % of the first.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import requests
from corpus import ct_corpus

from hdsctl.emulator.orthanc import OrthancEngine
from hdsctl.emulator.server import Emulator

REPO = Path(__file__).resolve().parent.parent
# hdsctl as a user runs it: Python keeps the bytecode of what it imports (these machines set
# PYTHONDONTWRITEBYTECODE, which would compile the modules again on every run)
AS_INSTALLED = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def corpus(folder: Path, count: int) -> list[Path]:
    return ct_corpus(folder, count)


def seed_way(url: str, files: list[Path]) -> float:
    """One STOW-RS request per file, sequential, as the seed article's loop sends them."""
    session = requests.Session()
    started = time.perf_counter()
    for path in files:
        boundary = "seedboundary"
        body = (f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + path.read_bytes()
                + f"\r\n--{boundary}--\r\n".encode())
        answer = session.post(f"{url}/v2/studies", data=body, headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json"})
        assert answer.status_code == 200, answer.text[:200]
    return time.perf_counter() - started


def hdsctl_upload(url: str, folder: Path, journal: Path, stacks: Path) -> tuple[float, int, float]:
    """Wall time, peak resident memory in KB of the hdsctl process alone (GNU time), and the time
    its report gives to sending (after the command's start and the header scan)."""
    started = time.perf_counter()
    result = subprocess.run(["/usr/bin/time", "-f", "%M", str(REPO / ".venv/bin/hdsctl"), "--stacks-dir",
                             str(stacks), "dicom", "upload", str(folder), "--stack", "local", "--url", url,
                             "--journal", str(journal), "--json"],
                            capture_output=True, text=True, env=AS_INSTALLED)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    return (time.perf_counter() - started, int(result.stderr.strip().splitlines()[-1]),
            report["seconds"] - report["scanSeconds"])


def post_all(url: str, items: list, make_body, threads: int) -> float:
    """Seconds to POST a body made of each item ((bytes, content type), made when its turn
    comes), `threads` at a time; each answer must be 200."""
    def post(item) -> None:
        data, kind = make_body(item)
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": kind, "Accept": "application/dicom+json"})
        with urllib.request.urlopen(request) as answer:
            assert answer.status == 200

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        list(pool.map(post, items))
    return time.perf_counter() - started


def engine_ceiling(engine: OrthancEngine, files: list[Path], threads: int) -> float:
    return post_all(f"{engine.url}/instances", files, lambda path: (path.read_bytes(), "application/dicom"),
                    threads)


def engine_stow(engine: OrthancEngine, files: list[Path], concurrency: int = 4,
                batch_bytes: int = 16 << 20) -> float:
    """Orthanc's own DICOMweb STOW fed as hdsctl feeds the local service (batches of up to 16 MB,
    four in flight), with no front and no hdsctl: how fast the engine's STOW path itself goes."""
    batches: list[list[Path]] = [[]]
    for path in files:
        if batches[-1] and sum(p.stat().st_size for p in batches[-1]) + path.stat().st_size > batch_bytes:
            batches.append([])
        batches[-1].append(path)

    def multipart(batch: list[Path]) -> tuple[bytes, str]:
        boundary = f"bench-{uuid.uuid4().hex}"
        body = b"".join(piece for path in batch for piece in (
            f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode(), path.read_bytes(), b"\r\n"))
        return (body + f"--{boundary}--\r\n".encode(),
                f'multipart/related; type="application/dicom"; boundary={boundary}')

    return post_all(f"{engine.dicomweb}/studies", batches, multipart, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--rss-gb", type=float, default=0, help="also measure peak memory over this many GB")
    parser.add_argument("--latency-ms", type=int, default=0, help="also run (1) and (2) with this much latency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hdsctl-upload-bench-") as work:
        work = Path(work)
        stacks = REPO / "stacks"
        mb = 0.0
        rows = []
        for label, run in (("seed's way (1 per request, sequential)", "seed"),
                           ("hdsctl dicom upload (defaults)", "hdsctl"),
                           ("Orthanc REST POST /instances (best threads)", "ceiling"),
                           ("Orthanc DICOMweb STOW, hdsctl's batches, no front", "stow")):
            files = corpus(work / run, args.instances)  # new UIDs for each way: nothing already stored
            mb = sum(p.stat().st_size for p in files) / 1e6
            with Emulator(engine=OrthancEngine()) as emulator:
                if run == "seed":
                    rows.append((label, seed_way(emulator.url, files)))
                elif run == "hdsctl":
                    seconds, _, sending = hdsctl_upload(emulator.url, work / run, work / "journal.db", stacks)
                    rows.append((label, seconds))
                    again, _, _ = hdsctl_upload(emulator.url, work / run, work / "journal.db", stacks)
                    rows.append(("hdsctl dicom upload, re-run (nothing to send)", again))
                elif run == "stow":
                    rows.append((label, engine_stow(emulator.engine, files)))
                else:
                    best = min((engine_ceiling(emulator.engine, files[i::4], threads), threads)
                               for i, threads in enumerate((1, 2, 4, 8)))
                    # each thread count stored a quarter of the corpus: scale to the whole
                    rows.append((f"{label[:-14]} ({best[1]} threads)", best[0] * 4))
        print(f"{args.instances} instances, {mb:.0f} MB, {os.cpu_count()} cores")
        for label, seconds in rows:
            print(f"  {label:<50} {seconds:7.2f} s   {args.instances / seconds:7.1f} inst/s   "
                  f"{mb / seconds:6.1f} MB/s")
        seed, ours, rerun, ceiling, stow = (row[1] for row in rows)
        print(f"  hdsctl vs the seed's way: {seed / ours:.2f}x (target >= 1.6x)")
        print(f"  hdsctl vs the engine's ceiling: {ceiling / ours * 100:.0f} % (target >= 80 %)")
        print(f"    of hdsctl's {ours:.2f} s, {sending:.2f} s were sending (the rest: the command's start and "
              f"the header scan): {ceiling / sending * 100:.0f} % of the ceiling while sending;")
        print(f"    the engine's own STOW path, fed the same batches: {ceiling / stow * 100:.0f} % of the "
              "ceiling")
        print(f"  re-run: {rerun / ours * 100:.1f} % of the first run's time (target < 5 %)")
        if args.latency_ms:
            timed = []
            for run in ("seed", "hdsctl"):
                files = corpus(work / f"{run}-latency", args.instances)
                with Emulator(engine=OrthancEngine()) as emulator:
                    emulator.knobs.latency_ms = args.latency_ms
                    if run == "seed":
                        timed.append(seed_way(emulator.url, files))
                    else:
                        folder = work / f"{run}-latency"
                        timed.append(hdsctl_upload(emulator.url, folder, work / "latency.db", stacks)[0])
            print(f"  with {args.latency_ms} ms per request: seed's way {timed[0]:.2f} s, "
                  f"hdsctl {timed[1]:.2f} s ({timed[0] / timed[1]:.2f}x)")
        if args.rss_gb:
            count = int(args.rss_gb * 1e9 / 525_000)
            corpus(work / "rss", count)
            with Emulator(engine=OrthancEngine()) as emulator:
                seconds, peak_kb, _ = hdsctl_upload(emulator.url, work / "rss", work / "rss.db", stacks)
                again, _, _ = hdsctl_upload(emulator.url, work / "rss", work / "rss.db", stacks)
            print(f"  {count} instances ({args.rss_gb:.1f} GB): {seconds:.1f} s, peak RSS of hdsctl "
                  f"{peak_kb / 1024:.0f} MB (target < 200 MB); re-run {again:.2f} s = "
                  f"{again / seconds * 100:.1f} % of the first")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
