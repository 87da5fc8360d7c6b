"""Naming rules, data-plane URLs and deterministic identifiers, owned in one place."""

from __future__ import annotations

import re
import uuid

WORKSPACE_NAME = re.compile(r"^[a-z0-9]{3,24}$")
SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,22}[a-z0-9]$")
PREFIX = re.compile(r"^[a-z][a-z0-9]{1,9}$")
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
RESOURCE_GROUP_NAME = re.compile(r"^[-\w._()]{0,89}[-\w_()]$")
LOCATION = re.compile(r"^[a-z][a-z0-9]{2,30}$")
STORAGE_ACCOUNT_NAME = re.compile(r"^[a-z0-9]{3,24}$")
STORAGE_CHILD_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$")
EVENT_SUBSCRIPTION_NAME = re.compile(r"^[A-Za-z0-9-]{3,64}$")

# What a Health Data Services workspace publishes to its Event Grid system topic.
HEALTH_EVENT_PREFIX = "Microsoft.HealthcareApis."
_CHANGES = ("Created", "Updated", "Deleted")
DICOM_EVENT_TYPES = tuple(f"{HEALTH_EVENT_PREFIX}DicomImage{change}" for change in _CHANGES)
FHIR_EVENT_TYPES = tuple(f"{HEALTH_EVENT_PREFIX}FhirResource{change}" for change in _CHANGES)
HEALTH_EVENT_TYPES = DICOM_EVENT_TYPES + FHIR_EVENT_TYPES
SYSTEM_TOPIC_TYPE = "Microsoft.HealthcareApis.Workspaces"
# The data partition every DICOM service with partitions has (and the one events name otherwise).
DEFAULT_PARTITION = "Microsoft.Default"
PARTITION_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Environment (stack) names end up in Azure names, URLs, pipeline YAML and shell: lowercase
# letters, digits and single hyphens. 14 characters at most, so the default workspace name
# (prefix of at most 10 + the name without hyphens) stays within 24 and is never cut short.
STACK_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
STACK_NAME_MAX = 14

PUBLIC_ARM_ENDPOINT = "https://management.azure.com"

# ARM child resource types under a Health Data Services workspace.
DICOM_CHILD_TYPE = "dicomservices"
FHIR_CHILD_TYPE = "fhirservices"

# A fixed namespace so the same (scope, principal, role) gives the same name on every run,
# on every machine: re-running `pulumi up` never creates a second assignment.
_ROLE_ASSIGNMENT_NAMESPACE = uuid.UUID("7d0a9a53-4b59-4c4d-9a8e-2f1d3f6a1c55")


def stack_name_problem(name: str) -> str | None:
    """Why `name` cannot name an environment, or None when it can."""
    if not STACK_NAME.match(name) or len(name) > STACK_NAME_MAX:
        return (f"{name!r} is not a valid environment name: use 1-{STACK_NAME_MAX} lowercase letters, "
                "digits and single hyphens (e.g. dev, staging, prod-eu)")
    return None


def stack_file_name(environment: str) -> str:
    return f"Pulumi.{environment}.yaml"


def default_workspace_name(prefix: str, environment: str) -> str:
    return re.sub(r"[^a-z0-9]", "", f"{prefix}{environment}".lower())[:24]


def default_resource_group_name(prefix: str, environment: str) -> str:
    return f"rg-{prefix}-{environment}-imaging"


def default_events_storage_account_name(prefix: str, environment: str) -> str:
    """Storage account names are global and 3-24 characters: st + prefix + environment + evt."""
    return re.sub(r"[^a-z0-9]", "", f"st{prefix}{environment}".lower())[:21] + "evt"


def default_dicom_storage_account_name(prefix: str, environment: str, service: str) -> str:
    """st + prefix + environment + service, cut to 21 characters, + dcm (global, 3-24 characters)."""
    return re.sub(r"[^a-z0-9]", "", f"st{prefix}{environment}{service}".lower())[:21] + "dcm"


def dicom_storage_folder(workspace: str, service: str) -> str:
    """Where a DICOM service writes in its file system (Microsoft documents the layout)."""
    return f"AHDS/{workspace}/dicom/{service}/"


