"""`hdsctl audit roles` drives the real azure-mgmt-authorization client against a local HTTPS
stand-in for Resource Manager; `hdsctl audit matrix` works from the specs alone."""

from __future__ import annotations

import json

import pytest
from conftest import STACKS, load_yaml
from support.arm_authorization import AuthorizationState, make_handler
from support.https import HttpsServer
from support.tokens import jwt

from hdsctl import roles
from hdsctl.environment.access import (
    bindings_by_scope,
    event_bindings,
    event_grants,
    program_bindings,
    program_grants,
    scopes,
)
from hdsctl.environment.load import load_environment
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK

SUB = "6a1e4f0b-2c3d-4e5f-8a9b-0c1d2e3f4a5b"
SECRET = "arm-token-that-must-not-leak-7f3a"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-stmary-prod-imaging"
WS = f"{RG}/providers/Microsoft.HealthcareApis/workspaces/stmaryprodhds"
DICOM = f"{WS}/dicomservices/radiology"
FHIR = f"{WS}/fhirservices/clinical"
INCIDENT_USER = "0badc0de-0000-4000-8000-00000000beef"
CUSTOM_ROLE = "9f9f9f9f-1111-4222-8333-444444444444"


@pytest.fixture
def prod_env():
    return load_environment(STACKS / "Pulumi.prod.yaml")


@pytest.fixture
def arm(tmp_path, monkeypatch):
    state = AuthorizationState()
    with HttpsServer(make_handler(state), tmp_path) as server:
        state.url = server.url
        state.token = jwt(server.url, secret=SECRET)  # the stand-in serves ARM and Graph
        monkeypatch.setenv("HDSCTL_ARM_TOKEN", state.token)
        monkeypatch.setenv("HDSCTL_GRAPH_TOKEN", state.token)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(server.cert_path))
        yield state


TOPIC = f"{RG}/providers/Microsoft.EventGrid/systemTopics/stmaryprodhds-events"
TOPIC_PRINCIPAL = "5e1f7a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b"
WRITER_PRINCIPAL = "7a7a7a7a-1b1b-4c2c-8d3d-9e4e9e4e9e4e"
DATA_LAKE = f"{RG}/providers/Microsoft.Storage/storageAccounts/ststmaryproddicom"
WRITER = f"{RG}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-stmaryprodhds-radiology-storage"


def seed_declared(state, env, skip=(), topic=True, writer=True):
    """Every assignment the prod stack declares, as Azure would hold it after `pulumi up`: its
    own bindings, the workspace's event topic with the grants it delivers with, and the DICOM
    service's Data Lake writer identity with its grant on the account."""
    by_name = {s.name: s for s in scopes(env, SUB)}
    declared = bindings_by_scope(env)
    if topic:
        state.resources[TOPIC.lower()] = {"id": TOPIC, "identity": {"type": "SystemAssigned",
                                                                    "principalId": TOPIC_PRINCIPAL}}
        by_name.update({scope.name: scope for scope, _ in event_grants(env, SUB)})
        declared.update(event_bindings(env, SUB, TOPIC_PRINCIPAL))
    if writer:
        state.resources[WRITER.lower()] = {"id": WRITER, "properties": {"principalId": WRITER_PRINCIPAL}}
        for owner in program_grants(env, SUB):
            by_name.update({scope.name: scope for scope, _ in owner.grants})
            for scope_name, bindings in program_bindings(owner, WRITER_PRINCIPAL).items():
                declared.setdefault(scope_name, []).extend(bindings)
    for scope_name, bindings in declared.items():
        for number, binding in enumerate(bindings):
            if (scope_name, binding.alias, binding.role.name) in skip:
                continue
            state.assign(by_name[scope_name].id, binding.role.guid, binding.principal.object_id,
                         binding.principal.type, SUB, f"{scope_name}-{number}")


