"""A FHIR service as a stack file declares it: SMART, export, import, OCI artifacts, versioning."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
)

from hdsctl.environment.fields import Access, HttpsUrl, Model, ServiceName, env, key, promoted
from hdsctl.environment.services import Cors, CustomerManagedKey, Identity


class SmartApplication(Model):
    client_id: str
    audience: str
    allowed_data_actions: list[Literal["Read"]] = Field(default_factory=lambda: ["Read"])


class SmartIdentityProvider(Model):
    authority: HttpsUrl
    applications: list[SmartApplication] = Field(default_factory=list)


class FhirExport(Model):
    storage_account_name: Annotated[str, Field(pattern=r"^[a-z0-9]{3,24}$")]


class FhirImport(Model):
    integration_data_store: Annotated[str, Field(pattern=r"^[a-z0-9]{3,24}$")]
    initial_import_mode: bool = False
    enabled: bool = True


class OciArtifact(Model):
    login_server: str
    image_name: str | None = None
    digest: str | None = None


class FhirAcr(Model):
    login_servers: list[str] = Field(default_factory=list)
    oci_artifacts: list[OciArtifact] = Field(default_factory=list)


VersionPolicy = Literal["no-version", "versioned", "versioned-update"]


class FhirVersionPolicy(Model):
    default: VersionPolicy = "versioned"
    resource_type_overrides: dict[str, VersionPolicy] = Field(default_factory=dict)


class FhirService(Model):
    name: ServiceName = key()
    kind: Literal["fhir-R4", "fhir-Stu3"] = promoted("fhir-R4")
    public_network_access: Access = env("Enabled")
    # Default: the environment's Entra tenant, https://login.microsoftonline.com/<tenantId>.
    authority: HttpsUrl | None = env()
    # Default: the service's own URL.
    audience: HttpsUrl | None = env()
    smart_proxy_enabled: bool = promoted(False)
    smart_identity_providers: list[SmartIdentityProvider] = env(default_factory=list)
    cors: Cors | None = env()
    export: FhirExport | None = env()
    import_: FhirImport | None = env(alias="import")
    acr: FhirAcr | None = env()
    version_policy: FhirVersionPolicy | None = promoted()
    us_core_missing_data: bool | None = promoted()
    identity: Identity | None = env()
    customer_managed_key: CustomerManagedKey | None = env()
    # Base URL; defaults to the service's Azure URL. The local stack points it at the local
    # FHIR service.
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = env()
