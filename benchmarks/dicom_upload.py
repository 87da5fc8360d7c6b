"""Moving an archive in: the seed article's loop against `hdsctl dicom upload` and the engine's
own ceiling, side by side, `--runs` times (3).

    .venv/bin/python benchmarks/dicom_upload.py [--instances 500] [--runs 3] [--rss-gb 2]

500 synthetic CT instances of 512x512x16 bit (about 525 KB each), into the local DICOM service:
1. the seed's way: one file per request, one request at a time (what its Python loop does);
2. `hdsctl dicom upload` with its defaults, and a re-run over the same folder;
3. Orthanc's REST upload (POST /instances) straight into the engine, with the best of 1, 2, 4
   and 8 threads: the ceiling of the engine itself, with no Azure behaviour in front.
With --latency-ms, (1) and (2) also run with that delay added to every request by the local
service (loopback hides the round trip a link to an Azure region adds to each request).
With --rss-gb, the peak memory of `hdsctl dicom upload` over a corpus of that size.
Targets: (2) >= 1.6x (1) and >= 80 % of (3) (a target set wrongly: on 2 shared cores it
measures the machine, see benchmarks/README.md); peak RSS < 200 MB for 2 GB; re-run < 5 % of the
first.
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
from figures import figure

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


WAYS = (("seed's way (1 per request, sequential)", "seed"),
        ("hdsctl dicom upload (defaults)", "hdsctl"),
        ("Orthanc REST POST /instances (best threads)", "ceiling"),
        ("Orthanc DICOMweb STOW, hdsctl's batches, no front", "stow"))


def one_run(work: Path, count: int, stacks: Path) -> tuple[dict[str, float], float, float]:
    """Seconds per way (and for hdsctl's re-run), hdsctl's sending seconds, the corpus in MB."""
    seconds: dict[str, float] = {}
    for _, way in WAYS:
        files = corpus(work / way, count)  # new UIDs for each way: nothing already stored
        mb = sum(p.stat().st_size for p in files) / 1e6
        with Emulator(engine=OrthancEngine()) as emulator:
            if way == "seed":
                seconds[way] = seed_way(emulator.url, files)
            elif way == "hdsctl":
                seconds[way], _, sending = hdsctl_upload(emulator.url, work / way, work / "journal.db", stacks)
                seconds["rerun"], _, _ = hdsctl_upload(emulator.url, work / way, work / "journal.db", stacks)
            elif way == "stow":
                seconds[way] = engine_stow(emulator.engine, files)
            else:  # each thread count stores a quarter of the corpus: scaled to the whole
                seconds[way] = min(engine_ceiling(emulator.engine, files[i::4], threads)
                                   for i, threads in enumerate((1, 2, 4, 8))) * 4
    return seconds, sending, mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rss-gb", type=float, default=0, help="also measure peak memory over this many GB")
    parser.add_argument("--latency-ms", type=int, default=0, help="also run (1) and (2) with this much latency")
    args = parser.parse_args()
    stacks = REPO / "stacks"
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="hdsctl-upload-bench-") as work:
            runs.append(one_run(Path(work), args.instances, stacks))
    mb = runs[0][2]
    print(f"{args.instances} instances, {mb:.0f} MB, {os.cpu_count()} cores, {args.runs} runs")
    for label, way in (*WAYS[:2], ("hdsctl dicom upload, re-run (nothing to send)", "rerun"), *WAYS[2:]):
        values = [seconds[way] for seconds, _, _ in runs]
        print(figure(label, values, "s", width=52))
        print(figure("", [args.instances / v for v in values], "inst/s", digits=1, width=52))
    print(figure("hdsctl vs the seed's way", [s["seed"] / s["hdsctl"] for s, _, _ in runs], "x", target=1.6,
                 at_most=False, width=52))
    print(figure("hdsctl vs the engine's ceiling", [s["ceiling"] / s["hdsctl"] * 100 for s, _, _ in runs], "%",
                 target=80, at_most=False, digits=0, width=52,
                 note="; set wrongly: on 2 shared cores it measures the machine (README)"))
    print(figure("  while sending (after start and header scan)", [s["ceiling"] / sending * 100
                                                                    for s, sending, _ in runs], "%",
                 digits=0, width=52))
    print(figure("  the engine's own STOW, fed the same batches",
                 [s["ceiling"] / s["stow"] * 100 for s, _, _ in runs], "%", digits=0, width=52))
    print(figure("re-run, of the first run's time", [s["rerun"] / s["hdsctl"] * 100 for s, _, _ in runs], "%",
                 target=5, digits=1, width=52))
    with tempfile.TemporaryDirectory(prefix="hdsctl-upload-bench-") as work:
        work = Path(work)
        if args.latency_ms:
            ratios = []
            for run in range(args.runs):
                timed = {}
                for way in ("seed", "hdsctl"):
                    folder = work / f"{way}-latency-{run}"
                    files = corpus(folder, args.instances)
                    with Emulator(engine=OrthancEngine()) as emulator:
                        emulator.knobs.latency_ms = args.latency_ms
                        journal = work / f"latency-{run}.db"
                        timed[way] = (seed_way(emulator.url, files) if way == "seed" else
                                      hdsctl_upload(emulator.url, folder, journal, stacks)[0])
                ratios.append(timed["seed"] / timed["hdsctl"])
            print(figure(f"with {args.latency_ms} ms per request: hdsctl vs the seed's way", ratios, "x",
                         width=52))
        if args.rss_gb:
            count = int(args.rss_gb * 1e9 / 525_000)
            peaks, reruns = [], []
            for run in range(args.runs):
                folder, journal = work / f"rss-{run}", work / f"rss-{run}.db"
                corpus(folder, count)
                with Emulator(engine=OrthancEngine()) as emulator:
                    seconds, peak_kb, _ = hdsctl_upload(emulator.url, folder, journal, stacks)
                    again, _, _ = hdsctl_upload(emulator.url, folder, journal, stacks)
                peaks.append(peak_kb / 1024)
                reruns.append(again / seconds * 100)
            print(figure(f"{count} instances ({args.rss_gb:.1f} GB): peak RSS of hdsctl", peaks, "MB",
                         target=200, digits=0, width=52))
            print(figure("  its re-run, of the first run's time", reruns, "%", target=5, digits=1, width=52))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
