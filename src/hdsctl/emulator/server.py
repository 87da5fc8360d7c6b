"""HTTP front of the emulator: the v1/v2 extended-query-tag, operation and QIDO routes,
fault injection, and a small control API under /_emulator for tests."""

from __future__ import annotations

import json
import random
import socket
import ssl
import struct
import threading
import time
from dataclasses import asdict, dataclass, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from hdsctl import naming
from hdsctl.dicom import keys
from hdsctl.dicomtags import DEFAULT_SEARCHABLE, TagRuleError, resolve_path
from hdsctl.emulator.store import ApiError, Knobs, Operation, Store, StoredTag

QIDO_LEVELS = {"studies": {"Study"}, "series": {"Study", "Series"},
               "instances": {"Study", "Series", "Instance"}}
QIDO_RESERVED = {"limit", "offset", "includefield", "fuzzymatching"}


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
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.server.daemon_threads = True
        if tls is not None:  # to see what a client sends where it would send a token
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

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


def _tag_json(tag: StoredTag, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {"path": tag.path, "vr": tag.vr}
    if tag.private_creator:
        body["privateCreator"] = tag.private_creator
    body.update(level=tag.level.lower(), status=tag.status,
                queryStatus="enabled" if tag.query_enabled else "disabled")
    if tag.errors:
        body["errors"] = {"count": len(tag.errors), "href": f"{base}/extendedquerytags/{tag.path}/errors"}
    if tag.operation_id:
        body["operation"] = {"id": tag.operation_id, "href": f"{base}/operations/{tag.operation_id}"}
    return body


def _operation_json(operation: Operation, base: str, version: str) -> dict[str, Any]:
    status = "completed" if (operation.status == "succeeded" and version == "v1") else operation.status
    return {
        "operationId": operation.id, "type": "reindex", "createdTime": operation.created,
        "lastUpdatedTime": operation.updated, "status": status,
        "percentComplete": operation.percent,
        "resources": [f"{base}/extendedquerytags/{path}" for path in operation.tag_paths],
    }


def paging(query: dict[str, str], default_limit: int = 100) -> tuple[int, int]:
    """`limit` and `offset` of a query (lower-cased names), checked as the service checks them."""
    try:
        limit = int(query.get("limit", default_limit))
        offset = int(query.get("offset", 0))
    except ValueError:
        raise ApiError(400, "limit and offset must be integers.") from None
    if not 1 <= limit <= 200 or offset < 0:
        raise ApiError(400, "limit must be between 1 and 200 and offset at least 0.")
    return limit, offset


def default_partition(rest: list[str]) -> list[str]:
    """`partitions/Microsoft.Default/studies/...` → `studies/...`: the local service has the one
    partition every service with partitions has; another name is refused rather than mixed in."""
    if len(rest) < 3 or rest[1] != naming.DEFAULT_PARTITION:
        raise ApiError(404, f"The local service has one data partition, {naming.DEFAULT_PARTITION}.")
    return rest[2:]


def qido_filters(store: Store, resource: str, pairs: list[tuple[str, str]]):
    """The (key, path, value) filters of a QIDO query, checked as the service checks them: an
    attribute must be searchable by default or a ready, enabled extended query tag at a level
    the resource covers. Keys keep their case: DICOM keywords are case-sensitive."""
    headers, filters = {}, []
    with store.lock:
        for key, value in pairs:
            if key.lower() in QIDO_RESERVED:
                continue
            try:
                path = f"{resolve_path(key):08X}"
            except TagRuleError:
                path = key.upper()
            tag = store.tags.get(path)
            if tag is not None:
                if tag.status != "ready" or tag.level not in QIDO_LEVELS[resource]:
                    raise ApiError(400, f"The query tag '{key}' is not queryable.")
                if not tag.query_enabled:
                    raise ApiError(400, f"Query is disabled on specified attribute '{key}'.")
                if tag.errors:
                    headers["erroneous-dicom-attributes"] = key
            elif path not in DEFAULT_SEARCHABLE:
                raise ApiError(400, f"The query parameter '{key}' is not supported.")
            filters.append((key, path, value))
    return filters, headers


# Bodies are read whole: bounded, so a client cannot make the emulator hold gigabytes.
MAX_BODY_BYTES = 1 << 20
MAX_STOW_BYTES = 512 << 20  # STOW bodies hold images; the local service reads each one whole


def knob_problem(name: str, value: Any) -> str | None:
    """Why a knob cannot take `value`, judged by the type its field declares."""
    declared = {f.name: f.type for f in fields(Knobs)}
    if name not in declared:
        return f"unknown knob {name!r} (knobs: {', '.join(sorted(declared))})"
    kind = str(declared[name])
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "float":
        ok = number and value >= 0
    elif kind == "int | None":
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)
    else:  # int
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    if ok and name == "instances_per_second" and value <= 0:
        ok = False
    return None if ok else f"knob {name!r} takes {kind} (>= 0), not {json.dumps(value)}"


