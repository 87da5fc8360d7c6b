"""DICOMweb in front of the local engine, with the Azure DICOM service's semantics where
Orthanc's differ:

- STOW: an instance already stored is FailureReason 45070 on POST (PUT replaces it), a study
  other than the URL's is 43265, a file that is not Part 10, lacks a required UID or uses an
  implicit-VR transfer syntax is 43264; 200 all stored, 202 partly, 409 none. The expiry
  headers (`msdicom-expiry-*`) delete the study when due; a later STOW without them cancels.
  An engine that cannot be reached is a 503.
- QIDO: an attribute that is neither searchable by default nor a ready, enabled extended query
  tag is a 400 naming it; extended query tags are matched on the values indexed at store time.
- DELETE: through the engine's REST API (its DICOMweb DELETE is not served); 404 when absent.
- WADO: forwarded as it is.

Every stored instance is indexed here as well, so a reindex walks what is really stored.
"""

from __future__ import annotations

import datetime
import io
import json
import threading
import time
from urllib.parse import quote

from pydicom.uid import ImplicitVRLittleEndian

from hdsctl.dicom import keys, multipart
from hdsctl.dicom.web import (
    ALREADY_STORED,
    BEING_CREATED,
    PROCESSING_FAILURE,
    STUDY_MISMATCH,
    VALIDATION_FAILED,
    dicom_values,
    first_value,
)
from hdsctl.emulator.events import CREATED, DELETED, Change
from hdsctl.emulator.instances import Instance, index_values
from hdsctl.emulator.orthanc import OrthancEngine
from hdsctl.emulator.part10 import NotPart10, as_part10, read_header, stow_spans
from hdsctl.emulator.queries import dicomweb_route, is_qido, paging, qido_filters
from hdsctl.emulator.store import ApiError, Store

EXPIRY_HEADERS = ("msdicom-expiry-time-milliseconds", "msdicom-expiry-option", "msdicom-expiry-level")


def _item(sop_class: str, sop: str, **extra) -> dict:
    item = {keys.REFERENCED_SOP_CLASS_UID: {"vr": "UI", "Value": [sop_class]},
            keys.REFERENCED_SOP_INSTANCE_UID: {"vr": "UI", "Value": [sop]}}
    for tag, (vr, value) in extra.items():
        item[tag] = {"vr": vr, "Value": [value]}
    return item


def _failed(sop_class: str, sop: str, reason: int, comment: str | None = None) -> dict:
    extra = {keys.FAILURE_REASON: ("US", reason)}
    if comment:
        extra[keys.ERROR_COMMENT] = ("LO", comment[:64])
    return _item(sop_class, sop, **extra)


