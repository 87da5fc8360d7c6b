"""A local FHIR R4 stand-in: the HTTP rules the linker relies on, and nothing else.

No FHIR server is packaged for these machines, so this keeps to the parts of the FHIR R4 REST
specification (http://hl7.org/fhir/R4/http.html) the linker uses, and checks every resource it
stores with fhir.resources (the R4B models: ImagingStudy, Patient, Endpoint and Bundle are the
same in R4 and R4B):

- create, read, versioned read (`_history/<v>`), history, update and delete, each answer with
  `ETag: W/"<versionId>"` and `meta.versionId`/`meta.lastUpdated`;
- `If-Match` on update and delete: a stale version is 412 Precondition Failed;
- conditional create (`If-None-Exist`, and `ifNoneExist` in a transaction): no match creates,
  one match is answered 200 with the existing resource, several are 412;
- search by `identifier` (token: `system|value`, `|value`, `value`) and `_id`;
- transaction bundles, all or nothing, processed in the specification's order (DELETE, POST,
  PUT, GET), with `urn:uuid:` full URLs resolved in every reference of the bundle.

`fail_next(status, count)` answers the next requests with an error (for retries and a
message that must stay on its queue); `requests` records what was asked.
"""

from __future__ import annotations

import copy
import datetime
import itertools
import json
import threading
from urllib.parse import parse_qs, urlsplit

from hdsctl.emulator.loopback import FhirHandler, FhirHooks, LoopbackServer

TRANSACTION_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
MAX_BODY = 32 << 20


class FhirProblem(Exception):
    def __init__(self, status: int, message: str, code: str = "processing"):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code

    def outcome(self) -> dict:
        return {"resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": self.code, "diagnostics": self.message}]}


