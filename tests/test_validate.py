"""`hdsctl validate`: shipped stacks pass; malformed stack files get a message naming the
file and the key path, and exit code 3, never a traceback."""

from __future__ import annotations

import pytest
from conftest import FIXTURES, STACKS

from hdsctl.errors import EXIT_BAD_INPUT, EXIT_OK


def test_every_shipped_stack_validates(run_cli):
    code, out, err = run_cli("--stacks-dir", str(STACKS), "validate", "--all")
    assert code == EXIT_OK, err
    for name in ("dev", "staging", "prod", "local"):
        assert f"Pulumi.{name}.yaml" in out


def test_the_max_fixture_validates(run_cli):
    code, out, err = run_cli("--stacks-dir", str(FIXTURES), "validate", "--stack", "max")
    assert code == EXIT_OK, err
    assert "prod environment 'max'" in out
    assert "2 DICOM, 2 FHIR, 13 role assignments" in out


def _break(document: dict, key: str, value) -> dict:
    document["config"][f"hdsctl:{key}"] = value
    return document


CASES = [
    pytest.param("tier", "production", "hdsctl:tier", "'dev', 'test' or 'prod'", id="wrong-enum"),
    pytest.param("lock", "sometimes", "hdsctl:lock", "valid boolean", id="wrong-type"),
    pytest.param("colour", "blue", "hdsctl:colour", "unknown key; allowed keys: tier", id="unknown-top-key"),
    pytest.param("naming", {"prefix": "St-Mary"}, "hdsctl:naming.prefix", "not a valid prefix",
                 id="bad-prefix"),
    pytest.param("workspace", {"name": "stmary-prod"}, "hdsctl:workspace.name",
                 "3-24 lowercase letters and digits", id="bad-workspace-name"),
    pytest.param("dicomServices", [{"name": "Radiology"}], "hdsctl:dicomServices[0].name",
                 "not a valid service name", id="bad-service-name"),
    pytest.param("dicomServices", [{"name": "radiology", "corz": {}}], "hdsctl:dicomServices[0].corz",
                 "allowed keys: name, publicNetworkAccess, cors", id="unknown-nested-key"),
    pytest.param("principals", {"readers": {"objectId": "not-a-guid", "type": "Group"}},
                 "hdsctl:principals.readers.objectId", "not a valid GUID", id="bad-guid"),
    pytest.param("principals", {"readers": {"objectId": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
                                            "type": "Robot"}},
                 "hdsctl:principals.readers.type", "'User', 'Group', 'ServicePrincipal'",
                 id="bad-principal-type"),
    pytest.param("diagnostics", {"logAnalyticsWorkspaceId": "/subscriptions/x/log"},
                 "hdsctl:diagnostics.logAnalyticsWorkspaceId", "Microsoft.OperationalInsights/workspaces",
                 id="bad-resource-id"),
]


@pytest.mark.parametrize(("key", "value", "where", "says"), CASES)
def test_malformed_field_is_named_with_its_path(write_stack, run_cli, dev_document, key, value, where, says):
    path = write_stack("broken", _break(dev_document, key, value))
    code, out, err = run_cli("--stacks-dir", str(path.parent), "validate", "--stack", "broken")
    assert code == EXIT_BAD_INPUT
    assert str(path) in err
    assert f"{where}: " in err and says in err, err
    assert "Traceback" not in err + out


def _roles(document, *assignments):
    document["config"]["hdsctl:roleAssignments"] = list(assignments)
    return document


def test_unknown_role_lists_the_allowed_ones(write_stack, run_cli, dev_document):
    doc = _roles(dev_document, {"role": "DICOM Data Wizard", "principal": "radiology-readers",
                                "scope": "radiology"})
    code, _, err = run_cli("--stacks-dir", str(write_stack("x", doc).parent), "validate", "--stack", "x")
    assert code == EXIT_BAD_INPUT
    assert "hdsctl:roleAssignments[0].role: unknown role 'DICOM Data Wizard'" in err
    assert "DICOM Data Reader" in err


def test_user_access_administrator_cannot_be_declared(write_stack, run_cli, dev_document):
    doc = _roles(dev_document, {"role": "User Access Administrator", "principal": "radiology-admins"})
    code, _, err = run_cli("--stacks-dir", str(write_stack("x", doc).parent), "validate", "--stack", "x")
    assert code == EXIT_BAD_INPUT
    assert "unknown role 'User Access Administrator'" in err


def test_dangling_scope_and_alias_are_reported_together(write_stack, run_cli, dev_document):
    doc = _roles(dev_document, {"role": "DICOM Data Reader", "principal": "ghosts", "scope": "pacs"})
    code, _, err = run_cli("--stacks-dir", str(write_stack("x", doc).parent), "validate", "--stack", "x")
    assert code == EXIT_BAD_INPUT
    assert "hdsctl:roleAssignments[0].principal: principal alias 'ghosts' is not declared" in err
    assert "hdsctl:roleAssignments[0].scope: scope 'pacs' is neither 'workspace' nor a service" in err
    assert "2 problem(s)" in err


def test_role_must_fit_the_service_kind(write_stack, run_cli, dev_document):
    doc = _roles(dev_document, {"role": "FHIR Data Reader", "principal": "clinical-apps",
                                "scope": "radiology"})
    code, _, err = run_cli("--stacks-dir", str(write_stack("x", doc).parent), "validate", "--stack", "x")
    assert code == EXIT_BAD_INPUT
    assert "role 'FHIR Data Reader' does not apply to the DICOM service 'radiology'" in err


