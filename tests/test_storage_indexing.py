"""Storage indexing as code: the staging stack's plan holds Microsoft's recipe in the right
order, misuse is refused with its key path, the guardrail holds, and the queue setting reaches the
service through the preview API (against a local HTTPS stand-in for ARM)."""

from __future__ import annotations

import copy

import pytest
import yaml
from conftest import STACKS, shipped_plan
from support.arm_healthcare import ArmState, make_handler
from support.https import HttpsServer
from support.tokens import jwt

from hdsctl.components.storage_indexing_config import (
    IndexingNotApplied,
    StorageIndexingQueueProvider,
    queue_of,
)
from hdsctl.errors import EXIT_BAD_INPUT
from hdsctl.policies.evaluate import evaluate
from hdsctl.roles import role_by_name

INDEXING = "hdsctl:storage:StorageIndexingEvents::radiology-storage-indexing"
ACCOUNT = "ststmarystagingradioldcm"


@pytest.fixture
def staging_document():
    return yaml.safe_load((STACKS / "Pulumi.staging.yaml").read_text())


def _indexing(plan) -> dict[str, list]:
    found: dict[str, list] = {}
    for resource in plan.resources:
        if resource.parent == INDEXING:
            found.setdefault(resource.type.rsplit(":", 1)[-1], []).append(resource)
    return found


def test_the_plan_follows_microsofts_recipe():
    plan = shipped_plan("staging")
    made = _indexing(plan)
    assert sorted(q.inputs["queueName"] for q in made["Queue"]) == ["storage-events", "storage-events-poison"]
    assert all(q.inputs["accountName"] == ACCOUNT for q in made["Queue"])
    topic, = made["SystemTopic"]
    assert topic.inputs["topicType"] == "Microsoft.Storage.StorageAccounts"
    assert topic.inputs["source"].endswith(f"/storageAccounts/{ACCOUNT}")
    assert topic.inputs["identity"]["type"] == "SystemAssigned"
    subscription, = made["SystemTopicEventSubscription"]
    wanted = subscription.inputs["filter"]
    assert wanted["subjectBeginsWith"] == ("/blobServices/default/containers/dicom/blobs"
                                           "/AHDS/stmarystaging/dicom/radiology/")
    assert wanted["subjectEndsWith"] == ".dcm" and wanted["isSubjectCaseSensitive"] is True
    assert wanted["includedEventTypes"] == ["Microsoft.Storage.BlobCreated", "Microsoft.Storage.BlobDeleted"]
    assert wanted["advancedFilters"] == [{
        "key": "data.clientRequestId", "operatorType": "StringNotBeginsWith",
        "values": ["tag:stmarystaging-radiology.dicom.azurehealthcareapis.com,"]}]
    assert subscription.inputs["eventDeliverySchema"] == "CloudEventSchemaV1_0"
    destination = subscription.inputs["deliveryWithResourceIdentity"]["destination"]
    assert (destination["endpointType"], destination["queueName"]) == ("StorageQueue", "storage-events")
    assert destination["resourceId"].endswith(f"/storageAccounts/{ACCOUNT}")
    assert subscription.inputs["deadLetterWithResourceIdentity"]["deadLetterDestination"][
        "blobContainerName"] == "storage-event-dead-letters"


def test_grants_come_before_what_needs_them():
    plan = shipped_plan("staging")
    made = _indexing(plan)
    by_name = {g.name: g for g in made["RoleAssignment"]}
    sender = by_name["radiology-storage-indexing-sender"]
    assert sender.inputs["roleDefinitionId"].endswith(role_by_name("Storage Queue Data Message Sender").guid)
    assert sender.inputs["scope"].endswith("/queueServices/default/queues/storage-events")
    readers = [by_name[f"radiology-storage-indexing-{kind}-reader"] for kind in ("queue", "poison")]
    assert all(r.inputs["roleDefinitionId"].endswith(role_by_name("Storage Queue Data Contributor").guid)
               for r in readers)
    writer = next(r for r in plan.resources if r.name == "radiology-storage-writer")
    assert {r.inputs["principalId"] for r in readers} == {writer.inputs["principalId"]}  # the service's
    subscription, = made["SystemTopicEventSubscription"]
    assert sender.key in subscription.depends_on  # the topic may send before the subscription exists
    service = next(r for r in plan.resources if r.type == "azure-native:healthcareapis:DicomService")
    assert subscription.key in service.depends_on  # Event Grid does not backfill
    queue_setting = next(r for r in plan.resources if r.type.endswith(":StorageIndexingQueue"))
    assert {service.key, subscription.key, *(r.key for r in readers)} <= set(queue_setting.depends_on)
    assert queue_setting.inputs["queue"] == "storage-events"


@pytest.mark.parametrize("indexing, where, words", [
    ({"queue": "Storage-Events"}, "storage.indexing.queue", "pattern"),
    ({"queue": "storage--events"}, "storage.indexing.queue", "two hyphens"),
    ({"queue": "q" * 57}, "storage.indexing.queue", "pattern"),
    ({"partitions": ["mri"]}, "storage.indexing.partitions", "dataPartitions"),
    ({"deadLetter": {}}, "storage.indexing.deadLetter.container", "required"),
    ({"systemTopicId": "not-an-id"}, "storage.indexing.systemTopicId", ""),
])
def test_misuse_is_refused_with_its_key_path(run_cli, write_stack, staging_document, indexing, where, words):
    staging_document["config"]["hdsctl:dicomServices"][0]["storage"]["indexing"] = indexing
    path = write_stack("stg", staging_document)
    code, out, err = run_cli("--stacks-dir", str(path.parent), "validate", "--stack", "stg")
    assert code == EXIT_BAD_INPUT and "Traceback" not in err
    assert f"hdsctl:dicomServices[0].{where}" in out + err and words in out + err


