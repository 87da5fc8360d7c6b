"""The emulator's answers and the client's requests against Microsoft's published OpenAPI
document for DICOM API v2 (tests/data/dicom-service-v2-openapi.yaml, MIT licence).

Allowances for the document's known errors (see the extended-query-tag reference):
- POST /extendedquerytags answers a bare {id, href}; the document wraps it in `operation`.
- 409 (active reindex, tag exists) and 503 (128 limit) are real answers it omits.
- Enum inputs are case-insensitive on the server; the document lists lower case only, and
  clients send Study/Series/Instance and Enabled/Disabled as Microsoft's own client does.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import pytest
import yaml

from hdsctl.dicom.client import DicomClient
from hdsctl.dicomtags import check_tag
from hdsctl.emulator.server import Emulator
from hdsctl.emulator.store import Knobs
from hdsctl.tags.apply import PollSchedule, sync

DOCUMENT = yaml.safe_load((Path(__file__).parent / "data" / "dicom-service-v2-openapi.yaml").read_text())
UNDOCUMENTED_STATUSES = {409, 503}


def _json_schema(node):
    """OpenAPI 3.0 schema → JSON Schema: `nullable` becomes a null type, refs point at $defs."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {}
    for key, value in node.items():
        if key == "$ref":
            converted[key] = value.replace("#/components/schemas/", "#/$defs/")
        elif key in {"nullable", "readOnly", "format"}:
            continue
        else:
            converted[key] = _json_schema(value)
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


DEFS = {name: _json_schema(schema) for name, schema in DOCUMENT["components"]["schemas"].items()}


def validate(instance, schema_or_name):
    schema = {"$ref": f"#/$defs/{schema_or_name}"} if isinstance(schema_or_name, str) else schema_or_name
    jsonschema.validate(instance, {**_json_schema(schema), "$defs": DEFS})


def operation(path: str, method: str) -> dict:
    return DOCUMENT["paths"][path][method.lower()]


def response_schema(path: str, method: str, status: int):
    answer = operation(path, method)["responses"][str(status)]
    return answer.get("content", {}).get("application/json", {}).get("schema")