def test_duplicate_service_names_across_dicom_and_fhir(write_stack, run_cli, dev_document):
    dev_document["config"]["hdsctl:fhirServices"] = [{"name": "radiology"}]
    dev_document["config"]["hdsctl:roleAssignments"] = []
    code, _, err = run_cli("--stacks-dir", str(write_stack("x", dev_document).parent),
                           "validate", "--stack", "x")
    assert code == EXIT_BAD_INPUT
    assert "hdsctl:fhirServices[0].name: duplicate service name 'radiology'" in err


@pytest.mark.parametrize(("tag", "says"), [
    ({"path": "PatientId", "level": "Study"}, "did you mean 'PatientID'"),
    ({"path": "ReferringPhysicianName", "level": "Study"}, "already searchable by default"),
    ({"path": "00091001", "vr": "LO", "level": "Series"}, "needs privateCreator"),
    ({"path": "BodyPartExamined", "level": "Patient"}, "level 'Patient' is not one of Study, Series, Instance"),
    ({"path": "ReferencedStudySequence", "level": "Study"}, "sequences cannot be indexed"),
    ({"path": "00280010", "vr": "DS", "level": "Instance"}, "does not match the dictionary VR US"),
    ({"path": "0040A370.00080050", "level": "Study"}, "sequence paths"),
    ({"path": "BodyPartExamined", "level": "Series", "privateCreator": "X"}, "only allowed on private tags"),
])
def test_bad_extended_query_tag(write_stack, run_cli, dev_document, tag, says):
    dev_document["config"]["hdsctl:dicomServices"][0]["extendedQueryTags"] = [tag]
    code, _, err = run_cli("--stacks-dir", str(write_stack("x", dev_document).parent),
                           "validate", "--stack", "x")
    assert code == EXIT_BAD_INPUT
    assert "hdsctl:dicomServices[0].extendedQueryTags[0]" in err
    assert says in err


def test_more_than_128_tags_is_refused(write_stack, run_cli, dev_document):
    tags = [{"path": f"0009{0x1000 + i:04X}", "vr": "LO", "privateCreator": "ACME", "level": "Series"}
            for i in range(129)]
    dev_document["config"]["hdsctl:dicomServices"][0]["extendedQueryTags"] = tags
    code, _, err = run_cli("--stacks-dir", str(write_stack("x", dev_document).parent),
                           "validate", "--stack", "x")
    assert code == EXIT_BAD_INPUT
    assert "129 tags declared; a DICOM service holds at most 128" in err


def test_the_same_tag_twice_is_refused(write_stack, run_cli, dev_document):
    dev_document["config"]["hdsctl:dicomServices"][0]["extendedQueryTags"] = [
        {"path": "BodyPartExamined", "level": "Series"}, {"path": "00180015", "level": "Study"}]
    code, _, err = run_cli("--stacks-dir", str(write_stack("x", dev_document).parent),
                           "validate", "--stack", "x")
    assert code == EXIT_BAD_INPUT
    assert "extendedQueryTags[1].path: tag 00180015 is declared twice" in err


def test_invalid_yaml_names_line_and_column(tmp_path, run_cli):
    (tmp_path / "Pulumi.bad.yaml").write_text("config:\n  hdsctl:tier: [dev\n")
    code, _, err = run_cli("--stacks-dir", str(tmp_path), "validate", "--stack", "bad")
    assert code == EXIT_BAD_INPUT
    assert "Pulumi.bad.yaml" in err and "not valid YAML" in err and "line 3" in err


def test_missing_stack_file(tmp_path, run_cli):
    code, _, err = run_cli("--stacks-dir", str(tmp_path), "validate", "--stack", "nope")
    assert code == EXIT_BAD_INPUT
    assert "Pulumi.nope.yaml: 1 problem(s)" in err and "no such stack file" in err


def test_secure_value_inside_the_spec_is_refused_without_echoing_it(write_stack, run_cli, dev_document):
    dev_document["config"]["hdsctl:tags"] = {"secure": "AAABAMY-SECRET-CIPHERTEXT"}
    code, out, err = run_cli("--stacks-dir", str(write_stack("x", dev_document).parent),
                             "validate", "--stack", "x")
    assert code == EXIT_BAD_INPUT
    assert "hdsctl:tags: is a secure: value" in err
    assert "MY-SECRET" not in out + err


def test_secure_values_of_other_namespaces_are_kept_out_of_the_way(run_cli):
    # The max fixture carries azure-native:clientSecret as a secure: value.
    code, out, err = run_cli("--stacks-dir", str(FIXTURES), "validate", "--stack", "max")
    assert code == EXIT_OK, err
    assert "AAABAHh0ZXN0" not in out + err


def test_all_reports_every_bad_stack_and_still_checks_the_others(tmp_path, run_cli, dev_document, write_stack):
    write_stack("good", dev_document)
    bad = _break(dict(dev_document, config=dict(dev_document["config"])), "tier", "nope")
    write_stack("bad", bad)
    code, out, err = run_cli("--stacks-dir", str(tmp_path / "stacks"), "validate", "--all")
    assert code == EXIT_BAD_INPUT
    assert "ok  " in out and "Pulumi.good.yaml" in out
    assert "Pulumi.bad.yaml" in err
