"""The Pulumi program under the SDK's mock runtime: what `pulumi up` would register."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, PROGRAM, shipped_plan

from hdsctl import naming, roles
from hdsctl.preview import OFFLINE_SUBSCRIPTION, run_preview

RG = "azure-native:resources:ResourceGroup"
WORKSPACE = "azure-native:healthcareapis:Workspace"
DICOM = "azure-native:healthcareapis:DicomService"
FHIR = "azure-native:healthcareapis:FhirService"
ROLE = "azure-native:authorization:RoleAssignment"
LOCK = "azure-native:authorization:ManagementLockByScope"
DIAG = "azure-native:monitor:DiagnosticSetting"
PE = "azure-native:network:PrivateEndpoint"
ZONE_GROUP = "azure-native:network:PrivateDnsZoneGroup"
ZONE = "azure-native:privatedns:PrivateZone"
LINK = "azure-native:privatedns:VirtualNetworkLink"
DYNAMIC = "pulumi-python:dynamic/hdsctl:PublicNetworkAccess"
TAGS = "pulumi-python:dynamic/hdsctl:ExtendedQueryTags"


def of_type(plan, type_):
    return [r for r in plan.resources if r.type == type_]


def one(plan, type_, name):
    matches = [r for r in plan.resources if r.type == type_ and r.name == name]
    assert len(matches) == 1, f"{type_} {name}: {[r.name for r in of_type(plan, type_)]}"
    return matches[0]


@pytest.fixture(scope="module")
def max_plan():
    return run_preview(FIXTURES / "Pulumi.max.yaml", PROGRAM)


def test_existing_resource_group_is_not_created(max_plan):
    assert of_type(max_plan, RG) == []
    workspace = one(max_plan, WORKSPACE, "maxhws")
    assert workspace.inputs["resourceGroupName"] == "rg-existing-imaging"
    assert workspace.inputs["location"] == "northeurope"


def test_components_parent_their_resources(max_plan):
    assert one(max_plan, WORKSPACE, "maxhws").parent == "hdsctl:health:Workspace::maxhws"
    assert one(max_plan, DICOM, "dicom-main").parent == "hdsctl:health:DicomService::dicom-main"
    assert one(max_plan, FHIR, "fhir-lab").parent == "hdsctl:health:FhirService::fhir-lab"
    assert one(max_plan, PE, "pe-maxhws").parent == "hdsctl:network:WorkspacePrivateLink::maxhws"
    for component in ("hdsctl:health:Workspace", "hdsctl:health:DicomService",
                      "hdsctl:health:FhirService", "hdsctl:network:WorkspacePrivateLink"):
        for resource in of_type(max_plan, component):
            assert resource.parent == "hdsctl:index:ImagingEnvironment::max"


def test_tags_include_the_environment_on_every_taggable_resource(max_plan):
    tagged = [r for r in max_plan.resources if "tags" in r.inputs]
    assert len(tagged) >= 10
    for resource in tagged:
        assert resource.inputs["tags"]["environment"] == "max", resource.key
        assert resource.inputs["tags"]["data-classification"] == "phi"


def test_dicom_service_carries_every_option(max_plan):
    dicom = one(max_plan, DICOM, "dicom-main").inputs
    assert dicom["workspaceName"] == "maxhws"
    assert dicom["corsConfiguration"] == {
        "origins": ["https://viewer.example.org"], "headers": ["Authorization"],
        "methods": ["GET", "OPTIONS"], "maxAge": 300, "allowCredentials": True}
    assert dicom["identity"]["type"] == "SystemAssigned,UserAssigned"
    assert dicom["identity"]["userAssignedIdentities"][0].endswith("/id-cmk")
    assert dicom["encryption"] == {"customerManagedKeyEncryption": {
        "keyEncryptionKeyUrl": "https://kv-max.vault.azure.net/keys/dicom"}}
    assert dicom["storageConfiguration"]["fileSystemName"] == "dicom-files"
    assert dicom["enableDataPartitions"] is True
    research = one(max_plan, DICOM, "dicom-research").inputs
    assert "enableDataPartitions" not in research and "encryption" not in research


def test_create_only_dicom_settings_force_replacement(max_plan):
    dicom = one(max_plan, DICOM, "dicom-main")
    assert set(dicom.replace_on_changes) == {"enableDataPartitions", "storageConfiguration"}
    assert dicom.custom_timeouts == {"create": "90m", "update": "90m", "delete": "90m"}


def test_fhir_service_carries_every_option(max_plan):
    fhir = one(max_plan, FHIR, "fhir-main").inputs
    auth = fhir["authenticationConfiguration"]
    assert auth["authority"] == "https://login.microsoftonline.com/11111111-2222-4333-8444-555555555555"
    assert auth["audience"] == "https://fhir.example.org"
    assert auth["smartProxyEnabled"] is True
    assert auth["smartIdentityProviders"][0]["applications"][0]["clientId"] == "viewer-app"
    assert fhir["kind"] == "fhir-R4"
    assert fhir["exportConfiguration"] == {"storageAccountName": "stmaxexport"}
    assert fhir["importConfiguration"] == {
        "integrationDataStore": "stmaximport", "initialImportMode": True, "enabled": True}
    assert fhir["acrConfiguration"]["ociArtifacts"][0]["imageName"] == "us-core"
    assert fhir["resourceVersionPolicyConfiguration"] == {
        "default": "versioned-update", "resourceTypeOverrides": {"Patient": "no-version"}}
    assert fhir["implementationGuidesConfiguration"] == {"usCoreMissingData": True}
    assert fhir["encryption"]["customerManagedKeyEncryption"]["keyEncryptionKeyUrl"].endswith("/fhir")


def test_fhir_defaults_authority_from_tenant_and_audience_from_url(max_plan):
    auth = one(max_plan, FHIR, "fhir-lab").inputs["authenticationConfiguration"]
    assert auth["authority"] == "https://login.microsoftonline.com/11111111-2222-4333-8444-555555555555"
    assert auth["audience"] == "https://maxhws-fhir-lab.fhir.azurehealthcareapis.com"
    assert one(max_plan, FHIR, "fhir-lab").inputs["kind"] == "fhir-Stu3"


def test_role_assignments_use_deterministic_guids_and_the_builtin_table(max_plan):
    assignments = of_type(max_plan, ROLE)
    assert len(assignments) == 14  # 13 declared, and the writer grant on dicom-main's Data Lake
    router_owner = one(max_plan, ROLE, "dicom-main-router-dicom-data-owner").inputs
    scope = (f"/subscriptions/{OFFLINE_SUBSCRIPTION}/resourceGroups/rg-existing-imaging/providers/"
             "Microsoft.HealthcareApis/workspaces/maxhws/dicomservices/dicom-main")
    owner = roles.role_by_name("DICOM Data Owner")
    assert router_owner["scope"] == scope
    assert router_owner["roleAssignmentName"] == naming.role_assignment_name(
        scope, "0b0b0b0b-0000-4000-8000-00000000000b", owner.guid)
    assert router_owner["roleDefinitionId"] == (
        f"/subscriptions/{OFFLINE_SUBSCRIPTION}/providers/Microsoft.Authorization/"
        f"roleDefinitions/{owner.guid}")
    assert router_owner["principalType"] == "ServicePrincipal"
    assert router_owner["description"] == "PACS router"
    names = [a.inputs["roleAssignmentName"] for a in assignments]
    assert len(set(names)) == len(names)
    for name in names:
        assert naming.GUID.match(name)


def test_workspace_scoped_assignments_hang_off_the_workspace(max_plan):
    reader = one(max_plan, ROLE, "maxhws-auditor-reader")
    assert reader.parent == "hdsctl:health:Workspace::maxhws"
    assert reader.inputs["scope"].endswith("/workspaces/maxhws")
    assert reader.inputs["principalType"] == "User"


def test_private_endpoint_uses_the_workspace_group_and_three_zones(max_plan):
    endpoint = one(max_plan, PE, "pe-maxhws").inputs
    connection = endpoint["privateLinkServiceConnections"][0]
    assert connection["groupIds"] == ["healthcareworkspace"]
    assert connection["privateLinkServiceId"].endswith("/workspaces/maxhws")
    assert endpoint["subnet"]["id"].endswith("/subnets/snet-pe")
    zones = sorted(z.name for z in of_type(max_plan, ZONE))
    assert zones == ["privatelink.dicom.azurehealthcareapis.com",
                     "privatelink.fhir.azurehealthcareapis.com",
                     "privatelink.workspace.azurehealthcareapis.com"]
    assert all(z.inputs["location"] == "global" for z in of_type(max_plan, ZONE))
    group = one(max_plan, ZONE_GROUP, "pe-maxhws-dns").inputs
    zone_ids = sorted(c["privateDnsZoneId"] for c in group["privateDnsZoneConfigs"])
    assert [z.rsplit("/", 1)[-1] for z in zone_ids] == zones


def test_each_zone_is_linked_to_the_spoke_and_the_extra_vnet(max_plan):
    links = of_type(max_plan, LINK)
    assert len(links) == 6
    vnets = sorted({link.inputs["virtualNetwork"]["id"].rsplit("/", 1)[-1] for link in links})
    assert vnets == ["vnet-hub", "vnet-spoke"]
    assert all(link.inputs["registrationEnabled"] is False for link in links)


def test_diagnostics_send_audit_logs_of_each_service(max_plan):
    dicom = one(max_plan, DIAG, "dicom-main-diagnostics").inputs
    assert [log["category"] for log in dicom["logs"]] == ["AuditLogs", "DiagnosticLogs"]
    assert dicom["workspaceId"].endswith("/workspaces/log-max")
    assert dicom["resourceUri"].endswith("/dicomservices/dicom-main")
    fhir = one(max_plan, DIAG, "fhir-main-diagnostics").inputs
    assert [log["category"] for log in fhir["logs"]] == ["AuditLogs"]
    # metrics: false in the max fixture
    assert "metrics" not in fhir
    assert len(of_type(max_plan, DIAG)) == 4


def test_lock_and_protect_in_prod(max_plan):
    lock = one(max_plan, LOCK, "maxhws-lock").inputs
    assert lock["level"] == "CanNotDelete"
    assert lock["scope"].endswith("/workspaces/maxhws")
    for resource in of_type(max_plan, DICOM) + of_type(max_plan, FHIR):
        assert resource.protect, resource.key


def test_public_network_access_is_set_after_services_and_endpoint(max_plan):
    setters = {r.inputs.get("service_name") or "workspace": r for r in of_type(max_plan, DYNAMIC)}
    assert set(setters) == {"workspace", "dicom-main", "dicom-research", "fhir-main", "fhir-lab"}
    assert setters["workspace"].inputs["kind"] == "workspace"
    assert setters["dicom-main"].inputs["public_network_access"] == "Disabled"
    assert setters["dicom-research"].inputs["public_network_access"] == "Enabled"
    assert setters["fhir-main"].inputs["arm_endpoint"] == "https://management.usgovcloudapi.net"
    for setter in setters.values():
        assert f"{PE}::pe-maxhws" in setter.depends_on
        assert f"{ZONE_GROUP}::pe-maxhws-dns" in setter.depends_on
        assert f"{DICOM}::dicom-main" in setter.depends_on
        assert f"{FHIR}::fhir-lab" in setter.depends_on
        assert "__provider" not in setter.inputs


def test_outputs_give_urls_ids_and_principal_ids(max_plan):
    outputs = max_plan.outputs
    assert outputs["workspaceName"] == "maxhws"
    assert outputs["workspaceId"].endswith("/workspaces/maxhws")
    # An explicit data-plane URL wins over the computed one.
    assert outputs["dicomServices"]["dicom-main"]["url"] == "https://dicom.internal.example.org"
    assert outputs["dicomServices"]["dicom-research"]["url"] == (
        "https://maxhws-dicom-research.dicom.azurehealthcareapis.com")
    assert naming.GUID.match(outputs["dicomServices"]["dicom-main"]["principalId"])
    assert outputs["dicomServices"]["dicom-research"]["principalId"] is None
    assert outputs["fhirServices"]["fhir-main"]["url"] == "https://maxhws-fhir-main.fhir.azurehealthcareapis.com"
    assert outputs["privateEndpointId"].endswith("/privateEndpoints/pe-maxhws")


def test_dev_is_unlocked_unprotected_and_public(dev_document, write_stack):
    plan = run_preview(write_stack("dev", dev_document), PROGRAM)
    assert of_type(plan, LOCK) == []
    assert not any(r.protect for r in plan.resources)
    assert of_type(plan, PE) == [] and of_type(plan, DIAG) == []
    assert one(plan, RG, "rg-stmary-dev-imaging").inputs["location"] == "westeurope"
    assert {r.inputs["public_network_access"] for r in of_type(plan, DYNAMIC)} == {"Enabled"}
    # No tenantId in dev: the FHIR authority comes from the deployment's client config.
    auth = one(plan, FHIR, "clinical").inputs["authenticationConfiguration"]
    assert auth["authority"].startswith("https://login.microsoftonline.com/")


def test_prod_tier_locks_and_protects_by_default(dev_document, write_stack):
    dev_document["config"]["hdsctl:tier"] = "prod"
    plan = run_preview(write_stack("prodlike", dev_document), PROGRAM)
    assert len(of_type(plan, LOCK)) == 1
    assert one(plan, DICOM, "radiology").protect
    assert one(plan, RG, "rg-stmary-prodlike-imaging").protect


def test_existing_dns_zones_are_used_not_created():
    plan = shipped_plan("prod")
    assert of_type(plan, ZONE) == [] and of_type(plan, LINK) == []
    configs = one(plan, ZONE_GROUP, "pe-stmaryprodhds-dns").inputs["privateDnsZoneConfigs"]
    assert len(configs) == 3
    assert all("/rg-stmary-hub-dns/" in c["privateDnsZoneId"] for c in configs)


def test_legacy_single_zone_option(max_document, write_stack):
    max_document["config"]["hdsctl:privateNetworking"]["dnsZones"] = {
        "mode": "create", "legacySingleZone": True}
    plan = run_preview(write_stack("legacy", max_document), PROGRAM)
    assert [z.name for z in of_type(plan, ZONE)] == ["privatelink.azurehealthcareapis.com"]
    assert len(one(plan, ZONE_GROUP, "pe-maxhws-dns").inputs["privateDnsZoneConfigs"]) == 1


def test_extended_query_tags_run_after_the_service_and_its_role_assignments(max_plan):
    (tags,) = [r for r in of_type(max_plan, TAGS)]
    assert tags.parent == "hdsctl:health:DicomService::dicom-main"
    assert tags.inputs["url"] == "https://dicom.internal.example.org"
    declared = tags.inputs["extended_query_tags"]
    assert declared["00180015"] == {"keyword": "BodyPartExamined", "vr": "CS", "level": "Series",
                                    "private_creator": "", "query_enabled": True}
    assert declared["00091001"]["private_creator"] == "ACME 1.1"
    assert declared["00181030"]["level"] == "Series"  # given as 'series' in the stack file
    assert declared["00100040"]["query_enabled"] is False
    assert f"{DICOM}::dicom-main" in tags.depends_on
    assert f"{ROLE}::dicom-main-router-dicom-data-owner" in tags.depends_on
    assert f"{ROLE}::maxhws-readers-dicom-data-reader" in tags.depends_on  # granted on the workspace
    # No tags declared on dicom-research: no resource for it.
    assert all(r.parent != "hdsctl:health:DicomService::dicom-research" for r in of_type(max_plan, TAGS))


def test_azure_packages_load_only_the_modules_the_program_uses_and_the_rest_on_demand():
    """A fresh interpreter: the program's components enter pulumi-azure-native's packages without
    their 300-module __init__, yet any other name of a package still resolves, to the same module."""
    import subprocess
    import sys

    probe = """
import sys
import hdsctl.components.private_link  # network: private endpoints and DNS zone groups only
import pulumi_azure_native
network = sys.modules["pulumi_azure_native.network"]
loaded = sorted(m for m in sys.modules if m.startswith("pulumi_azure_native.network."))
assert network.PrivateEndpoint.__module__ == "pulumi_azure_native.network.private_endpoint"
assert "pulumi_azure_native.network.virtual_wan" not in sys.modules, loaded
assert len(loaded) < 10, loaded
from pulumi_azure_native import network as again
assert again is network and pulumi_azure_native.network is network
assert network.VirtualWan.__module__ == "pulumi_azure_native.network.virtual_wan"  # loads the rest
assert "pulumi_azure_native.network.vpn_site" in sys.modules
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]
