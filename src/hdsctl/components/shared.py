"""Interfaces that repeat across resources, built in one place (as Azure Verified Modules do):
role assignments, diagnostic settings, CORS, managed identity and customer-managed keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, monitor

from hdsctl import naming, roles
from hdsctl.spec.access import Binding
from hdsctl.spec.model import Cors, CustomerManagedKey, Diagnostics, Identity


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
    """One RoleAssignment per binding, named by a GUID derived from (scope, principal, role)."""
    created = []
    for binding in bindings:
        object_id = binding.principal.object_id
        name = scope_id.apply(
            lambda scope, oid=object_id, guid=binding.role.guid: naming.role_assignment_name(
                scope, oid, guid
            )
        )
        created.append(authorization.RoleAssignment(
            f"{label}-{binding.alias}-{_slug(binding.role.name)}",
            role_assignment_name=name,
            scope=scope_id,
            principal_id=object_id,
            principal_type=binding.principal.type,
            role_definition_id=subscription_id.apply(
                lambda sub, role=binding.role: roles.role_definition_id(sub, role)
            ),
            description=binding.description,
            opts=pulumi.ResourceOptions(parent=parent),
        ))
    return created


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


def encryption_args(key: CustomerManagedKey | None) -> dict | None:
    if key is None:
        return None
    return {"customer_managed_key_encryption": {"key_encryption_key_url": key.key_url}}


def _slug(text: str) -> str:
    return text.lower().replace(" ", "-")
