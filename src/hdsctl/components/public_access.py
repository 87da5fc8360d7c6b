"""Sets publicNetworkAccess on a workspace, DICOM or FHIR service.

pulumi-azure-native treats the property as output-only, so this dynamic resource sets it
with azure-mgmt-healthcareapis: read the resource, and PUT it back with only its writable
fields and the wanted access. Reading first keeps every other setting; sending only
writable fields avoids the read-only privateEndpointConnections that have broken such PUTs.
Nothing is sent when the resource already has the wanted value.

Deleting this resource changes nothing on Azure: it never reopens access by itself.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from hdsctl.naming import DICOM_CHILD_TYPE as DICOM
from hdsctl.naming import FHIR_CHILD_TYPE as FHIR

WORKSPACE = "workspace"

# The inputs that name the target; a change there is a new resource, not an update.
TARGET_KEYS = ("kind", "subscription_id", "resource_group_name", "workspace_name", "service_name")


def resource_id(props: dict[str, Any]) -> str:
    from hdsctl import naming

    place = (props["subscription_id"], props["resource_group_name"], props["workspace_name"])
    if props["kind"] == WORKSPACE:
        return naming.workspace_id(*place)
    return naming.service_id(*place, props["kind"], props["service_name"])


def _client(props: dict[str, Any]):
    from azure.mgmt.healthcareapis import HealthcareApisManagementClient

    from hdsctl.credentials import ARM, arm_scope, credential_for
    from hdsctl.retry import Budget, BudgetRetryPolicy

    scope = arm_scope(props["arm_endpoint"])
    return HealthcareApisManagementClient(
        credential_for(ARM, scope),
        props["subscription_id"],
        base_url=props["arm_endpoint"],
        credential_scopes=[scope],
        retry_policy=BudgetRetryPolicy(Budget(per_request=float(props.get("retry_seconds", 600)))),
    )


def _operations(client, kind: str):
    return {WORKSPACE: client.workspaces, DICOM: client.dicom_services,
            FHIR: client.fhir_services}[kind]


def _target_args(props: dict[str, Any]) -> list[str]:
    args = [props["resource_group_name"], props["workspace_name"]]
    if props["kind"] != WORKSPACE:
        args.append(props["service_name"])
    return args


def read_access(props: dict[str, Any]) -> str | None:
    client = _client(props)
    current = _operations(client, props["kind"]).get(*_target_args(props))
    return _access_of(props["kind"], current)


def _access_of(kind: str, model) -> str | None:
    holder = model.properties if kind == WORKSPACE else model
    return getattr(holder, "public_network_access", None) if holder is not None else None


def apply_access(props: dict[str, Any]) -> str:
    """Make the resource's publicNetworkAccess equal the wanted value; return what it is now."""
    client = _client(props)
    operations = _operations(client, props["kind"])
    current = operations.get(*_target_args(props))
    wanted = props["public_network_access"]
    if (_access_of(props["kind"], current) or "").lower() == wanted.lower():
        return wanted
    body = _writable_copy(props["kind"], current, wanted)
    result = operations.begin_create_or_update(*_target_args(props), body).result()
    return _access_of(props["kind"], result) or wanted


def _writable_copy(kind: str, current, wanted: str):
    """A new model holding only what a PUT may carry, so nothing read-only goes back."""
    from azure.mgmt.healthcareapis import models

    common = {"location": current.location, "tags": current.tags, "etag": current.etag}
    if kind == WORKSPACE:
        return models.Workspace(
            **common, properties=models.WorkspaceProperties(public_network_access=wanted)
        )
    identity = None
    if current.identity is not None:
        user_assigned = current.identity.user_assigned_identities or {}
        identity = models.ServiceManagedIdentityIdentity(
            type=current.identity.type,
            user_assigned_identities={key: models.UserAssignedIdentity() for key in user_assigned}
            or None,
        )
    # Both service kinds: who they are, how they are reached and encrypted, and the wanted access.
    service = {**common, "identity": identity, "cors_configuration": current.cors_configuration,
               "encryption": current.encryption, "public_network_access": wanted}
    if kind == DICOM:
        return models.DicomService(**service, storage_configuration=current.storage_configuration,
                                   enable_data_partitions=current.enable_data_partitions)
    return models.FhirService(
        **service,
        kind=current.kind,
        acr_configuration=current.acr_configuration,
        authentication_configuration=current.authentication_configuration,
        export_configuration=current.export_configuration,
        import_configuration=current.import_configuration,
        implementation_guides_configuration=current.implementation_guides_configuration,
        resource_version_policy_configuration=current.resource_version_policy_configuration,
    )


class PublicNetworkAccessProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        actual = apply_access(props)
        return CreateResult(
            id_=f"{resource_id(props)}/publicNetworkAccess",
            outs={**props, "actual": actual},
        )

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [key for key in TARGET_KEYS if olds.get(key) != news.get(key)]
        changes = replaces + [
            key for key in ("public_network_access", "arm_endpoint")
            if olds.get(key) != news.get(key)
        ]
        # A value changed outside Pulumi (seen by refresh) is drift to correct.
        if olds.get("actual") and olds["actual"].lower() != news["public_network_access"].lower():
            changes.append("actual")
        return DiffResult(
            changes=bool(changes), replaces=replaces, delete_before_replace=False
        )

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs={**news, "actual": apply_access(news)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs={**props, "actual": read_access(props)})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class PublicNetworkAccess(pulumi.dynamic.Resource, module="hdsctl", name="PublicNetworkAccess"):
    """The wanted publicNetworkAccess of one workspace, DICOM or FHIR service."""

    actual: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        kind: str,
        subscription_id: pulumi.Input[str],
        resource_group_name: pulumi.Input[str],
        workspace_name: pulumi.Input[str],
        service_name: str | None,
        public_network_access: str,
        arm_endpoint: str,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__(
            PublicNetworkAccessProvider(),
            name,
            {
                "kind": kind,
                "subscription_id": subscription_id,
                "resource_group_name": resource_group_name,
                "workspace_name": workspace_name,
                "service_name": service_name,
                "public_network_access": public_network_access,
                "arm_endpoint": arm_endpoint,
                "actual": None,
            },
            opts,
        )