def _handler(emulator: Emulator):
    store = emulator.store

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            """Quiet: tests and the CLI read what the emulator saw from `requests`."""

        def setup(self):
            super().setup()
            # Headers and body go out in separate writes: without this, Nagle's algorithm and
            # delayed acknowledgements add 40 ms to every answer.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        # -- answers -------------------------------------------------------------------

        def _answer(self, status: int, body: Any = None, headers: dict | None = None,
                    text: str | None = None) -> None:
            if text is not None:
                payload, kind = text.encode(), "text/plain; charset=utf-8"
            elif body is not None:
                payload, kind = json.dumps(body).encode(), "application/json"
            else:
                payload, kind = b"", None
            self._record(status)
            self.send_response(status)
            if kind:
                self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)

        def _record(self, status: int) -> None:
            seen = getattr(self, "_seen", None)
            if seen is not None:
                seen.status = status

        def _answer_raw(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            self._record(status)
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

        def _discard_body(self) -> None:
            self.rfile.read(self._length())

        def _body(self) -> Any:
            raw = self.rfile.read(self._length())
            try:
                return json.loads(raw or b"null")
            except ValueError:
                raise ApiError(400, "The request body is not valid JSON.") from None

        # -- dispatch ------------------------------------------------------------------

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

        def _dispatch(self, method: str) -> None:
            parts = urlsplit(self.path)
            seen = SeenRequest(method, parts.path, self.headers.get("Authorization"))
            emulator.requests.append(seen)
            self._seen = seen
            pairs = parse_qsl(parts.query)
            query = {k.lower(): v for k, v in pairs}  # paging names are case-insensitive
            try:
                if parts.path.startswith("/_emulator/"):
                    return self._control(method, parts.path)
                if self._injected_fault(method, parts.path):
                    return
                segments = [s for s in parts.path.split("/") if s]
                if not segments or segments[0] not in {"v1", "v2"}:
                    raise ApiError(404, "Unknown route; the API is served under /v1 and /v2.")
                version, rest = segments[0], segments[1:]
                scheme = "https" if emulator.url.startswith("https") else "http"
                base = f"{scheme}://{self.headers.get('Host')}/{version}"
                if emulator.front is not None and rest[:1] == ["partitions"]:
                    rest = default_partition(rest)
                if emulator.front is not None and rest and rest[0] in {"studies", "series", "instances",
                                                                       "changefeed"}:
                    raw = self.rfile.read(self._length(MAX_STOW_BYTES)) if method in {"POST", "PUT"} else b""
                    try:
                        answer = emulator.front.handle(method, base, rest, pairs, self.headers, raw)
                    except OSError as err:  # the engine is gone: answered as Azure does, no traceback
                        raise ApiError(503, f"the local engine did not answer ({err})") from None
                    return self._answer_raw(*answer)
                body = self._body() if method in {"POST", "PATCH"} else None
                seen.body = body
                status, answer, headers = self._route(method, version, base, rest, query, body, pairs)
                if method != "GET" and store.knobs.reset_after_next_write > 0:
                    store.knobs.reset_after_next_write -= 1
                    return self._reset()
                if status == 204 and answer is None:
                    return self._answer(204, headers=headers)
                return self._answer(status, answer, headers)
            except ApiError as err:
                return self._answer(err.status, headers=err.headers, text=err.message)

        def _injected_fault(self, method: str, path: str) -> bool:
            knobs = store.knobs
            if knobs.fail_dependency_next > 0:
                knobs.fail_dependency_next -= 1
                self._discard_body()
                self._answer(424, text="The storage account or key vault of the service cannot be reached.")
                return True
            if knobs.refuse_rendered and path.endswith("/rendered"):
                self._answer(406, text="The requested DICOM instance is too large to be rendered.")
                return True
            if knobs.latency_ms:
                time.sleep(knobs.latency_ms / 1000)
            if knobs.deny_next > 0:
                knobs.deny_next -= 1
                self._discard_body()
                self._answer(403, text="The caller is not authorized to perform this action.")
                return True
            if knobs.reset_next > 0:
                knobs.reset_next -= 1
                self._discard_body()
                self._reset()
                return True
            for status, burst, chance in ((503, "burst_503", knobs.chance_503),
                                          (429, "burst_429", knobs.chance_429)):
                if getattr(knobs, burst) > 0 or (chance and emulator.random.random() < chance):
                    if getattr(knobs, burst) > 0:
                        setattr(knobs, burst, getattr(knobs, burst) - 1)
                    self._discard_body()
                    text = "Too many requests." if status == 429 else "The server is busy (deadlock)."
                    after = ({"Retry-After": str(knobs.retry_after)}
                             if status == 429 and knobs.retry_after is not None else None)
                    self._answer(status, text=text, headers=after)
                    return True
            return False

        def _route(self, method, version, base, rest, query, body, pairs):
            if rest == ["extendedquerytags"]:
                if method == "GET":
                    limit, offset = paging(query)
                    with store.lock:
                        tags = list(store.tags.values())[offset:offset + limit]
                        return 200, [_tag_json(t, base) for t in tags], None
                if method == "POST":
                    operation = store.add(body, lambda op_id: f"{base}/operations/{op_id}")
                    href = f"{base}/operations/{operation.id}"
                    return 202, {"id": operation.id, "href": href}, {"Location": href}
            if len(rest) == 2 and rest[0] == "extendedquerytags":
                if method == "GET":
                    with store.lock:
                        return 200, _tag_json(store.find(rest[1]), base), None
                if method == "PATCH":
                    return 200, _tag_json(store.set_query_status(rest[1], body), base), None
                if method == "DELETE":
                    store.delete(rest[1])
                    return 204, None, None
            if len(rest) == 3 and rest[0] == "extendedquerytags" and rest[2] == "errors" and method == "GET":
                limit, offset = paging(query)
                with store.lock:
                    return 200, store.find(rest[1]).errors[offset:offset + limit], None
            if len(rest) == 2 and rest[0] == "operations" and method == "GET":
                with store.lock:
                    operation = store.operations.get(rest[1].replace("-", "").lower())
                    if operation is None:
                        raise ApiError(404, "")
                    body = _operation_json(operation, base, version)
                    if operation.status in {"notStarted", "running"}:
                        return 202, body, {"Location": f"{base}/operations/{operation.id}"}
                    return 200, body, None
            if len(rest) == 1 and rest[0] in QIDO_LEVELS and method == "GET":
                return self._qido(rest[0], pairs)
            raise ApiError(404 if method == "GET" else 405, f"{method} /{'/'.join(rest)} is not served.")

        def _qido(self, resource: str, pairs: list[tuple[str, str]]):
            filters, headers = qido_filters(store, resource, pairs)
            with store.lock:
                matches = [i for i in store.instances if all(i.values.get(p) == v for _, p, v in filters)]
            seen = {}
            for instance in matches:
                seen.setdefault(instance.uid_at(resource), instance)
            if not seen:
                return 204, None, headers
            answer = [{keys.STUDY_INSTANCE_UID: {"vr": "UI", "Value": [i.study_uid]},
                       keys.SERIES_INSTANCE_UID: {"vr": "UI", "Value": [i.series_uid]},
                       keys.SOP_INSTANCE_UID: {"vr": "UI", "Value": [i.sop_uid]}} for i in seen.values()]
            return 200, answer, headers

        def _control(self, method: str, path: str):
            if path == "/_emulator/knobs" and method == "POST":
                body = self._body()
                if not isinstance(body, dict):
                    raise ApiError(400, "knobs are a JSON object of name: value")
                problems = [problem for name, value in body.items() if (problem := knob_problem(name, value))]
                if problems:
                    raise ApiError(400, "; ".join(problems))
                for name, value in body.items():
                    setattr(store.knobs, name, value)
                return self._answer(200, asdict(store.knobs))
            if path == "/_emulator/bad-values" and method == "POST":
                body = self._body()
                if not isinstance(body, dict) or not all(
                        isinstance(count, int) and not isinstance(count, bool) and count >= 0
                        for count in body.values()):
                    raise ApiError(400, "bad-values is a JSON object of tag path: count (a whole number >= 0)")
                for tag_path, count in body.items():
                    store.mark_bad_values(tag_path, count)
                return self._answer(204)
            if path == "/_emulator/state" and method == "GET":
                with store.lock:
                    return self._answer(200, {
                        "instances": len(store.instances), "knobs": asdict(store.knobs),
                        "tags": len(store.tags), "operations": len(store.operations),
                        "requests": len(emulator.requests)})
            raise ApiError(404, "unknown control route")

    return Handler