def check_resource(resource: dict) -> None:
    """Refuse what an R4 server would refuse: an unknown type or an invalid resource."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    try:
        model = get_fhir_model_class(str(kind))
    except (KeyError, ValueError) as err:
        raise FhirProblem(400, f"unknown resource type {kind!r}", "not-supported") from err
    try:
        model.model_validate(resource)
    except ValidationError as err:
        raise FhirProblem(400, f"invalid {kind}: {err.errors()[0]['loc']}: {err.errors()[0]['msg']}",
                          "invalid") from None


def _version_of(header: str | None) -> str | None:
    if not header:
        return None
    return header.strip().removeprefix("W/").strip('"')


class FhirStore:
    def __init__(self):
        self.versions: dict[tuple[str, str], list[dict | None]] = {}  # None: a deletion
        self.lock = threading.RLock()
        self._ids = itertools.count(1)
        self.undo: list[tuple[tuple[str, str], int]] | None = None  # during a transaction

    def _remember(self, key: tuple[str, str]) -> None:
        if self.undo is not None:
            self.undo.append((key, len(self.versions.get(key, []))))

    def roll_back(self) -> None:
        for key, length in reversed(self.undo or []):
            if length:
                del self.versions[key][length:]
            else:
                self.versions.pop(key, None)

    def current(self, kind: str, resource_id: str) -> dict | None:
        history = self.versions.get((kind, resource_id))
        return history[-1] if history else None

    def search(self, kind: str, params: dict[str, list[str]]) -> list[dict]:
        found = [r for (k, _), history in self.versions.items() if k == kind and (r := history[-1]) is not None]
        for name, values in params.items():
            if name.startswith("_") and name != "_id":
                continue
            found = [r for r in found if any(_matches(r, name, value) for value in values)]
        return found

    def write(self, kind: str, resource_id: str | None, resource: dict) -> tuple[dict, bool]:
        check_resource(resource)
        if resource.get("resourceType") != kind:
            raise FhirProblem(400, f"a {resource.get('resourceType')} sent to the {kind} endpoint")
        resource_id = resource_id or str(next(self._ids))
        self._remember((kind, resource_id))
        history = self.versions.setdefault((kind, resource_id), [])
        stored = copy.deepcopy(resource)
        stored["id"] = resource_id
        stored["meta"] = {**(stored.get("meta") or {}), "versionId": str(len(history) + 1),
                          "lastUpdated": datetime.datetime.now(datetime.UTC).isoformat()}
        created = not history or history[-1] is None
        history.append(stored)
        return stored, created

    def delete(self, kind: str, resource_id: str) -> None:
        history = self.versions.get((kind, resource_id))
        if history and history[-1] is not None:
            self._remember((kind, resource_id))
            history.append(None)


def _matches(resource: dict, name: str, value: str) -> bool:
    if name == "_id":
        return resource.get("id") == value
    if name == "identifier":
        system, bar, code = value.rpartition("|")
        return any((not bar or (identifier.get("system") or "") == system) and identifier.get("value") == code
                   for identifier in resource.get("identifier") or [])
    raise FhirProblem(400, f"search parameter {name!r} is not supported here", "not-supported")


class FhirStandIn(LoopbackServer, FhirHooks):
    """`with FhirStandIn() as fhir:` — `fhir.url` is the service base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.store = FhirStore()
        FhirHooks.__init__(self)
        LoopbackServer.__init__(self, _handler(self), host, port)

    def resources(self, kind: str) -> list[dict]:
        with self.store.lock:
            return self.store.search(kind, {})

    # -- the interactions ----------------------------------------------------------------

    def interact(self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str],
                 body: dict | None) -> tuple[int, dict | None, dict[str, str]]:
        parts = [p for p in path.split("/") if p]
        with self.store.lock:
            if method == "POST" and not parts:
                return self._bundle(body)
            return self._one(method, parts, query, headers, body)

    def _one(self, method, parts, query, headers, body):
        store = self.store
        if method == "GET" and len(parts) == 1:
            return 200, _searchset(self.url, store.search(parts[0], query)), {}
        if method == "GET" and len(parts) in (2, 3, 4):
            kind, resource_id = parts[0], parts[1]
            history = store.versions.get((kind, resource_id))
            if not history:
                raise FhirProblem(404, f"{kind}/{resource_id} is not known", "not-found")
            if len(parts) == 3 and parts[2] == "_history":
                return 200, _history_bundle(self.url, kind, resource_id, history), {}
            if len(parts) == 4 and parts[2] == "_history":
                index = int(parts[3]) - 1 if parts[3].isdigit() else -1
                version = history[index] if 0 <= index < len(history) else None
                if version is None:
                    raise FhirProblem(404, f"{kind}/{resource_id} has no version {parts[3]}", "not-found")
                return 200, version, _etag(version)
            if history[-1] is None:
                raise FhirProblem(410, f"{kind}/{resource_id} was deleted", "deleted")
            return 200, history[-1], _etag(history[-1])
        if method == "POST" and len(parts) == 1:
            return self._create(parts[0], body, headers.get("if-none-exist"))
        if method == "PUT" and len(parts) == 2:
            return self._update(parts[0], parts[1], body, headers.get("if-match"))
        if method == "DELETE" and len(parts) == 2:
            current = store.current(parts[0], parts[1])
            wanted = _version_of(headers.get("if-match"))
            if wanted and (current is None or current["meta"]["versionId"] != wanted):
                raise FhirProblem(412, f"{parts[0]}/{parts[1]} is not at version {wanted}", "conflict")
            store.delete(parts[0], parts[1])
            return 204, None, {}
        raise FhirProblem(405 if method not in ("GET", "POST", "PUT", "DELETE") else 400,
                          f"{method} /{'/'.join(parts)} is not served here", "not-supported")

    def _create(self, kind: str, body, condition: str | None):
        if condition:
            matches = self.store.search(kind, parse_qs(condition))
            if len(matches) > 1:
                raise FhirProblem(412, f"{len(matches)} {kind} resources match {condition}", "multiple-matches")
            if matches:
                return 200, matches[0], {**_etag(matches[0]), "Location": _location(matches[0])}
        stored, _ = self.store.write(kind, None, body)
        return 201, stored, {**_etag(stored), "Location": _location(stored)}

    def _update(self, kind: str, resource_id: str, body, if_match: str | None):
        current = self.store.current(kind, resource_id)
        wanted = _version_of(if_match)
        if wanted and (current is None or current["meta"]["versionId"] != wanted):
            have = current["meta"]["versionId"] if current else "none"
            raise FhirProblem(412, f"{kind}/{resource_id} is at version {have}, not {wanted}", "conflict")
        if (body or {}).get("id") not in (None, resource_id):
            raise FhirProblem(400, f"the body's id {body.get('id')!r} is not {resource_id!r}")
        stored, created = self.store.write(kind, resource_id, body)
        return (201 if created else 200), stored, {**_etag(stored), "Location": _location(stored)}

    def _bundle(self, bundle):
        check_resource(bundle or {})
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "transaction":
            raise FhirProblem(400, "POST / takes a transaction Bundle here", "not-supported")
        entries = bundle.get("entry") or []
        self.store.undo = []  # all or nothing
        try:
            return 200, self._transaction(entries), {}
        except FhirProblem:
            self.store.roll_back()
            raise
        finally:
            self.store.undo = None

    def _transaction(self, entries: list[dict]) -> dict:
        resolved: dict[str, str] = {}
        answers: list[dict | None] = [None] * len(entries)
        order = sorted(range(len(entries)), key=lambda i: TRANSACTION_ORDER.get(
            (entries[i].get("request") or {}).get("method", ""), 9))
        for index in order:
            entry = entries[index]
            request = entry.get("request") or {}
            method, url = request.get("method", ""), request.get("url", "")
            resource = _resolve(copy.deepcopy(entry.get("resource")), resolved)
            target = urlsplit(url)
            headers = {"if-none-exist": request.get("ifNoneExist"), "if-match": request.get("ifMatch")}
            status, answer, answer_headers = self._one(
                method, [p for p in target.path.split("/") if p], parse_qs(target.query),
                {k: v for k, v in headers.items() if v}, resource)
            if entry.get("fullUrl", "").startswith("urn:uuid:") and answer and "id" in answer:
                resolved[entry["fullUrl"]] = f"{answer['resourceType']}/{answer['id']}"
            answers[index] = {"response": {"status": f"{status} {_reason(status)}",
                                           **({"location": answer_headers["Location"]}
                                              if "Location" in answer_headers else {}),
                                           **({"etag": answer_headers["ETag"]}
                                              if "ETag" in answer_headers else {})},
                              **({"resource": answer} if answer is not None else {})}
        # References to resources created later in the processing order are resolved at the end.
        for key, _ in self.store.undo:
            history = self.store.versions.get(key)
            if history and history[-1] is not None:
                history[-1] = _resolve(history[-1], resolved)
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": answers}


