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


def default_workspace_name(prefix: str, environment: str) -> str:
    return re.sub(r"[^a-z0-9]", "", f"{prefix}{environment}".lower())[:24]


def default_resource_group_name(prefix: str, environment: str) -> str:
    return f"rg-{prefix}-{environment}-imaging"


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
