"""Plain-text rendering of an offline plan for a reviewer."""

from __future__ import annotations

from typing import Any

from hdsctl.preview import Plan, PlannedResource

# Inputs worth a reviewer's eye, per resource type; other types show their scalar inputs.
KEY_INPUTS = {
    "azure-native:resources:ResourceGroup": ("location",),
    "azure-native:healthcareapis:Workspace": ("location",),
    "azure-native:healthcareapis:DicomService": (
        "identity.type", "encryption.customerManagedKeyEncryption.keyEncryptionKeyUrl",
        "storageConfiguration.fileSystemName", "enableDataPartitions", "corsConfiguration.origins"),
    "azure-native:healthcareapis:FhirService": (
        "kind", "authenticationConfiguration.authority", "authenticationConfiguration.audience",
        "identity.type", "encryption.customerManagedKeyEncryption.keyEncryptionKeyUrl",
        "corsConfiguration.origins", "resourceVersionPolicyConfiguration.default"),
    "azure-native:authorization:RoleAssignment": (
        "roleAssignmentName", "principalId", "principalType", "roleDefinitionId"),
    "azure-native:authorization:ManagementLockByScope": ("level",),
    "azure-native:monitor:DiagnosticSetting": ("workspaceId", "logs", "metrics"),
    "azure-native:network:PrivateEndpoint": (
        "subnet.id", "privateLinkServiceConnections"),
    "azure-native:network:PrivateDnsZoneGroup": ("privateDnsZoneConfigs",),
    "azure-native:privatedns:VirtualNetworkLink": ("virtualNetwork.id",),
    "azure-native:eventgrid:SystemTopic": ("source", "topicType", "identity.type"),
    "azure-native:eventgrid:SystemTopicEventSubscription": (
        "filter.includedEventTypes", "filter.advancedFilters", "eventDeliverySchema",
        "deliveryWithResourceIdentity.destination", "retryPolicy",
        "deadLetterWithResourceIdentity.deadLetterDestination"),
    "azure-native:storage:ManagementPolicy": ("policy.rules",),
    "azure-native:storage:StorageAccount": (
        "sku.name", "isHnsEnabled", "allowSharedKeyAccess", "minimumTlsVersion", "allowBlobPublicAccess",
        "networkRuleSet.defaultAction"),
    "pulumi-python:dynamic/hdsctl:PublicNetworkAccess": ("kind", "service_name", "public_network_access"),
    "pulumi-python:dynamic/hdsctl:ExtendedQueryTags": ("url", "extended_query_tags"),
}


def render_plan(plan: Plan) -> str:
    lines = [
        f"Offline preview of stack '{plan.stack}' ({plan.source})",
        "Ran the Pulumi program under the SDK's mock runtime: no cloud was contacted, and ids,",
        "URLs and principal ids that Azure assigns are placeholders.",
        f"{len(plan.resources)} resources would be registered:",
        "",
    ]
    depth = {}
    for resource in plan.resources:
        level = depth.get(resource.parent, -1) + 1
        depth[resource.key] = level
        indent = "  " * level
        flags = _flags(resource)
        lines.append(f"{indent}{_short_type(resource.type)}  {resource.name}{flags}")
        for key, value in _key_inputs(resource):
            lines.append(f"{indent}    {key}: {value}")
        explicit = [d for d in resource.depends_on if d != resource.parent]
        if explicit and resource.type.startswith("pulumi-python:dynamic"):
            lines.append(f"{indent}    runs after: {len(explicit)} resources")
    if plan.outputs:
        lines += ["", "Stack outputs:"]
        lines += [f"  {key}: {_short(value, 200)}" for key, value in _flatten(plan.outputs)]
    return "\n".join(lines)


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        pairs = []
        for key, inner in value.items():
            pairs += _flatten(inner, f"{prefix}.{key}" if prefix else key)
        return pairs
    return [(prefix, value)]


def _short_type(type_: str) -> str:
    prefix = "pulumi-python:dynamic/"
    return f"{type_[len(prefix):]} (dynamic)" if type_.startswith(prefix) else type_


def _flags(resource: PlannedResource) -> str:
    flags = []
    if resource.protect:
        flags.append("protect")
    if resource.retain_on_delete:
        flags.append("retainOnDelete")
    if resource.import_id:
        flags.append(f"adopts {resource.import_id}")
    if resource.replace_on_changes:
        flags.append("replaceOnChanges: " + ", ".join(resource.replace_on_changes))
    if resource.custom_timeouts:
        flags.append("timeouts " + "/".join(resource.custom_timeouts.values()))
    return f"  [{'; '.join(flags)}]" if flags else ""


def _key_inputs(resource: PlannedResource) -> list[tuple[str, str]]:
    keys = KEY_INPUTS.get(resource.type)
    if keys is None:
        return []
    shown = []
    for key in keys:
        value = _lookup(resource.inputs, key)
        if value not in (None, [], {}):
            shown.append((key, _short(value)))
    return shown


def _lookup(inputs: dict[str, Any], dotted: str) -> Any:
    value: Any = inputs
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _short(value: Any, limit: int = 140) -> str:
    if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
        text = ", ".join(f"{key} {v.get('keyword') or v.get('private_creator') or ''}".strip()
                         for key, v in value.items())
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        text = ", ".join(
            str(v.get("category") or v.get("name") or v) for v in value
        )
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
