"""A FHIR service with its diagnostics and role assignments."""

from __future__ import annotations

import pulumi

from hdsctl import naming
from hdsctl.components import shared
from hdsctl.components.azure import package
from hdsctl.components.dicom import SERVICE_TIMEOUTS
from hdsctl.components.shared import Binding, Placement
from hdsctl.environment.fhir import FhirService

healthcareapis = package("healthcareapis", "fhir_service")

FHIR_LOG_CATEGORIES = ("AuditLogs",)


class FhirServiceComponent(pulumi.ComponentResource):
    def __init__(
        self,
        spec: FhirService,
        *,
        placement: Placement,
        url: str,
        tenant_id: pulumi.Input[str],
        bindings: list[Binding],
        after: list[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("hdsctl:health:FhirService", spec.name, None, opts)
        # The SDK reports no FHIR URL, so it is computed from the names.
        self.url = pulumi.Output.from_input(url)
        authority = spec.authority or pulumi.Output.from_input(tenant_id).apply(
            naming.entra_authority
        )
        self.service = healthcareapis.FhirService(
            spec.name,
            fhir_service_name=spec.name,
            **placement.service_arguments(),
            kind=spec.kind,
            authentication_configuration={
                "authority": authority,
                "audience": spec.audience or url,
                "smart_proxy_enabled": spec.smart_proxy_enabled,
                "smart_identity_providers": [
                    {
                        "authority": provider.authority,
                        "applications": [
                            {
                                "client_id": app.client_id,
                                "audience": app.audience,
                                "allowed_data_actions": list(app.allowed_data_actions),
                            }
                            for app in provider.applications
                        ],
                    }
                    for provider in spec.smart_identity_providers
                ] or None,
            },
            cors_configuration=shared.cors_args(spec.cors),
            identity=shared.identity_args(spec.identity),
            encryption=shared.encryption_args(spec.customer_managed_key),
            export_configuration={"storage_account_name": spec.export.storage_account_name}
            if spec.export else None,
            import_configuration={
                "integration_data_store": spec.import_.integration_data_store,
                "initial_import_mode": spec.import_.initial_import_mode,
                "enabled": spec.import_.enabled,
            } if spec.import_ else None,
            acr_configuration={
                "login_servers": spec.acr.login_servers,
                "oci_artifacts": [
                    {"login_server": a.login_server, "image_name": a.image_name, "digest": a.digest}
                    for a in spec.acr.oci_artifacts
                ] or None,
            } if spec.acr else None,
            resource_version_policy_configuration={
                "default": spec.version_policy.default,
                "resource_type_overrides": spec.version_policy.resource_type_overrides or None,
            } if spec.version_policy else None,
            implementation_guides_configuration={"us_core_missing_data": spec.us_core_missing_data}
            if spec.us_core_missing_data is not None else None,
            opts=pulumi.ResourceOptions(
                parent=self, protect=placement.protect, depends_on=list(after),
                custom_timeouts=SERVICE_TIMEOUTS
            ),
        )
        self.id = self.service.id
        interfaces = shared.attach_interfaces(self, spec.name, self.service, FHIR_LOG_CATEGORIES, placement,
                                              bindings)
        self.principal_id = interfaces.principal_id
        self.register_outputs({"id": self.id, "url": self.url, "principalId": self.principal_id})
