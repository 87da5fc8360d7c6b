"""Where an environment lives: naming, resource group, workspace, private networking and
diagnostics."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    model_validator,
)

from hdsctl import naming
from hdsctl.environment.fields import (
    Access,
    LogAnalyticsId,
    Model,
    PrivateZoneId,
    SubnetId,
    VnetId,
    WorkspaceName,
    env,
    matches,
)


class Naming(Model):
    prefix: Annotated[
        str, matches(naming.PREFIX, "prefix (2-10 lowercase letters and digits, letter first)")
    ]


class ResourceGroup(Model):
    name: Annotated[str, matches(naming.RESOURCE_GROUP_NAME, "resource group name")] | None = None
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
