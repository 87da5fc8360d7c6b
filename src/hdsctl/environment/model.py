"""Typed model of one environment, as written under `hdsctl:` in a stack file.

Field checks live on the fields; rules that span fields (references, duplicates, limits)
live in `hdsctl.environment.references`, so every problem is reported with its own key path.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

from hdsctl import naming, roles
from hdsctl.dicomtags import TagDefinition, TagRuleError, check_tag
from hdsctl.naming import PUBLIC_ARM_ENDPOINT

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
Location = Annotated[str, _matches(naming.LOCATION, "Azure location (e.g. westeurope)")]
SubnetId = Annotated[str, _arm_id("Microsoft.Network/virtualNetworks", "subnets")]
VnetId = Annotated[str, _arm_id("Microsoft.Network/virtualNetworks")]
PrivateZoneId = Annotated[str, _arm_id("Microsoft.Network/privateDnsZones")]
LogAnalyticsId = Annotated[str, _arm_id("Microsoft.OperationalInsights/workspaces")]
StorageAccountId = Annotated[str, _arm_id("Microsoft.Storage/storageAccounts")]
UserIdentityId = Annotated[str, _arm_id("Microsoft.ManagedIdentity/userAssignedIdentities")]
ServiceBusQueueId = Annotated[str, _arm_id("Microsoft.ServiceBus/namespaces", "queues")]
EventHubId = Annotated[str, _arm_id("Microsoft.EventHub/namespaces", "eventhubs")]
SystemTopicId = Annotated[str, _arm_id("Microsoft.EventGrid/systemTopics")]
# Storage queue and blob container names: 3-63 lowercase letters, digits and single hyphens.
StorageChildName = Annotated[str, _matches(
    naming.STORAGE_CHILD_NAME, "queue or container name (3-63 lowercase letters, digits and single hyphens)")]
StorageAccountName = Annotated[str, _matches(
    naming.STORAGE_ACCOUNT_NAME, "storage account name (3-24 lowercase letters and digits)")]


# Promotion classes: what belongs to one environment, what is carried to the next, and what
# identifies an item (a service) across environments. Promotion reads these and nothing else.
ENVIRONMENT, PROMOTED, KEY = "environment", "promoted", "key"


def _classified(promotion: str, default, kwargs, creation_time: bool = False):
    extra = {"promotion": promotion, "creation_time": creation_time}
    if "default_factory" in kwargs:
        return Field(json_schema_extra=extra, **kwargs)
    return Field(default, json_schema_extra=extra, **kwargs)


def env(default=None, **kwargs):
    return _classified(ENVIRONMENT, default, kwargs)


def promoted(default=None, *, creation_time: bool = False, **kwargs):
    """`creation_time`: fixed when the service is created; changing it replaces the service
    (a new, empty one), so promotion never changes it on its own."""
    return _classified(PROMOTED, default, kwargs, creation_time)


def key():
    return Field(json_schema_extra={"promotion": KEY})


def promotion_class(model: type[BaseModel], name: str) -> str | None:
    extra = model.model_fields[name].json_schema_extra
    return extra.get("promotion") if isinstance(extra, dict) else None


def is_creation_time(model: type[BaseModel], name: str) -> bool:
    extra = model.model_fields[name].json_schema_extra
    return bool(isinstance(extra, dict) and extra.get("creation_time"))


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


class CustomerManagedKey(Model):
    key_url: HttpsUrl


class ExtendedQueryTag(Model):
    path: str
    level: str
    vr: str | None = None
    private_creator: str | None = None
    query_enabled: bool = True

    @field_validator("path", mode="before")
    @classmethod
    def _path_read_as_a_number(cls, value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(f"YAML read this tag path as the number {value}; quote it (path: \"00100020\") "
                             "so its 8 hex digits stay as written")
        return value

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


class StorageTiering(Model):
    """Lifecycle rules on the service's own folder: online tiers only, by last access."""

    cool_after_days: int | None = Field(default=None, ge=1)
    cold_after_days: int | None = Field(default=None, ge=1)
    # Accepted as keys only to refuse them with the reason: the service cannot read archived
    # blobs, and deleting its files breaks its index (retention goes through DELETE: dicom expire).
    archive_after_days: int | None = None
    delete_after_days: int | None = None

    @model_validator(mode="after")
    def _online_tiers_only(self):
        if self.archive_after_days is not None:
            raise ValueError("archiveAfterDays is refused: the DICOM service cannot read archived blobs, so an "
                             "archived file breaks retrieval of its study; use coolAfterDays and coldAfterDays")
        if self.delete_after_days is not None:
            raise ValueError("deleteAfterDays is refused: deleting the service's files behind its back leaves "
                             "its index pointing at nothing; retention is done through the DELETE API "
                             "(hdsctl dicom expire, bounded by retention.minimumYears)")
        if self.cool_after_days is None and self.cold_after_days is None:
            raise ValueError("tiering needs coolAfterDays and/or coldAfterDays")
        if self.cool_after_days and self.cold_after_days and self.cold_after_days <= self.cool_after_days:
            raise ValueError("coldAfterDays must be later than coolAfterDays")
        return self


