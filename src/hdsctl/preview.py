"""Offline preview: run the real Pulumi program under the SDK's mock runtime and record
every resource `pulumi up` would register, with its inputs, parent, dependencies and options.

Nothing here talks to Azure or needs the Pulumi CLI. Providers do not run, so values only a
cloud can know (ids, URLs, principal ids) are filled in with placeholders built from names.
"""

from __future__ import annotations

import runpy
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hdsctl import naming
from hdsctl.environment.load import SECRET_PLACEHOLDER, StackFile, read_stack_file

PROGRAM = Path("infra") / "__main__.py"
PROJECT = "hdsctl"
OFFLINE_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
OFFLINE_TENANT = "00000000-0000-0000-0000-000000000000"
DYNAMIC_PREFIX = "pulumi-python:dynamic"


@dataclass
class PlannedResource:
    type: str
    name: str
    urn: str
    parent: str | None
    custom: bool
    depends_on: list[str]
    inputs: dict[str, Any]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    replace_on_changes: list[str]
    ignore_changes: list[str]
    custom_timeouts: dict[str, str]
    # The id of an existing resource `pulumi up` adopts (imports) instead of creating.
    import_id: str | None = None
    # Input property → the resources (by key) its value came from.
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.type}::{self.name}"


@dataclass
class Plan:
    stack: str
    source: str
    tier: str
    resources: list[PlannedResource] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    offline: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "source": self.source,
            "tier": self.tier,
            "offline": self.offline,
            "note": "offline preview: the program ran under Pulumi's mock runtime; no cloud "
                    "was contacted and cloud-assigned values are placeholders",
            "resourceCount": len(self.resources),
            "resources": [asdict(r) for r in self.resources],
            "outputs": self.outputs,
        }


def run_preview(stack_path: Path, program: Path = PROGRAM) -> Plan:
    """Validate the stack file, then run the program against it in-process."""
    from hdsctl.environment.load import environment_from_stack_file

    stack_file = read_stack_file(stack_path)
    environment = environment_from_stack_file(stack_file)  # clear errors before any Pulumi machinery
    plan = Plan(stack=environment.name, source=str(stack_path), tier=environment.spec.tier)
    _run_under_mocks(stack_file, program, plan, environment.spec.tenant_id or OFFLINE_TENANT)
    return plan


def _pulumi_config(stack_file: StackFile) -> tuple[dict[str, str], list[str]]:
    """Config as the engine would pass it: JSON for structured values, secrets masked."""
    import json

    config, secret_keys = {}, []
    for key, value in stack_file.config.items():
        if key in stack_file.secret_keys:
            config[key] = SECRET_PLACEHOLDER
            secret_keys.append(key)
        elif isinstance(value, (dict, list)):
            config[key] = json.dumps(value)
        else:
            config[key] = "" if value is None else str(value)
    return config, secret_keys


def _run_under_mocks(stack_file: StackFile, program: Path, plan: Plan, tenant_id: str) -> None:
    import pulumi
    from pulumi.runtime import mocks, settings, stack
    from pulumi.runtime.sync_await import _sync_await

    settings.reset_options()
    config, secret_keys = _pulumi_config(stack_file)
    pulumi.runtime.set_all_config(config, secret_keys)
    monitor = _RecordingMonitor(_OfflineMocks(tenant_id), plan)
    mocks.set_mocks(monitor.mocks, project=PROJECT, stack=plan.stack, preview=False,
                    monitor=monitor)
    try:
        _sync_await(stack.run_pulumi_func(lambda: runpy.run_path(str(program), run_name="__main__")))
        root = settings.get_root_resource()
        outputs = dict(getattr(root, "outputs", {}) or {})
        plan.outputs = _sync_await(_resolve(outputs))
    finally:
        settings.reset_options()
    monitor.finish()
    by_key = {resource.key: resource for resource in plan.resources}
    plan.resources.sort(key=lambda resource: _tree_path(resource, by_key))


def _tree_path(resource: PlannedResource, by_key: dict[str, PlannedResource]) -> tuple:
    """Sort key that puts every resource right under its parent, siblings by type and name."""
    path = []
    current: PlannedResource | None = resource
    while current is not None:
        path.append((current.type, current.name))
        current = by_key.get(current.parent) if current.parent else None
    return tuple(reversed(path))


