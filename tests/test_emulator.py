"""The emulator follows the service's documented rules (raw HTTP, no hdsctl client)."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from support.https import make_certificate
from support.tokens import DICOM_AUDIENCE, jwt

from hdsctl.emulator.server import Emulator
from hdsctl.emulator.store import Knobs


def call(emu, method, path, body=None, raw=None):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(f"{emu.url}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            text = response.read().decode()
            return response.status, dict(response.headers), json.loads(text) if text else None
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


@pytest.fixture
def emu():
    with Emulator(instances=300, knobs=Knobs(instances_per_second=50_000)) as emulator:
        yield emulator


def add(emu, *entries):
    return call(emu, "POST", "/v2/extendedquerytags", list(entries))


def test_post_answers_202_with_location_and_tags_start_adding(emu):
    emu.knobs.instances_per_second = 300
    status, headers, body = add(emu, {"path": "BodyPartExamined", "level": "Series"})
    assert status == 202 and set(body) == {"id", "href"}
    assert headers["Location"] == body["href"] and len(body["id"]) == 32
    _, _, tag = call(emu, "GET", "/v2/extendedquerytags/00180015")
    assert (tag["status"], tag["queryStatus"], tag["level"]) == ("adding", "enabled", "series")
    assert tag["operation"]["id"] == body["id"]
    status, headers, state = call(emu, "GET", f"/v2/operations/{body['id']}")
    assert status == 202 and headers["Location"].endswith(body["id"])
    assert state["status"] in {"notStarted", "running"} and state["type"] == "reindex"
    emu.knobs.instances_per_second = 50_000
    emu.store.wait_idle()
    status, _, state = call(emu, "GET", f"/v2/operations/{body['id']}")
    assert status == 200 and state["status"] == "succeeded" and state["percentComplete"] == 100
    _, _, tag = call(emu, "GET", "/v2/extendedquerytags/BodyPartExamined")
    assert tag["status"] == "ready" and "operation" not in tag


def test_one_reindex_at_a_time_checked_before_the_body(emu):
    emu.knobs.instances_per_second = 300
    _, _, first = add(emu, {"path": "BodyPartExamined", "level": "Series"})
    status, headers, text = add(emu, {"path": "ReferringPhysicianName", "level": "Study"})
    assert status == 409 and f"active re-index operation with ID '{first['id']}'" in text
    assert headers["Location"].endswith(first["id"])
    emu.knobs.instances_per_second = 50_000
    emu.store.wait_idle()


@pytest.mark.parametrize(("entries", "says"), [
    ([], "empty"),
    ([{"path": "PatientSex", "level": "Study"}, {"path": "PatientSex", "level": "Study"}], "duplicate"),
    ([{"path": "ReferringPhysicianName", "level": "Study"}], "already searchable by default"),
    ([{"path": "00280010", "vr": "DS", "level": "Instance"}], "does not match the dictionary VR"),
    ([{"path": "00091001", "vr": "LO", "level": "Series"}], "needs privateCreator"),
    ([{"path": "PatientSex"}], "'path' and 'level' are required"),
    ([{"path": "PatientSex", "level": "Patient"}], "level 'Patient' is invalid"),
])
def test_post_rejects_what_the_service_rejects(emu, entries, says):
    status, headers, text = add(emu, *entries)
    assert status == 400 and says in text
    assert headers["Content-Type"].startswith("text/plain")


def test_malformed_json_is_400(emu):
    status, _, text = call(emu, "POST", "/v2/extendedquerytags", raw=b"[{not json")
    assert status == 400 and "not valid JSON" in text


def test_existing_path_is_409_and_128_is_the_limit(emu):
    add(emu, {"path": "PatientSex", "level": "Study"})
    emu.store.wait_idle()
    status, _, text = add(emu, {"path": "00100040", "level": "Series"})
    assert status == 409 and "already exist" in text
    many = [{"path": f"0009{0x1000 + i:04X}", "vr": "LO", "privateCreator": "ACME", "level": "Series"}
            for i in range(128)]
    status, _, text = add(emu, *many)
    assert status == 503 and "maximum number" in text


def test_list_paging_and_its_bounds(emu):
    add(emu, *[{"path": f"0009{0x1000 + i:04X}", "vr": "LO", "privateCreator": "ACME", "level": "Series"}
               for i in range(5)])
    _, _, page = call(emu, "GET", "/v2/extendedquerytags?limit=2&offset=3")
    assert [t["path"] for t in page] == ["00091003", "00091004"]
    assert call(emu, "GET", "/v2/extendedquerytags?offset=9")[2] == []
    for query in ("limit=0", "limit=201", "offset=-1", "Limit=x"):
        assert call(emu, "GET", f"/v2/extendedquerytags?{query}")[0] == 400


def test_patch_accepts_query_status_only(emu):
    add(emu, {"path": "PatientSex", "level": "Study"})
    emu.store.wait_idle()
    status, _, tag = call(emu, "PATCH", "/v2/extendedquerytags/PatientSex", {"QueryStatus": "Disabled"})
    assert status == 200 and tag["queryStatus"] == "disabled"
    assert call(emu, "PATCH", "/v2/extendedquerytags/PatientSex", {"level": "Series"})[0] == 400
    assert call(emu, "PATCH", "/v2/extendedquerytags/PatientSex", {"queryStatus": 1})[0] == 400
    assert call(emu, "PATCH", "/v2/extendedquerytags/StationName", {"queryStatus": "Enabled"})[0] == 404


def test_delete_is_synchronous_and_unknown_ids_are_404(emu):
    add(emu, {"path": "PatientSex", "level": "Study"})
    status, _, _ = call(emu, "DELETE", "/v2/extendedquerytags/00100040")  # allowed while adding
    assert status == 204
    assert call(emu, "GET", "/v2/extendedquerytags/00100040")[0] == 404
    status, _, text = call(emu, "GET", f"/v2/operations/{'0' * 32}")
    assert status == 404 and text == ""


def test_failed_operation_leaves_tags_adding_and_no_longer_blocks(emu):
    emu.knobs.fail_next_operation = True
    _, _, ref = add(emu, {"path": "PatientSex", "level": "Study"})
    emu.store.wait_idle()
    assert call(emu, "GET", f"/v2/operations/{ref['id']}")[2]["status"] == "failed"
    _, _, tag = call(emu, "GET", "/v2/extendedquerytags/PatientSex")
    assert tag["status"] == "adding" and tag["operation"]["id"] == ref["id"]
    assert add(emu, {"path": "PatientSex", "level": "Study"})[0] == 409  # exists
    assert add(emu, {"path": "StationName", "level": "Series"})[0] == 202  # not blocked


def test_v1_says_completed(emu):
    _, _, ref = call(emu, "POST", "/v1/extendedquerytags", [{"path": "PatientSex", "level": "Study"}])
    emu.store.wait_idle()
    assert call(emu, "GET", f"/v1/operations/{ref['id']}")[2]["status"] == "completed"


def test_qido_answers_follow_the_tag_state(emu):
    emu.knobs.instances_per_second = 300
    add(emu, {"path": "BodyPartExamined", "level": "Series"})
    status, _, text = call(emu, "GET", "/v2/series?BodyPartExamined=CHEST")
    assert status == 400 and "not queryable" in text  # still adding
    emu.knobs.instances_per_second = 50_000
    emu.store.wait_idle()
    status, _, found = call(emu, "GET", "/v2/series?BodyPartExamined=CHEST")
    assert status == 200 and found and all("0020000E" in item for item in found)
    assert call(emu, "GET", "/v2/series?BodyPartExamined=ELBOW")[0] == 204
    status, _, text = call(emu, "GET", "/v2/studies?BodyPartExamined=CHEST")
    assert status == 400 and "not queryable" in text  # a Series tag on /studies
    call(emu, "PATCH", "/v2/extendedquerytags/BodyPartExamined", {"queryStatus": "Disabled"})
    status, _, text = call(emu, "GET", "/v2/instances?00180015=CHEST")
    assert status == 400 and "Query is disabled on specified attribute" in text


def test_qido_flags_a_tag_with_errors(emu):
    emu.store.mark_bad_values("PatientSex", 3)
    add(emu, {"path": "PatientSex", "level": "Study"})
    emu.store.wait_idle()
    call(emu, "PATCH", "/v2/extendedquerytags/PatientSex", {"queryStatus": "Enabled"})
    status, headers, _ = call(emu, "GET", "/v2/studies?PatientSex=F")
    assert status == 200 and headers["erroneous-dicom-attributes"] == "PatientSex"
    _, _, errors = call(emu, "GET", "/v2/extendedquerytags/PatientSex/errors?limit=2")
    assert len(errors) == 2 and errors[0]["errorMessage"].startswith("Failed to index 00100040")


def test_knobs_through_the_control_api(emu):
    status, _, knobs = call(emu, "POST", "/_emulator/knobs", {"burst_503": 1, "latency_ms": 5})
    assert status == 200 and knobs["burst_503"] == 1
    assert call(emu, "GET", "/v2/extendedquerytags")[0] == 503
    assert call(emu, "GET", "/v2/extendedquerytags")[0] == 200
    assert call(emu, "POST", "/_emulator/knobs", {"warp_speed": 9})[0] == 400
    assert call(emu, "POST", "/_emulator/bad-values", {"PatientSex": 2})[0] == 204
    assert call(emu, "GET", "/_emulator/state")[2]["instances"] == 300


def test_the_emulator_command_serves_and_stops(tmp_path):
    url_file = tmp_path / "url"
    process = subprocess.Popen([sys.executable, "-m", "hdsctl.cli", "emulator", "--engine", "synthetic",
                                "--port", "0", "--url-file", str(url_file), "--instances", "50"],
                               stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if url_file.exists() and url_file.read_text().strip():
                break
            time.sleep(0.05)
        url = json.loads(url_file.read_text())["dicomUrl"]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/v2/extendedquerytags") as response:
            assert json.loads(response.read()) == []
    finally:
        process.terminate()
        process.wait(10)


def test_emulator_on_a_taken_port_says_so(run_cli):
    with Emulator(instances=1) as taken:
        port = taken.url.rsplit(":", 1)[1]
        code, _, err = run_cli("emulator", "--engine", "synthetic", "--port", port)
    assert code == 3 and f"cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err


def test_bearer_token_over_https_and_never_in_output(tmp_path, monkeypatch, run_cli, write_stack):
    from conftest import STACKS, load_yaml

    cert, key = make_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    secret = jwt(DICOM_AUDIENCE, secret="secret-part")
    monkeypatch.setenv("HDSCTL_DICOM_TOKEN", secret)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    stack = write_stack("local", load_yaml(STACKS / "Pulumi.local.yaml"))
    with Emulator(instances=100, knobs=Knobs(instances_per_second=50_000), tls=context) as emulator:
        code, out, err = run_cli("--stacks-dir", str(stack.parent), "tags", "sync", "--stack", "local",
                                 "--url", emulator.url, "--poll-interval", "0.02", "--json")
    assert code == 0, err
    assert emulator.requests and all(r.authorization == f"Bearer {secret}" for r in emulator.requests)
    assert secret not in out + err and "secret-part" not in out + err
