"""Typed model of one environment, as written under `hdsctl:` in a stack file.

Field checks live on the fields; rules that span fields (references, duplicates, limits)
live in `hdsctl.spec.references`, so every problem is reported with its own key path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)
from pydantic.alias_generators import to_camel

from hdsctl import naming
from hdsctl.dicomtags import TagDefinition, TagRuleError, check_tag

Tier = Literal["dev", "test", "prod"]
Access = Literal["Enabled", "Disabled"]
PrincipalType = Literal["User", "Group", "ServicePrincipal", "ForeignGroup", "Device"]


def _matches(pattern, what: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not a valid {what}")
        return value

    return AfterValidator(check)


def _arm_id(*segments: str):
    """An ARM resource id whose provider path contains the given segments."""

    def check(value: str) -> str:
        lowered = value.lower()
        if not lowered.startswith("/subscriptions/") or not all(
            f"/{segment.lower()}/" in lowered for segment in segments
        ):
            example = "/subscriptions/<guid>/resourceGroups/<rg>/providers/" + "/".join(
                f"{segment}/<name>" for segment in segments
            )
            raise ValueError(f"{value!r} is not a resource id of the form {example}")
        return value

    return AfterValidator(check)


Guid = Annotated[str, _matches(naming.GUID, "GUID (8-4-4-4-12 hex digits)")]
WorkspaceName = Annotated[
    str, _matches(naming.WORKSPACE_NAME, "workspace name (3-24 lowercase letters and digits)")
]
ServiceName = Annotated[
    str,
    _matches(
        naming.SERVICE_NAME,
        "service name (3-24 lowercase letters, digits and hyphens, "
        "starting and ending with a letter or digit)",
    ),
]
HttpsUrl = Annotated[str, Field(pattern=r"^https://[^\s/]+(/\S*)?$")]
SubnetId = Annotated[str, _arm_id("Microsoft.Network/virtualNetworks", "subnets")]
VnetId = Annotated[str, _arm_id("Microsoft.Network/virtualNetworks")]
PrivateZoneId = Annotated[str, _arm_id("Microsoft.Network/privateDnsZones")]
LogAnalyticsId = Annotated[str, _arm_id("Microsoft.OperationalInsights/workspaces")]
StorageAccountId = Annotated[str, _arm_id("Microsoft.Storage/storageAccounts")]
UserIdentityId = Annotated[str, _arm_id("Microsoft.ManagedIdentity/userAssignedIdentities")]


class Model(BaseModel):
    """Stack files use camelCase keys; unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class Cors(Model):
    origins: list[str] = Field(default_factory=list)
    headers: list[str] = Field(default_factory=list)
    methods: list[Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]] = Field(
        default_factory=list
    )
    max_age: int | None = Field(default=None, ge=0, le=99999)
    allow_credentials: bool = False

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self):
        if self.allow_credentials and "*" in self.origins:
            raise ValueError("allowCredentials cannot be combined with the wildcard origin '*'")
        return self


class Identity(Model):
    type: Literal["None", "SystemAssigned", "UserAssigned", "SystemAssigned,UserAssigned"]
    user_assigned_identities: list[UserIdentityId] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_match_type(self):
        wants_user = "UserAssigned" in self.type
        if wants_user and not self.user_assigned_identities:
            raise ValueError(f"identity type {self.type} needs userAssignedIdentities")
        if not wants_user and self.user_assigned_identities:
            raise ValueError(f"identity type {self.type} takes no userAssignedIdentities")
        return self

    @property
    def system_assigned(self) -> bool:
        return "SystemAssigned" in self.type


class CustomerManagedKey(Model):
    key_url: HttpsUrl


class ExtendedQueryTag(Model):
    path: str
    level: str
    vr: str | None = None
    private_creator: str | None = None
    query_enabled: bool = True

    @model_validator(mode="after")
    def _valid_for_the_service(self):
        try:
            check_tag(self.path, self.level, self.vr, self.private_creator)
        except TagRuleError as err:
            raise ValueError(str(err)) from None
        return self

    def definition(self) -> TagDefinition:
        """The tag as the service will store and report it."""
        return check_tag(self.path, self.level, self.vr, self.private_creator, self.query_enabled)


class DicomStorage(Model):
    storage_account_id: StorageAccountId
    file_system_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")]


