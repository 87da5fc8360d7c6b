"""Orthanc, Debian's DICOM server, as the local DICOM engine: started and stopped by hdsctl,
reachable from this machine only.

Orthanc 1.10 listens on every address whatever its configuration says, so it runs with a
small preloaded library that turns its wildcard bind into a loopback bind; after it starts,
hdsctl checks the kernel's socket table and refuses to use an engine reachable from outside.
It talks to the engine with the standard library only: the emulator shares no code with the
clients it is used to test.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

from hdsctl.errors import BadInput

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
START_SECONDS = 30


class EngineUnavailable(BadInput):
    """The local DICOM engine is not installed or cannot start."""


def orthanc_binary() -> str:
    found = shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")
                                             if os.access(p, os.X_OK)), None)
    if not found or not DICOMWEB_PLUGIN.exists():
        raise EngineUnavailable(
            "the local DICOM engine needs Debian's orthanc and orthanc-dicomweb packages: "
            "sudo apt-get install orthanc orthanc-dicomweb (scripts/bootstrap does this when run as root), "
            "or use --engine synthetic")
    return found


def loopback_shim() -> Path:
    """The preload library, built once per version of its source into the user's cache."""
    source = resources.files("hdsctl.emulator").joinpath("native/bind_loopback.c").read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hdsctl"
    target = cache / f"bind_loopback-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise EngineUnavailable("building the engine's loopback shim needs a C compiler (apt-get install gcc)")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as work:
        source_path = Path(work) / "bind_loopback.c"
        source_path.write_bytes(source)
        built = Path(work) / "shim.so"
        command = [compiler, "-shared", "-fPIC", "-O2", "-o", str(built), str(source_path), "-ldl"]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise EngineUnavailable(f"could not build the engine's loopback shim: {result.stderr[:500]}")
        os.replace(built, target)
    return target


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on `port`, from the kernel's tables."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                address, _, hex_port = fields[1].partition(":")
                if int(hex_port, 16) == port and fields[3] == "0A" and len(address) == width:  # 0A: LISTEN
                    found.add(address)
    return found


LOOPBACK_ADDRESSES = {"0100007F", "00000000000000000000000001000000"}


class OrthancEngine:
    """`with OrthancEngine() as engine:` — `engine.url` is its REST root, `engine.dicomweb` its
    DICOMweb root. Files go to a temporary folder unless `data` names one to keep."""

    def __init__(self, data: Path | None = None):
        self.data = data
        self.port = 0
        self._process: subprocess.Popen | None = None
        self._work: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def start(self) -> OrthancEngine:
        binary = orthanc_binary()
        shim = loopback_shim()
        self._work = Path(tempfile.mkdtemp(prefix="hdsctl-orthanc-"))
        storage = self.data or self._work / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = {
            "Name": "hdsctl-local-dicom", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
            "HttpPort": self.port, "DicomServerEnabled": False, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "HttpCompressionEnabled": False,
            "Plugins": [str(DICOMWEB_PLUGIN)], "StorageCompression": False,
            "OverwriteInstances": True, "StableAge": 1, "ConcurrentJobs": 2,
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True, "Ssl": False,
                         "Host": f"127.0.0.1:{self.port}", "StudiesMetadata": "Full",
                         "SeriesMetadata": "Full"},
        }
        config_path = self._work / "orthanc.json"
        config_path.write_text(json.dumps(config))
        log = open(self._work / "orthanc.log", "wb")  # noqa: SIM115 - the engine writes it while it runs
        self._process = subprocess.Popen([binary, str(config_path)], stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "LD_PRELOAD": str(shim)}, start_new_session=True)
        log.close()
        try:
            self._wait_until_ready()
            addresses = listening_addresses(self.port)
            if not addresses or not addresses <= LOOPBACK_ADDRESSES:
                raise EngineUnavailable(f"the engine listens beyond loopback ({sorted(addresses)}); stopped it")
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EngineUnavailable(f"Orthanc exited at start ({self._process.returncode}): "
                                        f"{self.log_tail()}")
            with contextlib.suppress(OSError):
                self.request("GET", "/system")
                return
            time.sleep(0.1)
        raise EngineUnavailable(f"Orthanc did not answer within {START_SECONDS} s: {self.log_tail()}")

    def log_tail(self) -> str:
        path = self._work / "orthanc.log" if self._work else None
        if not path or not path.exists():
            return "(no log)"
        return path.read_text(errors="replace")[-800:].strip()

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
            self._work = None

    def __enter__(self) -> OrthancEngine:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the engine's own REST API -------------------------------------------------------

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 60) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(f"{self.url}{path}", data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as answer:
                return answer.status, dict(answer.headers.items()), answer.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()

    def json(self, method: str, path: str, body: bytes | None = None):
        status, _, payload = self.request(method, path, body)
        if status >= 400:
            raise OSError(f"Orthanc {method} {path} answered {status}: {payload[:300]!r}")
        return json.loads(payload) if payload else None

    def lookup(self, uid: str) -> list[dict]:
        """Orthanc's own ids for a study, series or instance UID."""
        return self.json("POST", "/tools/lookup", uid.encode()) or []

    def instance_files(self):
        """(Orthanc id, file bytes) of every stored instance."""
        for identifier in self.json("GET", "/instances") or []:
            status, _, payload = self.request("GET", f"/instances/{identifier}/file")
            if status == 200:
                yield identifier, payload