@pytest.fixture
def audit(run_cli, arm):
    def run(*extra, stack="prod", stacks_dir=STACKS):
        return run_cli("--stacks-dir", str(stacks_dir), "audit", "roles", "--stack", stack,
                       "--arm-url", arm.url, "--graph-url", arm.url, *extra)

    return run


def test_clean_environment_exits_0(audit, arm, prod_env):
    seed_declared(arm, prod_env)
    code, out, err = audit()
    assert code == EXIT_OK, err
    # 8 declared bindings + the event topic's 2 grants + the Data Lake writer's 1
    assert "clean" in out and "11 ok" in out
    assert all(auth == f"Bearer {arm.token}" for _, _, _, auth in arm.requests)


def test_every_finding_category(audit, arm, prod_env):
    seed_declared(arm, prod_env, skip={("clinical", "pacs-router", "FHIR Data Writer")})
    # the declared readers group, but Azure holds the object id as a User
    readers = next(a for a in arm.assignments
                   if a["properties"]["principalId"] == prod_env.spec.principals["radiology-readers"].object_id)
    readers["properties"]["principalType"] = "User"
    arm.assign(DICOM, roles.role_by_name("DICOM Data Owner").guid, INCIDENT_USER, "User", SUB, "incident")
    arm.assign(WS, roles.role_by_name("Owner").guid, INCIDENT_USER, "User", SUB, "owner")
    arm.definitions[CUSTOM_ROLE] = {"roleName": "Imaging Break Glass",
                                    "actions": ["Microsoft.Authorization/*/write", "*/read"]}
    arm.assign(FHIR, CUSTOM_ROLE, INCIDENT_USER, "User", SUB, "breakglass")
    code, out, _ = audit("--format", "json")
    assert code == EXIT_FAILED
    report = json.loads(out)
    counts = report["counts"]
    assert counts == {"ok": 9, "missing": 1, "undeclared": 3, "type-mismatch": 1, "privileged": 2,
                      "inherited": 0}
    by = {(f["category"], f["scope"], f["role"]) for f in report["findings"]}
    assert ("missing", "clinical", "FHIR Data Writer") in by
    assert ("undeclared", "radiology", "DICOM Data Owner") in by
    assert ("type-mismatch", "radiology", "DICOM Data Reader") in by
    assert ("privileged", "workspace", "Owner") in by
    assert ("privileged", "clinical", "Imaging Break Glass") in by  # custom role, resolved by the API
    missing = next(f for f in report["findings"] if f["category"] == "missing")
    assert "hdsctl:roleAssignments[7]" in missing["fix"] and "pulumi up --stack prod" in missing["fix"]
    undeclared = next(f for f in report["findings"]
                      if f["category"] == "undeclared" and f["scope"] == "radiology")
    assert f"objectId: {INCIDENT_USER}, type: User" in undeclared["fix"]
    assert "az role assignment delete --ids /subscriptions/" in undeclared["fix"]
    mismatch = next(f for f in report["findings"] if f["category"] == "type-mismatch")
    assert mismatch["declared_type"] == "Group" and mismatch["principal_type"] == "User"
    assert "hdsctl:principals.radiology-readers.type: User" in mismatch["fix"]


def test_the_event_topics_grants_are_audited(audit, arm, prod_env):
    seed_declared(arm, prod_env,
                  skip={("events:dead-letters", "events-topic", "Storage Blob Data Contributor")})
    queue = next(scope for scope, _ in event_grants(prod_env, SUB) if scope.name == "events:imaging-events")
    arm.assign(queue.id, roles.role_by_name("Owner").guid, INCIDENT_USER, "User", SUB, "queue-owner")
    code, out, _ = audit("--format", "json")
    assert code == EXIT_FAILED
    findings = json.loads(out)["findings"]
    by = {(f["category"], f["scope"], f["role"], f["principal_id"]) for f in findings}
    assert ("ok", "events:imaging-events", "Storage Queue Data Message Sender", TOPIC_PRINCIPAL) in by
    assert ("missing", "events:dead-letters", "Storage Blob Data Contributor", TOPIC_PRINCIPAL) in by
    assert ("undeclared", "events:imaging-events", "Owner", INCIDENT_USER) in by
    missing = next(f for f in findings if f["category"] == "missing")
    assert "declared at hdsctl:events of stacks/Pulumi.prod.yaml" in missing["fix"]


