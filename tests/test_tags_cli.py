"""`hdsctl tags plan|sync|status` against the emulator: exit codes, JSON, messages."""

from __future__ import annotations

import json

import pytest
from conftest import STACKS, load_yaml

from hdsctl.emulator.server import Emulator
from hdsctl.emulator.store import Knobs
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_DRIFT, EXIT_FAILED, EXIT_OK


@pytest.fixture
def emulator():
    with Emulator(instances=300, knobs=Knobs(instances_per_second=50_000)) as emu:
        yield emu


@pytest.fixture
def local_stack(write_stack):
    return write_stack("local", load_yaml(STACKS / "Pulumi.local.yaml"))


@pytest.fixture
def tags(run_cli, local_stack, emulator):
    def run(action, *extra):
        args = ["--stacks-dir", str(local_stack.parent), "tags", action, "--stack", "local",
                "--url", emulator.url, *extra]
        if action == "sync":
            args += ["--poll-interval", "0.02"]
        return run_cli(*args)

    return run


def test_plan_sync_plan_status_exit_codes(tags, emulator):
    code, out, _ = tags("plan")
    assert code == EXIT_DRIFT
    assert "add      00180015  declared, not on the service" in out
    assert emulator.data_requests("POST") == []
    code, out, err = tags("sync")
    assert code == EXIT_OK, out + err
    assert "reindex" in out and "succeeded (100%)" in out
    assert "succeeded 100%" in err  # progress went to stderr
    assert tags("plan")[0] == EXIT_OK
    code, out, _ = tags("status")
    assert code == EXIT_OK and "in sync: nothing to change" in out


def test_json_document_per_service(tags):
    code, out, _ = tags("sync", "--json")
    assert code == EXIT_OK
    document = json.loads(out)
    assert document["stack"] == "local" and document["exitCode"] == EXIT_OK
    (service,) = document["services"]
    assert service["service"] == "radiology" and service["converged"] is True
    assert {d["path"] for d in service["desired"]} >= {"00180015", "00191002"}
    private = next(d for d in service["desired"] if d["path"] == "00191002")
    assert private == {"path": "00191002", "keyword": None, "vr": "LO", "level": "Series",
                       "privateCreator": "SIEMENS MR HEADER", "queryStatus": "enabled"}
    assert [a["kind"] for a in service["taken"]] == ["add"] * 6
    assert all(t["status"] == "ready" and t["ok"] for t in service["tags"])
    assert service["operations"][0]["status"] == "succeeded"


def test_a_tag_disabled_by_indexing_errors_fails_the_sync(tags, emulator):
    emulator.store.mark_bad_values("BodyPartExamined", 4)
    code, out, _ = tags("sync", "--json")
    assert code == EXIT_FAILED
    (service,) = json.loads(out)["services"]
    body_part = next(t for t in service["tags"] if t["path"] == "00180015")
    assert body_part["queryStatus"] == "disabled" and body_part["errorCount"] == 4
    assert body_part["problem"] == "query disabled by 4 indexing error(s)"
    assert len(body_part["errors"]) == 3 and body_part["errors"][0]["sopInstanceUid"]
    code, out, _ = tags("status")
    assert code == EXIT_FAILED
    assert "! 1.2.826.0.1.3680043.10.1234." in out


def test_a_failed_reindex_fails_the_run_and_the_next_run_recovers(tags, emulator):
    emulator.knobs.fail_next_operation = True
    code, out, _ = tags("sync")
    assert code == EXIT_FAILED
    assert ": failed (" in out
    code, out, _ = tags("sync")
    assert code == EXIT_OK
    assert "recover  00180015" in out


def test_timeout_fails_with_a_way_forward(tags, emulator):
    emulator.knobs.instances_per_second = 500
    code, out, _ = tags("sync", "--deadline", "0.1")
    assert code == EXIT_FAILED
    assert "still running" in out and "run sync again later" in out
    emulator.store.wait_idle()


def test_unmanaged_tags_are_listed_and_pruned_only_on_request(tags, emulator):
    tags("sync")
    from hdsctl.dicom.client import DicomClient
    from hdsctl.dicomtags import check_tag

    with DicomClient(emulator.url) as client:
        client.add_tags([check_tag("Manufacturer", "Series")])
    emulator.store.wait_idle()
    code, out, _ = tags("plan")
    assert code == EXIT_OK and "unmanaged (left alone; --prune removes): 00080070" in out
    code, out, _ = tags("plan", "--prune")
    assert code == EXIT_DRIFT and "remove   00080070" in out
    assert tags("sync", "--prune")[0] == EXIT_OK
    assert "00080070" not in emulator.store.tags


def test_unknown_service_is_bad_input(run_cli, local_stack):
    code, _, err = run_cli("--stacks-dir", str(local_stack.parent), "tags", "plan", "--stack", "local",
                           "--service", "pacs")
    assert code == EXIT_BAD_INPUT
    assert "has no DICOM service 'pacs' (services: radiology)" in err


def test_plain_http_to_a_remote_host_is_bad_input(run_cli, local_stack):
    code, _, err = run_cli("--stacks-dir", str(local_stack.parent), "tags", "sync", "--stack", "local",
                           "--url", "http://dicom.example.org")
    assert code == EXIT_BAD_INPUT
    assert "refusing plain http to dicom.example.org" in err and "Traceback" not in err


def test_unreachable_service_fails_with_a_message(run_cli, local_stack):
    import socket

    # A port held bound but not listening: connections are refused, and no server another test
    # starts meanwhile can take it.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        code, out, _ = run_cli("--stacks-dir", str(local_stack.parent), "tags", "status", "--stack", "local",
                               "--url", f"http://127.0.0.1:{port}", "--timeout", "1")
    assert code == EXIT_FAILED
    assert "FAILED: GET http://127.0.0.1:" in out and "got no answer" in out and "check the URL" in out


def test_emulator_refuses_a_non_loopback_address(run_cli):
    code, _, err = run_cli("emulator", "--host", "0.0.0.0")
    assert code == EXIT_BAD_INPUT
    assert "bind it to loopback" in err