class DicomWebFront:
    def __init__(self, engine: OrthancEngine, store: Store, events=None):
        self.engine = engine
        self.store = store
        self.events = events  # hdsctl.emulator.events.EventPublisher, when events are on
        self.changes: list[dict] = []  # the change feed, in sequence order
        self.expiry: dict[str, float] = {}  # study UID → time.monotonic() when it is deleted
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep, daemon=True)

    def start(self) -> None:
        """Index what the engine already holds (a kept --data folder), then watch expiry."""
        import pydicom

        for _, payload in self.engine.instance_files():
            dataset = pydicom.dcmread(io.BytesIO(payload), stop_before_pixels=True, force=True)
            self.store.add_instance(self._instance(dataset))
        self._sweeper.start()

    def stop(self) -> None:
        self._stop.set()

    # -- routing -------------------------------------------------------------------------

    def handle(self, method: str, base: str, rest: list[str], pairs: list[tuple[str, str]],
               headers, body: bytes) -> tuple[int, dict[str, str], bytes]:
        if not dicomweb_route(rest):  # nothing else reaches the engine's own REST API
            raise ApiError(400, f"/{'/'.join(rest)[:200]} is not a DICOMweb route of this service.")
        if method in {"POST", "PUT"} and rest[0] == "studies" and len(rest) <= 2:
            return self.stow(method, base, rest[1] if len(rest) == 2 else None, headers, body)
        if method == "DELETE" and rest[0] == "studies" and len(rest) in (2, 4, 6):
            return self.delete(rest)
        if method == "GET" and rest[0] == "changefeed":
            return self.change_feed(rest, pairs)
        if method == "GET" and is_qido(rest):
            return self.qido(rest, pairs)
        if method == "GET" and rest[0] == "studies":
            return self.forward(rest, pairs, headers)
        raise ApiError(405 if method != "GET" else 404, f"{method} /{'/'.join(rest)} is not served.")

    # -- STOW ----------------------------------------------------------------------------

    def stow(self, method: str, base: str, study_in_path: str | None, headers, body: bytes):
        boundary, spans = stow_spans(headers.get("Content-Type", ""), body)
        expiry_ms = _expiry(headers)
        accepted, failed = self._accept(method, study_in_path, body, spans)
        referenced, changes = [], []
        try:
            if accepted:
                whole_body = boundary is not None and len(accepted) == len(spans)
                stored = self._store_accepted(body, boundary if whole_body else None, accepted)
                for _, instance, sop_class in accepted:
                    sop = instance.sop_uid
                    if sop not in stored:
                        failed.append(_failed(sop_class, sop, PROCESSING_FAILURE))
                        continue
                    self.store.add_instance(instance)
                    url = f"{base}/studies/{instance.study_uid}/series/{instance.series_uid}/instances/{sop}"
                    referenced.append(_item(sop_class, sop, **{keys.RETRIEVE_URL: ("UR", url)}))
                    self._schedule(instance.study_uid, expiry_ms)
                    changes.append(instance)
        finally:
            self._announce(CREATED, changes)
            with self._lock:
                self._in_flight -= {instance.sop_uid for _, instance, _ in accepted}
        return _stow_answer(base, study_in_path, referenced, failed)

    def _accept(self, method: str, study_in_path: str | None, body: bytes, spans: list[tuple[int, int]]):
        """Each part checked as the service checks it: (span, instance, SOP class) of those to
        store, and the failure items of the others."""
        accepted, failed = [], []
        for start, end in spans:
            try:
                header = read_header(body, start, end)
            except NotPart10 as err:
                failed.append(_failed("", "", VALIDATION_FAILED, f"not a DICOM Part 10 file: {err}"))
                continue
            dataset = header.dataset
            uids = {name: str(getattr(dataset, name, "") or "") for name in
                    ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")}
            sop, sop_class = uids["SOPInstanceUID"], uids["SOPClassUID"]
            syntax = str(getattr(dataset.file_meta, "TransferSyntaxUID", "") or "")
            if not all(uids.values()) or syntax == ImplicitVRLittleEndian:
                failed.append(_failed(sop_class, sop, VALIDATION_FAILED))
            elif study_in_path and uids["StudyInstanceUID"] != study_in_path:
                failed.append(_failed(sop_class, sop, STUDY_MISMATCH))
            elif method == "POST" and self.store.holds(sop):
                failed.append(_failed(sop_class, sop, ALREADY_STORED))
            elif not self._claim(sop):
                failed.append(_failed(sop_class, sop, BEING_CREATED))
            else:
                instance = Instance(uids["StudyInstanceUID"], uids["SeriesInstanceUID"], sop,
                                    header=body[start:start + header.length])
                accepted.append(((start, end, header.preamble), instance, sop_class))
        return accepted, failed

    def _store_accepted(self, body: bytes, boundary: str | None, accepted: list) -> set[str]:
        """One STOW to the engine: the body as it came when every part is accepted and has its
        preamble (no copy), else a body of the accepted parts, each stored as Part 10."""
        if boundary and all(preamble for (_, _, preamble), _, _ in accepted):
            as_it_came = f'multipart/related; type="application/dicom"; boundary={boundary}'
            return self._store_in_engine(body, as_it_came)
        whole = memoryview(body)
        return self._store_in_engine(*multipart.encode([
            whole[a:b] if preamble else as_part10(whole[a:b], {"MediaStorageSOPClassUID": sop_class,
                                                               "MediaStorageSOPInstanceUID": instance.sop_uid})
            for (a, b, preamble), instance, sop_class in accepted]))

    def _claim(self, sop: str) -> bool:
        with self._lock:
            if sop in self._in_flight:
                return False
            self._in_flight.add(sop)
            return True

    def _store_in_engine(self, body: bytes, content_type: str) -> set[str]:
        """Store a multipart body of accepted instances with one STOW to the engine; the SOP UIDs
        it stored."""
        try:
            status, _, payload = self.engine.request(
                "POST", "/dicom-web/studies", body,
                {"Content-Type": content_type, "Accept": "application/dicom+json"})
        except OSError as err:  # the engine is gone: the service says so, as Azure's does with a 503
            raise ApiError(503, f"the local engine did not store the instances ({err})") from None
        if status >= 500 or not payload:
            raise ApiError(503, f"the local engine did not store the instances ({status})")
        answer = json.loads(payload)
        return {str(first_value(item, keys.REFERENCED_SOP_INSTANCE_UID, ""))
                for item in dicom_values(answer, keys.REFERENCED_SOP_SEQUENCE) if isinstance(item, dict)}

    def _instance(self, dataset) -> Instance:
        return Instance(str(dataset.StudyInstanceUID), str(dataset.SeriesInstanceUID),
                        str(dataset.SOPInstanceUID), index_values(dataset))

    # -- expiry --------------------------------------------------------------------------

    def _schedule(self, study: str, expiry_ms: int | None) -> None:
        with self._lock:
            if expiry_ms is None:
                self.expiry.pop(study, None)  # the last STOW decides
            else:
                self.expiry[study] = time.monotonic() + expiry_ms / 1000

    def _sweep(self) -> None:
        while not self._stop.wait(0.25):
            now = time.monotonic()
            with self._lock:
                due = [study for study, when in self.expiry.items() if when <= now]
            for study in due:
                self._delete_study(study)

    # -- DELETE --------------------------------------------------------------------------

    def delete(self, rest: list[str]):
        study, series, instance = rest[1], _at(rest, 3), _at(rest, 5)
        if study and series is None and instance is None:
            found = self._delete_study(study)
        else:
            level, uid = ("Instance", instance) if instance else ("Series", series)
            found = self._delete_resource(level, uid, study, series)
        if not found:
            raise ApiError(404, "The specified resource was not found.")
        return 204, {}, b""

    def _delete_study(self, study: str) -> bool:
        with self._lock:
            self.expiry.pop(study, None)
        return self._delete_resource("Study", study, study, None)

    def _delete_resource(self, level: str, uid: str, study: str, series: str | None) -> bool:
        def inside(i: Instance) -> bool:
            return (i.study_uid == study and (series is None or i.series_uid == series)
                    and {"Study": i.study_uid, "Series": i.series_uid, "Instance": i.sop_uid}[level] == uid)

        with self.store.lock:
            gone = [i for i in self.store.instances if inside(i)]
        if not gone:
            return False
        for match in self.engine.lookup(uid):
            if match.get("Type") == level:
                self.engine.request("DELETE", f"{match['Path']}")
        self.store.remove_instances(lambda i: not inside(i))
        self._announce(DELETED, gone)
        return True

    # -- events --------------------------------------------------------------------------

    def _announce(self, event_type: str, instances: list[Instance]) -> None:
        """Record the changes in the change feed and, when events are on, publish them."""
        if not instances:
            return
        now = datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")
        action = "Create" if event_type == CREATED else "Delete"
        with self._lock:
            if action == "Delete":  # earlier entries of these instances now describe deleted ones
                gone = {i.sop_uid for i in instances}
                for entry in self.changes:
                    if entry["SopInstanceUid"] in gone:
                        entry["State"] = "Deleted"
            changes = []
            for instance in instances:
                sequence = len(self.changes) + 1
                self.changes.append({
                    "Sequence": sequence, "StudyInstanceUid": instance.study_uid,
                    "SeriesInstanceUid": instance.series_uid, "SopInstanceUid": instance.sop_uid,
                    "Action": action, "Timestamp": now,
                    "State": "Current" if action == "Create" else "Deleted"})
                changes.append(Change(event_type, instance.study_uid, instance.series_uid, instance.sop_uid,
                                      sequence))
        if self.events is not None:
            self.events.publish(changes)

    # -- change feed (v2) ----------------------------------------------------------------

    def change_feed(self, rest: list[str], pairs: list[tuple[str, str]]):
        query = {k.lower(): v for k, v in pairs}
        with self._lock:
            entries = list(self.changes)
        if rest[1:] == ["latest"]:
            latest = entries[-1] if entries else {}
            return 200, {"Content-Type": "application/json"}, json.dumps(latest).encode()
        if len(rest) != 1:
            raise ApiError(404, f"/{'/'.join(rest)} is not served.")
        try:
            limit, offset = int(query.get("limit", 100)), int(query.get("offset", 0))
            start = _instant(query.get("starttime"))
            end = _instant(query.get("endtime"))
        except ValueError as err:
            raise ApiError(400, f"invalid change feed query: {err}") from None
        if not 1 <= limit <= 200 or offset < 0:
            raise ApiError(400, "limit must be 1 to 200 and offset 0 or more")
        window = [e for e in entries if (start is None or _instant(e["Timestamp"]) >= start)
                  and (end is None or _instant(e["Timestamp"]) < end)]
        return 200, {"Content-Type": "application/json"}, json.dumps(window[offset:offset + limit]).encode()

    # -- QIDO ----------------------------------------------------------------------------

    def qido(self, rest: list[str], pairs: list[tuple[str, str]]):
        resource = rest[-1]
        named = (keys.STUDY_INSTANCE_UID, keys.SERIES_INSTANCE_UID)[:len(rest) // 2]  # studies/U[/series/U]/...
        filters, headers = qido_filters(self.store, resource, pairs, named)
        with self.store.lock:
            extended = [(key, path, value) for key, path, value in filters if path in self.store.tags]
        limit, offset = paging({k.lower(): v for k, v in pairs})
        # The engine cannot filter on extended query tags: they are matched here, after it answers.
        extended_keys = {key for key, _, _ in extended}
        forwarded = [(k, v) for k, v in pairs
                     if k.lower() not in {"limit", "offset"} and k not in extended_keys]
        if not extended:
            forwarded += [("limit", str(limit)), ("offset", str(offset))]
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='*,-.^:')}" for k, v in forwarded)
        status, _, payload = self.engine.request("GET", f"/dicom-web/{'/'.join(rest)}?{query}",
                                                 headers={"Accept": "application/dicom+json"})
        if status >= 400:
            raise ApiError(status, payload.decode(errors="replace")[:300])
        results = json.loads(payload) if payload else []
        if extended:
            key = keys.LEVEL_UIDS[resource]
            with self.store.lock:
                wanted = {i.uid_at(resource) for i in self.store.instances
                          if all(i.values.get(path) == value for _, path, value in extended)}
            results = [r for r in results if (r.get(key, {}).get("Value") or [""])[0] in wanted]
            results = results[offset:offset + limit]
        if not results:
            return 204, headers, b""
        return 200, {"Content-Type": "application/dicom+json", **headers}, json.dumps(results).encode()

    # -- WADO ----------------------------------------------------------------------------

    def forward(self, rest: list[str], pairs: list[tuple[str, str]], headers):
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
        path = f"/dicom-web/{'/'.join(rest)}" + (f"?{query}" if query else "")
        accept = headers.get("Accept") or "*/*"
        status, answer_headers, payload = self.engine.request("GET", path, headers={"Accept": accept})
        if status == 404:
            raise ApiError(404, "The specified resource was not found.")
        kept = {k: v for k, v in answer_headers.items() if k.lower() in {"content-type", "etag"}}
        return status, kept, payload