def test_an_undeployed_event_topic_is_a_finding(audit, arm, prod_env):
    seed_declared(arm, prod_env, topic=False)
    code, out, _ = audit("--format", "json")
    assert code == EXIT_FAILED
    missing, = [f for f in json.loads(out)["findings"] if f["category"] == "missing"]
    assert missing["scope_id"] == TOPIC and "pulumi up --stack prod" in missing["fix"]
    for fmt in ("table", "markdown", "html"):
        code, out, _ = audit("--format", fmt)
        assert code == EXIT_FAILED and "Event Grid system topic identity" in out


def test_the_data_lake_writers_grant_is_audited(audit, arm, prod_env):
    seed_declared(arm, prod_env, skip={("storage:radiology", "radiology-storage-writer",
                                        "Storage Blob Data Contributor")})
    arm.assign(DATA_LAKE, roles.role_by_name("Storage Blob Data Contributor").guid, INCIDENT_USER, "User", SUB,
               "lake-reader")
    code, out, _ = audit("--format", "json")
    assert code == EXIT_FAILED
    findings = json.loads(out)["findings"]
    missing, = [f for f in findings if f["category"] == "missing"]
    assert (missing["scope"], missing["scope_id"], missing["principal_id"], missing["role"]) == (
        "storage:radiology", DATA_LAKE, WRITER_PRINCIPAL, "Storage Blob Data Contributor")
    assert "declared at hdsctl:dicomServices[0].storage of stacks/Pulumi.prod.yaml" in missing["fix"]
    stranger, = [f for f in findings if f["category"] == "undeclared"]
    assert (stranger["scope"], stranger["principal_id"]) == ("storage:radiology", INCIDENT_USER)
    # a stack file cannot declare roles on the Data Lake, so the fix is removal, not a declaration
    assert "az role assignment delete" in stranger["fix"] and "hdsctl:roleAssignments" not in stranger["fix"]
    code, out, _ = audit()
    assert "storage-account storage:radiology" in out


def test_an_undeployed_data_lake_writer_is_a_finding(audit, arm, prod_env):
    seed_declared(arm, prod_env, writer=False)
    code, out, _ = audit("--format", "json")
    assert code == EXIT_FAILED
    missing, = [f for f in json.loads(out)["findings"] if f["category"] == "missing"]
    assert missing["scope_id"] == WRITER and "pulumi up --stack prod" in missing["fix"]
    assert missing["role"] == "Data Lake writer identity"


def test_storage_indexing_grants_are_audited(audit, arm):
    """The Data Lake's event topic and the service's queue grants, as the program makes them."""
    env = load_environment(STACKS / "Pulumi.staging.yaml")
    sub = env.spec.subscription_id
    owners = {owner.identity_kind: owner for owner in program_grants(env, sub)}
    topic = owners["system topic"]
    arm.resources[topic.identity_id.lower()] = {"id": topic.identity_id, "identity": {
        "type": "SystemAssigned", "principalId": TOPIC_PRINCIPAL}}
    writer = owners["user-assigned identity"]
    arm.resources[writer.identity_id.lower()] = {"id": writer.identity_id,
                                                 "properties": {"principalId": WRITER_PRINCIPAL}}
    principals = {"system topic": TOPIC_PRINCIPAL, "user-assigned identity": WRITER_PRINCIPAL}
    for kind, owner in owners.items():
        for number, (scope, role) in enumerate(owner.grants):
            if (kind, role.name) != ("system topic", "Storage Queue Data Message Sender"):  # one left out
                arm.assign(scope.id, role.guid, principals[kind], "ServicePrincipal", sub, f"{kind}-{number}")
    code, out, _ = audit("--format", "json", stack="staging")
    findings = json.loads(out)["findings"]
    by = {(f["category"], f["scope"], f["role"], f["principal_id"]) for f in findings}
    assert ("ok", "indexing:radiology:queue", "Storage Queue Data Contributor", WRITER_PRINCIPAL) in by
    assert ("ok", "indexing:radiology:poison", "Storage Queue Data Contributor", WRITER_PRINCIPAL) in by
    assert ("ok", "indexing:radiology:dead-letters", "Storage Blob Data Contributor", TOPIC_PRINCIPAL) in by
    assert ("missing", "indexing:radiology:queue", "Storage Queue Data Message Sender", TOPIC_PRINCIPAL) in by
    missing = next(f for f in findings if f["category"] == "missing" and f["principal_id"] == TOPIC_PRINCIPAL)
    assert "hdsctl:dicomServices[0].storage.indexing of stacks/Pulumi.staging.yaml" in missing["fix"]
    assert code == EXIT_FAILED


