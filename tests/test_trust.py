"""Where tokens, paths and files may go: each client's requests stay on its own origin, UIDs
never become paths, the local service forwards only DICOMweb routes, engines die with it, and
outputs never replace devices or links."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import typing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import STACKS

from hdsctl.dicom import errors
from hdsctl.dicom.client import DicomClient
from hdsctl.errors import EXIT_BAD_INPUT
from hdsctl.fhir.client import FhirClient, FhirUrlRefused
from hdsctl.files import write_atomic


class _Paging(BaseHTTPRequestHandler):
    """A FHIR server whose search answers with a `next` link to another host."""

    seen: typing.ClassVar[list[str]] = []

    def do_GET(self):
        _Paging.seen.append(self.headers.get("Host"))
        body = json.dumps({"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "ImagingStudy"}}],
                           "link": [{"relation": "next", "url": "http://127.0.0.2:9/ImagingStudy?page=2"}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        """Quiet."""


def test_a_paging_link_to_another_host_is_not_followed():
    """Finding 7: search followed `next` to any host, with the FHIR token."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Paging)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        with FhirClient(f"http://127.0.0.1:{server.server_address[1]}") as client, \
                pytest.raises(FhirUrlRefused, match=r"127\.0\.0\.2"):
            client.search("ImagingStudy")
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Paging.seen) == 1


class _Redirecting(BaseHTTPRequestHandler):
    """A Storage endpoint that redirects every request to another host."""

    seen: typing.ClassVar[list[str]] = []

    def do_GET(self):
        _Redirecting.seen.append(self.path)
        self.send_response(307)
        self.send_header("Location", f"http://127.0.0.2:9{self.path}")
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_a_storage_redirect_to_another_host_is_not_followed():
    """Storage clients have the same host rule as DICOM and FHIR ones: a redirect elsewhere is refused."""
    from azure.storage.queue import QueueClient

    from hdsctl.dataplane import StorageUrlRefused, storage_client
    from hdsctl.retry import Budget

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/devstoreaccount1"
        with storage_client(QueueClient, url, "dicom-events", budget=Budget(2)) as queue, \
                pytest.raises(StorageUrlRefused, match=r"127\.0\.0\.2"):
            queue.peek_messages()
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Redirecting.seen) == 1


@pytest.mark.parametrize("uid", ["1.2/series/3.4", "1.2?x=1", "../../x", "", "1." * 40, "1.2 3"])
def test_a_uid_that_is_not_one_never_reaches_a_url(uid, shared_dicom):
    """Finding 8: UIDs from events and the service went into URLs unescaped."""
    before = len(shared_dicom.requests)
    with DicomClient(shared_dicom.url) as client, pytest.raises(errors.InvalidUid, match="not a DICOM UID"):
        client.retrieve_metadata(uid)
    assert len(shared_dicom.requests) == before


def test_a_storage_token_goes_only_to_storage_hosts(run_cli):
    """Finding 9: `events tail --queue-url` sent a Storage token to any host."""
    for url in ("https://collector.example.com", "http://10.0.0.5:10001/devstoreaccount1"):
        code, _, err = run_cli("--stacks-dir", str(STACKS), "events", "tail", "--stack", "local",
                               "--queue-url", url)
        assert code == EXIT_BAD_INPUT and ("Storage" in err or "http" in err) and "Traceback" not in err


@pytest.mark.parametrize("path", ["/v2/studies/../../system", "/v2/studies/1.2/../../../tools/log-level",
                                  "/v2/studies/1.2/series/3.4/instances/5.6/file", "/v2/studies/%2e%2e/x"])
def test_the_local_service_forwards_only_dicomweb_routes(path, shared_dicom):
    """Finding 9: the local front forwarded `/v2/studies/../../x` to Orthanc's own REST API."""
    import http.client

    host, port = shared_dicom.url.split("://")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", path)
    answer = connection.getresponse()
    body = answer.read().decode()
    assert answer.status == 400 and "not a DICOMweb route" in body


def test_the_engine_loopback_shim_is_not_preloaded_from_a_folder_others_can_write(tmp_path, monkeypatch):
    """Finding 9: the shim was preloaded from a cache folder without an owner or mode check."""
    pytest.importorskip("hdsctl.emulator.orthanc")
    import shutil

    from hdsctl.emulator.orthanc import loopback_shim

    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("needs a C compiler to build the shim")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = tmp_path / "hdsctl"
    built = loopback_shim()
    assert built.parent == cache
    cache.chmod(0o777)  # anyone could have swapped the library
    elsewhere = loopback_shim()
    assert elsewhere.parent != cache and not elsewhere.parent.stat().st_mode & 0o022


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _started_orthanc(emulator, url_file: Path) -> tuple[int, Path]:
    """The Orthanc process of a starting `hdsctl emulator`, and its working folder."""
    deadline = time.monotonic() + 30
    while not url_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    engine = next(pid for pid in _children(emulator.pid)
                  if b"Orthanc" in Path(f"/proc/{pid}/cmdline").read_bytes())
    return engine, Path(Path(f"/proc/{engine}/cmdline").read_bytes().split(b"\0")[1].decode()).parent


