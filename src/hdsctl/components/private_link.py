"""The workspace private endpoint, its private DNS zones, VNet links and zone group.

Private link is set once on the workspace and covers every DICOM and FHIR service in it.
"""

from __future__ import annotations

import pulumi

from hdsctl import naming
from hdsctl.components.azure import package
from hdsctl.spec.model import PrivateNetworking
from hdsctl.spec.private_dns import PRIVATE_ENDPOINT_GROUP_ID, expected_zone_names

network = package("network", "private_endpoint", "private_dns_zone_group")
privatedns = package("privatedns", "private_zone", "virtual_network_link")


class WorkspacePrivateLink(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        spec: PrivateNetworking,
        *,
        workspace_id: pulumi.Output[str],
        resource_group_name: pulumi.Input[str],
        location: str,
        tags: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("hdsctl:network:WorkspacePrivateLink", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        endpoint_name = f"pe-{name}"
        self.endpoint = network.PrivateEndpoint(
            endpoint_name,
            private_endpoint_name=endpoint_name,
            resource_group_name=resource_group_name,
            location=location,
            tags=tags,
            subnet={"id": spec.subnet_id},
            custom_network_interface_name=f"{endpoint_name}-nic",
            private_link_service_connections=[{
                "name": endpoint_name,
                "private_link_service_id": workspace_id,
                "group_ids": [PRIVATE_ENDPOINT_GROUP_ID],
            }],
            opts=child,
        )
        zone_ids = self._zones(name, spec, resource_group_name, tags)
        self.zone_group = network.PrivateDnsZoneGroup(
            f"{endpoint_name}-dns",
            private_dns_zone_group_name="default",
            private_endpoint_name=self.endpoint.name,
            resource_group_name=resource_group_name,
            private_dns_zone_configs=[
                {"name": zone_name.replace(".", "-"), "private_dns_zone_id": zone_id}
                for zone_name, zone_id in zone_ids.items()
            ],
            opts=child,
        )
        self.register_outputs({"endpointId": self.endpoint.id})

    def _zones(self, name, spec, resource_group_name, tags) -> dict[str, pulumi.Input[str]]:
        """Zone name → zone id: the existing ones as given, or new ones linked to the VNets."""
        zones = spec.dns_zones
        if zones.mode == "existing":
            return {naming.arm_name(zone_id).lower(): zone_id for zone_id in zones.zone_ids}
        vnet_ids = [naming.parent_vnet_id(spec.subnet_id), *spec.extra_vnet_links]
        created = {}
        for zone_name in expected_zone_names(zones.legacy_single_zone):
            zone = privatedns.PrivateZone(
                zone_name,
                private_zone_name=zone_name,
                resource_group_name=resource_group_name,
                location="global",
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for vnet_id in vnet_ids:
                vnet = naming.arm_name(vnet_id)
                privatedns.VirtualNetworkLink(
                    f"{zone_name}-{vnet}",
                    virtual_network_link_name=f"{name}-{vnet}",
                    private_zone_name=zone.name,
                    resource_group_name=resource_group_name,
                    location="global",
                    registration_enabled=False,
                    virtual_network={"id": vnet_id},
                    tags=tags,
                    opts=pulumi.ResourceOptions(parent=zone),
                )
            created[zone_name] = zone.id
        return created