def indexing_subscription_name(service: str, partition: str | None) -> str:
    """The storage-indexing event subscription of a service's folder (a partition's, when indexing
    names partitions): Event Grid also names its dead letters by it."""
    suffix = f"-{partition.lower().replace('.', '-')}" if partition else ""
    return f"dicom-{service}-indexing{suffix}"[:64]


def dicom_storage_identity_name(workspace: str, service: str) -> str:
    """The user-assigned identity a DICOM service writes its Data Lake with."""
    return f"id-{workspace}-{service}-storage"


def user_assigned_identity_id(subscription_id: str, resource_group: str, name: str) -> str:
    return (f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}")


# Storage indexing: the account's Blob events, filtered to one service's folder, minus its own writes.
STORAGE_SYSTEM_TOPIC_TYPE = "Microsoft.Storage.StorageAccounts"
BLOB_EVENT_TYPES = ("Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted")


def indexing_subject_prefix(file_system: str, workspace: str, service: str,
                            partition: str | None = None) -> str:
    """What the Blob event subject of a file the service should index starts with."""
    folder = dicom_storage_folder(workspace, service) + (f"{partition}/" if partition else "")
    return f"/blobServices/default/containers/{file_system}/blobs/{folder}"


def dicom_own_writes_tag(workspace: str, service: str) -> str:
    """The clientRequestId prefix of the service's own Storage writes (Microsoft documents it)."""
    return f"tag:{host_of(dicom_url(workspace, service))},"


def storage_system_topic_name(account: str) -> str:
    return f"{account}-blob-events"


def system_topic_name(workspace: str) -> str:
    return f"{workspace}-events"


def system_topic_id(subscription_id: str, resource_group: str, workspace: str) -> str:
    return system_topic_id_named(subscription_id, resource_group, system_topic_name(workspace))


def system_topic_id_named(subscription_id: str, resource_group: str, name: str) -> str:
    return (f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.EventGrid/systemTopics/{name}")


def storage_account_id(subscription_id: str, resource_group: str, account: str) -> str:
    return (f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.Storage/storageAccounts/{account}")


def queue_id(account_id: str, queue: str) -> str:
    return f"{account_id}/queueServices/default/queues/{queue}"


def container_id(account_id: str, container: str) -> str:
    return f"{account_id}/blobServices/default/containers/{container}"


def host_of(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0]


def dicom_url(workspace: str, service: str) -> str:
    return f"https://{workspace}-{service}.dicom.azurehealthcareapis.com"


def fhir_url(workspace: str, service: str) -> str:
    return f"https://{workspace}-{service}.fhir.azurehealthcareapis.com"


def entra_authority(tenant_id: str) -> str:
    return f"https://login.microsoftonline.com/{tenant_id}"


def role_assignment_name(scope_id: str, principal_id: str, role_guid: str) -> str:
    """A GUID derived from what the assignment grants, to whom and where.

    ARM ids are case-insensitive, so the scope is folded to lower case first.
    """
    key = f"{scope_id.lower()}|{principal_id.lower()}|{role_guid.lower()}"
    return str(uuid.uuid5(_ROLE_ASSIGNMENT_NAMESPACE, key))


def workspace_id(subscription_id: str, resource_group: str, workspace: str) -> str:
    return (f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
            f"/providers/Microsoft.HealthcareApis/workspaces/{workspace}")


def service_id(subscription_id: str, resource_group: str, workspace: str, kind: str, service: str) -> str:
    """`kind` is the ARM child type: dicomservices or fhirservices."""
    return f"{workspace_id(subscription_id, resource_group, workspace)}/{kind}/{service}"


def parent_vnet_id(subnet_id: str) -> str:
    """`.../virtualNetworks/vnet/subnets/snet` → `.../virtualNetworks/vnet`."""
    head, sep, _ = subnet_id.rpartition("/subnets/")
    if not sep:
        raise ValueError(f"not a subnet id: {subnet_id}")
    return head


def arm_name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]