def test_engines_and_their_folders_go_when_the_emulator_is_killed(tmp_path):
    """Finding 13: `kill -9` of the emulator left Orthanc running and its folder behind;
    Finding 16: the url-file stayed behind after a stop."""
    from hdsctl.emulator.orthanc import DICOMWEB_PLUGIN

    if not DICOMWEB_PLUGIN.exists():
        pytest.skip("needs the local DICOM engine (Orthanc)")
    url_file = tmp_path / "urls.json"
    command = [sys.executable, "-m", "hdsctl.cli", "emulator", "--port", "0", "--url-file", str(url_file)]
    for how in (signal.SIGTERM, signal.SIGKILL):
        emulator = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        engine, work = _started_orthanc(emulator, url_file)
        assert work.is_dir()
        emulator.send_signal(how)
        emulator.wait(timeout=30)
        deadline = time.monotonic() + 15
        while (_alive(engine) or work.exists()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(engine) and not work.exists(), how
        if how == signal.SIGTERM:
            assert not url_file.exists()
        url_file.unlink(missing_ok=True)


def test_an_engine_that_dies_stops_the_emulator_with_its_reason(tmp_path):
    """Finding 13: a dead Orthanc left the emulator answering, with tracebacks in its log."""
    from hdsctl.emulator.orthanc import DICOMWEB_PLUGIN

    if not DICOMWEB_PLUGIN.exists():
        pytest.skip("needs the local DICOM engine (Orthanc)")
    url_file = tmp_path / "urls.json"
    command = [sys.executable, "-m", "hdsctl.cli", "emulator", "--port", "0", "--url-file", str(url_file)]
    emulator = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        engine, work = _started_orthanc(emulator, url_file)
        os.kill(engine, signal.SIGKILL)
        _, err = emulator.communicate(timeout=30)
    finally:
        emulator.kill()
    assert emulator.returncode == 1
    assert "the local DICOM engine (Orthanc) stopped unexpectedly" in err and "Traceback" not in err
    assert not url_file.exists() and not work.exists()


class _Silent:
    """A server that takes connections and requests and never answers."""

    def __init__(self):
        import socket

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.held = []
        threading.Thread(target=self._hold, daemon=True).start()

    def _hold(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self):
        self.listener.close()
        for connection in self.held:
            connection.close()


def test_a_server_that_never_answers_is_given_up_with_the_budget(run_cli):
    """Finding 11: the read timeout stayed 300 s whatever --timeout said, so a server that never
    answered held a run 300 s per try."""
    silent = _Silent()
    outcome = {}

    def sync():
        outcome["result"] = run_cli("--stacks-dir", str(STACKS), "tags", "sync", "--stack", "local",
                                    "--url", silent.url, "--timeout", "1")

    try:
        runner = threading.Thread(target=sync, daemon=True)
        runner.start()
        runner.join(timeout=60)  # not a speed check: a read waiting out 300 s would still be here
        assert not runner.is_alive(), "the command still waits for an answer that never comes"
    finally:
        silent.close()
    code, out, err = outcome["result"]
    assert code != 0 and "Traceback" not in err
    assert "timed out" in (out + err).lower(), (out, err)


def test_an_output_that_is_a_device_or_a_link_is_written_through(tmp_path):
    """Finding 14: write_atomic replaced a device node or a symlink given as --output."""
    import stat

    # As root, a null device of the test's own: a regression must not replace the machine's
    # /dev/null. Others cannot write to /dev, so for them the real one is safe to use.
    device = Path("/dev/null")
    if os.geteuid() == 0:
        device = tmp_path / "null"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    write_atomic(device, "nothing\n")
    assert device.is_char_device() and device.read_bytes() == b""
    target = tmp_path / "report.json"
    target.write_text("old")
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    write_atomic(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    write_atomic(fifo, "through the pipe")
    assert reader.communicate(timeout=10)[0] == b"through the pipe" and fifo.is_fifo()


def test_ipv6_loopback_gets_advice_that_fits(run_cli):
    """Finding 16: --host ::1 advised another port."""
    code, _, err = run_cli("emulator", "--engine", "synthetic", "--host", "::1", "--port", "0")
    assert code == EXIT_BAD_INPUT and "127.0.0.1" in err and "--port" not in err
