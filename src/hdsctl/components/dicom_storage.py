"""A DICOM service's own Data Lake (ADLS Gen2). Made with it (`create`): the account and file
system, private endpoints for blob and dfs in a private environment, and lifecycle tiering
scoped to the service's folder, online tiers only. Either way, new or existing account: the
user-assigned identity the service writes with, granted before the service exists (as
Microsoft's own template does).
"""

from __future__ import annotations

import pulumi

from hdsctl import naming, roles
from hdsctl.components.azure import package
from hdsctl.components.private_link import private_dns_zones, private_endpoint
from hdsctl.components.shared import Placement, grant, storage_account_security
from hdsctl.environment.access import STORAGE_WRITER_ROLE
from hdsctl.environment.private_dns import STORAGE_ZONES
from hdsctl.environment.storage import DicomStorage
from hdsctl.environment.workspace import PrivateNetworking

managedidentity = package("managedidentity", "user_assigned_identity")
storage = package("storage", "storage_account", "blob_container", "blob_service_properties",
                  "management_policy")


def storage_dns_zones(parent: pulumi.Resource, networking: PrivateNetworking, placement: Placement,
                      label: str) -> dict[str, pulumi.Input[str]]:
    """Private endpoint group (blob, dfs) → its private DNS zone: the hub's, or new ones here
    linked to the endpoints' VNets (one pair per environment, whatever the number of services)."""
    zones = networking.dns_zones
    if zones.mode == "existing":
        by_name = {naming.arm_name(zone_id).lower(): zone_id for zone_id in zones.storage_zone_ids}
    else:
        by_name = private_dns_zones(STORAGE_ZONES.values(), networking=networking, link_label=label,
                                    resource_group_name=placement.resource_group_name, tags=placement.tags,
                                    parent=parent)
    return {group: by_name[name] for group, name in STORAGE_ZONES.items()}


def tiering_rule(folder_prefix: str, tiering) -> dict:
    """One lifecycle rule: Cool, then Cold, by days since last access; back to Hot when read."""
    base_blob = {}
    if tiering.cool_after_days:
        base_blob["tier_to_cool"] = {"days_after_last_access_time_greater_than": tiering.cool_after_days}
        base_blob["enable_auto_tier_to_hot_from_cool"] = True
    if tiering.cold_after_days:
        base_blob["tier_to_cold"] = {"days_after_last_access_time_greater_than": tiering.cold_after_days}
    return {"name": "dicom-online-tiering", "enabled": True, "type": "Lifecycle", "definition": {
        "filters": {"blob_types": ["blockBlob"], "prefix_match": [folder_prefix]},
        "actions": {"base_blob": base_blob}}}


