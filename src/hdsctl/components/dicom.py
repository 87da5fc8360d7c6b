"""A DICOM service with its diagnostics and role assignments."""

from __future__ import annotations

import pulumi

from hdsctl.components import shared
from hdsctl.components.azure import package
from hdsctl.components.extended_query_tags import ExtendedQueryTags
from hdsctl.components.shared import Binding, Placement
from hdsctl.environment.dicom import DicomService

healthcareapis = package("healthcareapis", "dicom_service")

DICOM_LOG_CATEGORIES = ("AuditLogs", "DiagnosticLogs")

# Creating a data service can take long; Terraform raised its timeouts to 90 minutes.
SERVICE_TIMEOUTS = pulumi.CustomTimeouts(create="90m", update="90m", delete="90m")


class DicomServiceComponent(pulumi.ComponentResource):
    def __init__(
        self,
        spec: DicomService,
        *,
        placement: Placement,
        data_url: str,
        bindings: list[Binding],
        trusted_hosts: tuple[str, ...] = (),
        workspace_grants: list[pulumi.Resource],
        after: list[pulumi.Resource] = (),
        data_lake=None,
        arm_endpoint: str = "https://management.azure.com",
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("hdsctl:health:DicomService", spec.name, None, opts)
        storage = spec.storage
        identity = shared.identity_args(spec.identity)
        storage_configuration = ({"storage_resource_id": storage.storage_account_id,
                                  "file_system_name": storage.file_system_name} if storage else None)
        if data_lake is not None:  # its own Data Lake: written with the identity granted there first
            identity = shared.with_user_identity(identity, data_lake.identity.id)
            storage_configuration = {"storage_resource_id": data_lake.account_id,
                                     "file_system_name": storage.file_system_name}
            after = [*after, *data_lake.ready]
        self.service = healthcareapis.DicomService(
            spec.name,
            dicom_service_name=spec.name,
            **placement.service_arguments(),
            cors_configuration=shared.cors_args(spec.cors),
            identity=identity,
            encryption=shared.encryption_args(spec.customer_managed_key),
            storage_configuration=storage_configuration,
            enable_data_partitions=spec.data_partitions or None,
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=placement.protect,
                depends_on=list(after),
                custom_timeouts=SERVICE_TIMEOUTS,
                # Both are fixed at creation: a change would mean a new, empty service.
                replace_on_changes=["enableDataPartitions", "storageConfiguration"],
                delete_before_replace=True,
            ),
        )
        self.id = self.service.id
        self.url = pulumi.Output.from_input(data_url)
        if data_lake is not None and data_lake.indexing is not None:
            from hdsctl.components.storage_indexing_config import StorageIndexingQueue

            StorageIndexingQueue(
                f"{spec.name}-storage-indexing", subscription_id=placement.subscription_id,
                resource_group_name=placement.resource_group_name, workspace_name=placement.workspace,
                service_name=spec.name, queue=storage.indexing.queue, arm_endpoint=arm_endpoint,
                service_etag=self.service.etag,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.service, *data_lake.indexing.ready]))
        interfaces = shared.attach_interfaces(self, spec.name, self.service, DICOM_LOG_CATEGORIES, placement,
                                              bindings)
        self.principal_id = interfaces.principal_id
        if spec.extended_query_tags:
            # After the service and every grant that reaches it (the deployer's DICOM Data Owner
            # may sit on the service or on the workspace).
            ExtendedQueryTags(
                f"{spec.name}-extended-query-tags",
                url=data_url,
                tags=[tag.definition() for tag in spec.extended_query_tags],
                trusted_hosts=list(trusted_hosts),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[self.service, *interfaces.role_assignments, *workspace_grants]),
            )
        self.register_outputs({"id": self.id, "url": self.url, "principalId": self.principal_id})
