"""The extended-query-tag, operation and (without an engine) QIDO routes of the local service,
as a route table over the store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hdsctl.dicom import keys
from hdsctl.emulator.queries import QIDO_LEVELS, paging, qido_filters
from hdsctl.emulator.store import ApiError, Operation, Store, StoredTag

Answer = tuple[int, Any, dict[str, str] | None]


@dataclass(frozen=True)
class ApiRequest:
    method: str
    version: str  # v1 or v2
    base: str  # scheme, host and version, for the hrefs the answers carry
    rest: list[str]  # the path after the version
    query: dict[str, str]  # lower-cased names
    pairs: list[tuple[str, str]]  # as sent
    body: Any


def list_tags(store: Store, request: ApiRequest) -> Answer:
    limit, offset = paging(request.query)
    with store.lock:
        tags = list(store.tags.values())[offset:offset + limit]
        return 200, [tag_json(t, request.base) for t in tags], None


def add_tags(store: Store, request: ApiRequest) -> Answer:
    operation = store.add(request.body, lambda op_id: f"{request.base}/operations/{op_id}")
    href = f"{request.base}/operations/{operation.id}"
    return 202, {"id": operation.id, "href": href}, {"Location": href}


def get_tag(store: Store, request: ApiRequest) -> Answer:
    with store.lock:
        return 200, tag_json(store.find(request.rest[1]), request.base), None


def patch_tag(store: Store, request: ApiRequest) -> Answer:
    return 200, tag_json(store.set_query_status(request.rest[1], request.body), request.base), None


def delete_tag(store: Store, request: ApiRequest) -> Answer:
    store.delete(request.rest[1])
    return 204, None, None


def tag_errors(store: Store, request: ApiRequest) -> Answer:
    limit, offset = paging(request.query)
    with store.lock:
        return 200, store.find(request.rest[1]).errors[offset:offset + limit], None


def get_operation(store: Store, request: ApiRequest) -> Answer:
    with store.lock:
        operation = store.operations.get(request.rest[1].replace("-", "").lower())
        if operation is None:
            raise ApiError(404, "")
        body = operation_json(operation, request.base, request.version)
        if operation.status in {"notStarted", "running"}:
            return 202, body, {"Location": f"{request.base}/operations/{operation.id}"}
        return 200, body, None


def qido(store: Store, request: ApiRequest) -> Answer:
    """Searches over the synthetic instances (with an engine, the DICOMweb front answers them)."""
    resource = request.rest[0]
    filters, headers = qido_filters(store, resource, request.pairs)
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


# (method, path after the version with * for one segment, what answers it)
ROUTES: list[tuple[str, tuple[str, ...], Callable[[Store, ApiRequest], Answer]]] = [
    ("GET", ("extendedquerytags",), list_tags),
    ("POST", ("extendedquerytags",), add_tags),
    ("GET", ("extendedquerytags", "*"), get_tag),
    ("PATCH", ("extendedquerytags", "*"), patch_tag),
    ("DELETE", ("extendedquerytags", "*"), delete_tag),
    ("GET", ("extendedquerytags", "*", "errors"), tag_errors),
    ("GET", ("operations", "*"), get_operation),
    *(("GET", (level,), qido) for level in QIDO_LEVELS),
]


def route(store: Store, request: ApiRequest) -> Answer:
    for method, pattern, answer in ROUTES:
        if method == request.method and _matches(pattern, request.rest):
            return answer(store, request)
    raise ApiError(404 if request.method == "GET" else 405,
                   f"{request.method} /{'/'.join(request.rest)} is not served.")


def _matches(pattern: tuple[str, ...], rest: list[str]) -> bool:
    return len(pattern) == len(rest) and all(
        part in ("*", segment) for part, segment in zip(pattern, rest, strict=True))


def tag_json(tag: StoredTag, base: str) -> dict[str, Any]:
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


def operation_json(operation: Operation, base: str, version: str) -> dict[str, Any]:
    status = "completed" if (operation.status == "succeeded" and version == "v1") else operation.status
    return {
        "operationId": operation.id, "type": "reindex", "createdTime": operation.created,
        "lastUpdatedTime": operation.updated, "status": status,
        "percentComplete": operation.percent,
        "resources": [f"{base}/extendedquerytags/{path}" for path in operation.tag_paths],
    }
