"""Events as code: the spec, the program's resources, the guardrails, promotion, and events
delivered end to end from the local DICOM service into Azurite and read with `events tail`."""

from __future__ import annotations

import json
import shutil
import time

import pytest
import yaml
from conftest import STACKS, shipped_plan

from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.synthetic import synthetic_study
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from hdsctl.policies.evaluate import evaluate
from hdsctl.preview import run_preview
from hdsctl.roles import role_by_name

SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"
TOPIC = "azure-native:eventgrid:SystemTopic"
ROLE_ASSIGNMENT = "azure-native:authorization:RoleAssignment"


def _config(document):
    return document["config"]


def _events(document):
    return _config(document)["hdsctl:events"]


@pytest.fixture
def prod_document():
    return yaml.safe_load((STACKS / "Pulumi.prod.yaml").read_text())


def _problems(run_cli, write_stack, document):
    path = write_stack("evt", document)
    code, out, err = run_cli("--stacks-dir", str(path.parent), "validate", "--stack", "evt")
    return code, out + err


@pytest.mark.parametrize("change, where, words", [
    (lambda e: e["subscriptions"][0]["eventTypes"].append("DicomImageMoved"),
     "hdsctl:events.subscriptions[0].eventTypes[3]", "unknown event type 'DicomImageMoved'"),
    (lambda e: e["subscriptions"][0].update(destination="pacs-bus"),
     "hdsctl:events.subscriptions[0].destination", "destination 'pacs-bus' is not declared"),
    (lambda e: e["subscriptions"][0].update(services=["radiology", "cardiology"]),
     "hdsctl:events.subscriptions[0].services[1]", "'cardiology' is not a DICOM or FHIR service"),
    (lambda e: e["subscriptions"][0].update(eventTypes=["FhirResourceCreated"]),
     "hdsctl:events.subscriptions[0].eventTypes", "no FHIR service is among services"),
    (lambda e: e["destinations"][0].update(
        eventHubId="/subscriptions/x/resourceGroups/y/providers/Microsoft.EventHub/namespaces/n/eventhubs/h"),
     "hdsctl:events.destinations[0]", "exactly one of storageQueue, serviceBusQueueId or eventHubId"),
    (lambda e: e["subscriptions"].append(dict(e["subscriptions"][0])),
     "hdsctl:events.subscriptions[1].name", "subscription 'dicom-images' is declared twice"),
])
def test_bad_events_are_named_with_their_key_path(run_cli, write_stack, prod_document, change, where, words):
    change(_events(prod_document))
    code, text = _problems(run_cli, write_stack, prod_document)
    assert code == EXIT_BAD_INPUT
    assert where in text and words in text, text
    assert "Pulumi.evt.yaml" in text and "Traceback" not in text