def _resolve(value, resolved: dict[str, str]):
    if isinstance(value, dict):
        return {k: (resolved.get(v, v) if k == "reference" and isinstance(v, str) else _resolve(v, resolved))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, resolved) for v in value]
    return value


def _etag(resource: dict) -> dict[str, str]:
    return {"ETag": f'W/"{resource["meta"]["versionId"]}"'}


def _location(resource: dict) -> str:
    return f"{resource['resourceType']}/{resource['id']}/_history/{resource['meta']['versionId']}"


def _reason(status: int) -> str:
    return {200: "OK", 201: "Created", 204: "No Content"}.get(status, "")


def _searchset(base: str, found: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(found),
            "entry": [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r,
                       "search": {"mode": "match"}} for r in found]}


def _history_bundle(base: str, kind: str, resource_id: str, history: list) -> dict:
    entries = []
    for number, version in reversed(list(enumerate(history, start=1))):
        entry = {"fullUrl": f"{base}/{kind}/{resource_id}",
                 "request": {"method": "DELETE" if version is None else "PUT", "url": f"{kind}/{resource_id}"},
                 "response": {"status": "204" if version is None else "200", "etag": f'W/"{number}"'}}
        if version is not None:
            entry["resource"] = version
        entries.append(entry)
    return {"resourceType": "Bundle", "type": "history", "total": len(entries), "entry": entries}


def _handler(stand_in: FhirStandIn):
    class Handler(FhirHandler):
        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            stand_in.requests.append((method, parts.path))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if 0 < length <= MAX_BODY else b""
            try:
                if stand_in._failures:
                    status = stand_in._failures.pop(0)
                    raise FhirProblem(status, f"injected failure {status}", "transient")
                body = json.loads(raw) if raw else None
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer, extra = stand_in.interact(method, parts.path, parse_qs(parts.query), headers,
                                                          body)
            except FhirProblem as problem:
                status, answer, extra = problem.status, problem.outcome(), {}
            except ValueError as err:
                status, answer, extra = 400, FhirProblem(400, f"not JSON: {err}").outcome(), {}
            payload = json.dumps(answer).encode() if answer is not None else b""
            self._reply(status, {"Content-Type": "application/fhir+json", **extra}, payload)

    return type("Handler", (Handler,), {"hooks": stand_in})
