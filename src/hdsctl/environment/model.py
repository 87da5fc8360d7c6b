"""Typed model of one environment, as written under `hdsctl:` in a stack file.

Field checks live on the fields; rules that span fields (references, duplicates, limits)
live in `hdsctl.environment.references`, so every problem is reported with its own key path.
"""


from __future__ import annotations

from typing import Annotated

from pydantic import (
    Field,
)

from hdsctl.environment.dicom import DicomService
from hdsctl.environment.events import Events
from hdsctl.environment.fhir import FhirService
from hdsctl.environment.fields import Guid, HttpsUrl, Location, Model, Tier, env, promoted
from hdsctl.environment.principals import Principal, RoleAssignment
from hdsctl.environment.workspace import Diagnostics, Naming, PrivateNetworking, ResourceGroup, Workspace
from hdsctl.naming import PUBLIC_ARM_ENDPOINT


class EnvironmentSpec(Model):
    tier: Tier = env(...)
    location: Location = env(...)
    naming: Naming = env(...)
    tenant_id: Guid | None = env()
    # Only read by tools that look at Azure from outside a deployment (the role audit).
    subscription_id: Guid | None = env()
    tags: dict[Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^<>%&\\?/]+$")],
               Annotated[str, Field(max_length=256)]] = env(default_factory=dict)
    resource_group: ResourceGroup = env(default_factory=ResourceGroup)
    workspace: Workspace = env(default_factory=Workspace)
    dicom_services: list[DicomService] = promoted(default_factory=list)
    fhir_services: list[FhirService] = promoted(default_factory=list)
    # Aliases map to each environment's own identities; bindings refer to aliases.
    principals: dict[str, Principal] = env(default_factory=dict)
    role_assignments: list[RoleAssignment] = promoted(default_factory=list)
    private_networking: PrivateNetworking | None = env()
    diagnostics: Diagnostics | None = env()
    # Defaults follow the tier: on in prod, off elsewhere.
    lock: bool | None = env()
    protect_data: bool | None = env()
    # Mixed: subscriptions are promoted, destinations and ids belong to each environment.
    events: Events | None = promoted()
    arm_endpoint: HttpsUrl = env(PUBLIC_ARM_ENDPOINT)
    # Hosts other than Azure's DICOM hosts and loopback that may receive the DICOM token (a
    # gateway in front of the service). Each one is a reviewed decision; `validate` lists them.
    trusted_hosts: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+$", max_length=253)]] = env(
        default_factory=list)

    @property
    def locked(self) -> bool:
        return self.tier == "prod" if self.lock is None else self.lock

    @property
    def protected(self) -> bool:
        return self.tier == "prod" if self.protect_data is None else self.protect_data


# The top-level keys under the `hdsctl:` namespace of a stack file.
CONFIG_KEYS = tuple(field.alias or name for name, field in EnvironmentSpec.model_fields.items())
