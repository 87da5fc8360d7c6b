"""Azurite, Microsoft's Azure Storage emulator (npm), as the local stack's Storage account: the
queue Event Grid would deliver to and the dead-letter container. Started on loopback, on free
ports, and stopped with the emulator.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from hdsctl.emulator.orthanc import LOOPBACK_ADDRESSES, EngineUnavailable, free_port, listening_addresses

START_SECONDS = 30
# Azurite's one account and its key, published in Azurite's documentation for every
# installation: not a secret, and accepted only by the emulator.
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# scripts/bootstrap installs the pinned version here (tools/azurite/package.json).
BUNDLED = Path(__file__).resolve().parents[3] / "tools" / "azurite" / "node_modules" / ".bin" / "azurite"


def azurite_binary() -> str:
    found = os.environ.get("HDSCTL_AZURITE") or (str(BUNDLED) if BUNDLED.exists() else shutil.which("azurite"))
    if not found:
        raise EngineUnavailable("the local event queue needs Azurite (npm): run scripts/bootstrap, or "
                                "npm install --prefix tools/azurite azurite")
    return found


class Azurite:
    """`with Azurite() as storage:` — `storage.queue_url`, `storage.blob_url` and
    `storage.connection_string` reach it."""

    def __init__(self):
        self.queue_port = self.blob_port = 0
        self._process: subprocess.Popen | None = None
        self._work: Path | None = None

    @property
    def queue_url(self) -> str:
        return f"http://127.0.0.1:{self.queue_port}/{ACCOUNT}"

    @property
    def blob_url(self) -> str:
        return f"http://127.0.0.1:{self.blob_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"QueueEndpoint={self.queue_url};BlobEndpoint={self.blob_url};")

    def start(self) -> Azurite:
        binary = azurite_binary()
        self._work = Path(tempfile.mkdtemp(prefix="hdsctl-azurite-"))
        self.queue_port, self.blob_port, table_port = free_port(), free_port(), free_port()
        command = [binary, "--silent", "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry",
                   "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
                   "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
                   "--tableHost", "127.0.0.1", "--tablePort", str(table_port)]
        log = open(self._work / "azurite.log", "wb")  # noqa: SIM115 - Azurite writes it while it runs
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self._work,
                                         start_new_session=True)
        log.close()
        try:
            self._wait_until_ready()
            for port in (self.queue_port, self.blob_port):
                addresses = listening_addresses(port)
                if not addresses <= LOOPBACK_ADDRESSES:
                    raise EngineUnavailable(
                        f"Azurite listens beyond loopback ({sorted(addresses)}); stopped it")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EngineUnavailable(
                    f"Azurite exited at start ({self._process.returncode}): {self._log_tail()}")
            if all(_accepts(port) for port in (self.queue_port, self.blob_port)):
                return
            time.sleep(0.1)
        raise EngineUnavailable(f"Azurite did not answer within {START_SECONDS} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        path = self._work / "azurite.log" if self._work else None
        return path.read_text(errors="replace")[-800:].strip() if path and path.exists() else "(no log)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False
