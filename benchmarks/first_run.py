"""The newcomer's first run: both README commands on a fresh clone with an empty package cache.

    python3 benchmarks/first_run.py [--repo .] [--keep]

Clones the committed HEAD into a temporary folder, points uv at an empty cache (so every
package is downloaded, as on a new machine) and times `scripts/main`, then `scripts/test`,
then `scripts/main` again (bytecode written by the first run is reused). Target: the first
two together under 90 s on the 2-core machine. Exits 1 when a command fails.

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


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started, result.returncode


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
    args = parser.parse_args()
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
        for name, seconds, code in figures:
            print(f"{name:<22} {seconds:6.1f} s   exit {code}")
        together = figures[0][1] + figures[1][1]
        print(f"{'first two together':<22} {together:6.1f} s   target < 90 s: "
              f"{'met' if together < 90 else 'NOT met'}")
        if any(code != 0 for _, _, code in figures):
            print("a command failed: the figures do not count", file=sys.stderr)
            sys.exit(1)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
