"""Tells a DICOM service which queue to index from: its
`storageConfiguration.storageIndexingConfiguration.storageEventQueueName`.

Only ARM API 2025-04-01-preview knows the property; pulumi-azure-native's DicomService and
azure-mgmt-healthcareapis speak 2024-03-31. So this dynamic resource reads the service with the
preview API, PUTs it back with only its writable properties and the queue set, waits for the
provisioning to end, and reads it back to verify. Nothing is sent when the service already
names the queue.

The native resource never undoes it unnoticed: the service's etag is an input here, so any
update of the native resource (whose 2024-03-31 PUT may drop a property it does not know; not
verified live) is followed by this resource setting the queue again. Deleting this resource
(indexing removed from the stack) clears the setting, so the service stops reading the queue.
"""

from __future__ import annotations

import time
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

API_VERSION = "2025-04-01-preview"
WRITABLE = ("corsConfiguration", "encryption", "storageConfiguration", "enableDataPartitions",
            "publicNetworkAccess")
TERMINAL = {"succeeded", "failed", "canceled"}
TARGET_KEYS = ("subscription_id", "resource_group_name", "workspace_name", "service_name")


class IndexingNotApplied(RuntimeError):
    """The service did not take the queue setting."""


def service_id(props: dict[str, Any]) -> str:
    from hdsctl import naming

    return naming.service_id(props["subscription_id"], props["resource_group_name"], props["workspace_name"],
                             naming.DICOM_CHILD_TYPE, props["service_name"])


def _client(props: dict[str, Any]):
    from azure.core import PipelineClient
    from azure.core.pipeline.policies import BearerTokenCredentialPolicy

    from hdsctl.credentials import ARM, arm_scope, credential_for
    from hdsctl.retry import Budget, BudgetRetryPolicy

    scope = arm_scope(props["arm_endpoint"])
    return PipelineClient(base_url=props["arm_endpoint"], policies=[
        BudgetRetryPolicy(Budget(per_request=float(props.get("retry_seconds", 600)))),
        BearerTokenCredentialPolicy(credential_for(ARM, scope), scope)])


def _exchange(client, method: str, props: dict[str, Any], body: dict | None = None) -> dict:
    from azure.core.rest import HttpRequest

    url = client.format_url(f"{service_id(props)}?api-version={API_VERSION}")
    response = client.send_request(HttpRequest(method, url, json=body))
    response.raise_for_status()
    return response.json() if response.content else {}


def queue_of(service: dict) -> str | None:
    storage = (service.get("properties") or {}).get("storageConfiguration") or {}
    return (storage.get("storageIndexingConfiguration") or {}).get("storageEventQueueName") or None


def writable_copy(service: dict, queue: str | None) -> dict:
    """What a PUT may carry: location, tags, identity without its read-only ids, the writable
    properties; the queue set (or the indexing configuration removed when `queue` is None)."""
    properties = {key: value for key, value in (service.get("properties") or {}).items() if key in WRITABLE}
    storage = dict(properties.get("storageConfiguration") or {})
    storage.pop("storageIndexingConfiguration", None)
    if queue is not None:
        storage["storageIndexingConfiguration"] = {"storageEventQueueName": queue}
    properties["storageConfiguration"] = storage
    body: dict[str, Any] = {"properties": properties}
    for key in ("location", "tags", "etag"):
        if service.get(key) is not None:
            body[key] = service[key]
    identity = service.get("identity")
    if identity:
        body["identity"] = {"type": identity["type"]}
        if identity.get("userAssignedIdentities"):
            body["identity"]["userAssignedIdentities"] = {key: {} for key in identity["userAssignedIdentities"]}
    return body


def apply_queue(props: dict[str, Any], queue: str | None) -> str | None:
    """Make the service index from `queue` (or from none); return what it reads back."""
    client = _client(props)
    service = _exchange(client, "GET", props)
    if queue_of(service) == queue:
        return queue
    _exchange(client, "PUT", props, writable_copy(service, queue))
    deadline = time.monotonic() + float(props.get("retry_seconds", 600))
    while True:
        service = _exchange(client, "GET", props)
        state = str((service.get("properties") or {}).get("provisioningState", "Succeeded")).lower()
        if state in TERMINAL or time.monotonic() > deadline:
            break
        time.sleep(5)
    if queue_of(service) != queue:
        raise IndexingNotApplied(
            f"{service_id(props)} reads storageEventQueueName {queue_of(service)!r} after the update, not "
            f"{queue!r} (provisioningState {state}); storage indexing is a preview feature: check that it is "
            "available in this region and for this subscription")
    return queue


class StorageIndexingQueueProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{service_id(props)}/storageIndexing",
                            outs={**props, "actual": apply_queue(props, props["queue"])})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in TARGET_KEYS if olds.get(key) != news.get(key)]
        changes = replaces + [key for key in ("queue", "arm_endpoint", "service_etag")
                              if olds.get(key) != news.get(key)]
        if olds.get("actual") != news["queue"]:  # drift seen by refresh
            changes.append("actual")
        return DiffResult(changes=bool(changes), replaces=replaces, delete_before_replace=True)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={**news, "actual": apply_queue(news, news["queue"])})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs={**props, "actual": queue_of(_exchange(_client(props), "GET", props))})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            apply_queue(props, None)
        except ResourceNotFoundError:
            return  # the service is gone: nothing reads the queue


class StorageIndexingQueue(pulumi.dynamic.Resource, module="hdsctl", name="StorageIndexingQueue"):
    """The queue a DICOM service indexes Data Lake files from."""

    actual: pulumi.Output[str]

    def __init__(self, name: str, *, subscription_id: pulumi.Input[str], resource_group_name: pulumi.Input[str],
                 workspace_name: pulumi.Input[str], service_name: str, queue: str, arm_endpoint: str,
                 service_etag: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None):
        super().__init__(StorageIndexingQueueProvider(), name, {
            "subscription_id": subscription_id, "resource_group_name": resource_group_name,
            "workspace_name": workspace_name, "service_name": service_name, "queue": queue,
            "arm_endpoint": arm_endpoint, "service_etag": service_etag, "actual": None}, opts)