def _stow_answer(base: str, study_in_path: str | None, referenced: list, failed: list):
    answer: dict = {}
    if study_in_path and referenced:
        answer[keys.RETRIEVE_URL] = {"vr": "UR", "Value": [f"{base}/studies/{study_in_path}"]}
    if referenced:
        answer[keys.REFERENCED_SOP_SEQUENCE] = {"vr": "SQ", "Value": referenced}
    if failed:
        answer[keys.FAILED_SOP_SEQUENCE] = {"vr": "SQ", "Value": failed}
    status = 409 if not referenced else 202 if failed else 200
    return status, {"Content-Type": "application/dicom+json"}, json.dumps(answer).encode()


def _instant(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def _at(rest: list[str], index: int) -> str | None:
    return rest[index] if len(rest) > index else None


def _expiry(headers) -> int | None:
    given = {name: headers.get(name) for name in EXPIRY_HEADERS if headers.get(name) is not None}
    if not given:
        return None
    milliseconds = given.get("msdicom-expiry-time-milliseconds", "")
    if not milliseconds.isdigit() or int(milliseconds) <= 0:
        raise ApiError(400, "msdicom-expiry-time-milliseconds must be a whole number greater than 0.")
    if given.get("msdicom-expiry-option", "RelativeToNow") != "RelativeToNow":
        raise ApiError(400, "msdicom-expiry-option supports RelativeToNow only.")
    if given.get("msdicom-expiry-level", "Study") != "Study":
        raise ApiError(400, "msdicom-expiry-level supports Study only.")
    return int(milliseconds)
