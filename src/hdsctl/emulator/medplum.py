"""FHIR on the local platform from an engine no one here wrote: Medplum's FHIR router with its
in-memory repository (npm, pinned in tools/medplum), on loopback, behind a thin front.

The engine does the FHIR R4 work: create, read, update and delete, If-Match (412 on a stale
version), conditional create (several matches: 412), search by token, transactions. The front
adds only what Azure's FHIR service does differently and the linker relies on:
- version ids are whole numbers counting up from 1 per resource (Azure's FHIR service answers
  `meta.versionId` "1", "2", ... and `ETag: W/"<n>"`; Medplum uses UUIDs): translated both ways,
  in `If-Match` headers, transaction entries' `request.ifMatch` and `_history/<n>` reads;
- a transaction with a failing entry fails as a whole, with that entry's status;
- an OperationOutcome's issues carry `diagnostics` (Medplum writes `details.text`);
- a resource that is not valid FHIR is refused with 400 before the engine sees it (FHIR R4
  http.html: "400 Bad Request - resource could not be parsed or failed basic FHIR validation
  rules"; Medplum's in-memory repository stores it), each resource of a transaction too, checked
  with fhir.resources' models (R4B: the same as R4 for these resources);
- an update that creates the resource answers 201 Created (FHIR R4 http.html#update; Medplum
  answers 200);
and the hooks the tests steer it with: `fail_next(status, count)`, `requests`, `statuses`,
`resources(kind)`.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import shutil
import socket
import threading
from pathlib import Path

from hdsctl.emulator.loopback import FhirHandler, FhirHooks, LoopbackServer
from hdsctl.emulator.process import EngineUnavailable, LocalProcess, free_port

TOOLS = Path(__file__).resolve().parents[3] / "tools" / "medplum"
MAX_BODY = 32 << 20
ETAG = re.compile(r'W/"([^"]+)"')


class MedplumEngine:
    def __init__(self):
        self.port = 0
        self._process = LocalProcess("Medplum")

    def start(self) -> MedplumEngine:
        node = shutil.which("node")
        if node is None or not (TOOLS / "node_modules" / "@medplum" / "fhir-router").is_dir():
            raise EngineUnavailable("the local FHIR engine needs Node.js and Medplum: run scripts/bootstrap "
                                    "(npm ci --prefix tools/medplum)")
        self.port = free_port()
        self._process.start([node, str(TOOLS / "server.mjs"), str(self.port)], ready=self._accepts,
                            ports=[self.port], cwd=TOOLS)
        return self

    def _accepts(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            return True
        return False

    def stop(self) -> None:
        self._process.stop()


class Versions:
    """Medplum's version UUIDs ↔ Azure's whole numbers, per resource, in the order seen."""

    def __init__(self):
        self._by_resource: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def number(self, key: str, version: str) -> str:
        with self._lock:
            seen = self._by_resource.setdefault(key, [])
            if version not in seen:
                seen.append(version)
            return str(seen.index(version) + 1)

    def engine_version(self, key: str, number: str) -> str:
        with self._lock:
            seen = self._by_resource.get(key, [])
            return seen[int(number) - 1] if number.isdigit() and 0 < int(number) <= len(seen) else number

    def outward(self, value):
        """Every resource in an answer (bundles included) with its version as a number."""
        if isinstance(value, dict):
            if isinstance(value.get("meta"), dict) and value.get("id") and value.get("resourceType"):
                version = value["meta"].get("versionId")
                if version:
                    value["meta"]["versionId"] = self.number(f"{value['resourceType']}/{value['id']}", version)
            for inner in value.values():
                self.outward(inner)
        elif isinstance(value, list):
            for inner in value:
                self.outward(inner)
        return value

    def inward_if_match(self, key: str, header: str | None) -> str | None:
        match = ETAG.fullmatch(header or "")
        return f'W/"{self.engine_version(key, match[1])}"' if match else header


class LocalFhir(LoopbackServer, FhirHooks):
    """Run with `with LocalFhir() as fhir:`; `fhir.url` is the FHIR base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, engine: MedplumEngine | None = None):
        """With `engine` (one already running, shared), it is emptied first and left running."""
        self.engine = engine or MedplumEngine()
        self._own_engine = engine is None
        self.versions = Versions()
        FhirHooks.__init__(self)
        LoopbackServer.__init__(self, _front(self), host, port)

    def start(self) -> LocalFhir:
        try:
            if self._own_engine:
                self.engine.start()
            else:
                self.exchange("POST", "/$local-reset", b"", {})
        except BaseException:
            self.server.server_close()
            raise
        return super().start()

    def stop(self) -> None:
        super().stop()
        if self._own_engine:
            self.engine.stop()

    def resources(self, kind: str) -> list[dict]:
        """Every current resource of a type, as the engine holds it (versions as numbers)."""
        _, _, body = self.exchange("GET", f"/{kind}?_count=1000", b"", {})
        bundle = json.loads(body)
        return [entry["resource"] for entry in bundle.get("entry") or [] if "resource" in entry]

    def exchange(self, method: str, target: str, body: bytes, headers: dict[str, str]):
        connection = http.client.HTTPConnection("127.0.0.1", self.engine.port, timeout=60)
        try:
            connection.request(method, target, body=body or None, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            kept = {k: v for k, v in answer.getheaders() if k.lower() in {"content-type", "location"}}
            status = answer.status
            if payload and "json" in kept.get("Content-Type", ""):
                document = _with_diagnostics(self.versions.outward(json.loads(payload)))
                status, document = _all_or_nothing(status, document)
                version = (document.get("meta") or {}).get("versionId") if isinstance(document, dict) else None
                if version:
                    kept["ETag"] = f'W/"{version}"'
                    if method == "PUT" and status == 200 and version == "1":
                        status = 201  # the update created it
                payload = json.dumps(document).encode()
            return status, kept, payload
        finally:
            connection.close()

    def inward_target(self, target: str) -> str:
        """`<Type>/<id>/_history/<n>`: the version number back to the engine's id."""
        path, mark, query = target.partition("?")
        parts = path.strip("/").split("/")
        if len(parts) == 4 and parts[2] == "_history":
            parts[3] = self.versions.engine_version("/".join(parts[:2]), parts[3])
            path = "/" + "/".join(parts)
        return path + mark + query

    def inward(self, method: str, path: str, headers, raw: bytes) -> tuple[dict[str, str], bytes]:
        """The request as the engine wants it: version numbers back to the engine's ids."""
        sent = {k: v for k, v in headers.items() if k.lower() in {"content-type", "accept", "if-none-exist",
                                                                   "prefer"}}
        key = "/".join(path.strip("/").split("/")[:2])
        if headers.get("If-Match"):
            sent["If-Match"] = self.versions.inward_if_match(key, headers["If-Match"])
        if raw and method == "POST" and path.strip("/") == "":
            bundle = json.loads(raw)
            for entry in bundle.get("entry") or [] if isinstance(bundle, dict) else []:
                request = entry.get("request") or {}
                if request.get("ifMatch"):
                    target = "/".join(str(request.get("url", "")).split("?")[0].strip("/").split("/")[:2])
                    request["ifMatch"] = self.versions.inward_if_match(target, request["ifMatch"])
            raw = json.dumps(bundle).encode()
        return sent, raw


def refused(method: str, path: str, raw: bytes) -> dict | None:
    """The OperationOutcome of a body Azure's FHIR service refuses with 400 (not JSON, a type it
    does not know, a resource the R4 models reject), each resource of a transaction too; None
    when the engine may have it."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    if method not in {"POST", "PUT"} or not raw:
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return _outcome("structure", "the body is not JSON")
    bundle = path.strip("/") == "" and isinstance(document, dict) and document.get("resourceType") == "Bundle"
    resources = ([entry.get("resource") for entry in document.get("entry") or [] if entry.get("resource")]
                 if bundle else [document])
    for resource in resources:
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        try:
            model = get_fhir_model_class(str(kind))
        except (KeyError, ValueError):
            return _outcome("not-supported", f"unknown resource type {kind!r}")
        try:
            model.model_validate(resource)
        except ValidationError as err:
            first = err.errors()[0]
            return _outcome("invalid", f"invalid {kind}: {'.'.join(map(str, first['loc']))}: {first['msg']}")
    return None


def _outcome(code: str, diagnostics: str) -> dict:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]}


def _with_diagnostics(document):
    """Azure's FHIR service says what went wrong in each issue's `diagnostics`; Medplum in
    `details.text`. The front gives both."""
    if isinstance(document, dict) and document.get("resourceType") == "OperationOutcome":
        for issue in document.get("issue") or []:
            text = (issue.get("details") or {}).get("text")
            if text and not issue.get("diagnostics"):
                issue["diagnostics"] = text
    return document


def _all_or_nothing(status: int, document):
    """Azure's FHIR service answers a transaction with a failing entry as a failure (the entry's
    status and outcome); Medplum's in-memory repository answers 200 with the failure inside. The
    front answers as Azure does; it cannot undo entries the engine applied before the failing one
    (the linker's bundles put their only conditional write, the ImagingStudy's, last)."""
    if not (isinstance(document, dict) and document.get("type") == "transaction-response"):
        return status, document
    for entry in document.get("entry") or []:
        response = entry.get("response") or {}
        code = str(response.get("status", "200")).split()[0]
        if code.isdigit() and int(code) >= 400:
            return int(code), response.get("outcome") or {"resourceType": "OperationOutcome", "issue": []}
    return status, document


def _front(fhir: LocalFhir):
    class Front(FhirHandler):
        def _serve(self, method: str) -> None:
            path = self.path.split("?", 1)[0]
            fhir.requests.append((method, path))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if 0 < length <= MAX_BODY else b""
            if fhir._failures:
                status = fhir._failures.pop(0)
                payload = json.dumps(_outcome("transient", f"injected failure {status}")).encode()
                headers = {"Content-Type": "application/fhir+json"}
            elif (outcome := refused(method, path, raw)) is not None:
                status, headers = 400, {"Content-Type": "application/fhir+json"}
                payload = json.dumps(outcome).encode()
            else:
                sent, raw = fhir.inward(method, path, self.headers, raw)
                status, headers, payload = fhir.exchange(method, fhir.inward_target(self.path), raw, sent)
            self._reply(status, headers, payload)

    return type("Front", (Front,), {"hooks": fhir})
