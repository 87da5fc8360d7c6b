"""What the program sends Azure Resource Manager, checked against Microsoft's SDK models generated
from the ARM REST specs for the same API versions (tools/arm-models, an environment of its own):
every property known to the spec and writable there, every enum value one the spec lists, every
required property present. The Event Grid resources of each shipped stack (pulumi-azure-native
speaks 2025-02-15), and the storage-indexing setting's PUT (2025-04-01-preview, written by hand).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import shipped_plan

from hdsctl.components.storage_indexing_config import writable_copy

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "tools" / "arm-models" / "site"
CHECK = Path(__file__).resolve().parent / "support" / "arm_models_check.py"
EXAMPLE = Path(__file__).resolve().parent / "fixtures" / "arm" / "DicomServices_Get.2025-04-01-preview.json"
# Path and query parameters: pulumi-azure-native takes them with the body, ARM in the URL.
URL_PARAMETERS = {"resourceGroupName", "systemTopicName", "eventSubscriptionName"}
MODELS = {"azure-native:eventgrid:SystemTopic": "eventgrid.SystemTopic",
          "azure-native:eventgrid:SystemTopicEventSubscription": "eventgrid.EventSubscription"}


def problems(checks: list[dict]) -> dict[str, list[str]]:
    if not (SITE / "azure" / "mgmt" / "eventgrid").is_dir():
        pytest.skip("needs the ARM models in tools/arm-models/site (scripts/bootstrap installs them)")
    run = subprocess.run([sys.executable, "-S", str(CHECK)], input=json.dumps({"checks": checks}),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


def _event_grid_checks(stack: str) -> list[dict]:
    return [{"name": f"{stack}: {resource.name}", "model": MODELS[resource.type],
             "body": {key: value for key, value in resource.inputs.items() if key not in URL_PARAMETERS}}
            for resource in shipped_plan(stack).resources if resource.type in MODELS]


def test_every_event_grid_resource_of_the_shipped_stacks_is_what_the_spec_takes():
    checks = [check for stack in ("dev", "staging", "prod") for check in _event_grid_checks(stack)]
    names = [check["name"] for check in checks]
    assert "staging: radiology-storage-indexing-subscription" in names  # the storage-indexing recipe
    assert "staging: radiology-storage-indexing-topic" in names
    assert problems(checks) == {name: [] for name in names}


def test_the_storage_indexing_put_is_what_the_preview_spec_takes():
    """Microsoft's own example of a service read, turned into the PUT the program sends."""
    read = json.loads(EXAMPLE.read_text())["body"]
    body = writable_copy(read, "storage-events")
    assert body["properties"]["storageConfiguration"]["storageIndexingConfiguration"] == {
        "storageEventQueueName": "storage-events"}
    assert problems([{"name": "put", "model": "healthcareapis.DicomService", "body": body}]) == {"put": []}


def test_the_check_finds_what_the_spec_refuses():
    """The same checks on bodies with known faults: each fault is named."""
    read = json.loads(EXAMPLE.read_text())["body"]
    put = writable_copy(read, "storage-events")
    put["properties"]["serviceUrl"] = read["properties"]["serviceUrl"]  # read-only
    put["properties"]["storageConfiguration"]["storageIndexingConfiguration"]["queueName"] = "x"  # unknown
    put["properties"]["publicNetworkAccess"] = "Private"  # not an enum value
    body = next(check["body"] for check in _event_grid_checks("staging")
                if check["name"].endswith("storage-indexing-subscription"))
    body["deliveryWithResourceIdentity"]["destination"]["queueNam"] = "typo"
    del body["deadLetterWithResourceIdentity"]["deadLetterDestination"]["endpointType"]  # required
    body["eventDeliverySchema"] = "CloudEvents"
    found = problems([{"name": "put", "model": "healthcareapis.DicomService", "body": put},
                      {"name": "subscription", "model": "eventgrid.EventSubscription", "body": body}])
    assert any("serviceUrl: read-only" in p for p in found["put"])
    assert any("storageIndexingConfiguration.queueName: not in" in p for p in found["put"])
    assert any("publicNetworkAccess: 'Private' is not one of" in p for p in found["put"])
    assert any("queueNam: not in the spec" in p for p in found["subscription"])
    assert any("event_delivery_schema: 'CloudEvents' is not one of" in p for p in found["subscription"])
    assert any("dead_letter_destination.endpoint_type: required" in p for p in found["subscription"]), found