def _violations(plan, policy: str):
    return [v for v in evaluate(plan).violations if v.policy == policy]


def test_the_guardrail_wants_dead_letters_and_the_own_writes_filter():
    assert not _violations(shipped_plan("staging"), "hds-storage-indexing-safe")
    plan = copy.deepcopy(shipped_plan("staging"))
    subscription, = _indexing(plan)["SystemTopicEventSubscription"]
    del subscription.inputs["deadLetterWithResourceIdentity"]
    subscription.inputs["filter"]["advancedFilters"] = []
    found = _violations(plan, "hds-storage-indexing-safe")
    assert len(found) == 2 and all(v.level == "mandatory" for v in found)  # staging is tier test
    assert any("own writes" in v.message for v in found) and any("deadLetter" in v.message for v in found)
    assert not _violations(plan, "hds-events-dead-letter")  # one rule, with the fix that applies


SUB = "6a1e4f0b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
SERVICE = (f"/subscriptions/{SUB}/resourceGroups/rg-img/providers/Microsoft.HealthcareApis/workspaces/hospws"
           "/dicomservices/radiology")
LAKE = f"/subscriptions/{SUB}/resourceGroups/rg-img/providers/Microsoft.Storage/storageAccounts/stlake"


@pytest.fixture
def arm(tmp_path, monkeypatch):
    state = ArmState()
    holder: list[str] = []
    with HttpsServer(make_handler(state, holder), tmp_path) as server:
        holder.append(server.url)
        state.url = server.url
        monkeypatch.setenv("HDSCTL_ARM_TOKEN", jwt(server.url, secret="arm-secret"))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert_path))
        state.seed(SERVICE, {
            "name": "radiology", "location": "westeurope", "etag": "\"3\"",
            "identity": {"type": "UserAssigned",
                         "userAssignedIdentities": {"/id/writer": {"principalId": "p"}}},
            "properties": {"provisioningState": "Succeeded", "serviceUrl": "https://x",
                           "eventState": "Disabled",
                           "authenticationConfiguration": {"authority": "https://a", "audiences": ["b"]},
                           "storageConfiguration": {"storageResourceId": LAKE, "fileSystemName": "dicom"},
                           "enableDataPartitions": False, "privateEndpointConnections": [{"id": "pec"}]}})
        yield state


def _props(state, queue="storage-events"):
    return {"subscription_id": SUB, "resource_group_name": "rg-img", "workspace_name": "hospws",
            "service_name": "radiology", "queue": queue, "arm_endpoint": state.url, "service_etag": "\"3\"",
            "retry_seconds": 30}


def test_the_queue_reaches_the_service_through_the_preview_api(arm):
    provider = StorageIndexingQueueProvider()
    result = provider.create(_props(arm))
    assert result.outs["actual"] == "storage-events"
    put, = arm.writes()
    assert put.path == SERVICE and put.body["properties"]["storageConfiguration"] == {
        "storageResourceId": LAKE, "fileSystemName": "dicom",
        "storageIndexingConfiguration": {"storageEventQueueName": "storage-events"}}
    assert not {"provisioningState", "serviceUrl", "privateEndpointConnections", "eventState",
                "authenticationConfiguration"} & set(put.body["properties"])
    assert put.body["identity"] == {"type": "UserAssigned", "userAssignedIdentities": {"/id/writer": {}}}
    provider.update("id", result.outs, _props(arm))  # already set: nothing is sent again
    assert len(arm.writes()) == 1
    assert queue_of(arm.resources[SERVICE.lower()]) == "storage-events"


def test_an_update_of_the_service_is_followed_by_setting_the_queue_again(arm):
    provider = StorageIndexingQueueProvider()
    olds = provider.create(_props(arm)).outs
    news = {**_props(arm), "service_etag": "\"4\""}
    assert provider.diff("id", olds, news).changes  # the native resource's PUT may have dropped it
    arm.resources[SERVICE.lower()]["properties"]["storageConfiguration"].pop("storageIndexingConfiguration")
    assert provider.update("id", olds, news).outs["actual"] == "storage-events"
    assert queue_of(arm.resources[SERVICE.lower()]) == "storage-events"


def test_removing_indexing_clears_the_setting(arm):
    provider = StorageIndexingQueueProvider()
    outs = provider.create(_props(arm)).outs
    provider.delete("id", outs)
    assert queue_of(arm.resources[SERVICE.lower()]) is None


def test_a_service_that_does_not_take_the_setting_is_an_error_naming_it(arm, monkeypatch):
    import hdsctl.components.storage_indexing_config as config

    monkeypatch.setattr(config, "writable_copy", lambda service, queue: {
        "location": service["location"], "properties": {}})  # as if the region ignored the preview property
    arm.resources[SERVICE.lower()]["properties"]["storageConfiguration"] = {}
    with pytest.raises(IndexingNotApplied, match="storage indexing is a preview feature"):
        StorageIndexingQueueProvider().create(_props(arm))
