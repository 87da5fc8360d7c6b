"""Azurite, Microsoft's Azure Storage emulator (npm), as the local stack's Storage account: the
queue Event Grid would deliver to and the dead-letter container. Started on loopback, on free
ports, and stopped with the emulator.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path

from hdsctl.credentials import AZURITE_ACCOUNT as ACCOUNT
from hdsctl.credentials import AZURITE_KEY as ACCOUNT_KEY
from hdsctl.emulator.process import EngineUnavailable, LocalProcess, free_port

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
        self._process = LocalProcess("Azurite")

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
        work = self._process.make_work_folder()
        self.queue_port, self.blob_port, table_port = free_port(), free_port(), free_port()
        command = [binary, "--silent", "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry",
                   "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
                   "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
                   "--tableHost", "127.0.0.1", "--tablePort", str(table_port)]
        ports = [self.queue_port, self.blob_port]
        self._process.start(command, ready=lambda: all(_accepts(port) for port in ports), ports=ports, cwd=work)
        return self

    def stop(self) -> None:
        self._process.stop()

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False
