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
import subprocess
import tempfile
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

from hdsctl.emulator.process import EngineUnavailable, LocalProcess, free_port

DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")


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
    if target.exists() and _private(cache) and _private(target):
        return target
    if cache.exists() and not _private(cache):
        cache = Path(tempfile.mkdtemp(prefix="hdsctl-shim-"))  # another user could swap what is preloaded
        target = cache / target.name
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise EngineUnavailable("building the engine's loopback shim needs a C compiler (apt-get install gcc)")
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
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


def _private(path: Path) -> bool:
    """Owned by this user and writable by no one else: safe to preload into the engine."""
    info = path.lstat()
    return info.st_uid == os.geteuid() and not info.st_mode & 0o022 and not path.is_symlink()


class OrthancEngine:
    """`with OrthancEngine() as engine:` — `engine.url` is its REST root, `engine.dicomweb` its
    DICOMweb root. Files go to a temporary folder unless `data` names one to keep."""

    def __init__(self, data: Path | None = None):
        self.data = data
        self.port = 0
        self._process = LocalProcess("Orthanc")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def start(self) -> OrthancEngine:
        binary = orthanc_binary()
        shim = loopback_shim()
        work = self._process.make_work_folder()
        storage = self.data or work / "storage"
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
        config_path = work / "orthanc.json"
        config_path.write_text(json.dumps(config))
        self._process.start([binary, str(config_path)], ready=self._answers, ports=[self.port],
                            env={**os.environ, "LD_PRELOAD": str(shim)})
        return self

    def _answers(self) -> bool:
        with contextlib.suppress(OSError):
            self.request("GET", "/system")
            return True
        return False

    def log_tail(self) -> str:
        return self._process.log_tail()

    def alive(self) -> bool:
        return self._process.alive()

    def stopped_because(self) -> str:
        return f"exit {self._process.exit_code()}: {self.log_tail()[-300:]}"

    def stop(self) -> None:
        # Orthanc takes 2.5 s to shut down in order; files in a temporary folder need none of it.
        self._process.stop(graceful=self.data is not None)

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
