"""The guardrails. Each policy has a stable name, a description, and a message that says
how to fix what it found. Enforcement levels per tier live in `TIER_LEVELS`.

Policies see what the Pulumi engine sends analyzers: resource inputs, parents, dependencies
and property dependencies, and the `protect` option (not retainOnDelete, which analyzers are
not given). Links between resources are followed through property dependencies, because ids
are unknown during a first preview.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from hdsctl import naming, roles
from hdsctl.dicomtags import MAX_EXTENDED_QUERY_TAGS, TagRuleError, check_tag
from hdsctl.environment.private_dns import PRIVATE_ENDPOINT_GROUP_ID, ZONES, expected_zone_names

WORKSPACE = "azure-native:healthcareapis:Workspace"
DICOM = "azure-native:healthcareapis:DicomService"
FHIR = "azure-native:healthcareapis:FhirService"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"
LOCK = "azure-native:authorization:ManagementLockByScope"
DIAGNOSTICS = "azure-native:monitor:DiagnosticSetting"
PRIVATE_ENDPOINT = "azure-native:network:PrivateEndpoint"
ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
PRIVATE_ZONE = "azure-native:privatedns:PrivateZone"
PUBLIC_ACCESS = "pulumi-python:dynamic/hdsctl:PublicNetworkAccess"
QUERY_TAGS = "pulumi-python:dynamic/hdsctl:ExtendedQueryTags"
EVENT_SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"
STORAGE_ACCOUNT = "azure-native:storage:StorageAccount"
MANAGEMENT_POLICY = "azure-native:storage:ManagementPolicy"
# Lifecycle actions that break a DICOM service whose files they reach.
UNSAFE_LIFECYCLE_ACTIONS = {"tierToArchive": "moves files to Archive, where the DICOM service cannot read them",
                            "delete": "deletes files behind the service's back, orphaning its index"}
TAGGABLE = frozenset({
    "azure-native:resources:ResourceGroup", WORKSPACE, DICOM, FHIR, PRIVATE_ENDPOINT, PRIVATE_ZONE,
    "azure-native:privatedns:VirtualNetworkLink",
})
REQUIRED_TAGS = ("environment", "owner", "data-classification")
ENTRA_AUTHORITY = re.compile(
    r"^https://login\.(microsoftonline\.com|microsoftonline\.us|partner\.microsoftonline\.cn)/"
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}/?$"
)
SERVICE_NAME_KEY = {WORKSPACE: "workspaceName", DICOM: "dicomServiceName", FHIR: "fhirServiceName"}
PUBLIC_ACCESS_KIND = {WORKSPACE: "workspace", DICOM: naming.DICOM_CHILD_TYPE, FHIR: naming.FHIR_CHILD_TYPE}


def _known(read: Callable[[], Any]) -> Any:
    """A property's value, or None while the engine does not know it yet (first preview)."""
    from pulumi_policy.proxy import UnknownValueError

    try:
        return read()
    except (UnknownValueError, KeyError, TypeError, AttributeError):
        return None


def _get(props, *path) -> Any:
    def read():
        value = props
        for key in path:
            value = value.get(key) if hasattr(value, "get") else None
            if value is None:
                return None
        return value

    return _known(read)


def _label(resource: PolicyResource) -> str:
    return f"{resource.resource_type.rsplit(':', 1)[-1]} '{resource.name}'"


def _depends_on(resource: PolicyResource, prop: str, target: PolicyResource) -> bool:
    return any(dep.urn == target.urn for dep in (resource.property_dependencies or {}).get(prop, []))


def _of_type(resources: Iterable[PolicyResource], *types: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]


# -- public network access, private link --------------------------------------------------

def _public_access_disabled(args: StackValidationArgs, report: ReportViolation) -> None:
    setters = _of_type(args.resources, PUBLIC_ACCESS)
    for resource in _of_type(args.resources, WORKSPACE, DICOM, FHIR):
        kind = PUBLIC_ACCESS_KIND[resource.resource_type]
        service = (None if kind == "workspace"
                   else _get(resource.props, SERVICE_NAME_KEY[resource.resource_type]))
        wanted = [_get(s.props, "public_network_access") for s in setters
                  if _get(s.props, "kind") == kind and (_get(s.props, "service_name") or None) == service]
        if "Disabled" not in wanted:
            report(f"{_label(resource)} is reachable from the internet (publicNetworkAccess "
                   f"{wanted[0] if wanted else 'Enabled, the default'}). Set publicNetworkAccess: "
                   "Disabled for it in the stack file and reach it through the workspace private "
                   "endpoint.", resource.urn)