def test_prod_preview_has_topic_subscription_destination_dead_letters_and_grants():
    plan = shipped_plan("prod")
    by_type = {}
    for resource in plan.resources:
        by_type.setdefault(resource.type, []).append(resource)
    topic, = by_type[TOPIC]
    assert topic.inputs["topicType"] == "Microsoft.HealthcareApis.Workspaces"
    assert topic.inputs["source"].endswith("/providers/Microsoft.HealthcareApis/workspaces/stmaryprodhds")
    assert topic.inputs["identity"] == {"type": "SystemAssigned"}

    subscription, = by_type[SUBSCRIPTION]
    inputs = subscription.inputs
    assert inputs["eventDeliverySchema"] == "CloudEventSchemaV1_0"
    assert inputs["filter"]["includedEventTypes"] == [
        "Microsoft.HealthcareApis.DicomImageCreated", "Microsoft.HealthcareApis.DicomImageUpdated",
        "Microsoft.HealthcareApis.DicomImageDeleted"]
    # Wire names as ARM spells them (a plain dict in a union would keep snake_case keys).
    assert inputs["filter"]["advancedFilters"] == [{
        "key": "subject", "operatorType": "StringBeginsWith",
        "values": ["stmaryprodhds-radiology.dicom.azurehealthcareapis.com/"]}]
    delivery = inputs["deliveryWithResourceIdentity"]
    assert delivery["identity"] == {"type": "SystemAssigned"}
    assert delivery["destination"]["endpointType"] == "StorageQueue"
    assert delivery["destination"]["queueName"] == "dicom-events"
    assert "destination" not in inputs and "deadLetterDestination" not in inputs  # no keys, no SAS
    dead_letter = inputs["deadLetterWithResourceIdentity"]["deadLetterDestination"]
    assert dead_letter["blobContainerName"] == "event-dead-letters"
    assert inputs["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}

    account, = by_type["azure-native:storage:StorageAccount"]
    assert account.inputs["allowSharedKeyAccess"] is False and account.inputs["minimumTlsVersion"] == "TLS1_2"
    assert account.inputs["networkRuleSet"]["defaultAction"] == "Deny"  # prod is private
    assert account.protect

    grants = {r.inputs["roleDefinitionId"].rsplit("/", 1)[1]: r for r in by_type[ROLE_ASSIGNMENT]
              if r.parent and "WorkspaceEvents" in r.parent}
    sender = role_by_name("Storage Queue Data Message Sender")
    writer = role_by_name("Storage Blob Data Contributor")
    assert set(grants) == {sender.guid, writer.guid}
    topic_principal = grants[sender.guid].inputs["principalId"]
    assert topic_principal == grants[writer.guid].inputs["principalId"]
    assert grants[sender.guid].inputs["scope"].endswith("/queueServices/default/queues/dicom-events")
    assert grants[writer.guid].inputs["scope"].endswith("/blobServices/default/containers/event-dead-letters")
    # The subscription waits for both grants; the services wait for the subscription, so they are
    # deleted first, then the subscription, then topic and workspace.
    assert {grants[sender.guid].key, grants[writer.guid].key} <= set(subscription.depends_on)
    for service in (by_type["azure-native:healthcareapis:DicomService"]
                    + by_type["azure-native:healthcareapis:FhirService"]):
        assert subscription.key in service.depends_on
    assert plan.outputs["events"]["subscriptions"] == ["dicom-images"]


def test_an_existing_topic_is_adopted_and_existing_destinations_are_granted(write_stack, prod_document):
    events = _events(prod_document)
    topic_id = ("/subscriptions/6a1e4f0b-2c3d-4e5f-8a9b-0c1d2e3f4a5b/resourceGroups/rg-events/providers/"
                "Microsoft.EventGrid/systemTopics/portal-made")
    bus = ("/subscriptions/6a1e4f0b-2c3d-4e5f-8a9b-0c1d2e3f4a5b/resourceGroups/rg-int/providers/"
           "Microsoft.ServiceBus/namespaces/sb-int/queues/imaging")
    events["systemTopicId"] = topic_id
    events["destinations"] = [{"name": "integration", "serviceBusQueueId": bus}]
    events["deadLetter"] = {"container": "dead-letters",
                            "accountId": "/subscriptions/6a1e4f0b-2c3d-4e5f-8a9b-0c1d2e3f4a5b/"
                            "resourceGroups/rg-int/providers/Microsoft.Storage/storageAccounts/stint"}
    events["subscriptions"][0]["destination"] = "integration"
    plan = run_preview(write_stack("evt", prod_document))
    topic = next(r for r in plan.resources if r.type == TOPIC)
    assert topic.import_id == topic_id and topic.inputs["systemTopicName"] == "portal-made"
    assert topic.inputs["resourceGroupName"] == "rg-events"
    assert not [r for r in plan.resources if r.type.startswith("azure-native:storage:")]  # nothing new to make
    scopes = {r.inputs["scope"]: r.inputs["roleDefinitionId"].rsplit("/", 1)[1] for r in plan.resources
              if r.type == ROLE_ASSIGNMENT and "WorkspaceEvents" in (r.parent or "")}
    assert scopes[bus] == role_by_name("Azure Service Bus Data Sender").guid
    assert scopes[events["deadLetter"]["accountId"] + "/blobServices/default/containers/dead-letters"] == \
        role_by_name("Storage Blob Data Contributor").guid


def test_prod_refuses_a_subscription_without_dead_letters_and_says_how_to_fix_it(write_stack, prod_document):
    _events(prod_document)["subscriptions"][0]["deadLetter"] = False
    report = evaluate(run_preview(write_stack("evt", prod_document)))
    found = [v for v in report.mandatory if v.policy == "hds-events-dead-letter"]
    assert found and "Remove `deadLetter: false`" in found[0].message
    assert "dicom-images" in found[0].message


def test_prod_passes_the_event_guardrails():
    report = evaluate(shipped_plan("prod"))
    assert not [v for v in report.violations if v.policy.startswith("hds-events-")]


def _stacks_copy(tmp_path):
    folder = tmp_path / "stacks"
    shutil.copytree(STACKS, folder)
    return folder


def _edit(path, change):
    document = yaml.safe_load(path.read_text())
    change(document["config"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_subscriptions_are_promoted_and_destinations_stay(run_cli, tmp_path):
    stacks = _stacks_copy(tmp_path)
    staging_destinations = yaml.safe_load((stacks / "Pulumi.staging.yaml").read_text())["config"][
        "hdsctl:events"]["destinations"]
    _edit(stacks / "Pulumi.dev.yaml", lambda c: (
        c["hdsctl:events"]["subscriptions"][0].update(maxDeliveryAttempts=10),
        c["hdsctl:events"]["destinations"][0]["storageQueue"].update(queue="dev-only-queue")))
    code, out, err = run_cli("--stacks-dir", str(stacks), "promote", "--from", "dev", "--to", "staging",
                             "--only", "events", "--write")
    assert code == EXIT_OK, out + err
    assert "[events] events: subscription dicom-images" in out
    staging = yaml.safe_load((stacks / "Pulumi.staging.yaml").read_text())["config"]["hdsctl:events"]
    assert staging["subscriptions"][0]["maxDeliveryAttempts"] == 10
    assert staging["destinations"] == staging_destinations  # each environment's own


def test_a_subscription_to_a_destination_the_target_lacks_is_refused(run_cli, tmp_path):
    stacks = _stacks_copy(tmp_path)
    before = (stacks / "Pulumi.staging.yaml").read_text()
    _edit(stacks / "Pulumi.dev.yaml", lambda c: (
        c["hdsctl:events"]["destinations"].append({"name": "research", "storageQueue": {"queue": "research"}}),
        c["hdsctl:events"]["subscriptions"].append(
            {"name": "research-copy", "eventTypes": ["DicomImageCreated"], "destination": "research"})))
    code, out, err = run_cli("--stacks-dir", str(stacks), "promote", "--from", "dev", "--to", "staging",
                             "--write")
    assert code == EXIT_FAILED
    assert "destination 'research' is not declared under hdsctl:events.destinations" in out + err
    assert (stacks / "Pulumi.staging.yaml").read_text() == before


def _store_study(url: str):
    study = synthetic_study(instances_per_series=2, size=16)
    with DicomClient(url) as client:
        client.store([instance.data for instance in study.instances])
    return study


def _tail(run_cli, queue_url, *extra):
    code, out, err = run_cli("events", "tail", "--stack", "local", "--queue-url", queue_url, "--json", *extra)
    assert code == EXIT_OK, err
    return [json.loads(line) for line in out.splitlines()]


def _wait_for(run_cli, queue_url, predicate, *extra):
    deadline = time.monotonic() + 20
    while True:
        events = _tail(run_cli, queue_url, *extra)
        if predicate(events) or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def test_a_stored_study_is_read_back_as_dicom_image_created_events(shared_events, run_cli, monkeypatch):
    monkeypatch.chdir(STACKS.parent)
    emulator, storage = shared_events
    _tail(run_cli, storage.queue_url, "--consume", "--max", "1000")  # start from an empty queue
    study = _store_study(emulator.url)
    uids = {instance.sop_uid for instance in study.instances}
    events = _wait_for(run_cli, storage.queue_url, lambda found: len(found) >= len(uids))
    created = [e["event"] for e in events if e["event"]["type"].endswith("DicomImageCreated")]
    assert {e["data"]["imageSopInstanceUid"] for e in created} == uids
    host = emulator.url.split("://", 1)[1]
    for event in created:
        data = event["data"]
        assert data["imageStudyInstanceUid"] == study.study_uid
        assert data["imageSeriesInstanceUid"] in {i.series_uid for i in study.instances}
        assert data["serviceHostName"] == host and data["partitionName"] == "Microsoft.Default"
        assert event["specversion"] == "1.0"
        assert event["subject"] == (f"{host}/v1/studies/{data['imageStudyInstanceUid']}/series/"
                                    f"{data['imageSeriesInstanceUid']}/instances/{data['imageSopInstanceUid']}")
    sequences = [e["data"]["sequenceNumber"] for e in created]
    assert len(set(sequences)) == len(sequences) and all(isinstance(n, int) and n > 0 for n in sequences)
    # A peek leaves them there; --consume takes them away.
    assert len(_tail(run_cli, storage.queue_url)) == len(events)
    assert len(_tail(run_cli, storage.queue_url, "--consume")) == len(events)
    assert _tail(run_cli, storage.queue_url) == []


def test_a_deleted_study_is_announced_per_instance(shared_events, run_cli, monkeypatch):
    monkeypatch.chdir(STACKS.parent)
    emulator, storage = shared_events
    study = _store_study(emulator.url)
    with DicomClient(emulator.url) as client:
        client.delete(study.study_uid)
    uids = {instance.sop_uid for instance in study.instances}

    def deleted(found):
        return {e["event"]["data"]["imageSopInstanceUid"] for e in found
                if e["event"]["type"].endswith("DicomImageDeleted")} >= uids

    assert deleted(_wait_for(run_cli, storage.queue_url, deleted, "--max", "32"))
    _tail(run_cli, storage.queue_url, "--consume", "--max", "1000")


def test_dead_letters_are_read_from_the_container(shared_events, run_cli, monkeypatch):
    from azure.storage.blob import ContainerClient

    monkeypatch.chdir(STACKS.parent)
    _, storage = shared_events
    dead = [{"id": "1", "type": "Microsoft.HealthcareApis.DicomImageCreated", "subject": "s",
             "data": {"imageSopInstanceUid": "1.2.3", "sequenceNumber": 9},
             "deadLetterReason": "MaxDeliveryAttemptsExceeded", "deliveryAttempts": 30}]
    with ContainerClient.from_connection_string(storage.connection_string, "event-dead-letters") as container:
        container.upload_blob("DICOM-IMAGES/2026/11/29/3/x.json", json.dumps(dead), overwrite=True)
    code, out, err = run_cli("events", "tail", "--stack", "local", "--dead-letters", "--blob-url",
                             storage.blob_url)
    assert code == EXIT_OK, err
    assert "instance=1.2.3" in out and "dead-lettered: MaxDeliveryAttemptsExceeded" in out


def test_tail_names_what_it_cannot_read(run_cli, tmp_path):
    stacks = _stacks_copy(tmp_path)
    _edit(stacks / "Pulumi.local.yaml", lambda c: c["hdsctl:events"]["subscriptions"].append(
        {"name": "second", "eventTypes": ["DicomImageDeleted"], "destination": "imaging-events"}))
    code, _, err = run_cli("--stacks-dir", str(stacks), "events", "tail", "--stack", "local")
    assert code == EXIT_BAD_INPUT and "pick one with --subscription (dicom-images, second)" in err
    code, _, err = run_cli("--stacks-dir", str(stacks), "events", "tail", "--stack", "local", "--subscription",
                           "second", "--queue-url", "http://queues.example/acct")
    assert code == EXIT_BAD_INPUT and "https" in err and "Traceback" not in err


def test_a_queue_that_does_not_exist_is_a_clear_failure(shared_events, run_cli, tmp_path):
    _, storage = shared_events
    stacks = _stacks_copy(tmp_path)
    _edit(stacks / "Pulumi.local.yaml", lambda c: c["hdsctl:events"]["destinations"][0]["storageQueue"].update(
        queue="never-made"))
    code, out, err = run_cli("--stacks-dir", str(stacks), "events", "tail", "--stack", "local", "--queue-url",
                             storage.queue_url)
    assert code == EXIT_FAILED and out == ""
    assert "queue never-made at http://127.0.0.1:" in err and "does not exist (404)" in err
    assert "Traceback" not in err


def test_the_emulator_command_with_events_and_fhir_names_every_endpoint_and_stops_them(tmp_path):
    import signal
    import subprocess
    import sys
    from urllib.parse import urlsplit

    from hdsctl.emulator.azurite import BUNDLED
    from hdsctl.emulator.orthanc import orthanc_binary
    from hdsctl.emulator.process import EngineUnavailable, listening_addresses

    if not BUNDLED.exists() or not shutil.which("node"):
        pytest.skip("needs Azurite (scripts/bootstrap installs it with npm)")
    try:
        orthanc_binary()
    except EngineUnavailable as err:
        pytest.skip(f"needs the local DICOM engine: {err}")
    url_file = tmp_path / "endpoints.json"
    process = subprocess.Popen([sys.executable, "-m", "hdsctl.cli", "--stacks-dir", str(STACKS), "emulator",
                                "--events", "--fhir", "--port", "0", "--url-file", str(url_file)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not url_file.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.1)
        assert url_file.exists(), process.stderr.read()
        endpoints = json.loads(url_file.read_text())
        assert set(endpoints) == {"dicomUrl", "fhirUrl", "queueUrl", "blobUrl", "storageConnectionString",
                                  "fileSystem", "indexingQueue"}
        ports = [urlsplit(endpoints[key]).port for key in ("dicomUrl", "fhirUrl", "queueUrl", "blobUrl")]
        assert all(listening_addresses(port) for port in ports)
        assert f"QueueEndpoint={endpoints['queueUrl']}" in endpoints["storageConnectionString"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert all(listening_addresses(port) == set() for port in ports)
