"""The local service's HTTP front: framing and bounds of every request, the DICOMweb front
(with an engine) or the tag API's route table, injected faults, and the control routes under
/_emulator."""

from __future__ import annotations

import json
import random
import socket
import ssl
import struct
import threading
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from hdsctl.emulator import control, tag_api
from hdsctl.emulator.loopback import QuietHandler
from hdsctl.emulator.queries import default_partition
from hdsctl.emulator.store import ApiError, Knobs, Store

# Bodies are read whole: bounded, so a client cannot make the emulator hold gigabytes.
MAX_BODY_BYTES = 1 << 20
MAX_STOW_BYTES = 512 << 20  # STOW bodies hold images; the local service reads each one whole
DICOMWEB_ROOTS = {"studies", "series", "instances", "changefeed"}


@dataclass
class SeenRequest:
    method: str
    path: str
    authorization: str | None
    body: Any = None
    status: int | None = None  # what the emulator answered


class Emulator:
    """Run with `with Emulator(...) as emu:`; `emu.url` is the service URL (no version)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, instances: int = 2000,
                 seed: int = 7, knobs: Knobs | None = None, tls: ssl.SSLContext | None = None,
                 engine=None, events=None):
        # With an engine (hdsctl.emulator.orthanc), instances are the ones really stored.
        self.store = Store.seeded(0 if engine is not None else instances, seed)
        self.engine = engine
        self.events = events  # an EventPublisher (hdsctl.emulator.events), with an engine
        self.front = None
        if knobs is not None:
            self.store.knobs = knobs
        self.requests: list[SeenRequest] = []
        self.random = random.Random(seed)
        self.server = ThreadingHTTPServer((host, port), type("Handler", (_Handler,), {"emulator": self}))
        self.server.daemon_threads = True
        if tls is not None:  # to see what a client sends where it would send a token
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://{host}:{self.server.server_address[1]}"
        # Polled every 50 ms for shutdown (0.5 s by default): stopping is quick
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def knobs(self) -> Knobs:
        return self.store.knobs

    def start(self) -> Emulator:
        if self.engine is not None:
            from hdsctl.emulator.dicomweb import DicomWebFront

            try:
                self.engine.start()
                self.front = DicomWebFront(self.engine, self.store, self.events)
                self.front.start()
            except BaseException:
                self.engine.stop()
                self.server.server_close()
                raise
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        if self.front is not None:
            self.front.stop()
        if self.engine is not None:
            self.engine.stop()
        if self.events is not None:
            self.events.stop()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def data_requests(self, *methods: str) -> list[SeenRequest]:
        wanted = {m.upper() for m in methods}
        return [r for r in self.requests
                if not r.path.startswith("/_emulator") and (not wanted or r.method in wanted)]


class _Handler(QuietHandler):
    """One request: framed and bounded, then answered by a fault, the control routes, the
    DICOMweb front or the tag API. `emulator` is set on a subclass per Emulator."""

    emulator: Emulator

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PUT(self):
        self._dispatch("PUT")

    # -- dispatch ----------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        self._seen = SeenRequest(method, parts.path, self.headers.get("Authorization"))
        self.emulator.requests.append(self._seen)
        try:
            if parts.path.startswith("/_emulator/"):
                return self._control(method, parts.path)
            fault = control.injected_fault(self.emulator.store.knobs, self.emulator.random.random, parts.path)
            if fault is not None:
                return self._fault(fault)
            segments = [s for s in parts.path.split("/") if s]
            if not segments or segments[0] not in {"v1", "v2"}:
                raise ApiError(404, "Unknown route; the API is served under /v1 and /v2.")
            version, rest = segments[0], segments[1:]
            scheme = "https" if self.emulator.url.startswith("https") else "http"
            base = f"{scheme}://{self.headers.get('Host')}/{version}"
            pairs = parse_qsl(parts.query)
            front = self.emulator.front
            if front is not None and rest[:1] == ["partitions"]:
                rest = default_partition(rest)
            if front is not None and rest[:1] and rest[0] in DICOMWEB_ROOTS:
                return self._dicomweb(method, base, rest, pairs)
            query = {k.lower(): v for k, v in pairs}  # paging names are case-insensitive
            body = self._body() if method in {"POST", "PATCH"} else None
            self._tag_api(tag_api.ApiRequest(method, version, base, rest, query, pairs, body))
        except ApiError as err:
            self._answer(err.status, headers=err.headers, text=err.message)

    def _dicomweb(self, method: str, base: str, rest: list[str], pairs: list[tuple[str, str]]) -> None:
        raw = self.rfile.read(self._length(MAX_STOW_BYTES)) if method in {"POST", "PUT"} else b""
        try:
            answer = self.emulator.front.handle(method, base, rest, pairs, self.headers, raw)
        except OSError as err:  # the engine is gone: answered as Azure does, no traceback
            raise ApiError(503, f"the local engine did not answer ({err})") from None
        self._answer_raw(*answer)

    def _tag_api(self, request: tag_api.ApiRequest) -> None:
        self._seen.body = request.body
        status, answer, headers = tag_api.route(self.emulator.store, request)
        knobs = self.emulator.store.knobs
        if request.method != "GET" and knobs.reset_after_next_write > 0:
            knobs.reset_after_next_write -= 1
            return self._reset()
        self._answer(status, answer, headers)

    def _control(self, method: str, path: str) -> None:
        answer = control.ROUTES.get((method, path))
        if answer is None:
            raise ApiError(404, "unknown control route")
        body = self._body() if method == "POST" else None
        status, payload = answer(self.emulator.store, body, len(self.emulator.requests))
        self._answer(status, payload)

    def _fault(self, fault: control.Fault) -> None:
        if fault.discard_body:
            self.rfile.read(self._length())
        if fault.status is None:
            return self._reset()
        self._answer(fault.status, headers=fault.headers, text=fault.text)

    # -- reading -----------------------------------------------------------------------

    def _length(self, limit: int = MAX_BODY_BYTES) -> int:
        if self.headers.get("Transfer-Encoding") and self.headers.get("Content-Length"):
            self.close_connection = True  # RFC 9112: a request framed two ways is refused
            raise ApiError(400, "The request has both Transfer-Encoding and Content-Length.")
        text = self.headers.get("Content-Length") or "0"
        if not text.isdigit():
            self.close_connection = True  # the rest of the stream cannot be trusted
            raise ApiError(400, f"Content-Length {text!r} is not a byte count.")
        length = int(text)
        if length > limit:
            self.close_connection = True
            raise ApiError(413, f"The request body is {length} bytes; at most {limit} are taken.")
        return length

    def _body(self) -> Any:
        raw = self.rfile.read(self._length())
        try:
            return json.loads(raw or b"null")
        except ValueError:
            raise ApiError(400, "The request body is not valid JSON.") from None

    # -- answers -----------------------------------------------------------------------

    def _answer(self, status: int, body: Any = None, headers: dict | None = None,
                text: str | None = None) -> None:
        if text is not None:
            payload, kind = text.encode(), "text/plain; charset=utf-8"
        elif body is not None:
            payload, kind = json.dumps(body).encode(), "application/json"
        else:
            payload, kind = b"", None
        self._answer_raw(status, {"Content-Type": kind, **(headers or {})} if kind else dict(headers or {}),
                         payload)

    def _answer_raw(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self._seen.status = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _reset(self) -> None:
        """Drop the connection with a TCP reset, as a failing network would."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()