def _private_endpoint(args: StackValidationArgs, report: ReportViolation) -> None:
    workspaces = _of_type(args.resources, WORKSPACE)
    endpoints = _of_type(args.resources, PRIVATE_ENDPOINT)
    for workspace in workspaces:
        name = _get(workspace.props, "workspaceName") or workspace.name
        linked = [e for e in endpoints if _endpoint_targets(e, workspace, name)]
        if not linked:
            report(f"workspace '{name}' has no private endpoint with group id "
                   f"'{PRIVATE_ENDPOINT_GROUP_ID}'. Add hdsctl:privateNetworking with the subnet "
                   "for private endpoints.", workspace.urn)
            continue
        covered = set()
        for group in _of_type(args.resources, ZONE_GROUP):
            if any(_depends_on(group, "privateEndpointName", e) for e in linked):
                covered |= _zone_names(group, args.resources)
        if not (set(ZONES) <= covered or set(expected_zone_names(True)) <= covered):
            missing = sorted(set(ZONES) - covered)
            report(f"the private endpoint of workspace '{name}' has no DNS zone group covering "
                   f"{', '.join(missing)}. Let hdsctl create the zones or list the existing ones "
                   "under privateNetworking.dnsZones.", workspace.urn)


def _endpoint_targets(endpoint: PolicyResource, workspace: PolicyResource, name: str) -> bool:
    connections = _get(endpoint.props, "privateLinkServiceConnections") or []
    for connection in connections:
        groups = _known(lambda c=connection: list(c.get("groupIds") or []))
        if groups is None or PRIVATE_ENDPOINT_GROUP_ID not in groups:
            continue
        target = _known(lambda c=connection: c.get("privateLinkServiceId"))
        if _depends_on(endpoint, "privateLinkServiceConnections", workspace) or (
                isinstance(target, str) and target.lower().endswith(f"/workspaces/{name.lower()}")):
            return True
    return False


def _zone_names(group: PolicyResource, resources) -> set[str]:
    names = set()
    for config in _get(group.props, "privateDnsZoneConfigs") or []:
        zone_id = _known(lambda c=config: c.get("privateDnsZoneId"))
        if isinstance(zone_id, str):
            names.add(naming.arm_name(zone_id).lower())
    for dependency in (group.property_dependencies or {}).get("privateDnsZoneConfigs", []):
        if dependency.resource_type == PRIVATE_ZONE:
            names.add(str(_get(dependency.props, "privateZoneName") or dependency.name).lower())
    return names


# -- logs, keys, deletion -----------------------------------------------------------------

def _audit_logs(args: StackValidationArgs, report: ReportViolation) -> None:
    settings = _of_type(args.resources, DIAGNOSTICS)
    for service in _of_type(args.resources, DICOM, FHIR):
        needed = {"AuditLogs", "DiagnosticLogs"} if service.resource_type == DICOM else {"AuditLogs"}
        sent = set()
        for setting in settings:
            if not _depends_on(setting, "resourceUri", service) or not _get(setting.props, "workspaceId"):
                continue
            for log in _get(setting.props, "logs") or []:
                if _known(lambda entry=log: entry.get("enabled")):
                    category = _known(lambda entry=log: entry.get("category") or entry.get("categoryGroup"))
                    sent |= needed if category == "allLogs" else {category}
        if not needed <= sent:
            report(f"{_label(service)} does not send {', '.join(sorted(needed - sent))} to a Log "
                   "Analytics workspace. Set hdsctl:diagnostics.logAnalyticsWorkspaceId.", service.urn)


