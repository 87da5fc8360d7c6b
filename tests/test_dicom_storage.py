"""A DICOM service's own Data Lake: declared with it, granted before it, tiered without breaking it."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import STACKS, shipped_plan

from hdsctl import naming
from hdsctl.errors import EXIT_BAD_INPUT
from hdsctl.policies.evaluate import evaluate
from hdsctl.roles import role_by_name

DATA_LAKE = "hdsctl:storage:DicomDataLake::radiology-storage"


@pytest.fixture
def staging_document():
    return yaml.safe_load((STACKS / "Pulumi.staging.yaml").read_text())


def _by_type(plan) -> dict[str, list]:
    found: dict[str, list] = {}
    for resource in plan.resources:
        found.setdefault(resource.type, []).append(resource)
    return found


def test_staging_preview_has_account_identity_grant_before_the_service_and_tiering():
    plan = shipped_plan("staging")
    lake = [r for r in plan.resources if r.parent == DATA_LAKE]
    kinds = {r.type.rsplit(":", 1)[-1]: r for r in lake}
    account = kinds["StorageAccount"]
    assert account.inputs["isHnsEnabled"] is True and account.inputs["kind"] == "StorageV2"
    assert account.inputs["allowSharedKeyAccess"] is False and account.inputs["minimumTlsVersion"] == "TLS1_2"
    assert account.inputs["allowBlobPublicAccess"] is False
    assert account.inputs["publicNetworkAccess"] == "Disabled"  # staging is private
    assert sorted(e.inputs["privateLinkServiceConnections"][0]["groupIds"][0]
                  for e in lake if e.type.endswith(":PrivateEndpoint")) == ["blob", "dfs"]
    writer = kinds["RoleAssignment"]
    assert writer.inputs["roleDefinitionId"].endswith(role_by_name("Storage Blob Data Contributor").guid)
    name = naming.default_dicom_storage_account_name("stmary", "staging", "radiology")
    assert account.inputs["accountName"] == name and len(name) <= 24
    assert writer.inputs["scope"].endswith(f"/storageAccounts/{name}")
    identity = kinds["UserAssignedIdentity"]
    service = next(r for r in plan.resources if r.type == "azure-native:healthcareapis:DicomService")
    assert writer.key in service.depends_on and kinds["BlobContainer"].key in service.depends_on
    assert account.protect == service.protect  # the files are as protected as the service
    assert service.inputs["identity"]["type"] == "SystemAssigned,UserAssigned"
    assert service.inputs["storageConfiguration"]["fileSystemName"] == "dicom"
    storage = service.inputs["storageConfiguration"]
    assert storage["storageResourceId"].endswith(f"/storageAccounts/{name}")
    assert writer.inputs["principalId"] != "" and identity.inputs["resourceName"].endswith("-storage")
    rule, = kinds["ManagementPolicy"].inputs["policy"]["rules"]
    assert rule["definition"]["filters"]["prefixMatch"] == ["dicom/AHDS/stmarystaging/dicom/radiology/"]
    actions = rule["definition"]["actions"]["baseBlob"]
    assert actions["tierToCool"] == {"daysAfterLastAccessTimeGreaterThan": 30}
    assert actions["tierToCold"] == {"daysAfterLastAccessTimeGreaterThan": 180}
    assert actions["enableAutoTierToHotFromCool"] is True
    assert "tierToArchive" not in actions and "delete" not in actions
    tracking = kinds["BlobServiceProperties"].inputs["lastAccessTimeTrackingPolicy"]
    assert tracking["enable"] is True


@pytest.mark.parametrize("tiering, words", [
    ({"coolAfterDays": 30, "archiveAfterDays": 365},
     "archiveAfterDays is refused: the DICOM service cannot read"),
    ({"coolAfterDays": 30, "deleteAfterDays": 3650}, "deleteAfterDays is refused"),
    ({"coolAfterDays": 90, "coldAfterDays": 30}, "coldAfterDays must be later than coolAfterDays"),
])
def test_unsafe_tiering_is_refused_with_the_reason(run_cli, write_stack, staging_document, tiering, words):
    staging_document["config"]["hdsctl:dicomServices"][0]["storage"]["tiering"] = tiering
    path = write_stack("stg", staging_document)
    code, out, err = run_cli("--stacks-dir", str(path.parent), "validate", "--stack", "stg")
    assert code == EXIT_BAD_INPUT
    assert "hdsctl:dicomServices[0].storage.tiering" in out + err and words in out + err


def test_an_existing_account_and_a_new_one_cannot_both_be_given(run_cli, write_stack, staging_document):
    staging_document["config"]["hdsctl:dicomServices"][0]["storage"]["storageAccountId"] = (
        "/subscriptions/x/resourceGroups/y/providers/Microsoft.Storage/storageAccounts/z")
    path = write_stack("stg", staging_document)
    code, out, err = run_cli("--stacks-dir", str(path.parent), "validate", "--stack", "stg")
    assert code == EXIT_BAD_INPUT and "give one" in out + err


def _violations(plan, policy: str):
    return [v for v in evaluate(plan).violations if v.policy == policy]


def test_policy_refuses_archive_or_delete_on_dicom_files():
    for action in ("tierToArchive", "delete"):
        plan = copy.deepcopy(shipped_plan("staging"))
        policy = next(r for r in plan.resources if r.type.endswith(":ManagementPolicy"))
        policy.inputs["policy"]["rules"][0]["definition"]["actions"]["baseBlob"][action] = {
            "daysAfterModificationGreaterThan": 365}
        found = _violations(plan, "hds-dicom-lifecycle-safe")
        assert found and all(v.level == "mandatory" for v in found)
        assert "expire studies through the DELETE API" in found[0].message
    assert not _violations(shipped_plan("staging"), "hds-dicom-lifecycle-safe")


def test_policy_refuses_shared_keys_in_prod():
    plan = copy.deepcopy(shipped_plan("prod"))
    account = next(r for r in plan.resources if r.type == "azure-native:storage:StorageAccount")
    account.inputs["allowSharedKeyAccess"] = True
    found = _violations(plan, "hds-storage-no-shared-key")
    assert found and found[0].level == "mandatory" and "allowSharedKeyAccess: false" in found[0].message
    assert not _violations(shipped_plan("prod"), "hds-storage-no-shared-key")


def test_storage_endpoints_get_dns_records_in_new_or_the_hubs_zones(run_cli, write_stack):
    plan = shipped_plan("staging")  # dnsZones mode create: the two zones are made once, here
    zones = {r.name for r in plan.resources if r.type == "azure-native:privatedns:PrivateZone"}
    assert {"privatelink.blob.core.windows.net", "privatelink.dfs.core.windows.net"} <= zones
    groups = [r for r in plan.resources if r.type.endswith(":PrivateDnsZoneGroup") and "storage" in r.name]
    assert sorted(g.inputs["privateDnsZoneConfigs"][0]["name"] for g in groups) == [
        "privatelink-blob-core-windows-net", "privatelink-dfs-core-windows-net"]

    prod = yaml.safe_load((STACKS / "Pulumi.prod.yaml").read_text())  # mode existing: the hub's zones
    service = prod["config"]["hdsctl:dicomServices"][0]
    service.pop("customerManagedKey")
    service["storage"] = {"create": True}
    path = write_stack("prodcopy", prod)
    code, out, err = run_cli("--stacks-dir", str(path.parent), "validate", "--stack", "prodcopy")
    assert code == EXIT_BAD_INPUT and "hdsctl:privateNetworking.dnsZones.storageZoneIds" in out + err
    hub = "/subscriptions/0d9c8b7a-6f5e-4d3c-8b2a-1f0e9d8c7b6a/resourceGroups/rg-stmary-hub-dns/providers/" \
          "Microsoft.Network/privateDnsZones/"
    prod["config"]["hdsctl:privateNetworking"]["dnsZones"]["storageZoneIds"] = [
        hub + "privatelink.blob.core.windows.net", hub + "privatelink.dfs.core.windows.net"]
    path = write_stack("prodcopy", prod)
    code, out, err = run_cli("--stacks-dir", str(path.parent), "validate", "--stack", "prodcopy")
    assert code == 0, out + err


def test_an_existing_account_gets_the_writer_identity_and_grant_before_the_service():
    plan = shipped_plan("prod")  # prod keeps its files in an existing account
    lake = {r.type.rsplit(":", 1)[-1]: r for r in plan.resources if r.parent == DATA_LAKE}
    assert set(lake) == {"UserAssignedIdentity", "RoleAssignment"}  # nothing else is made in that account
    existing = yaml.safe_load((STACKS / "Pulumi.prod.yaml").read_text())["config"]["hdsctl:dicomServices"][0][
        "storage"]["storageAccountId"]
    assert lake["RoleAssignment"].inputs["scope"] == existing
    service = next(r for r in plan.resources if r.type == "azure-native:healthcareapis:DicomService")
    assert lake["RoleAssignment"].key in service.depends_on
    assert service.inputs["storageConfiguration"]["storageResourceId"] == existing
    assert len(service.inputs["identity"]["userAssignedIdentities"]) == 2  # the CMK identity and the writer