class DicomService(Model):
    name: ServiceName
    public_network_access: Access = "Enabled"
    cors: Cors | None = None
    identity: Identity | None = None
    customer_managed_key: CustomerManagedKey | None = None
    storage: DicomStorage | None = None
    data_partitions: bool = False
    extended_query_tags: list[ExtendedQueryTag] = Field(default_factory=list)
    # Data-plane base URL; defaults to the service's Azure URL. The local stack points it at
    # the local emulator.
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = None


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
    name: ServiceName
    kind: Literal["fhir-R4", "fhir-Stu3"] = "fhir-R4"
    public_network_access: Access = "Enabled"
    # Default: the environment's Entra tenant, https://login.microsoftonline.com/<tenantId>.
    authority: HttpsUrl | None = None
    # Default: the service's own URL.
    audience: HttpsUrl | None = None
    smart_proxy_enabled: bool = False
    smart_identity_providers: list[SmartIdentityProvider] = Field(default_factory=list)
    cors: Cors | None = None
    export: FhirExport | None = None
    import_: FhirImport | None = Field(default=None, alias="import")
    acr: FhirAcr | None = None
    version_policy: FhirVersionPolicy | None = None
    us_core_missing_data: bool | None = None
    identity: Identity | None = None
    customer_managed_key: CustomerManagedKey | None = None


class Principal(Model):
    object_id: Guid
    type: PrincipalType


class RoleAssignment(Model):
    role: str
    principal: str
    # "workspace", or the name of a DICOM or FHIR service of this environment.
    scope: str = "workspace"
    description: str | None = None


class Naming(Model):
    prefix: Annotated[
        str, _matches(naming.PREFIX, "prefix (2-10 lowercase letters and digits, letter first)")
    ]


class ResourceGroup(Model):
    name: Annotated[str, _matches(naming.RESOURCE_GROUP_NAME, "resource group name")] | None = None
    create: bool = True

    @model_validator(mode="after")
    def _existing_needs_a_name(self):
        if not self.create and not self.name:
            raise ValueError("an existing resource group (create: false) needs its name")
        return self


class Workspace(Model):
    name: WorkspaceName | None = None
    public_network_access: Access = "Enabled"


class DnsZones(Model):
    # create: the zones are made in this environment's resource group and linked to the
    # endpoint's VNet. existing: zoneIds name zones that a hub already owns.
    mode: Literal["create", "existing"] = "create"
    # The single zone older estates use, instead of the three current ones.
    legacy_single_zone: bool = False
    zone_ids: list[PrivateZoneId] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_only_when_existing(self):
        if self.mode == "existing" and not self.zone_ids:
            raise ValueError("mode existing needs zoneIds (one per private DNS zone)")
        if self.mode == "create" and self.zone_ids:
            raise ValueError("zoneIds are only used with mode existing")
        return self


class PrivateNetworking(Model):
    subnet_id: SubnetId
    dns_zones: DnsZones = Field(default_factory=DnsZones)
    # VNets (besides the endpoint's own) that must resolve the private names.
    extra_vnet_links: list[VnetId] = Field(default_factory=list)


class Diagnostics(Model):
    log_analytics_workspace_id: LogAnalyticsId
    metrics: bool = True


class EnvironmentSpec(Model):
    tier: Tier
    location: Annotated[str, _matches(naming.LOCATION, "Azure location (e.g. westeurope)")]
    naming: Naming
    tenant_id: Guid | None = None
    # Only read by tools that look at Azure from outside a deployment (the role audit).
    subscription_id: Guid | None = None
    tags: dict[Annotated[str, Field(min_length=1, max_length=512, pattern=r"^[^<>%&\\?/]+$")],
               Annotated[str, Field(max_length=256)]] = Field(default_factory=dict)
    resource_group: ResourceGroup = Field(default_factory=ResourceGroup)
    workspace: Workspace = Field(default_factory=Workspace)
    dicom_services: list[DicomService] = Field(default_factory=list)
    fhir_services: list[FhirService] = Field(default_factory=list)
    principals: dict[str, Principal] = Field(default_factory=dict)
    role_assignments: list[RoleAssignment] = Field(default_factory=list)
    private_networking: PrivateNetworking | None = None
    diagnostics: Diagnostics | None = None
    # Defaults follow the tier: on in prod, off elsewhere.
    lock: bool | None = None
    protect_data: bool | None = None
    arm_endpoint: HttpsUrl = naming.PUBLIC_ARM_ENDPOINT

    @property
    def locked(self) -> bool:
        return self.tier == "prod" if self.lock is None else self.lock

    @property
    def protected(self) -> bool:
        return self.tier == "prod" if self.protect_data is None else self.protect_data


# The top-level keys under the `hdsctl:` namespace of a stack file.
CONFIG_KEYS = tuple(field.alias or name for name, field in EnvironmentSpec.model_fields.items())
