"""The emulator's state and behaviour: tags, operations, errors, and the reindex worker.

It follows the reference facts of the service: tags start `adding` + `enabled` and linked to
their reindex; only one reindex at a time (409 with the running operation's Location);
a bad value records an error and disables queries without failing the operation; a failed or
canceled operation leaves its tags `adding`; at most 128 tags (503 past that).
"""

from __future__ import annotations

import datetime
import threading
import time
import uuid
from dataclasses import dataclass, field

from hdsctl import naming
from hdsctl.dicomtags import MAX_EXTENDED_QUERY_TAGS, TagRuleError, check_tag, resolve_path
from hdsctl.emulator.instances import BAD_VALUE, Instance, synthetic_instances, value_error


class ApiError(Exception):
    """An answer with a plain-text body, as the service gives."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        self.status = status
        self.message = message
        self.headers = headers or {}
        super().__init__(message)


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Knobs:
    """What tests (and curious users) can turn: speed, faults, latency."""

    instances_per_second: float = 500.0
    batch_size: int = 50
    latency_ms: int = 0
    chance_429: float = 0.0
    chance_503: float = 0.0
    burst_429: int = 0  # the next N data-plane requests answer 429
    burst_503: int = 0
    retry_after: int | None = None  # Retry-After (seconds) on those 429 answers
    reset_next: int = 0  # the next N requests: connection reset before any answer
    deny_next: int = 0  # the next N requests answer 403, as before a role assignment arrives
    reset_after_next_write: int = 0  # the next N writes are done, then the answer is lost
    fail_dependency_next: int = 0  # the next N requests answer 424, as when storage or a key is unreachable
    refuse_rendered: bool = False  # rendered images answer 406, as for a file too large to render
    fail_next_operation: bool = False
    cancel_next_operation: bool = False
    stop_at_percent: int = 40  # where a failing or canceled operation stops


@dataclass
class StoredTag:
    path: str
    vr: str
    level: str
    private_creator: str | None
    status: str = "adding"
    query_enabled: bool = True
    operation_id: str | None = None
    errors: list[dict] = field(default_factory=list)


@dataclass
class Operation:
    id: str
    tag_paths: list[str]
    status: str = "notStarted"
    percent: int = 0
    created: str = field(default_factory=now)
    updated: str = field(default_factory=now)


@dataclass
class Store:
    instances: list[Instance]
    knobs: Knobs = field(default_factory=Knobs)
    tags: dict[str, StoredTag] = field(default_factory=dict)
    operations: dict[str, Operation] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _workers: list[threading.Thread] = field(default_factory=list)
    # The stored SOP Instance UIDs beside the list, so "is it stored?" is not a scan.
    _uids: set[str] = field(default_factory=set, repr=False)

    def __post_init__(self):
        self._uids = {i.sop_uid for i in self.instances}

    @classmethod
    def seeded(cls, count: int = 2000, seed: int = 7) -> Store:
        return cls(synthetic_instances(count, seed))

    # -- tags ----------------------------------------------------------------------------

    def find(self, path_text: str) -> StoredTag:
        try:
            path = f"{resolve_path(path_text):08X}"
        except TagRuleError as err:
            raise ApiError(400, f"The extended query tag path '{path_text}' is invalid: {err}") from None
        tag = self.tags.get(path)
        if tag is None:
            raise ApiError(404, f"The specified extended query tag with tag path {path} cannot be found.")
        return tag

    def add(self, entries, operation_url) -> Operation:
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ApiError(400, "The request body is not a valid list of extended query tags.")
        normalized = []
        for entry in entries:
            fields = {str(k).lower(): v for k, v in entry.items()}
            path, level = fields.get("path"), fields.get("level")
            if not isinstance(path, str) or not path or not isinstance(level, str):
                raise ApiError(400, "The field 'path' and 'level' are required and must be strings.")
            if level.lower() not in {"study", "series", "instance"}:
                raise ApiError(400, f"The level '{level}' is invalid.")
            normalized.append(fields)
        with self.lock:
            active = self.active_operation()
            if active is not None:
                raise ApiError(409, f"There is already an active re-index operation with ID '{active.id}'.",
                               {"Location": operation_url(active.id)})
            if not normalized:
                raise ApiError(400, "The extended query tag list is empty.")
            texts = [f["path"] for f in normalized]
            if len(set(texts)) != len(texts):
                raise ApiError(400, "The extended query tags contain duplicate paths.")
            definitions = []
            for fields in normalized:
                try:
                    definitions.append(check_tag(fields["path"], fields["level"], fields.get("vr"),
                                                 fields.get("privatecreator")))
                except TagRuleError as err:
                    message = f"The extended query tag '{fields['path']}' is invalid: {err}"
                    raise ApiError(400, message) from None
            if len({d.path for d in definitions}) != len(definitions):
                raise ApiError(400, "The extended query tags contain duplicate paths.")
            if any(d.path in self.tags for d in definitions):
                raise ApiError(409, "One or more extended query tags already exist.")
            if len(self.tags) + len(definitions) > MAX_EXTENDED_QUERY_TAGS:
                raise ApiError(503, "The maximum number of extended query tags has been reached.")
            operation = Operation(uuid.uuid4().hex, [d.path for d in definitions])
            self.operations[operation.id] = operation
            for d in definitions:
                self.tags[d.path] = StoredTag(d.path, d.vr, d.level, d.private_creator,
                                              operation_id=operation.id)
        worker = threading.Thread(target=self._reindex, args=(operation,), daemon=True)
        self._workers.append(worker)
        worker.start()
        return operation

    def set_query_status(self, path_text: str, body) -> StoredTag:
        if not isinstance(body, dict) or not body:
            raise ApiError(400, "The request body is invalid.")
        fields = {str(k).lower(): v for k, v in body.items()}
        if set(fields) != {"querystatus"}:
            raise ApiError(400, "Only queryStatus can be updated.")
        value = fields["querystatus"]
        if not isinstance(value, str) or value.lower() not in {"enabled", "disabled"}:
            raise ApiError(400, f"The queryStatus '{value}' is invalid.")
        with self.lock:
            tag = self.find(path_text)
            tag.query_enabled = value.lower() == "enabled"
            return tag

    def delete(self, path_text: str) -> None:
        with self.lock:
            tag = self.find(path_text)
            tag.status = "deleting"
            del self.tags[tag.path]

    def active_operation(self) -> Operation | None:
        return next((op for op in self.operations.values() if op.status in {"notStarted", "running"}), None)

    def mark_bad_values(self, path_text: str, count: int) -> None:
        """Give the newest `count` instances a value the VR cannot hold."""
        try:
            path = f"{resolve_path(path_text):08X}"
        except TagRuleError as err:
            raise ApiError(400, f"bad-values: {err}") from None
        with self.lock:
            for instance in reversed(self.instances[-count:] if count else []):
                instance.values[path] = BAD_VALUE

    # -- reindex -------------------------------------------------------------------------

    def _reindex(self, operation: Operation) -> None:
        total = len(self.instances)
        knobs = self.knobs
        with self.lock:
            operation.status, operation.updated = "running", now()
            stop = None
            if knobs.fail_next_operation or knobs.cancel_next_operation:
                stop = "failed" if knobs.fail_next_operation else "canceled"
                knobs.fail_next_operation = knobs.cancel_next_operation = False
        newest_first = list(reversed(self.instances))
        for start in range(0, total, max(knobs.batch_size, 1)):
            time.sleep(knobs.batch_size / max(knobs.instances_per_second, 1e-6))
            with self.lock:
                if operation.status == "canceled":
                    return
                for instance in newest_first[start:start + knobs.batch_size]:
                    self._index(operation, instance)
                operation.percent = min(99, (start + knobs.batch_size) * 100 // max(total, 1))
                operation.updated = now()
                if stop and operation.percent >= knobs.stop_at_percent:
                    operation.status = stop  # its tags stay `adding`, still linked
                    return
        with self.lock:
            operation.status, operation.percent, operation.updated = "succeeded", 100, now()
            for path in operation.tag_paths:
                tag = self.tags.get(path)
                if tag is not None and tag.operation_id == operation.id:
                    tag.status, tag.operation_id = "ready", None

    def holds(self, sop_uid: str) -> bool:
        with self.lock:
            return sop_uid in self._uids

    def add_instance(self, instance: Instance) -> None:
        """An instance stored after its tags exist is indexed as it arrives, as the service does."""
        with self.lock:
            if instance.sop_uid in self._uids:  # replaced (PUT): the rare, slower path
                self.instances = [i for i in self.instances if i.sop_uid != instance.sop_uid]
            self.instances.append(instance)
            self._uids.add(instance.sop_uid)
            for tag in self.tags.values():
                self._index_value(tag, instance)

    def remove_instances(self, keep) -> None:
        """Drop the instances `keep` refuses."""
        with self.lock:
            self.instances = [i for i in self.instances if keep(i)]
            self._uids = {i.sop_uid for i in self.instances}

    def _index(self, operation: Operation, instance: Instance) -> None:
        for path in operation.tag_paths:
            tag = self.tags.get(path)
            if tag is not None:
                self._index_value(tag, instance)

    def _index_value(self, tag: StoredTag, instance: Instance) -> None:
        path = tag.path
        value = instance.values.get(path)
        if value is not None:
            problem = value_error(tag.vr, value)
            if problem:
                tag.errors.append({
                    "partitionName": naming.DEFAULT_PARTITION,
                    "studyInstanceUid": instance.study_uid,
                    "seriesInstanceUid": instance.series_uid,
                    "sopInstanceUid": instance.sop_uid,
                    "createdTime": now(),
                    "errorMessage": f"Failed to index {path}: {problem}.",
                })
                tag.query_enabled = False

    def wait_idle(self, timeout: float = 30) -> None:
        for worker in list(self._workers):
            worker.join(timeout)
