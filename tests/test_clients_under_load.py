"""Clients against stand-ins that behave like Azure under load, and tokens that go only to
their audience."""

from __future__ import annotations

import json
import logging
import ssl
import time
import urllib.error
import urllib.request

import pytest
from conftest import STACKS, load_yaml
from support.https import make_certificate
from support.tokens import DICOM_AUDIENCE, jwt

from hdsctl.dicom.client import DicomClient
from hdsctl.dicomtags import check_tag
from hdsctl.emulator.server import Emulator
from hdsctl.emulator.store import Knobs
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from hdsctl.tags.apply import PollSchedule, sync

DESIRED = [check_tag("BodyPartExamined", "Series"), check_tag("PatientSex", "Study")]


@pytest.fixture
def local_stack(write_stack):
    return write_stack("local", load_yaml(STACKS / "Pulumi.local.yaml"))


@pytest.fixture
def tls_emulator(tmp_path, monkeypatch):
    cert, key = make_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    with Emulator(instances=100, knobs=Knobs(instances_per_second=50_000), tls=context) as emulator:
        yield emulator


def test_bursts_of_503_then_429_with_retry_after_converge(caplog):
    knobs = Knobs(instances_per_second=50_000, burst_503=10, burst_429=3, retry_after=1)
    with Emulator(instances=100, knobs=knobs) as emulator, caplog.at_level(logging.INFO, "hdsctl"):
        with DicomClient(emulator.url, retry_backoff_factor=0.01, retry_backoff_max=0.05) as client:
            started = time.monotonic()
            outcome = sync(client, DESIRED, schedule=PollSchedule(first=0.02))
            took = time.monotonic() - started
        assert {t.path for t in outcome.observed if t.status == "ready"} >= {t.path for t in DESIRED}
        assert emulator.store.knobs.burst_503 == 0 and emulator.store.knobs.burst_429 == 0
    waits = [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting")]
    assert sum("503 Service Unavailable" in w for w in waits) == 10
    assert sum("429 Too Many Requests, Retry-After 1" in w for w in waits) == 3
    assert took >= 3  # each 429 was waited out for the second the service asked


def test_a_retry_after_of_a_day_ends_with_the_timeout(run_cli, local_stack):
    knobs = Knobs(instances_per_second=50_000, burst_429=1_000_000, retry_after=86_400)
    with Emulator(instances=10, knobs=knobs) as emulator:
        started = time.monotonic()
        code, out, err = run_cli("--stacks-dir", str(local_stack.parent), "tags", "sync", "--stack", "local",
                                 "--url", emulator.url, "--timeout", "10")
        took = time.monotonic() - started
    assert code == EXIT_FAILED
    assert took < 12, took  # a wait that would end after the budget is not started at all
    assert "giving up on GET 127.0.0.1/v2/extendedquerytags" in err and "Retry-After 86400" in err
    assert "would pass the time budget" in err
    assert "answered 429" in out and "for the whole time budget" in out


def test_a_token_for_another_audience_is_refused_before_any_request(run_cli, local_stack, tls_emulator,
                                                                    monkeypatch):
    monkeypatch.setenv("HDSCTL_DICOM_TOKEN", jwt("https://management.azure.com"))
    code, _, err = run_cli("--stacks-dir", str(local_stack.parent), "tags", "plan", "--stack", "local",
                           "--url", tls_emulator.url)
    assert code == EXIT_BAD_INPUT
    assert "HDSCTL_DICOM_TOKEN holds a token for https://management.azure.com" in err
    assert "it was not sent" in err
    assert tls_emulator.requests == []


def test_a_token_that_is_not_a_jwt_is_refused(run_cli, local_stack, tls_emulator, monkeypatch):
    monkeypatch.setenv("HDSCTL_DICOM_TOKEN", "opaque-token-value")
    code, _, err = run_cli("--stacks-dir", str(local_stack.parent), "tags", "plan", "--stack", "local",
                           "--url", tls_emulator.url)
    assert code == EXIT_BAD_INPUT and "is not a JSON Web Token" in err
    assert "opaque-token-value" not in err and tls_emulator.requests == []


def test_the_old_variable_still_serves_dicom_with_a_notice(run_cli, local_stack, tls_emulator, monkeypatch):
    token = jwt(DICOM_AUDIENCE)
    monkeypatch.setenv("HDSCTL_ACCESS_TOKEN", token)
    code, _, err = run_cli("--stacks-dir", str(local_stack.parent), "tags", "plan", "--stack", "local",
                           "--url", tls_emulator.url)
    assert code != EXIT_BAD_INPUT
    assert "HDSCTL_ACCESS_TOKEN is deprecated" in err and "HDSCTL_DICOM_TOKEN" in err
    assert tls_emulator.requests and all(r.authorization == f"Bearer {token}" for r in tls_emulator.requests)
    assert token not in err


def test_missing_credentials_are_bad_input_naming_the_variable(run_cli, local_stack, tls_emulator):
    code, out, err = run_cli("--stacks-dir", str(local_stack.parent), "tags", "plan", "--stack", "local",
                             "--url", tls_emulator.url)
    assert code == EXIT_BAD_INPUT
    assert "no token for the DICOM service" in out + err and "HDSCTL_DICOM_TOKEN" in out + err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(("url", "message"), [
    ("https://dicom.example.org", "not a DICOM service host of an Azure cloud"),
    ("https://user:secret@ws-radiology.dicom.azurehealthcareapis.com", "user information"),
    ("https://[::1", "is not a valid URL"),
    ("http://10.1.2.3", "refusing plain http"),
])
def test_a_url_a_token_must_not_reach_is_refused_by_validate_and_by_the_client(
        run_cli, write_stack, url, message):
    document = load_yaml(STACKS / "Pulumi.local.yaml")
    document["config"]["hdsctl:dicomServices"][0]["url"] = url
    path = write_stack("local", document)
    code, _, err = run_cli("--stacks-dir", str(path.parent), "validate", "--stack", "local")
    assert code == EXIT_BAD_INPUT and "hdsctl:dicomServices[0].url" in err and message in err
    assert "secret" not in err
    good = write_stack("good", load_yaml(STACKS / "Pulumi.local.yaml"))
    code, out, err = run_cli("--stacks-dir", str(good.parent), "tags", "plan", "--stack", "good", "--url", url)
    assert code == EXIT_BAD_INPUT and message in out + err and "secret" not in out + err


def test_a_trusted_host_is_accepted_and_shown(run_cli, write_stack):
    document = load_yaml(STACKS / "Pulumi.local.yaml")
    document["config"]["hdsctl:dicomServices"][0]["url"] = "https://dicom-gateway.stmary.example/v2"
    document["config"]["hdsctl:trustedHosts"] = ["dicom-gateway.stmary.example"]
    path = write_stack("local", document)
    code, out, _ = run_cli("--stacks-dir", str(path.parent), "validate", "--stack", "local")
    assert code == EXIT_OK
    assert "trusted hosts (receive the DICOM token): dicom-gateway.stmary.example" in out


def _post(url: str, body: bytes, headers: dict | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.mark.parametrize(("body", "message"), [
    ({"burst_429": "many"}, "knob 'burst_429' takes int"),
    ({"chance_503": True}, "knob 'chance_503' takes float"),
    ({"instances_per_second": 0}, "knob 'instances_per_second'"),
    ({"fail_next_operation": 1}, "knob 'fail_next_operation' takes bool"),
    ({"burst_999": 1}, "unknown knob 'burst_999'"),
    ([1, 2], "knobs are a JSON object"),
])
def test_emulator_knobs_of_the_wrong_type_are_a_400_that_says_which(body, message):
    with Emulator(instances=10) as emulator:
        status, text = _post(f"{emulator.url}/_emulator/knobs", json.dumps(body).encode())
        assert status == 400 and message in text
        status, _ = _post(f"{emulator.url}/_emulator/bad-values", b'{"PatientSex": "lots"}')
        assert status == 400


def _raw_request(url: str, head: str) -> str:
    """Send request headers only (a client that announces more than it sends) and read the answer."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        connection.sendall(head.encode())
        received = b""
        while chunk := connection.recv(65536):  # the emulator closes such a connection
            received += chunk
        return received.decode(errors="replace")


def test_emulator_bounds_and_checks_request_bodies():
    with Emulator(instances=10) as emulator:
        answer = _raw_request(emulator.url, "POST /v2/extendedquerytags HTTP/1.1\r\nHost: x\r\n"
                                            "Content-Length: 2097152\r\n\r\n")
        assert answer.startswith("HTTP/1.1 413") and "at most 1048576" in answer
        answer = _raw_request(emulator.url, "POST /_emulator/knobs HTTP/1.1\r\nHost: x\r\n"
                                            "Content-Length: lots\r\n\r\n")
        assert answer.startswith("HTTP/1.1 400") and "is not a byte count" in answer
        status, _ = _post(f"{emulator.url}/v2/extendedquerytags", b"{not json")
        assert status == 400
        status, _ = _post(f"{emulator.url}/_emulator/knobs", b"{}")  # still serving
        assert status == 200


def test_the_audit_refuses_a_dicom_token_for_resource_manager(run_cli, tmp_path, monkeypatch):
    from support.arm_authorization import AuthorizationState, make_handler
    from support.https import HttpsServer

    state = AuthorizationState()
    with HttpsServer(make_handler(state), tmp_path) as server:
        state.url = server.url
        monkeypatch.setenv("HDSCTL_ARM_TOKEN", jwt(DICOM_AUDIENCE))
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert_path))
        code, _, err = run_cli("--stacks-dir", str(STACKS), "audit", "roles", "--stack", "prod",
                               "--arm-url", server.url, "--graph-url", server.url)
    assert code == EXIT_BAD_INPUT
    assert "HDSCTL_ARM_TOKEN holds a token for https://dicom.healthcareapis.azure.com" in err
    assert state.requests == []