async def _resolve(value: Any) -> Any:
    import pulumi

    if isinstance(value, pulumi.Output):
        secret = await value.is_secret()
        resolved = await _resolve(await value.future())
        return SECRET_PLACEHOLDER if secret else resolved
    if isinstance(value, dict):
        return {k: await _resolve(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [await _resolve(v) for v in value]
    return value


def _sanitize(value: Any) -> Any:
    """Inputs as a reviewer should see them: secrets masked, pickled providers left out."""
    from pulumi.runtime.rpc import is_rpc_secret

    if is_rpc_secret(value):
        return SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {k: _sanitize(v) for k, v in value.items() if k != "__provider"}
    if isinstance(value, list):
        return [_sanitize(v) for v in value]
    return value


class _RecordingMonitor:
    """Wraps the SDK's MockMonitor to keep the whole RegisterResource request."""

    def __init__(self, offline_mocks, plan: Plan):
        from pulumi.runtime.mocks import MockMonitor

        self.mocks = offline_mocks
        self.plan = plan
        self._inner = MockMonitor(offline_mocks)
        self._names_by_urn: dict[str, str] = {}
        self._requests = []  # (request, urn)

    def __getattr__(self, item):
        return getattr(self._inner, item)

    def RegisterResource(self, request):
        response = self._inner.RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self._names_by_urn[response.urn] = f"{request.type}::{request.name}"
            self._requests.append((request, response.urn))
        return response

    def finish(self) -> None:
        from pulumi.runtime import rpc

        for request, urn in self._requests:
            inputs = rpc.deserialize_properties(request.object, keep_unknowns=True)
            provider = inputs.get("__provider")
            clean = _sanitize(inputs)
            if request.type.startswith(DYNAMIC_PREFIX) and provider is not None:
                clean["provider"] = "dynamic (pickled with the program)"
            timeouts = request.customTimeouts
            self.plan.resources.append(PlannedResource(
                type=request.type,
                name=request.name,
                urn=urn,
                parent=self._names_by_urn.get(request.parent),
                custom=request.custom,
                depends_on=sorted({self._names_by_urn.get(u, u) for u in request.dependencies}),
                inputs=clean,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                delete_before_replace=bool(request.deleteBeforeReplace),
                replace_on_changes=list(request.replaceOnChanges),
                ignore_changes=list(request.ignoreChanges),
                custom_timeouts={k: v for k, v in (
                    ("create", timeouts.create), ("update", timeouts.update),
                    ("delete", timeouts.delete)) if v},
                import_id=request.importId or None,
                property_dependencies={
                    prop: sorted({self._names_by_urn.get(u, u) for u in deps.urns})
                    for prop, deps in request.propertyDependencies.items() if deps.urns
                },
            ))


_ARM_PATHS = {
    "azure-native:resources:ResourceGroup": ("resourceGroupName", ""),
    "azure-native:healthcareapis:Workspace": (
        "workspaceName", "/providers/Microsoft.HealthcareApis/workspaces/{workspaceName}"),
    "azure-native:healthcareapis:DicomService": (
        "dicomServiceName",
        "/providers/Microsoft.HealthcareApis/workspaces/{workspaceName}/dicomservices/{dicomServiceName}"),
    "azure-native:healthcareapis:FhirService": (
        "fhirServiceName",
        "/providers/Microsoft.HealthcareApis/workspaces/{workspaceName}/fhirservices/{fhirServiceName}"),
    "azure-native:network:PrivateEndpoint": (
        "privateEndpointName", "/providers/Microsoft.Network/privateEndpoints/{privateEndpointName}"),
    "azure-native:network:PrivateDnsZoneGroup": (
        "privateDnsZoneGroupName",
        "/providers/Microsoft.Network/privateEndpoints/{privateEndpointName}"
        "/privateDnsZoneGroups/{privateDnsZoneGroupName}"),
    "azure-native:storage:StorageAccount": (
        "accountName", "/providers/Microsoft.Storage/storageAccounts/{accountName}"),
    "azure-native:storage:Queue": (
        "queueName", "/providers/Microsoft.Storage/storageAccounts/{accountName}/queueServices/default"
                     "/queues/{queueName}"),
    "azure-native:storage:BlobContainer": (
        "containerName", "/providers/Microsoft.Storage/storageAccounts/{accountName}/blobServices/default"
                         "/containers/{containerName}"),
    "azure-native:storage:ManagementPolicy": (
        "managementPolicyName",
        "/providers/Microsoft.Storage/storageAccounts/{accountName}/managementPolicies/{managementPolicyName}"),
    "azure-native:storage:BlobServiceProperties": (
        "blobServicesName",
        "/providers/Microsoft.Storage/storageAccounts/{accountName}/blobServices/{blobServicesName}"),
    "azure-native:managedidentity:UserAssignedIdentity": (
        "resourceName", "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{resourceName}"),
    "azure-native:eventgrid:SystemTopic": (
        "systemTopicName", "/providers/Microsoft.EventGrid/systemTopics/{systemTopicName}"),
    "azure-native:eventgrid:SystemTopicEventSubscription": (
        "eventSubscriptionName",
        "/providers/Microsoft.EventGrid/systemTopics/{systemTopicName}/eventSubscriptions/{eventSubscriptionName}"),
    "azure-native:privatedns:PrivateZone": (
        "privateZoneName", "/providers/Microsoft.Network/privateDnsZones/{privateZoneName}"),
    "azure-native:privatedns:VirtualNetworkLink": (
        "virtualNetworkLinkName",
        "/providers/Microsoft.Network/privateDnsZones/{privateZoneName}"
        "/virtualNetworkLinks/{virtualNetworkLinkName}"),
}
_EXTENSION_PATHS = {
    "azure-native:authorization:RoleAssignment": (
        "scope", "roleAssignmentName", "Microsoft.Authorization/roleAssignments"),
    "azure-native:authorization:ManagementLockByScope": (
        "scope", "lockName", "Microsoft.Authorization/locks"),
    "azure-native:monitor:DiagnosticSetting": (
        "resourceUri", "name", "Microsoft.Insights/diagnosticSettings"),
}


class _OfflineMocks:
    """Answers for what a cloud would fill in, derived from names so runs are repeatable."""

    def __init__(self, tenant_id: str):
        self.tenant_id = tenant_id

    def call(self, args):
        if args.token == "azure-native:authorization:getClientConfig":
            return {"clientId": OFFLINE_SUBSCRIPTION, "objectId": OFFLINE_SUBSCRIPTION,
                    "subscriptionId": OFFLINE_SUBSCRIPTION, "tenantId": self.tenant_id}
        return {}

    def new_resource(self, args):
        inputs = dict(args.inputs)
        resource_id = self._resource_id(args.typ, args.name, inputs)
        state = dict(inputs)
        if args.typ in _ARM_PATHS:
            state["name"] = inputs.get(_ARM_PATHS[args.typ][0], args.name)
        if args.typ == "azure-native:healthcareapis:DicomService":
            state["serviceUrl"] = naming.dicom_url(inputs["workspaceName"], inputs["dicomServiceName"])
        if args.typ == "azure-native:managedidentity:UserAssignedIdentity":
            state["principalId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, resource_id))
            state["clientId"] = str(uuid.uuid5(uuid.NAMESPACE_DNS, resource_id))
        identity = inputs.get("identity")
        if isinstance(identity, dict) and "SystemAssigned" in str(identity.get("type")):
            principal = uuid.uuid5(uuid.NAMESPACE_URL, resource_id)
            state["identity"] = {**identity, "principalId": str(principal),
                                 "tenantId": self.tenant_id}
        if isinstance(identity, dict) and identity.get("userAssignedIdentities"):
            # Inputs list the identity ids; the service answers with a map keyed by id.
            state["identity"] = {**state["identity"], "userAssignedIdentities": {
                identity_id: {"principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, identity_id))}
                for identity_id in identity["userAssignedIdentities"]
            }}
        return resource_id, state

    @staticmethod
    def _resource_id(typ: str, name: str, inputs: dict[str, Any]) -> str:
        if typ in _ARM_PATHS:
            template = _ARM_PATHS[typ][1]
            group = f"/subscriptions/{OFFLINE_SUBSCRIPTION}/resourceGroups/{inputs['resourceGroupName']}"
            return group + template.format(**inputs)
        if typ in _EXTENSION_PATHS:
            scope_key, name_key, kind = _EXTENSION_PATHS[typ]
            return f"{inputs[scope_key]}/providers/{kind}/{inputs[name_key]}"
        return f"offline-{typ.rsplit(':', 1)[-1].lower()}-{name}"
