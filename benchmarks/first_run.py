"""The newcomer's first run: both README commands on a fresh clone with an empty package cache.

    python3 benchmarks/first_run.py [--repo .] [--runs 2] [--keep] [--without-node]

Clones the committed HEAD into a temporary folder, points uv at an empty cache (so every
package is downloaded, as on a new machine) and times `scripts/main`, then `scripts/test`,
then `scripts/main` again (bytecode written by the first run is reused), `--runs` times, each
on a clone of its own. Target: the first two together under 90 s on the 2-core machine (the
median). Exits 1 when a command fails.

With --without-node, the same on a machine without Node.js: npm and node are kept off the PATH,
so Azurite and Medplum are not installed and what needs them is skipped (visibly). A machine
without Orthanc cannot be had this way: it is a Debian package, installed system-wide.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from figures import figure


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, int]:
    """Seconds and exit code; a failing command's last output is shown, so a failure says why."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        tail = result.stdout.decode(errors="replace").splitlines()[-25:]
        print(f"{' '.join(command)} exited {result.returncode}; its last lines:", *tail, sep="\n  ",
              file=sys.stderr)
    return seconds, result.returncode


def _path_without_node(work: Path, path: str) -> str:
    """PATH with node and npm hidden: the folders holding them are replaced by a copy of their
    other programs' links."""
    hidden = work / "bin-without-node"
    hidden.mkdir()
    kept = []
    for folder in path.split(os.pathsep):
        if folder and any((Path(folder) / name).exists() for name in ("node", "npm")):
            for entry in Path(folder).iterdir():
                if entry.name not in {"node", "npm", "npx", "nodejs"} and not (hidden / entry.name).exists():
                    (hidden / entry.name).symlink_to(entry)
            kept.append(str(hidden))
        else:
            kept.append(folder)
    return os.pathsep.join(dict.fromkeys(kept))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--keep", action="store_true", help="keep the clone and the cache")
    parser.add_argument("--without-node", action="store_true", help="as on a machine without Node.js")
    parser.add_argument("--runs", type=int, default=2,
                        help="fresh clones, each with an empty cache (default 2)")
    args = parser.parse_args()
    runs = [one_run(args) for _ in range(args.runs)]
    for index, name in enumerate(("scripts/main (first)", "scripts/test", "scripts/main (again)")):
        print(figure(name, [run[index][1] for run in runs], "s", digits=1, width=22))
    print(figure("first two together", [run[0][1] + run[1][1] for run in runs], "s", target=90, digits=1,
                 width=22))
    failed = [f"{name} exit {code}" for run in runs for name, _, code in run if code != 0]
    if failed:
        print(f"a command failed ({', '.join(failed)}): the figures do not count", file=sys.stderr)
        sys.exit(1)


def one_run(args) -> list[tuple[str, float, int]]:
    work = Path(tempfile.mkdtemp(prefix="hdsctl-first-run-"))
    try:
        clone = work / "hdsctl"
        subprocess.run(["git", "clone", "--quiet", str(args.repo), str(clone)], check=True)
        env = {**os.environ, "UV_CACHE_DIR": str(work / "uv-cache")}
        if args.without_node:
            env["PATH"] = _path_without_node(work, env["PATH"])
        figures = [("scripts/main (first)", *timed(["scripts/main"], clone, env)),
                   ("scripts/test", *timed(["scripts/test"], clone, env)),
                   ("scripts/main (again)", *timed(["scripts/main"], clone, env))]
        return figures
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
