"""A local engine's process (Orthanc, Azurite): started in its own work folder with its output
in a log, checked to answer and to listen on loopback only, and stopped with everything it wrote."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from hdsctl.errors import BadInput

START_SECONDS = 30
# Started beside each engine: when hdsctl's process dies, even by SIGKILL, the pipe from it
# closes, and this stops the engine's process group and removes its work folder.
WATCHDOG = """
import os, shutil, signal, sys, time
group, work = int(sys.argv[1]), sys.argv[2]
sys.stdin.buffer.read()
for sig in (signal.SIGTERM, signal.SIGKILL):
    try:
        os.killpg(group, sig)
    except ProcessLookupError:
        break
    for _ in range(50):
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
shutil.rmtree(work, ignore_errors=True)
"""
# /proc/net/tcp spells 127.0.0.1 and ::1 this way.
LOOPBACK_ADDRESSES = {"0100007F", "00000000000000000000000001000000"}


class EngineUnavailable(BadInput):
    """A local engine is not installed or cannot start."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on `port`, from the kernel's tables."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port and fields[3] == "0A" and len(address) == width:  # 0A: LISTEN
                found.add(address)
    return found


class LocalProcess:
    def __init__(self, name: str):
        self.name = name
        self.work: Path | None = None
        self._process: subprocess.Popen | None = None
        self._watchdog: subprocess.Popen | None = None

    def make_work_folder(self) -> Path:
        self.work = Path(tempfile.mkdtemp(prefix=f"hdsctl-{self.name.lower()}-"))
        return self.work

    def start(self, command: list[str], *, ready: Callable[[], bool], ports: list[int], env=None,
              cwd: Path | None = None) -> None:
        """Run `command`; return once `ready()` is true and every port listens on loopback only.
        Stops the process and raises EngineUnavailable otherwise."""
        work = self.work or self.make_work_folder()
        with open(work / f"{self.name.lower()}.log", "wb") as log:  # the child keeps its own handle
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                             start_new_session=True)
        self._watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(self._process.pid), str(work)],
                                          stdin=subprocess.PIPE, start_new_session=True)
        try:
            self._wait(ready)
            for port in ports:
                addresses = listening_addresses(port)
                if not addresses or not addresses <= LOOPBACK_ADDRESSES:
                    raise EngineUnavailable(
                        f"{self.name} listens beyond loopback ({sorted(addresses)}); stopped it")
        except BaseException:
            self.stop()
            raise

    def _wait(self, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EngineUnavailable(
                    f"{self.name} exited at start ({self._process.returncode}): {self.log_tail()}")
            if ready():
                return
            time.sleep(0.1)
        raise EngineUnavailable(f"{self.name} did not answer within {START_SECONDS} s: {self.log_tail()}")

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def log_tail(self) -> str:
        path = self.work / f"{self.name.lower()}.log" if self.work else None
        if not path or not path.exists():
            return "(no log)"
        return path.read_text(errors="replace")[-800:].strip()

    def stop(self, graceful: bool = True) -> None:
        """Ask the engine to end (SIGTERM, SIGKILL after 10 s); without `graceful`, end it at
        once: nothing it holds outlives it (its work folder goes too)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            if graceful:
                process.terminate()
            else:
                process.kill()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self.work is not None:
            shutil.rmtree(self.work, ignore_errors=True)
            self.work = None
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is not None:  # its work is done: let it go
            watchdog.stdin.close()
            watchdog.wait(timeout=10)