def test_inherited_assignments_only_when_asked(audit, arm, prod_env):
    seed_declared(arm, prod_env)
    arm.assign(RG, roles.role_by_name("Reader").guid, INCIDENT_USER, "User", SUB, "rg-reader")
    arm.assign(f"/subscriptions/{SUB}", roles.role_by_name("Contributor").guid,
               "11112222-3333-4444-8555-666677778888", "ServicePrincipal", SUB, "sub-contributor")
    code, out, _ = audit()
    assert code == EXIT_OK and "inherited" not in out.split("\n")[1]
    code, out, _ = audit("--include-inherited", "--format", "json")
    report = json.loads(out)
    assert code == EXIT_FAILED  # the inherited Contributor is privileged
    inherited = [f for f in report["findings"] if f["category"] == "inherited"]
    assert {f["scope"] for f in inherited} == {RG, f"/subscriptions/{SUB}"}
    assert len(inherited) == 2  # each once, though every audited scope sees them
    assert ("privileged", f"/subscriptions/{SUB}", "Contributor") in {
        (f["category"], f["scope"], f["role"]) for f in report["findings"]}


def test_one_atscope_list_per_scope_and_page(audit, arm, prod_env):
    seed_declared(arm, prod_env)
    for number in range(5):
        arm.assign(DICOM, roles.role_by_name("DICOM Data Reader").guid,
                   f"{number:08d}-0000-4000-8000-000000000000", "Group", SUB, f"extra-{number}")
    arm.page_size = 2
    code, out, _ = audit("--format", "json")
    assert code == EXIT_FAILED and json.loads(out)["counts"]["undeclared"] == 5
    lists = arm.list_requests()
    # workspace: 0 own → 1 page; radiology: 5 declared + 5 extra = 10 → 5 pages; clinical: 3 → 2 pages;
    # the event topic's queue and dead-letter container, the Data Lake account: 1 each → 1 page each
    suffix = "/providers/Microsoft.Authorization/roleAssignments"
    assert sorted(lists) == sorted([WS + suffix] + [DICOM + suffix] * 5 + [FHIR + suffix] * 2
                                   + [scope.id + suffix for scope, _ in event_grants(prod_env, SUB)]
                                   + [DATA_LAKE + suffix])
    assert not any(path.rstrip("/").endswith(SUB + "/providers/Microsoft.Authorization/roleAssignments")
                   for path in lists)


def test_429_with_retry_after_is_retried(audit, arm, prod_env):
    seed_declared(arm, prod_env)
    assert audit()[0] == EXIT_OK
    unthrottled = len(arm.requests)
    arm.throttle_next = 2
    code, _, err = audit()
    assert code == EXIT_OK, err
    assert len(arm.requests) == 2 * unthrottled + 2  # the same requests again, + the 2 throttled tries


