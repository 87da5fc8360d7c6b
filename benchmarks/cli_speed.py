"""Wall time and peak memory of `hdsctl --help` (cold start) and `hdsctl preview` per stack.

Run from the repository root:  .venv/bin/python benchmarks/cli_speed.py [--runs N]
Targets (2-core machine): --help under 0.3 s, preview of one stack under 2 s.
Each run is a fresh process, so import costs are included, as a user would feel them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from figures import figure

REPO = Path(__file__).resolve().parent.parent
HDSCTL = REPO / ".venv" / "bin" / "hdsctl"
TARGETS = {"help": 0.3, "preview": 2.0}


def measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak resident MiB) of one child process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed: {process.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def report(label: str, command: list[str], repeat: int, target: float) -> None:
    runs = [measure(command) for _ in range(repeat)]
    print(figure(label, [wall for wall, _ in runs], "s", target=target, digits=3, width=32))
    print(figure("  peak memory", [mem for _, mem in runs], "MiB", digits=1, width=32))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (default 5)")
    args = parser.parse_args()
    stacks = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in (REPO / "stacks").glob("Pulumi.*.yaml"))
    print(f"{os.cpu_count()} cores, {args.runs} runs each")
    report("hdsctl --help", [str(HDSCTL), "--help"], args.runs, TARGETS["help"])
    for stack in stacks:
        report(f"hdsctl preview --stack {stack}",
               [str(HDSCTL), "preview", "--stack", stack, "--json", os.devnull],
               args.runs, TARGETS["preview"])


if __name__ == "__main__":
    main()