class DicomStorage(Model):
    """The service's files in the hospital's own Data Lake (ADLS Gen2): an existing account by
    id, or one hdsctl creates with the service (`create: true`)."""

    create: bool = False
    # With create: the new account's name (default: st<prefix><env>dcm, cut to 24 characters).
    account_name: StorageAccountName | None = None
    storage_account_id: StorageAccountId | None = None
    file_system_name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")] = "dicom"
    tiering: StorageTiering | None = None

    @model_validator(mode="after")
    def _new_or_existing(self):
        if self.create and self.storage_account_id:
            raise ValueError("create: true makes a new account; storageAccountId names an existing one: "
                             "give one")
        if not self.create and not self.storage_account_id:
            raise ValueError("give storageAccountId (an existing ADLS Gen2 account) or create: true")
        if not self.create and self.account_name:
            raise ValueError("accountName names the account hdsctl creates (create: true)")
        if self.tiering and not self.create:
            raise ValueError("tiering is applied to an account hdsctl creates (create: true); an existing "
                             "account's lifecycle rules stay with its owners")
        return self


class Retention(Model):
    # The shortest time a study is kept: hdsctl dicom expire refuses anything shorter.
    minimum_years: int = Field(ge=1, le=100)


class FhirLink(Model):
    """Where the linker writes this service's studies as ImagingStudy resources."""

    fhir_service: str
    # The Patient identifier system when a study carries no IssuerOfPatientID (0010,0021): the
    # hospital's medical record number system, e.g. urn:oid:<its OID>.
    patient_identifier_system: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] | None = None


class DicomService(Model):
    name: ServiceName = key()
    # Network exposure belongs to each environment: promotion never opens one to the internet.
    public_network_access: Access = env("Enabled")
    # CORS origins name each environment's own viewer hosts.
    cors: Cors | None = env()
    identity: Identity | None = env()
    customer_managed_key: CustomerManagedKey | None = env()
    storage: DicomStorage | None = env()
    # The program marks the ARM side (enableDataPartitions, storageConfiguration) replaceOnChanges.
    data_partitions: bool = promoted(False, creation_time=True)
    extended_query_tags: list[ExtendedQueryTag] = promoted(default_factory=list)
    # Data-plane base URL; defaults to the service's Azure URL. The local stack points it at
    # the local emulator.
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = env()
    fhir_link: FhirLink | None = promoted()
    # A legal minimum, the same in every environment that holds real studies.
    retention: Retention | None = promoted()


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
    # FHIR stand-in.
    url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = env()


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
    name: WorkspaceName | None = env()
    public_network_access: Access = env("Enabled")


class DnsZones(Model):
    # create: the zones are made in this environment's resource group and linked to the
    # endpoint's VNet. existing: zoneIds name zones that a hub already owns.
    mode: Literal["create", "existing"] = "create"
    # The single zone older estates use, instead of the three current ones.
    legacy_single_zone: bool = False
    zone_ids: list[PrivateZoneId] = Field(default_factory=list)
    # mode existing, when a DICOM service's Data Lake is created here: the hub's
    # privatelink.blob.core.windows.net and privatelink.dfs.core.windows.net zones.
    storage_zone_ids: list[PrivateZoneId] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_only_when_existing(self):
        if self.mode == "existing" and not self.zone_ids:
            raise ValueError("mode existing needs zoneIds (one per private DNS zone)")
        if self.mode == "create" and (self.zone_ids or self.storage_zone_ids):
            raise ValueError("zoneIds and storageZoneIds are only used with mode existing")
        return self


