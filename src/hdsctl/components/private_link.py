"""The workspace private endpoint, its private DNS zones, VNet links and zone group.

Private link is set once on the workspace and covers every DICOM and FHIR service in it.
"""

from __future__ import annotations

import pulumi

from hdsctl import naming
from hdsctl.components.azure import package
from hdsctl.environment.private_dns import PRIVATE_ENDPOINT_GROUP_ID, expected_zone_names
from hdsctl.environment.workspace import PrivateNetworking

network = package("network", "private_endpoint", "private_dns_zone_group")
privatedns = package("privatedns", "private_zone", "virtual_network_link")


def private_endpoint(name: str, *, target_id: pulumi.Input[str], group_id: str, subnet_id: str,
                     zone_ids: dict[str, pulumi.Input[str]], resource_group_name: pulumi.Input[str],
                     location: str, tags: dict[str, str], parent: pulumi.Resource,
                     zone_group_parent: pulumi.Resource | None = None,
                     ) -> tuple[pulumi.Resource, pulumi.Resource]:
    """A private endpoint to `target_id` (sub-resource `group_id`) in `subnet_id`, with a zone
    group registering it in the private DNS zones `zone_ids` (zone name → id). The zone group
    goes under `zone_group_parent` (default: the endpoint). Both are returned."""
    endpoint = network.PrivateEndpoint(
        name,
        private_endpoint_name=name,
        resource_group_name=resource_group_name,
        location=location,
        tags=tags,
        subnet={"id": subnet_id},
        custom_network_interface_name=f"{name}-nic",
        private_link_service_connections=[{"name": name, "private_link_service_id": target_id,
                                           "group_ids": [group_id]}],
        opts=pulumi.ResourceOptions(parent=parent),
    )
    zone_group = network.PrivateDnsZoneGroup(
        f"{name}-dns",
        private_dns_zone_group_name="default",
        private_endpoint_name=endpoint.name,
        resource_group_name=resource_group_name,
        private_dns_zone_configs=[{"name": zone_name.replace(".", "-"), "private_dns_zone_id": zone_id}
                                  for zone_name, zone_id in zone_ids.items()],
        opts=pulumi.ResourceOptions(parent=zone_group_parent or endpoint),
    )
    return endpoint, zone_group


def private_dns_zones(zone_names, *, networking: PrivateNetworking, link_label: str,
                      resource_group_name: pulumi.Input[str], tags: dict[str, str],
                      parent: pulumi.Resource) -> dict[str, pulumi.Input[str]]:
    """Zone name → id of new private DNS zones, each linked to the endpoints' VNets."""
    vnet_ids = [naming.parent_vnet_id(networking.subnet_id), *networking.extra_vnet_links]
    created = {}
    for zone_name in zone_names:
        zone = privatedns.PrivateZone(
            zone_name,
            private_zone_name=zone_name,
            resource_group_name=resource_group_name,
            location="global",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for vnet_id in vnet_ids:
            vnet = naming.arm_name(vnet_id)
            privatedns.VirtualNetworkLink(
                f"{zone_name}-{vnet}",
                virtual_network_link_name=f"{link_label}-{vnet}",
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
        zones = spec.dns_zones
        if zones.mode == "existing":
            zone_ids = {naming.arm_name(zone_id).lower(): zone_id for zone_id in zones.zone_ids}
        else:
            zone_ids = private_dns_zones(expected_zone_names(zones.legacy_single_zone), networking=spec,
                                         link_label=name, resource_group_name=resource_group_name, tags=tags,
                                         parent=self)
        self.endpoint, self.zone_group = private_endpoint(
            f"pe-{name}", target_id=workspace_id, group_id=PRIVATE_ENDPOINT_GROUP_ID, subnet_id=spec.subnet_id,
            zone_ids=zone_ids, resource_group_name=resource_group_name, location=location, tags=tags,
            parent=self, zone_group_parent=self)
        self.register_outputs({"endpointId": self.endpoint.id})