class DicomDataLake(pulumi.ComponentResource):
    def __init__(self, service_name: str, spec: DicomStorage, *, account_name: str, workspace_name: str,
                 placement: Placement, private_networking: PrivateNetworking | None, private: bool,
                 dns_zone_ids: dict[str, pulumi.Input[str]] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("hdsctl:storage:DicomDataLake", f"{service_name}-storage", None, opts)
        label = f"{service_name}-storage"
        self.file_system = None
        if spec.create:
            self._account(label, spec, account_name, placement, private)
            self.account_id = self.account.id
        else:  # the hospital's existing account: only the service's identity and its grant are made here
            self.account_id = pulumi.Output.from_input(spec.storage_account_id)
        self.identity = managedidentity.UserAssignedIdentity(
            f"{label}-identity",
            resource_name_=naming.dicom_storage_identity_name(workspace_name, service_name),
            resource_group_name=placement.resource_group_name, location=placement.location, tags=placement.tags,
            opts=pulumi.ResourceOptions(parent=self))
        # The service is created only after this grant: it must be able to write from its first second.
        self.writer = grant(self, f"{label}-writer", self.account_id, self.identity.principal_id,
                            "ServicePrincipal", roles.role_by_name(STORAGE_WRITER_ROLE),
                            placement.subscription_id, "the DICOM service writes its files")
        self.indexing = self._indexing(label, spec, account_name, workspace_name, service_name, placement)
        if spec.create and spec.tiering is not None:
            self._tiering(label, spec, workspace_name, service_name, placement)
        if spec.create and private and private_networking is not None:
            self._private_endpoints(label, private_networking, placement, dns_zone_ids or {})
        self.register_outputs({"accountId": self.account_id, "identityId": self.identity.id})

    @property
    def ready(self) -> list[pulumi.Resource]:
        """What the service waits for: the grant, the file system when it is made here, and the
        indexing subscriptions (Event Grid does not backfill)."""
        return [self.writer, *([self.file_system] if self.file_system is not None else []),
                *(self.indexing.ready if self.indexing is not None else [])]

    def _indexing(self, label: str, spec: DicomStorage, account_name: str, workspace_name: str,
                  service_name: str, placement: Placement):
        if spec.indexing is None:
            return None
        from hdsctl.components.storage_indexing import StorageIndexingEvents

        existing = spec.storage_account_id
        return StorageIndexingEvents(
            label, spec.indexing, account_id=self.account_id,
            account_name=self.account.name if spec.create else naming.arm_name(existing),
            account_resource_group=placement.resource_group_name if spec.create else existing.split("/")[4],
            file_system=spec.file_system_name, workspace_name=workspace_name, service_name=service_name,
            reader_principal_id=self.identity.principal_id, placement=placement,
            opts=pulumi.ResourceOptions(parent=self))

    def _account(self, label: str, spec: DicomStorage, account_name: str, placement: Placement,
                 private: bool) -> None:
        self.account = storage.StorageAccount(
            label,
            account_name=account_name,
            resource_group_name=placement.resource_group_name,
            location=placement.location,
            sku={"name": "Standard_ZRS"},
            is_hns_enabled=True,  # ADLS Gen2: what a DICOM service's storage must be
            public_network_access="Disabled" if private else "Enabled",
            **storage_account_security(private),
            tags=placement.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=placement.protect),
        )
        self.file_system = storage.BlobContainer(
            f"{label}-{spec.file_system_name}", account_name=self.account.name,
            container_name=spec.file_system_name,
            public_access="None", resource_group_name=placement.resource_group_name,
            opts=pulumi.ResourceOptions(parent=self, protect=placement.protect))

    def _tiering(self, label: str, spec: DicomStorage, workspace_name: str, service_name: str,
                 placement: Placement) -> None:
        tracking = storage.BlobServiceProperties(
            f"{label}-last-access", account_name=self.account.name, blob_services_name="default",
            resource_group_name=placement.resource_group_name,
            last_access_time_tracking_policy={"enable": True, "name": "AccessTimeTracking",
                                              "tracking_granularity_in_days": 1, "blob_type": ["blockBlob"]},
            opts=pulumi.ResourceOptions(parent=self))
        folder = f"{spec.file_system_name}/{naming.dicom_storage_folder(workspace_name, service_name)}"
        storage.ManagementPolicy(
            f"{label}-lifecycle", account_name=self.account.name, management_policy_name="default",
            resource_group_name=placement.resource_group_name,
            policy={"rules": [tiering_rule(folder, spec.tiering)]},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[tracking]))

    def _private_endpoints(self, label: str, networking: PrivateNetworking, placement: Placement,
                           zone_ids: dict[str, pulumi.Input[str]]) -> None:
        for group, zone_name in STORAGE_ZONES.items():
            private_endpoint(f"pe-{label}-{group}", target_id=self.account.id, group_id=group,
                             subnet_id=networking.subnet_id, zone_ids={zone_name: zone_ids[group]},
                             resource_group_name=placement.resource_group_name, location=placement.location,
                             tags=placement.tags, parent=self)