class PrivateNetworking(Model):
    subnet_id: SubnetId
    dns_zones: DnsZones = Field(default_factory=DnsZones)
    # VNets (besides the endpoint's own) that must resolve the private names.
    extra_vnet_links: list[VnetId] = Field(default_factory=list)


class Diagnostics(Model):
    log_analytics_workspace_id: LogAnalyticsId
    metrics: bool = True


class StorageQueueDestination(Model):
    queue: StorageChildName
    # Default: the environment's events storage account, created with the topic.
    account_id: StorageAccountId | None = None


class EventDestination(Model):
    """Where a subscription delivers: exactly one of a Storage queue, a Service Bus queue or an
    Event Hub. The last two are existing resources, named by id."""

    name: Annotated[str, _matches(naming.SERVICE_NAME, "destination name (3-24 lowercase letters, digits "
                                                       "and hyphens)")]
    storage_queue: StorageQueueDestination | None = None
    service_bus_queue_id: ServiceBusQueueId | None = None
    event_hub_id: EventHubId | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self):
        given = [kind for kind in ("storageQueue", "serviceBusQueueId", "eventHubId")
                 if getattr(self, to_snake(kind)) is not None]
        if len(given) != 1:
            raise ValueError("a destination is exactly one of storageQueue, serviceBusQueueId or eventHubId"
                             + (f" (given: {', '.join(given)})" if given else ""))
        return self

    @property
    def kind(self) -> str:
        """The role table's scope kind of this destination (storage-queue, service-bus-queue, event-hub)."""
        if self.storage_queue is not None:
            return roles.STORAGE_QUEUE
        return roles.SERVICE_BUS_QUEUE if self.service_bus_queue_id is not None else roles.EVENT_HUB

    @property
    def existing_id(self) -> str | None:
        """The id of a Service Bus queue or Event Hub destination (a Storage queue has none of its own)."""
        return self.service_bus_queue_id or self.event_hub_id


class DeadLetterContainer(Model):
    container: StorageChildName = "event-dead-letters"
    # Default: the environment's events storage account.
    account_id: StorageAccountId | None = None


def _full_event_type(value):
    full = f"{naming.HEALTH_EVENT_PREFIX}{value}" if isinstance(value, str) and "." not in value else value
    if full not in naming.HEALTH_EVENT_TYPES:
        short = ", ".join(t.removeprefix(naming.HEALTH_EVENT_PREFIX) for t in naming.HEALTH_EVENT_TYPES)
        raise ValueError(f"unknown event type {value!r}; Health Data Services publishes {short}")
    return full


class EventSubscription(Model):
    name: Annotated[str, _matches(naming.EVENT_SUBSCRIPTION_NAME,
                                  "subscription name (3-64 letters, digits and hyphens)")] = key()
    # Short (DicomImageCreated) or full (Microsoft.HealthcareApis.DicomImageCreated) names.
    event_types: list[Annotated[str, BeforeValidator(_full_event_type)]] = promoted(..., min_length=1)
    # Services whose events are delivered (by host name in the subject). Default: every
    # service of this environment of the kinds the event types are about.
    services: list[str] = promoted(default_factory=list)
    # A destination's name under hdsctl:events.destinations; each environment has its own.
    destination: str = promoted(...)
    schema_: Literal["CloudEventSchemaV1_0", "EventGridSchema"] = promoted(
        "CloudEventSchemaV1_0", alias="schema")
    max_delivery_attempts: int = promoted(30, ge=1, le=30)
    event_time_to_live_minutes: int = promoted(1440, ge=1, le=1440)
    # Undeliverable events go to the dead-letter container instead of being dropped.
    dead_letter: bool = promoted(True)


class Events(Model):
    # Only one system topic can exist per workspace: one made outside hdsctl is adopted by id.
    system_topic_id: SystemTopicId | None = env()
    # The account made for queues and dead letters that name no account of their own.
    storage_account_name: StorageAccountName | None = env()
    destinations: list[EventDestination] = env(default_factory=list)
    dead_letter: DeadLetterContainer = env(default_factory=DeadLetterContainer)
    subscriptions: list[EventSubscription] = promoted(default_factory=list)


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
