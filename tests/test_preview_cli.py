"""`hdsctl preview`: readable, complete, deterministic, and plainly offline."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES, PROGRAM, STACKS

from hdsctl.errors import EXIT_BAD_INPUT, EXIT_OK


def preview_args(stacks, *rest):
    return ("--stacks-dir", str(stacks), "preview", "--program", str(PROGRAM), *rest)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod", "local"])
def test_each_shipped_stack_previews_the_same_plan_twice(run_cli, stack):
    code, first, err = run_cli(*preview_args(STACKS, "--stack", stack, "--json", "-"))
    assert code == EXIT_OK, err
    code, second, _ = run_cli(*preview_args(STACKS, "--stack", stack, "--json", "-"))
    assert first == second
    plan = json.loads(first)
    assert plan["stack"] == stack and plan["offline"] is True
    assert plan["resourceCount"] == len(plan["resources"]) > 5


def test_table_says_it_is_offline_and_shows_the_tree(run_cli):
    code, out, _ = run_cli(*preview_args(STACKS, "--stack", "prod"))
    assert code == EXIT_OK
    assert "no cloud was contacted" in out
    assert "hdsctl:index:ImagingEnvironment  prod" in out
    assert "\n    azure-native:healthcareapis:DicomService  radiology  [protect;" in out
    assert "groupIds" not in out  # key inputs only, not raw dumps
    assert "public_network_access: Disabled" in out
    assert "Stack outputs:" in out
    assert "  dicomServices.radiology.url: https://stmaryprodhds-radiology.dicom.azurehealthcareapis.com" in out


def test_json_file_holds_the_whole_plan(run_cli, tmp_path):
    target = tmp_path / "plan.json"
    code, out, _ = run_cli(*preview_args(STACKS, "--stack", "staging", "--json", str(target)))
    assert code == EXIT_OK
    assert f"wrote the plan as JSON to {target}" in out
    plan = json.loads(target.read_text())
    types = {r["type"] for r in plan["resources"]}
    assert "azure-native:privatedns:VirtualNetworkLink" in types
    endpoint = next(r for r in plan["resources"] if r["type"] == "azure-native:network:PrivateEndpoint")
    assert endpoint["inputs"]["privateLinkServiceConnections"][0]["groupIds"] == ["healthcareworkspace"]
    assert plan["outputs"]["fhirServices"]["clinical"]["url"].endswith(".fhir.azurehealthcareapis.com")


def test_all_stacks_in_one_json_document(run_cli):
    code, out, _ = run_cli(*preview_args(STACKS, "--all", "--json", "-"))
    assert code == EXIT_OK
    assert [p["stack"] for p in json.loads(out)] == ["dev", "local", "prod", "staging"]


def test_secrets_never_reach_the_plan(run_cli):
    code, out, err = run_cli(*preview_args(FIXTURES, "--stack", "max", "--json", "-"))
    assert code == EXIT_OK, err
    assert "AAABAHh0ZXN0" not in out
    assert "clientSecret" not in out


def test_a_bad_stack_stops_before_pulumi_runs(run_cli, write_stack, dev_document):
    dev_document["config"]["hdsctl:dicomServices"][0]["name"] = "Bad_Name"
    path = write_stack("x", dev_document)
    code, out, err = run_cli(*preview_args(path.parent, "--stack", "x"))
    assert code == EXIT_BAD_INPUT
    assert "hdsctl:dicomServices[0].name" in err
    assert "Traceback" not in err and out == ""


def test_help_lists_the_commands(capsys):
    from hdsctl.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "validate" in out and "preview" in out


def test_no_command_prints_usage_and_fails(run_cli):
    code, out, _ = run_cli()
    assert code == EXIT_BAD_INPUT
    assert "usage: hdsctl" in out


def test_unwritable_json_path_is_a_message_not_a_traceback(run_cli, tmp_path):
    target = tmp_path / "no" / "plan.json"
    code, _, err = run_cli(*preview_args(STACKS, "--stack", "local", "--json", str(target)))
    assert code == 1 and "No such file or directory" in err and "Traceback" not in err


def test_missing_program_is_bad_input(run_cli, tmp_path):
    code, _, err = run_cli("--stacks-dir", str(STACKS), "preview", "--stack", "dev",
                           "--program", str(tmp_path / "missing.py"))
    assert code == EXIT_BAD_INPUT and "the Pulumi program is not there" in err
