"""Interfaces that repeat across resources, built in one place (as Azure Verified Modules do):
role assignments, diagnostic settings, CORS, managed identity, customer-managed keys, and the
security settings of every Storage account hdsctl makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from hdsctl import naming, roles
from hdsctl.components.azure import package
from hdsctl.environment.access import Binding
from hdsctl.environment.services import Cors, CustomerManagedKey, Identity
from hdsctl.environment.workspace import Diagnostics

authorization = package("authorization", "role_assignment", "management_lock_by_scope", "get_client_config")
monitor = package("monitor", "diagnostic_setting")


@dataclass(frozen=True)
class Placement:
    """Where every data service of an environment goes, and how it is guarded."""

    workspace: pulumi.Input[str]
    resource_group_name: pulumi.Input[str]
    location: str
    tags: dict[str, str]
    protect: bool
    diagnostics: Diagnostics | None
    subscription_id: pulumi.Output[str]

    def service_arguments(self) -> dict:
        """What every data service resource of the workspace is given about where it lives."""
        return {"workspace_name": self.workspace, "resource_group_name": self.resource_group_name,
                "location": self.location, "tags": self.tags}


@dataclass(frozen=True)
class ServiceInterfaces:
    principal_id: pulumi.Output[str | None]
    role_assignments: list


def attach_interfaces(
    component: pulumi.Resource,
    label: str,
    service,
    log_categories: tuple[str, ...],
    placement: Placement,
    bindings: list[Binding],
) -> ServiceInterfaces:
    """What every DICOM and FHIR service gets alike: identity output, audit logs, role assignments."""
    if placement.diagnostics is not None:
        diagnostic_setting(component, label, service.id, log_categories, placement.diagnostics)
    return ServiceInterfaces(
        principal_id=service.identity.apply(lambda identity: identity.principal_id if identity else None),
        role_assignments=assign_roles(component, label, service.id, bindings, placement.subscription_id),
    )


@dataclass(frozen=True)
class ClientConfig:
    subscription_id: pulumi.Output[str]
    tenant_id: pulumi.Output[str]


def client_config() -> ClientConfig:
    """The subscription and tenant the deployment runs against."""
    config = authorization.get_client_config_output()
    return ClientConfig(config.subscription_id, config.tenant_id)


def assign_roles(
    parent: pulumi.Resource,
    label: str,
    scope_id: pulumi.Output[str],
    bindings: list[Binding],
    subscription_id: pulumi.Output[str],
) -> list[authorization.RoleAssignment]:
    """One RoleAssignment per binding of the spec."""
    return [grant(parent, f"{label}-{binding.alias}-{_slug(binding.role.name)}", scope_id,
                  binding.principal.object_id, binding.principal.type, binding.role, subscription_id,
                  binding.description)
            for binding in bindings]


def grant(
    parent: pulumi.Resource,
    resource_name: str,
    scope_id: pulumi.Input[str],
    principal_id: pulumi.Input[str],
    principal_type: str,
    role: roles.BuiltinRole,
    subscription_id: pulumi.Output[str],
    description: str | None = None,
    opts: pulumi.ResourceOptions | None = None,
) -> authorization.RoleAssignment:
    """A role assignment named by a GUID derived from (scope, principal, role), so re-running
    `pulumi up` never creates a second one. The principal may be known only after deployment
    (a managed identity)."""
    name = pulumi.Output.all(scope_id, principal_id).apply(
        lambda values: naming.role_assignment_name(values[0], values[1], role.guid))
    return authorization.RoleAssignment(
        resource_name,
        role_assignment_name=name,
        scope=scope_id,
        principal_id=principal_id,
        principal_type=principal_type,
        role_definition_id=subscription_id.apply(lambda sub: roles.role_definition_id(sub, role)),
        description=description,
        opts=pulumi.ResourceOptions.merge(pulumi.ResourceOptions(parent=parent), opts),
    )


def diagnostic_setting(
    parent: pulumi.Resource,
    label: str,
    resource_id: pulumi.Output[str],
    categories: tuple[str, ...],
    diagnostics: Diagnostics,
) -> monitor.DiagnosticSetting:
    return monitor.DiagnosticSetting(
        f"{label}-diagnostics",
        name="hdsctl-audit",
        resource_uri=resource_id,
        workspace_id=diagnostics.log_analytics_workspace_id,
        log_analytics_destination_type="Dedicated",
        logs=[{"category": category, "enabled": True} for category in categories],
        metrics=[{"category": "AllMetrics", "enabled": True}]
        if diagnostics.metrics else None,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def cors_args(cors: Cors | None) -> dict | None:
    """The CORS block in the wire shape shared by the DICOM and FHIR services."""
    if cors is None:
        return None
    return {
        "origins": cors.origins,
        "headers": cors.headers,
        "methods": list(cors.methods),
        "max_age": cors.max_age,
        "allow_credentials": cors.allow_credentials,
    }


def identity_args(identity: Identity | None) -> dict | None:
    if identity is None:
        return None
    return {
        "type": identity.type,
        "user_assigned_identities": identity.user_assigned_identities or None,
    }


def with_user_identity(identity: dict | None, identity_id: pulumi.Input[str]) -> dict:
    """The identity block with one more user-assigned identity in it."""
    kind = (identity or {}).get("type") or "None"
    kind = "UserAssigned" if kind == "None" else kind if "UserAssigned" in kind else f"{kind},UserAssigned"
    ids = (identity or {}).get("user_assigned_identities") or []
    return {"type": kind, "user_assigned_identities": [*ids, identity_id]}


def storage_account_security(private: bool) -> dict:
    """What every Storage account hdsctl makes has: TLS 1.2 over https only, no public blobs,
    Entra ID only (no shared keys), and in a private environment no network but the endpoints'."""
    return {
        "kind": "StorageV2",
        "minimum_tls_version": "TLS1_2",
        "enable_https_traffic_only": True,
        "allow_blob_public_access": False,
        "allow_shared_key_access": False,
        "default_to_o_auth_authentication": True,
        "network_rule_set": {"default_action": "Deny" if private else "Allow", "bypass": "AzureServices"},
    }


def encryption_args(key: CustomerManagedKey | None) -> dict | None:
    if key is None:
        return None
    return {"customer_managed_key_encryption": {"key_encryption_key_url": key.key_url}}


def _slug(text: str) -> str:
    return text.lower().replace(" ", "-")