def test_access_denied_names_the_permission(audit, arm, prod_env):
    seed_declared(arm, prod_env)
    arm.denied_scopes.add(DICOM)
    code, _, err = audit()
    assert code == EXIT_BAD_INPUT
    assert "access denied reading " + DICOM in err
    assert "Microsoft.Authorization/roleAssignments/read" in err and "Traceback" not in err


def test_no_subscription_is_bad_input(run_cli, write_stack, dev_document):
    dev_document["config"].pop("hdsctl:subscriptionId")
    path = write_stack("nosub", dev_document)
    code, _, err = run_cli("--stacks-dir", str(path.parent), "audit", "roles", "--stack", "nosub")
    assert code == EXIT_BAD_INPUT and "no subscription for stack nosub" in err


def test_display_names_from_graph_or_a_clear_note(audit, arm, prod_env):
    seed_declared(arm, prod_env)
    readers = prod_env.spec.principals["radiology-readers"].object_id
    arm.names[readers] = "Radiology Readers (St Mary)"
    code, out, _ = audit()
    assert code == EXIT_OK and "Radiology Readers (St Mary)" in out
    arm.graph_denied = True
    code, out, _ = audit()
    assert "display names were not resolved" in out and "Radiology Readers" not in out


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "html"])
def test_reports_carry_the_findings_and_never_the_token(audit, arm, prod_env, fmt, tmp_path):
    seed_declared(arm, prod_env)
    arm.assign(WS, roles.role_by_name("Owner").guid, INCIDENT_USER, "User", SUB, "owner")
    target = tmp_path / f"report.{fmt}"
    code, out, err = audit("--format", fmt, "--output", str(target))
    assert code == EXIT_FAILED
    text = target.read_text()
    assert f"wrote the {fmt} report to {target}" in err
    assert INCIDENT_USER in text and "Owner" in text and "privileged" in text
    assert SECRET not in text + out + err
    if fmt == "markdown":
        assert "## workspace" in text and "| privileged | Owner |" in text
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and "<link" not in text and "<script" not in text


def test_matrix_across_environments(run_cli):
    code, out, _ = run_cli("--stacks-dir", str(STACKS), "audit", "matrix", "--stacks", "dev,staging,prod",
                           "--format", "json")
    assert code == EXIT_OK
    matrix = json.loads(out)
    assert matrix["environments"] == ["dev", "staging", "prod"]
    row = next(r for r in matrix["rows"] if r["principal"] == "radiology-readers")
    assert row == {"principal": "radiology-readers", "role": "DICOM Data Reader", "scope": "radiology",
                   "grantedIn": {"dev": "Group", "staging": "Group", "prod": "Group"}}


def test_matrix_shows_what_only_one_environment_grants(run_cli, write_stack):
    prod = load_yaml(STACKS / "Pulumi.prod.yaml")
    prod["config"]["hdsctl:roleAssignments"].append(
        {"role": "FHIR Data Exporter", "principal": "pacs-router", "scope": "clinical"})
    folder = write_stack("prod", prod).parent
    write_stack("dev", load_yaml(STACKS / "Pulumi.dev.yaml"))
    code, out, _ = run_cli("--stacks-dir", str(folder), "audit", "matrix")
    assert code == EXIT_OK
    line = next(line for line in out.splitlines() if "FHIR Data Exporter" in line)
    assert line.split()[-2:] == ["-", "ServicePrincipal"]


def test_html_escapes_names_from_the_directory(audit, arm, prod_env, tmp_path):
    seed_declared(arm, prod_env)
    readers = prod_env.spec.principals["radiology-readers"].object_id
    arm.names[readers] = "<script>alert(1)</script> Readers"
    arm.assign(DICOM, roles.role_by_name("DICOM Data Owner").guid, INCIDENT_USER, "User", SUB, "incident")
    target = tmp_path / "report.html"
    audit("--format", "html", "--output", str(target))
    html = target.read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; Readers" in html
    assert "hdsctl:principals.&lt;alias&gt;" in html