def _customer_managed_keys(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (DICOM, FHIR):
        return
    if not _get(args.props, "encryption", "customerManagedKeyEncryption", "keyEncryptionKeyUrl"):
        report(f"{args.resource_type.rsplit(':', 1)[-1]} '{args.name}' stores data with a Microsoft-"
               "managed key. Set customerManagedKey.keyUrl (a Key Vault key) and an identity that may "
               "use it.")


def _data_services_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in (DICOM, FHIR) and not args.opts.protect:
        report(f"{args.resource_type.rsplit(':', 1)[-1]} '{args.name}' could be deleted by "
               "`pulumi destroy` or a removed block. Set hdsctl:protectData: true.")


def _workspace_lock(args: StackValidationArgs, report: ReportViolation) -> None:
    locks = [lock for lock in _of_type(args.resources, LOCK)
             if _get(lock.props, "level") == "CanNotDelete"]
    for workspace in _of_type(args.resources, WORKSPACE):
        if not any(_depends_on(lock, "scope", workspace) for lock in locks):
            report(f"workspace '{workspace.name}' has no CanNotDelete lock. Set hdsctl:lock: true.",
                   workspace.urn)


# -- access -------------------------------------------------------------------------------

def _role_of(props) -> roles.BuiltinRole | None:
    definition = _get(props, "roleDefinitionId")
    return roles.role_by_guid(naming.arm_name(definition)) if isinstance(definition, str) else None


def _no_privileged_roles(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ROLE_ASSIGNMENT:
        return
    scope = _get(args.props, "scope")
    if isinstance(scope, str) and "/microsoft.healthcareapis/" not in scope.lower():
        return
    role = _role_of(args.props)
    if role is not None and role.privileged:
        report(f"role assignment '{args.name}' grants {role.name} on imaging data services. Grant a "
               "data role instead (DICOM Data Reader/Owner, FHIR Data Reader/Writer/...); manage the "
               "resources through the pipeline.")


def _no_user_assignments(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == ROLE_ASSIGNMENT and _get(args.props, "principalType") == "User":
        report(f"role assignment '{args.name}' grants access to an individual user. Grant it to a "
               "group (principal type Group) whose membership is reviewed, or to a service principal.")


def _principal_type_set(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type == ROLE_ASSIGNMENT and not _get(args.props, "principalType"):
        report(f"role assignment '{args.name}' has no principalType. Set the principal's type under "
               "hdsctl:principals (User, Group, ServicePrincipal, ...).")


def _role_assignment_name_is_guid(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != ROLE_ASSIGNMENT:
        return
    name = _get(args.props, "roleAssignmentName")
    if not isinstance(name, str) or not naming.GUID.match(name):
        report(f"role assignment '{args.name}' is named {name!r}; ARM needs a GUID. Let hdsctl "
               "derive it from scope, principal and role.")


# -- service settings ---------------------------------------------------------------------

def _cors_origins(props) -> tuple[list[str], bool]:
    origins = _get(props, "corsConfiguration", "origins") or []
    return list(origins), bool(_get(props, "corsConfiguration", "allowCredentials"))


def _no_wildcard_origin(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type in (DICOM, FHIR) and "*" in _cors_origins(args.props)[0]:
        report(f"{args.resource_type.rsplit(':', 1)[-1]} '{args.name}' accepts browser calls from "
               "any origin ('*'). List the viewer and portal origins instead.")


def _no_wildcard_with_credentials(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in (DICOM, FHIR):
        return
    origins, credentials = _cors_origins(args.props)
    if "*" in origins and credentials:
        report(f"{args.resource_type.rsplit(':', 1)[-1]} '{args.name}' allows credentials from any "
               "origin. Remove '*' from cors.origins or set allowCredentials: false.")


def _fhir_authority_audience(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != FHIR:
        return
    authority = _get(args.props, "authenticationConfiguration", "authority")
    audience = _get(args.props, "authenticationConfiguration", "audience")
    if isinstance(authority, str) and not ENTRA_AUTHORITY.match(authority):
        report(f"FHIR service '{args.name}' trusts authority {authority!r}, not an Entra tenant. "
               "Use https://login.microsoftonline.com/<tenant id>.")
    workspace = _get(args.props, "workspaceName")
    service = _get(args.props, "fhirServiceName") or args.name
    allowed = set((args.get_config() or {}).get("applicationIdUris", []))
    if isinstance(workspace, str):
        allowed.add(naming.fhir_url(workspace, service))
    if isinstance(audience, str) and isinstance(workspace, str) and audience.rstrip("/") not in allowed \
            and not audience.startswith("api://"):
        report(f"FHIR service '{args.name}' expects tokens for audience {audience!r}, which is neither "
               f"its URL ({naming.fhir_url(workspace, service)}) nor an application id URI (api://...).")


def _extended_query_tags_valid(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != QUERY_TAGS:
        return
    declared = _get(args.props, "extended_query_tags") or {}
    if len(declared) > MAX_EXTENDED_QUERY_TAGS:
        report(f"{len(declared)} extended query tags declared; a DICOM service holds at most "
               f"{MAX_EXTENDED_QUERY_TAGS}.")
    for path, tag in dict(declared).items():
        try:
            check_tag(path, tag.get("level") or "", tag.get("vr") or None, tag.get("private_creator") or None)
        except TagRuleError as err:
            report(f"extended query tag {path} of '{args.name}' would be refused: {err}.")


def _required_tags(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type not in TAGGABLE:
        return
    tags = _get(args.props, "tags") or {}
    missing = [key for key in REQUIRED_TAGS if not _known(lambda k=key: tags.get(k))]
    if missing:
        report(f"{args.resource_type.rsplit(':', 1)[-1]} '{args.name}' lacks the tag(s) "
               f"{', '.join(missing)}. Add them under hdsctl:tags.")


# -- events -------------------------------------------------------------------------------

def _subscription_label(args: ResourceValidationArgs) -> str:
    return f"event subscription '{_get(args.props, 'eventSubscriptionName') or args.name}'"


def _indexes_storage(props) -> bool:
    """A storage-indexing subscription: Blob events (hds-storage-indexing-safe judges those)."""
    return any(t in naming.BLOB_EVENT_TYPES for t in _get(props, "filter", "includedEventTypes") or [])


def _events_dead_letter(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EVENT_SUBSCRIPTION or _indexes_storage(args.props):
        return
    if not (_get(args.props, "deadLetterWithResourceIdentity", "deadLetterDestination")
            or _get(args.props, "deadLetterDestination")):
        report(f"{_subscription_label(args)} drops the events it cannot deliver. Remove `deadLetter: false` "
               "from it under hdsctl:events.subscriptions, so they go to the dead-letter container "
               "(hdsctl:events.deadLetter).")


def _events_managed_identity(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != EVENT_SUBSCRIPTION:
        return
    keyed = _get(args.props, "destination") or _get(args.props, "deadLetterDestination")
    if keyed or not _get(args.props, "deliveryWithResourceIdentity", "identity", "type"):
        report(f"{_subscription_label(args)} does not deliver with the topic's managed identity. Declare "
               "its destination under hdsctl:events.destinations and let hdsctl grant the topic's "
               "identity; never put keys or SAS URLs in the stack.")


def _dicom_hosts(resources) -> set[str]:
    hosts = set()
    for service in _of_type(resources, DICOM):
        workspace, name = _get(service.props, "workspaceName"), _get(service.props, "dicomServiceName")
        if isinstance(workspace, str) and isinstance(name, str):
            hosts.add(naming.host_of(naming.dicom_url(workspace, name)) + "/")
    return hosts


def _events_dicom_filtered(args: StackValidationArgs, report: ReportViolation) -> None:
    hosts = _dicom_hosts(args.resources)
    for subscription in _of_type(args.resources, EVENT_SUBSCRIPTION):
        types = _get(subscription.props, "filter", "includedEventTypes") or []
        if not any(t in naming.DICOM_EVENT_TYPES for t in types):
            continue
        prefixes = [value for f in (_get(subscription.props, "filter", "advancedFilters") or [])
                    if _get(f, "key") == "subject" and _get(f, "operatorType") == "StringBeginsWith"
                    for value in (_get(f, "values") or [])]
        dicom_prefixes = [p for p in prefixes if ".dicom." in p]
        if not dicom_prefixes or not set(dicom_prefixes) <= hosts:
            name = _get(subscription.props, "eventSubscriptionName") or subscription.name
            report(f"event subscription '{name}' takes DICOM events from services outside this environment "
                   f"(subject filter: {', '.join(prefixes) or 'none'}). Let hdsctl derive the filter: list "
                   "this environment's services under its services key, or leave it empty for all of them.",
                   subscription.urn)


OWN_WRITES_FILTER = ("data.clientRequestId", "StringNotBeginsWith")


def _storage_indexing_safe(args: StackValidationArgs, report: ReportViolation) -> None:
    """An indexing subscription never hands the service its own writes back (they would be indexed
    twice) and keeps what it cannot deliver (an undelivered file is never indexed)."""
    own_writes = {naming.dicom_own_writes_tag(_get(service.props, "workspaceName"),
                                              _get(service.props, "dicomServiceName"))
                  for service in _of_type(args.resources, DICOM)}
    for subscription in _of_type(args.resources, EVENT_SUBSCRIPTION):
        if not _indexes_storage(subscription.props):
            continue
        name = _get(subscription.props, "eventSubscriptionName") or subscription.name
        excluded = {value for f in (_get(subscription.props, "filter", "advancedFilters") or [])
                    if (_get(f, "key"), _get(f, "operatorType")) == OWN_WRITES_FILTER
                    for value in (_get(f, "values") or [])}
        if not excluded & own_writes:
            report(f"storage-indexing subscription '{name}' does not leave out the DICOM service's own writes "
                   "(StringNotBeginsWith on data.clientRequestId 'tag:<workspace>-<service>.dicom."
                   "azurehealthcareapis.com,'): declare indexing under the service's storage and let hdsctl "
                   "make the subscription.", subscription.urn)
        if not _get(subscription.props, "deadLetterWithResourceIdentity", "deadLetterDestination"):
            report(f"storage-indexing subscription '{name}' drops the Blob events it cannot deliver, and the "
                   "files they name are never indexed. Add storage.indexing.deadLetter: {container: ...}.",
                   subscription.urn)


# -- storage ------------------------------------------------------------------------------

def _no_shared_key(args: ResourceValidationArgs, report: ReportViolation) -> None:
    shared_key = _get(args.props, "allowSharedKeyAccess")
    if args.resource_type == STORAGE_ACCOUNT and shared_key is not False:
        report(f"storage account '{_get(args.props, 'accountName') or args.name}' accepts shared keys, which "
               "bypass Entra ID and its audit. Set allowSharedKeyAccess: false (hdsctl sets it on the accounts "
               "it creates) and grant data roles instead.")


def _lifecycle_reaches_dicom(prefixes: list[str]) -> bool:
    """Whether a rule's `container/path` prefixes reach files under AHDS/ (where DICOM services
    write): no prefix reaches every blob, a container alone all of it."""
    paths = [p.split("/", 1)[1] if "/" in p else "" for p in prefixes]
    return not prefixes or any("AHDS/".startswith(path) or path.startswith("AHDS/") for path in paths)


def _dicom_lifecycle_safe(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != MANAGEMENT_POLICY:
        return
    for rule in _get(args.props, "policy", "rules") or []:
        prefixes = list(_get(rule, "definition", "filters", "prefixMatch") or [])
        actions = _get(rule, "definition", "actions") or {}
        if not _lifecycle_reaches_dicom(prefixes):
            continue
        for target in ("baseBlob", "snapshot", "version"):
            for action, why in UNSAFE_LIFECYCLE_ACTIONS.items():
                if _get(actions, target, action):
                    report(f"lifecycle rule '{_get(rule, 'name')}' of '{args.name}' {why} (it reaches "
                           f"{', '.join(prefixes) or 'every blob'}). Tier DICOM files to Cool and Cold only "
                           "(storage.tiering), and expire studies through the DELETE API "
                           "(hdsctl dicom expire).")


# -- the pack -----------------------------------------------------------------------------

def _resource(name, description, validate):
    return ResourceValidationPolicy(name, description, validate)


def _stack(name, description, validate):
    return StackValidationPolicy(name, description, validate)


POLICIES = [
    _stack("hds-public-network-access-disabled",
           "Workspace, DICOM and FHIR services are not reachable from the internet.",
           _public_access_disabled),
    _stack("hds-workspace-private-endpoint",
           "The workspace has a private endpoint (group healthcareworkspace) with DNS zones for "
           "workspace, DICOM and FHIR.", _private_endpoint),
    _stack("hds-audit-logs", "DICOM sends AuditLogs and DiagnosticLogs, FHIR AuditLogs, to Log Analytics.",
           _audit_logs),
    _resource("hds-customer-managed-keys", "DICOM and FHIR data is encrypted with a customer-managed key.",
              _customer_managed_keys),
    _resource("hds-data-services-protected", "DICOM and FHIR services are protected from deletion.",
              _data_services_protected),
    _stack("hds-workspace-delete-lock", "The workspace carries a CanNotDelete lock.", _workspace_lock),
    _resource("hds-no-privileged-role-assignments",
              "No Owner, Contributor, User Access Administrator or RBAC Administrator on imaging services.",
              _no_privileged_roles),
    _resource("hds-no-user-role-assignments", "Access goes to groups and service principals, not users.",
              _no_user_assignments),
    _resource("hds-principal-type-set", "Every role assignment states its principal type.",
              _principal_type_set),
    _resource("hds-cors-no-wildcard-origin", "CORS names its origins.", _no_wildcard_origin),
    _resource("hds-cors-no-wildcard-with-credentials", "CORS never allows credentials from any origin.",
              _no_wildcard_with_credentials),
    _resource("hds-fhir-authority-audience",
              "FHIR trusts an Entra tenant and expects its own URL or an application id URI as audience.",
              _fhir_authority_audience),
    _resource("hds-extended-query-tags-valid", "Extended query tags are ones the DICOM service accepts.",
              _extended_query_tags_valid),
    _resource("hds-required-resource-tags",
              "Resources carry environment, owner and data-classification tags.", _required_tags),
    _resource("hds-role-assignment-name-guid", "Role assignment names are GUIDs.",
              _role_assignment_name_is_guid),
    _resource("hds-events-dead-letter", "Every event subscription dead-letters what it cannot deliver.",
              _events_dead_letter),
    _resource("hds-events-managed-identity",
              "Event subscriptions deliver and dead-letter with the topic's managed identity.",
              _events_managed_identity),
    _stack("hds-events-dicom-filtered", "DICOM event subscriptions take events of this environment's "
           "services only.", _events_dicom_filtered),
    _stack("hds-storage-indexing-safe", "Storage-indexing subscriptions leave out the service's own writes "
           "and dead-letter what they cannot deliver.", _storage_indexing_safe),
    _resource("hds-storage-no-shared-key", "Storage accounts accept Entra ID only, no shared keys.",
              _no_shared_key),
    _resource("hds-dicom-lifecycle-safe", "No lifecycle rule archives or deletes a DICOM service's files.",
              _dicom_lifecycle_safe),
]
POLICY_NAMES = tuple(policy.name for policy in POLICIES)

ADVISORY, MANDATORY, DISABLED = (EnforcementLevel.ADVISORY, EnforcementLevel.MANDATORY,
                                 EnforcementLevel.DISABLED)
EVERY_TIER = {"dev": ADVISORY, "test": MANDATORY, "prod": MANDATORY}
PROD_ONLY = {"dev": ADVISORY, "test": ADVISORY, "prod": MANDATORY}
OUTSIDE_DEV = {"dev": DISABLED, "test": MANDATORY, "prod": MANDATORY}

# Policy → tier → level. Tightened per tier: dev warns, prod blocks.
TIER_LEVELS: dict[str, dict[str, EnforcementLevel]] = {
    "hds-public-network-access-disabled": PROD_ONLY,
    "hds-workspace-private-endpoint": PROD_ONLY,
    "hds-audit-logs": EVERY_TIER,
    "hds-customer-managed-keys": PROD_ONLY,
    "hds-data-services-protected": PROD_ONLY,
    "hds-workspace-delete-lock": PROD_ONLY,
    "hds-no-privileged-role-assignments": EVERY_TIER,
    "hds-no-user-role-assignments": PROD_ONLY,
    "hds-principal-type-set": EVERY_TIER,
    "hds-cors-no-wildcard-origin": OUTSIDE_DEV,
    "hds-cors-no-wildcard-with-credentials": EVERY_TIER,
    "hds-fhir-authority-audience": EVERY_TIER,
    "hds-extended-query-tags-valid": EVERY_TIER,
    "hds-required-resource-tags": EVERY_TIER,
    "hds-role-assignment-name-guid": EVERY_TIER,
    "hds-events-dead-letter": EVERY_TIER,
    "hds-events-managed-identity": EVERY_TIER,
    "hds-events-dicom-filtered": EVERY_TIER,
    "hds-storage-indexing-safe": EVERY_TIER,
    "hds-storage-no-shared-key": PROD_ONLY,
    "hds-dicom-lifecycle-safe": EVERY_TIER,
}


def pack_config(tier: str) -> dict[str, dict[str, str]]:
    """The --policy-pack-config document for a tier."""
    return {name: {"enforcementLevel": TIER_LEVELS[name][tier].value} for name in POLICY_NAMES}
