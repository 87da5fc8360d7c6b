"""One imaging environment: resource group, workspace, services, access, networking, logs."""

from __future__ import annotations

import pulumi

from hdsctl import naming
from hdsctl.components.dicom import DicomServiceComponent
from hdsctl.components.fhir import FhirServiceComponent
from hdsctl.components.private_link import WorkspacePrivateLink
from hdsctl.components.public_access import DICOM, FHIR, WORKSPACE, PublicNetworkAccess
from hdsctl.components.shared import Placement, client_config
from hdsctl.components.workspace import HealthWorkspace
from hdsctl.environment.access import bindings_by_scope
from hdsctl.environment.load import Environment
from hdsctl.environment.references import WORKSPACE_SCOPE, needs_storage_endpoints


class ImagingEnvironment(pulumi.ComponentResource):
    def __init__(self, env: Environment, opts: pulumi.ResourceOptions | None = None):
        super().__init__("hdsctl:index:ImagingEnvironment", env.name, None, opts)
        spec = env.spec
        tags = env.resource_tags
        client = client_config()
        tenant_id = spec.tenant_id or client.tenant_id
        bindings = bindings_by_scope(env)
        child = pulumi.ResourceOptions(parent=self)

        self.resource_group_name = pulumi.Output.from_input(env.resource_group_name)
        if spec.resource_group.create:
            from hdsctl.components.azure import package

            resources = package("resources", "resource_group")

            group = resources.ResourceGroup(
                env.resource_group_name,
                resource_group_name=env.resource_group_name,
                location=spec.location,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, protect=env.spec.protected),
            )
            self.resource_group_name = group.name

        self.workspace = HealthWorkspace(
            env.workspace_name,
            resource_group_name=self.resource_group_name,
            location=spec.location,
            tags=tags,
            locked=spec.locked,
            bindings=bindings.get(WORKSPACE_SCOPE, []),
            subscription_id=client.subscription_id,
            opts=child,
        )
        placement = Placement(
            workspace=self.workspace.name,
            resource_group_name=self.resource_group_name,
            location=spec.location,
            tags=tags,
            protect=spec.protected,
            diagnostics=spec.diagnostics,
            subscription_id=client.subscription_id,
        )
        # Before the services: events are on before the first image is stored.
        self.events = None
        if spec.events is not None and spec.events.subscriptions:
            from hdsctl.components.events import WorkspaceEvents

            self.events = WorkspaceEvents(
                env, workspace_id=self.workspace.id, placement=placement,
                private=spec.workspace.public_network_access == "Disabled", opts=child)
        after_events = self.events.subscriptions if self.events else []
        self.storage_zones = {}
        if needs_storage_endpoints(spec):
            from hdsctl.components.dicom_storage import storage_dns_zones

            self.storage_zones = storage_dns_zones(self, spec.private_networking, placement, env.workspace_name)
        self.dicom = {
            service.name: DicomServiceComponent(
                service, placement=placement, data_url=env.dicom_url(service.name),
                bindings=bindings.get(service.name, []), trusted_hosts=tuple(spec.trusted_hosts),
                workspace_grants=self.workspace.role_assignments, after=after_events,
                data_lake=self._data_lake(env, service, placement), arm_endpoint=spec.arm_endpoint,
                opts=child,
            )
            for service in spec.dicom_services
        }
        self.fhir = {
            service.name: FhirServiceComponent(
                # The service's own URL: its token audience, whatever URL the data plane is reached by.
                service, placement=placement, url=naming.fhir_url(env.workspace_name, service.name),
                tenant_id=tenant_id,
                bindings=bindings.get(service.name, []), after=after_events, opts=child,
            )
            for service in spec.fhir_services
        }
        self.private_link = None
        if spec.private_networking is not None:
            self.private_link = WorkspacePrivateLink(
                env.workspace_name,
                spec.private_networking,
                workspace_id=self.workspace.id,
                resource_group_name=self.resource_group_name,
                location=spec.location,
                tags=tags,
                opts=child,
            )
        self._set_public_access(env, client.subscription_id)
        self.outputs = self._outputs()
        self.register_outputs(self.outputs)

    def _data_lake(self, env: Environment, service, placement: Placement):
        if service.storage is None:
            return None
        from hdsctl.components.dicom_storage import DicomDataLake

        return DicomDataLake(
            service.name, service.storage, account_name=env.dicom_storage_account_name(service),
            workspace_name=env.workspace_name, placement=placement,
            private_networking=env.spec.private_networking,
            private=env.spec.workspace.public_network_access == "Disabled", dns_zone_ids=self.storage_zones,
            opts=pulumi.ResourceOptions(parent=self))

    def _set_public_access(self, env: Environment, subscription_id) -> None:
        """After every service and the private endpoint exist, set the wanted access on each."""
        after: list[pulumi.Resource] = [self.workspace, *self.dicom.values(), *self.fhir.values()]
        if self.private_link is not None:
            after += [self.private_link.endpoint, self.private_link.zone_group]
        targets = [(WORKSPACE, None, env.spec.workspace.public_network_access)]
        targets += [(DICOM, s.name, s.public_network_access) for s in env.spec.dicom_services]
        targets += [(FHIR, s.name, s.public_network_access) for s in env.spec.fhir_services]
        for kind, service_name, access in targets:
            PublicNetworkAccess(
                f"{service_name or env.workspace_name}-public-network-access",
                kind=kind,
                subscription_id=subscription_id,
                resource_group_name=self.resource_group_name,
                workspace_name=self.workspace.name,
                service_name=service_name,
                public_network_access=access,
                arm_endpoint=env.spec.arm_endpoint,
                opts=pulumi.ResourceOptions(parent=self, depends_on=after),
            )

    def _outputs(self) -> dict[str, pulumi.Input]:
        return {
            "resourceGroupName": self.resource_group_name,
            "workspaceName": self.workspace.name,
            "workspaceId": self.workspace.id,
            "dicomServices": {
                name: {"id": c.id, "url": c.url, "principalId": c.principal_id}
                for name, c in self.dicom.items()
            },
            "fhirServices": {
                name: {"id": c.id, "url": c.url, "principalId": c.principal_id}
                for name, c in self.fhir.items()
            },
            "privateEndpointId": self.private_link.endpoint.id if self.private_link else None,
            "events": {
                "systemTopic": self.events.topic.name,
                "storageAccount": self.events.account.name if self.events.account else None,
                "subscriptions": [s.name for s in self.events.subscriptions],
            } if self.events else None,
        }
