"""Client for one DICOM service: extended query tags and operations, and DICOMweb (STOW-RS,
QIDO-RS, WADO-RS, DELETE), in a data partition when the service has them.

Built on azure-core's pipeline: hdsctl's one retry policy (bounded by a time budget), bearer
tokens only for the DICOM audience and only to hosts `hdsctl.endpoints` allows, and HTTP
logging that redacts the Authorization header.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from azure.core.credentials import TokenCredential
from azure.core.rest import HttpRequest, HttpResponse

from hdsctl.dataplane import DataPlaneClient
from hdsctl.dicom import errors, keys, multipart
from hdsctl.dicom.models import (
    ObservedTag,
    OperationState,
    TagError,
    lower_keys,
    operation_id_from_url,
)
from hdsctl.dicom.web import StowResult, check_uid, first_value, parse_stow_answer, utc_text
from hdsctl.dicomtags import TagDefinition
from hdsctl.endpoints import EndpointRefused, check_dicom_url
from hdsctl.retry import Budget
from hdsctl.transport import bulk_transport

API_VERSIONS = ("v1", "v2")
PARTITIONS = "/partitions/"
PAGE_LIMIT = 200
CHANGE_FEED_LIMIT = 200  # the v2 change feed's largest page


def split_partition(service_root: str) -> tuple[str, str | None]:
    """`https://x/partitions/p` → (`https://x`, `p`): the inverse of DicomClient.service_root."""
    base, _, partition = service_root.partition(PARTITIONS)
    return base, unquote(partition) or None


def split_service_url(url: str) -> tuple[str, str]:
    """`https://x/v1` → (`https://x`, `v1`); a URL without a version gets v2."""
    base = url.rstrip("/")
    head, _, last = base.rpartition("/")
    if last.lower() in API_VERSIONS and head.count("/") >= 2:
        return head, last.lower()
    return base, "v2"


class DicomClient(DataPlaneClient):
    refused = errors.InsecureUrl
    unreachable = errors.ServiceUnreachable
    unreachable_hint = ("check the URL, and that this network reaches the service (a private endpoint answers "
                        "only inside its network)")

    def __init__(
        self,
        service_url: str,
        *,
        credential: TokenCredential | None = None,
        api_version: str | None = None,
        trusted_hosts: tuple[str, ...] = (),
        budget: Budget | None = None,
        retry_backoff_factor: float = 0.5,
        retry_backoff_max: float = 30.0,
        partition: str | None = None,
    ):
        from hdsctl.credentials import DICOM

        self.audience = DICOM
        base, version = split_service_url(service_url)
        self.api_version = (api_version or version).lower()
        if self.api_version not in API_VERSIONS:
            raise errors.InsecureUrl(f"API version {api_version!r} is not one of {', '.join(API_VERSIONS)}")
        try:
            _, resource = check_dicom_url(base, trusted_hosts)
        except EndpointRefused as err:
            raise errors.InsecureUrl(str(err)) from None
        self.partition = partition
        super().__init__(base, f"{resource}/.default" if resource is not None else None, credential=credential,
                         budget=budget, retry_backoff_factor=retry_backoff_factor,
                         retry_backoff_max=retry_backoff_max, transport=bulk_transport())

    # -- extended query tags -------------------------------------------------------------

    def list_tags(self) -> list[ObservedTag]:
        return [ObservedTag.from_wire(item) for item in self._pages("/extendedquerytags")]

    def get_tag(self, path: str) -> ObservedTag:
        return ObservedTag.from_wire(self._send("GET", f"/extendedquerytags/{path}").json())

    def add_tags(self, tags: Iterable[TagDefinition]) -> str:
        """POST every tag in one request (one reindex); returns the operation id."""
        body = [_add_entry(tag) for tag in tags]
        response = self._send("POST", "/extendedquerytags", json_body=body, ok=(202,))
        reference = lower_keys(response.json())
        if "operation" in reference:  # the shape Microsoft's OpenAPI document declares
            reference = lower_keys(reference["operation"])
        operation = reference.get("id") or operation_id_from_url(
            reference.get("href") or response.headers.get("Location"))
        if not operation:
            raise errors.DicomApiError(202, "no operation id in the answer", method="POST",
                                       url=self._url("/extendedquerytags"))
        return str(operation).replace("-", "")

    def set_query_enabled(self, path: str, enabled: bool) -> ObservedTag:
        body = {"queryStatus": "Enabled" if enabled else "Disabled"}
        response = self._send("PATCH", f"/extendedquerytags/{path}", json_body=body)
        return ObservedTag.from_wire(response.json())

    def delete_tag(self, path: str) -> bool:
        """Delete a tag; False when it was already gone."""
        try:
            self._send("DELETE", f"/extendedquerytags/{path}", ok=(204, 200))
        except errors.NotFound:
            return False
        return True

    def list_errors(self, path: str, *, limit: int | None = None) -> list[TagError]:
        found = []
        page_limit = min(limit or PAGE_LIMIT, PAGE_LIMIT)
        for item in self._pages(f"/extendedquerytags/{path}/errors", page_limit=page_limit):
            found.append(TagError.from_wire(item))
            if limit is not None and len(found) >= limit:
                break
        return found

    # -- operations ----------------------------------------------------------------------

    def get_operation(self, operation_id: str) -> OperationState:
        response = self._send("GET", f"/operations/{operation_id}", ok=(200, 202))
        state = OperationState.from_wire(response.json())
        return state if state.id else OperationState(operation_id, state.type, state.status,
                                                     state.percent_complete)

    # -- DICOMweb ------------------------------------------------------------------------

    def store(self, parts: list[Path | bytes], *, study: str | None = None, upsert: bool = False,
              expiry_ms: int | None = None) -> StowResult:
        """STOW-RS (PUT with `upsert`): one multipart request, streamed from the files."""
        body = multipart.MultipartBody(parts)  # sized: the transport sends its Content-Length
        headers = {"Content-Type": body.content_type}
        if expiry_ms is not None:  # the service deletes the study when it is due
            headers |= {"msdicom-expiry-time-milliseconds": str(int(expiry_ms)),
                        "msdicom-expiry-option": "RelativeToNow", "msdicom-expiry-level": "Study"}
        try:
            response = self._send("PUT" if upsert else "POST", self._web("/studies", study), content=body,
                                  headers=headers, accept="application/dicom+json", ok=(200, 202, 409))
        finally:
            body.close()
        return parse_stow_answer(response.status_code, _json_or_none(response))

    def search(self, level: str, filters: dict[str, str] | None = None, *, study: str | None = None,
               series: str | None = None, includefield: tuple[str, ...] = (), limit: int = 100,
               offset: int = 0, fuzzy: bool = False) -> list[dict[str, Any]]:
        """QIDO-RS at `level` (studies, series, instances); 204 is an empty result."""
        if not 1 <= limit <= PAGE_LIMIT:
            raise ValueError(f"limit must be 1-{PAGE_LIMIT}")
        params: dict[str, Any] = {**(filters or {}), "limit": limit, "offset": offset}
        if includefield:
            params["includefield"] = ",".join(includefield)
        if fuzzy:
            params["fuzzymatching"] = "true"
        scope = self._web("/studies", study, series) if study else self._web("")
        response = self._send("GET", f"{scope}/{level}", params=params, accept="application/dicom+json",
                              ok=(200, 204))
        return [] if response.status_code == 204 else (response.json() or [])

    def search_all(self, level: str, filters: dict[str, str] | None = None,
                   **options) -> Iterator[dict[str, Any]]:
        """Every QIDO match at `level`, in pages of the largest size, until a short page."""
        offset = 0
        while True:
            page = self.search(level, filters, limit=PAGE_LIMIT, offset=offset, **options)
            yield from page
            if len(page) < PAGE_LIMIT:
                return
            offset += len(page)

    def instances_held(self, study: str) -> set[str]:
        """The SOP instance UIDs the service holds in `study` (one listing, paged)."""
        return {str(first_value(item, keys.SOP_INSTANCE_UID) or "")
                for item in self.search_all("instances", study=study, includefield=(keys.SOP_INSTANCE_UID,))}

    def retrieve_instance(self, study: str, series: str, instance: str) -> bytes:
        """The stored file, as it was stored (original transfer syntax)."""
        path = self._web("/studies", study, series, instance)
        response = self._send("GET", path,
                              accept='multipart/related; type="application/dicom"; transfer-syntax=*')
        parts = self._parts_of(response, path)
        if len(parts) != 1:
            raise errors.DicomApiError(200, f"expected one instance, got {len(parts)} parts", method="GET",
                                       url=self._url(path))
        return parts[0][1]

    def change_feed(self, start_time: str, *, end_time: str | None = None,
                    page_limit: int = CHANGE_FEED_LIMIT) -> Iterator[dict[str, Any]]:
        """Every change from `start_time` on, before `end_time` if given (v2: pages of up to 200 by
        offset, until a short page). Sequence numbers may have gaps; that is normal."""
        window = {"startTime": utc_text(start_time), **({"endTime": utc_text(end_time)} if end_time else {})}
        offset = 0
        while True:
            page = self._send("GET", "/changefeed", params={
                **window, "offset": offset, "limit": page_limit}).json() or []
            yield from page
            if len(page) < page_limit:
                return
            offset += len(page)

    def retrieve_metadata(self, study: str, series: str | None = None,
                          instance: str | None = None) -> list[dict[str, Any]]:
        response = self._send("GET", self._web("/studies", study, series, instance) + "/metadata",
                              accept="application/dicom+json")
        return response.json() or []

    def retrieve_rendered(self, study: str, series: str, instance: str, *, media: str = "image/jpeg",
                          frame: int | None = None) -> bytes:
        path = self._web("/studies", study, series, instance)
        path += f"/frames/{frame}/rendered" if frame else "/rendered"
        return self._send("GET", path, accept=media).read()

    def retrieve_frames(self, study: str, series: str, instance: str, frames: list[int]) -> list[bytes]:
        path = self._web("/studies", study, series, instance) + "/frames/" + ",".join(map(str, frames))
        response = self._send("GET", path,
                              accept='multipart/related; type="application/octet-stream"; transfer-syntax=*')
        return [payload for _, payload in self._parts_of(response, path)]

    def delete(self, study: str, series: str | None = None, instance: str | None = None) -> bool:
        """Delete a study, series or instance; False when it was not there."""
        try:
            self._send("DELETE", self._web("/studies", study, series, instance), ok=(200, 202, 204))
        except errors.NotFound:
            return False
        return True

    @property
    def partition_path(self) -> str:
        """`/partitions/<name>` on a service with data partitions, else nothing."""
        return f"{PARTITIONS}{quote(self.partition, safe='')}" if self.partition else ""

    @property
    def service_root(self) -> str:
        """The service and partition, without the API version: what a journal is bound to."""
        return self.base_url + self.partition_path

    @property
    def wado_root(self) -> str:
        """The versioned DICOMweb root, partition included, as FHIR Endpoints name it."""
        return f"{self.base_url}/{self.api_version}{self.partition_path}"

    def _web(self, root: str, study: str | None = None, series: str | None = None,
             instance: str | None = None) -> str:
        path = self.partition_path + root
        for label, uid, what in (("", study, "StudyInstanceUID"), ("/series", series, "SeriesInstanceUID"),
                                 ("/instances", instance, "SOPInstanceUID")):
            if uid is not None:
                path += f"{label}/{quote(check_uid(uid, what), safe='')}"
        return path

    # -- plumbing ------------------------------------------------------------------------

    def _parts_of(self, response: HttpResponse, path: str) -> list[tuple[dict[str, str], bytes]]:
        try:
            return multipart.split(response.headers.get("Content-Type", ""), response.read())
        except multipart.MultipartError as err:
            raise errors.DicomApiError(response.status_code, f"the answer is not readable multipart: {err}",
                                       method="GET", url=self._url(path)) from None

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{self.api_version}{path}"

    def _pages(self, path: str, page_limit: int = PAGE_LIMIT) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self._send("GET", path, params={"limit": page_limit, "offset": offset}).json() or []
            yield from page
            if len(page) < page_limit:
                return
            offset += len(page)

    def _send(self, method: str, path: str, *, params=None, json_body=None, content=None, headers=None,
              accept: str = "application/json", ok=(200,)) -> HttpResponse:
        request = HttpRequest(method, self._url(path), params=params, json=json_body, content=content,
                              headers={"Accept": accept, **(headers or {})})
        return self._exchange(request, ok)

    def _error_for(self, response: HttpResponse, method: str, url: str) -> errors.DicomApiError:
        return _error_for(response, method, url)


def _json_or_none(response: HttpResponse) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _add_entry(tag: TagDefinition) -> dict[str, str]:
    entry = {"path": tag.path, "vr": tag.vr, "level": tag.level}
    if tag.private_creator:
        entry["privateCreator"] = tag.private_creator
    return entry


def _error_for(response: HttpResponse, method: str, url: str) -> errors.DicomApiError:
    status = response.status_code
    message = (response.text() or "").strip()[:500]
    context = {"method": method, "url": url}
    if status == 400:
        return errors.BadRequest(status, message, **context)
    if status in (401, 403):
        return errors.AccessDenied(
            status, message, **context,
            hint="the caller needs DICOM Data Owner on the service to store, delete or change tags (DICOM "
                 "Data Reader to read); new role assignments can take minutes to apply",
        )
    if status == 404:
        return errors.NotFound(status, message, **context)
    if status == 424:
        return errors.DicomApiError(
            status, message, **context,
            hint="the service cannot reach its storage account or its key vault (424 Failed Dependency): check "
                 "that the service's identity still has access to the Data Lake account and the CMK key")
    if status == 409 and "re-index" in message.lower():
        return errors.ActiveReindex(
            status, message, **context,
            operation_id=operation_id_from_url(response.headers.get("Location")),
        )
    if status == 409 and "already exist" in message.lower():
        return errors.TagsAlreadyExist(status, message, **context)
    if status in (408, 429) or status >= 500:
        return errors.ServiceBusy(status, message, **context,
                                  hint="the service kept answering so for the whole time budget; try again "
                                       "later, or give it longer with --timeout")
    return errors.DicomApiError(status, message, **context)
