"""The publicNetworkAccess dynamic resource against a local HTTPS stand-in for ARM."""

from __future__ import annotations

import pytest
from support.arm_healthcare import ArmState, make_handler
from support.https import HttpsServer
from support.pulumi_servicer import create_through_servicer
from support.tokens import jwt

from hdsctl.components.public_access import (
    DICOM,
    FHIR,
    WORKSPACE,
    PublicNetworkAccessProvider,
    resource_id,
)

SUB = "6a1e4f0b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
SECRET = "test-token-9f8e7d"
BASE = f"/subscriptions/{SUB}/resourceGroups/rg-img/providers/Microsoft.HealthcareApis/workspaces/hospws"
IDENTITY = ("/subscriptions/x/resourceGroups/rg/providers/Microsoft.ManagedIdentity/"
            "userAssignedIdentities/id-cmk")


@pytest.fixture
def arm(tmp_path, monkeypatch):
    state = ArmState()
    url_holder: list[str] = []
    with HttpsServer(make_handler(state, url_holder), tmp_path) as server:
        url_holder.append(server.url)
        state.token = jwt(server.url, secret=SECRET)
        monkeypatch.setenv("HDSCTL_ARM_TOKEN", state.token)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert_path))
        state.url = server.url
        state.seed(BASE, {"name": "hospws", "location": "westeurope", "tags": {"env": "prod"},
                          "properties": {"provisioningState": "Succeeded",
                                         "publicNetworkAccess": "Enabled",
                                         "privateEndpointConnections": [{"id": "pec-1"}]}})
        state.seed(f"{BASE}/dicomservices/radiology", {
            "name": "radiology", "location": "westeurope", "etag": "\"7\"",
            "identity": {"type": "SystemAssigned,UserAssigned", "principalId": "p-1",
                         "userAssignedIdentities": {IDENTITY: {"principalId": "u-1", "clientId": "c-1"}}},
            "properties": {"provisioningState": "Succeeded", "serviceUrl": "https://x",
                           "publicNetworkAccess": "Enabled",
                           "corsConfiguration": {"origins": ["https://viewer"], "maxAge": 60},
                           "encryption": {"customerManagedKeyEncryption": {
                               "keyEncryptionKeyUrl": "https://kv/keys/k"}},
                           "enableDataPartitions": True,
                           "authenticationConfiguration": {"authority": "https://a", "audiences": ["b"]},
                           "privateEndpointConnections": [{"id": "pec-1"}], "eventState": "Disabled"}})
        state.seed(f"{BASE}/fhirservices/clinical", {
            "name": "clinical", "location": "westeurope", "kind": "fhir-R4",
            "properties": {"provisioningState": "Succeeded", "publicNetworkAccess": "Enabled",
                           "authenticationConfiguration": {"authority": "https://login/t",
                                                           "audience": "https://aud"},
                           "exportConfiguration": {"storageAccountName": "stexport"},
                           "resourceVersionPolicyConfiguration": {"default": "versioned"}}})
        yield state


def props(state, kind, service=None, access="Disabled"):
    return {"kind": kind, "subscription_id": SUB, "resource_group_name": "rg-img",
            "workspace_name": "hospws", "service_name": service,
            "public_network_access": access, "arm_endpoint": state.url}


def stored(state, path):
    return state.resources[path.lower()]


def test_workspace_access_is_disabled_by_a_put_of_writable_fields(arm):
    result = PublicNetworkAccessProvider().create(props(arm, WORKSPACE))
    assert result.outs["actual"] == "Disabled"
    assert result.id == f"{BASE}/publicNetworkAccess"
    puts = arm.writes()
    assert len(puts) == 1 and puts[0].path == BASE
    assert puts[0].body == {"location": "westeurope", "tags": {"env": "prod"},
                            "properties": {"publicNetworkAccess": "Disabled"}}
    assert puts[0].authorization == f"Bearer {arm.token}"
    # azure-mgmt-core followed the long-running operation to its end.
    assert any(r.path.startswith("/operations/") for r in arm.requests)
    assert stored(arm, BASE)["properties"]["publicNetworkAccess"] == "Disabled"


def test_dicom_put_keeps_every_other_setting(arm):
    PublicNetworkAccessProvider().create(props(arm, DICOM, "radiology"))
    (put,) = arm.writes()
    assert put.path == f"{BASE}/dicomservices/radiology"
    body = put.body
    assert body["properties"]["publicNetworkAccess"] == "Disabled"
    assert body["properties"]["corsConfiguration"]["origins"] == ["https://viewer"]
    assert body["properties"]["encryption"]["customerManagedKeyEncryption"]["keyEncryptionKeyUrl"] == (
        "https://kv/keys/k")
    assert body["properties"]["enableDataPartitions"] is True
    assert body["identity"]["type"] == "SystemAssigned,UserAssigned"
    assert list(body["identity"]["userAssignedIdentities"]) == [IDENTITY]
    assert "principalId" not in body["identity"]
    assert body["etag"] == "\"7\""
    for read_only in ("privateEndpointConnections", "provisioningState", "serviceUrl",
                      "eventState", "authenticationConfiguration"):
        assert read_only not in body["properties"], read_only


def test_fhir_put_keeps_authentication_and_export(arm):
    PublicNetworkAccessProvider().create(props(arm, FHIR, "clinical"))
    (put,) = arm.writes()
    properties = put.body["properties"]
    assert put.body["kind"] == "fhir-R4"
    assert properties["authenticationConfiguration"] == {"authority": "https://login/t",
                                                         "audience": "https://aud"}
    assert properties["exportConfiguration"] == {"storageAccountName": "stexport"}
    assert properties["publicNetworkAccess"] == "Disabled"


def test_nothing_is_sent_when_the_value_is_already_right(arm):
    provider = PublicNetworkAccessProvider()
    provider.create(props(arm, WORKSPACE))
    provider.create(props(arm, WORKSPACE))
    provider.update("id", props(arm, WORKSPACE), props(arm, WORKSPACE))
    assert len(arm.writes()) == 1


def test_read_reports_what_azure_holds_and_diff_sees_drift(arm):
    provider = PublicNetworkAccessProvider()
    wanted = props(arm, DICOM, "radiology")
    read = provider.read("id", wanted)
    assert read.outs["actual"] == "Enabled"
    drift = provider.diff("id", read.outs, wanted)
    assert drift.changes and not drift.replaces
    same = provider.diff("id", {**wanted, "actual": "Disabled"}, wanted)
    assert same.changes is False
    moved = provider.diff("id", wanted, {**wanted, "service_name": "other"})
    assert moved.replaces == ["service_name"]


def test_a_missing_service_is_an_error_not_a_silent_pass(arm):
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError, match="was not found"):
        PublicNetworkAccessProvider().create(props(arm, DICOM, "nope"))
    assert arm.writes() == []


def test_delete_leaves_azure_untouched(arm):
    PublicNetworkAccessProvider().delete("id", props(arm, WORKSPACE))
    assert arm.requests == []


def test_through_pulumis_dynamic_provider_servicer(arm):
    inputs = props(arm, FHIR, "clinical")
    resource, outs = create_through_servicer(
        PublicNetworkAccessProvider(), inputs,
        "urn:pulumi:prod::hdsctl::pulumi-python:dynamic/hdsctl:PublicNetworkAccess::clinical-public-network-access")
    assert resource == f"{resource_id(inputs)}/publicNetworkAccess"
    assert outs["actual"] == "Disabled"
    assert stored(arm, f"{BASE}/fhirservices/clinical")["properties"]["publicNetworkAccess"] == "Disabled"