def lower_enums(value):
    if isinstance(value, dict):
        return {k: lower_enums(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_enums(v) for v in value]
    return value.lower() if value in {"Study", "Series", "Instance", "Enabled", "Disabled"} else value


def fetch(url: str, method: str = "GET", body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture(scope="module")
def traffic():
    """One sync with every kind of write, then the answers of every tag and operation route."""
    with Emulator(instances=200, knobs=Knobs(instances_per_second=50_000)) as emu:
        emu.store.mark_bad_values("BodyPartExamined", 3)
        desired = [check_tag("BodyPartExamined", "Series"),
                   check_tag("00191002", "Series", "LO", "SIEMENS MR HEADER")]
        with DicomClient(emu.url, retry_backoff_factor=0.01) as client:
            sync(client, desired, schedule=PollSchedule(first=0.02, longest=0.05))
            client.set_query_enabled("00191002", False)
            client.add_tags([check_tag("StationName", "Series")])
            emu.store.wait_idle()
            client.delete_tag("00081010")
        v2 = f"{emu.url}/v2"
        answers = {
            "list": fetch(f"{v2}/extendedquerytags?limit=10&offset=0"),
            "get": fetch(f"{v2}/extendedquerytags/00180015"),
            "get-keyword": fetch(f"{v2}/extendedquerytags/BodyPartExamined"),
            "patch": fetch(f"{v2}/extendedquerytags/00191002", "PATCH", {"queryStatus": "Enabled"}),
            "errors": fetch(f"{v2}/extendedquerytags/00180015/errors"),
            "operation": fetch(f"{v2}/operations/{next(iter(emu.store.operations))}"),
            "post": fetch(f"{v2}/extendedquerytags", "POST", [{"path": "PatientSex", "level": "Study"}]),
            "unknown-tag": fetch(f"{v2}/extendedquerytags/00100040FF"),
            "missing-tag": fetch(f"{v2}/extendedquerytags/00080070"),
        }
        emu.store.wait_idle()
        answers["delete"] = fetch(f"{v2}/extendedquerytags/00100040", "DELETE")
        yield emu.data_requests(), answers


def test_client_request_bodies_follow_the_document(traffic):
    requests, _ = traffic
    posts = [r for r in requests if r.method == "POST" and r.path == "/v2/extendedquerytags"]
    patches = [r for r in requests if r.method == "PATCH"]
    assert posts and patches
    request_body = operation("/v2/extendedquerytags", "post")["requestBody"]
    post_schema = request_body["content"]["application/json"]["schema"]
    for post in posts:
        validate(lower_enums(post.body), post_schema)
    for patch in patches:
        validate(lower_enums(patch.body), "UpdateExtendedQueryTagOptions")


def test_client_uses_only_documented_routes(traffic):
    requests, _ = traffic
    documented = {"/v2/extendedquerytags", "/v2/extendedquerytags/{tagPath}",
                  "/v2/extendedquerytags/{tagPath}/errors", "/v2/operations/{operationId}"}
    assert documented <= set(DOCUMENT["paths"])
    for request in requests:
        parts = request.path.split("/")
        template = "/".join("{tagPath}" if i == 3 and parts[2] == "extendedquerytags" else
                            "{operationId}" if i == 3 and parts[2] == "operations" else p
                            for i, p in enumerate(parts))
        assert template in documented, request.path
        assert request.method.lower() in DOCUMENT["paths"][template]


def test_tag_answers_match_the_document(traffic):
    _, answers = traffic
    status, tags = answers["list"]
    assert status == 200
    validate(tags, response_schema("/v2/extendedquerytags", "get", 200))
    assert any("errors" in t for t in tags) and any(t.get("privateCreator") for t in tags)
    for key in ("get", "get-keyword", "patch"):
        status, tag = answers[key]
        assert status == 200
        validate(tag, "GetExtendedQueryTagEntry")
    assert answers["patch"][1]["queryStatus"] == "enabled"


def test_error_and_operation_answers_match_the_document(traffic):
    _, answers = traffic
    status, error_rows = answers["errors"]
    assert status == 200 and len(error_rows) == 3
    validate(error_rows, response_schema("/v2/extendedquerytags/{tagPath}/errors", "get", 200))
    status, state = answers["operation"]
    assert status == 200
    validate(state, "DicomOperationIOperationState")
    assert state["status"] == "succeeded" and state["percentComplete"] == 100


def test_post_answers_the_bare_reference_the_service_really_sends(traffic):
    _, answers = traffic
    status, reference = answers["post"]
    assert status == 202
    validate(reference, "OperationReference")
    with pytest.raises(jsonschema.ValidationError):
        validate(reference, "AddExtendedQueryTagResponse")  # the document's known error


def test_status_codes_are_documented_or_known_omissions(traffic):
    _, answers = traffic
    routes = {"unknown-tag": ("/v2/extendedquerytags/{tagPath}", "get"),
              "missing-tag": ("/v2/extendedquerytags/{tagPath}", "get"),
              "delete": ("/v2/extendedquerytags/{tagPath}", "delete")}
    for key, (path, method) in routes.items():
        status, _ = answers[key]
        declared = {int(code) for code in operation(path, method)["responses"]}
        assert status in declared | UNDOCUMENTED_STATUSES, (key, status)
    assert answers["unknown-tag"][0] == 400 and answers["missing-tag"][0] == 404
    assert answers["delete"][0] == 204
    assert isinstance(answers["missing-tag"][1], str)  # plain-text error body


def _template(path: str) -> str:
    """/v2/studies/1.2.3/series/4.5/instances/6.7/frames/2 → the document's path template."""
    names = {"studies": "{studyInstanceUid}", "series": "{seriesInstanceUid}", "instances": "{sopInstanceUid}",
             "frames": "{frames}", "partitions": "{partitionName}", "extendedquerytags": "{tagPath}",
             "operations": "{operationId}"}
    parts = path.split("/")
    out = []
    for index, part in enumerate(parts):
        previous = parts[index - 1] if index else ""
        out.append(names[previous] if previous in names and part not in names and part not in {
            "metadata", "rendered", "errors"} else part)
    return "/".join(out)


def test_data_plane_requests_and_answers_follow_the_document(run_cli, write_stack, shared_dicom):
    """A whole smoke check against the local service: every route the client used is in
    Microsoft's document with that method, and every status the local service answered is
    one the document declares for it."""
    from conftest import STACKS, load_yaml

    stack = write_stack("local", load_yaml(STACKS / "Pulumi.local.yaml"))
    start = len(shared_dicom.requests)
    code, _, err = run_cli("--stacks-dir", str(stack.parent), "dicom", "smoke", "--stack", "local",
                           "--url", shared_dicom.url)
    assert code == 0, err
    seen = [r for r in shared_dicom.requests[start:] if not r.path.startswith("/_emulator")]
    routes = {(r.method, _template(r.path)) for r in seen}
    instance = "/v2/studies/{studyInstanceUid}/series/{seriesInstanceUid}/instances/{sopInstanceUid}"
    assert {("POST", "/v2/studies/{studyInstanceUid}"), ("GET", "/v2/studies"), ("GET", f"{instance}/rendered"),
            ("GET", f"{instance}/frames/{{frames}}"), ("DELETE", "/v2/studies/{studyInstanceUid}")} <= routes
    for request in seen:
        template = _template(request.path)
        assert template in DOCUMENT["paths"], template
        declared = DOCUMENT["paths"][template].get(request.method.lower())
        assert declared is not None, (request.method, template)
        assert str(request.status) in declared["responses"], (request.method, template, request.status)
