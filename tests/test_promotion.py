"""`hdsctl diff`, `hdsctl promote` and `hdsctl ci init`."""

from __future__ import annotations

import difflib
import json
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, STACKS, index_prod_like_staging

from hdsctl.environment.dicom import DicomService
from hdsctl.environment.events import Events, EventSubscription
from hdsctl.environment.fhir import FhirService
from hdsctl.environment.fields import promotion_class
from hdsctl.environment.model import EnvironmentSpec
from hdsctl.environment.workspace import Workspace
from hdsctl.errors import EXIT_FAILED, EXIT_OK

SECURE_LINE = "  azure-native:clientSecret:\n    secure: AAABAKSECRETCIPHERTEXTxx==\n"


@pytest.fixture
def stacks(tmp_path):
    """A copy of the shipped stacks; prod also carries a secure: value and an extra comment."""
    folder = tmp_path / "stacks"
    shutil.copytree(STACKS, folder)
    index_prod_like_staging(folder)
    prod = folder / "Pulumi.prod.yaml"
    text = prod.read_text().replace("config:\n", "config:\n" + SECURE_LINE + "  # reviewed by the CAB\n", 1)
    prod.write_text(text)
    return folder


def edit(path, change):
    document = yaml.safe_load(path.read_text())
    change(document["config"])
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def run(run_cli, stacks, *args):
    return run_cli("--stacks-dir", str(stacks), *args)


def changed_line_numbers(before: str, after: str) -> list[int]:
    """Line numbers (0-based, in `before`) that the edit replaced or deleted; inserts count at their spot."""
    lines = []
    matcher = difflib.SequenceMatcher(a=before.splitlines(), b=after.splitlines(), autojunk=False)
    for tag, i1, i2, _, _ in matcher.get_opcodes():
        if tag != "equal":
            lines += list(range(i1, max(i2, i1 + 1)))
    return lines


def block_range(text: str, key: str) -> range:
    """Lines of the YAML block that `key:` opens (the key line itself included)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{key}:"))
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    def inside(line: str) -> bool:
        depth = len(line) - len(line.lstrip())
        return not line.strip() or depth > indent or (depth == indent and line.lstrip().startswith("- "))

    while end < len(lines) and inside(lines[end]):
        end += 1
    return range(start, end + 1)


def test_every_spec_field_is_classified_for_promotion():
    for model in (EnvironmentSpec, Workspace, DicomService, FhirService, Events, EventSubscription):
        for name in model.model_fields:
            assert promotion_class(model, name) in {"environment", "promoted", "key"}, (model, name)


def test_diff_of_identical_environments_is_empty(run_cli, stacks):
    code, out, _ = run(run_cli, stacks, "diff", "staging", "prod", "--json")
    assert code == EXIT_OK and json.loads(out)["changes"] == []
    code, out, _ = run(run_cli, stacks, "diff", "prod", "prod")
    assert "do not differ in promotable parts" in out


def test_diff_shows_tags_settings_and_bindings(run_cli, stacks):
    def change(config):
        dicom = config["hdsctl:dicomServices"][0]
        dicom["extendedQueryTags"].append({"path": "Manufacturer", "level": "Series"})
        dicom["extendedQueryTags"] = [t for t in dicom["extendedQueryTags"] if t["path"] != "StationName"]
        dicom["extendedQueryTags"][0]["level"] = "Study"
        config["hdsctl:fhirServices"][0]["versionPolicy"]["default"] = "no-version"
        config["hdsctl:roleAssignments"].append(
            {"role": "FHIR Data Exporter", "principal": "pacs-router", "scope": "clinical"})
        config["hdsctl:privateNetworking"]["dnsZones"] = {"mode": "create"}  # environment-specific
    edit(stacks / "Pulumi.staging.yaml", change)
    code, out, _ = run(run_cli, stacks, "diff", "prod", "staging")
    assert code == EXIT_OK
    assert "+ [tags] dicom radiology: 00080070 Manufacturer" in out
    assert "- [tags] dicom radiology: 00081010 StationName" in out
    assert "~ [tags] dicom radiology: 00180015 BodyPartExamined: 'Series CS' → 'Study CS'" in out
    assert "~ [settings] fhir clinical: versionPolicy" in out and "no-version" in out
    assert "+ [bindings] roleAssignments: FHIR Data Exporter for pacs-router on clinical" in out
    assert "dnsZones" not in out and "privateNetworking" not in out


def test_promote_tags_keeps_everything_else_byte_for_byte(run_cli, stacks):
    edit(stacks / "Pulumi.staging.yaml", lambda c: c["hdsctl:dicomServices"][0]["extendedQueryTags"].append(
        {"path": "Manufacturer", "level": "Series"}))
    before = (stacks / "Pulumi.prod.yaml").read_text()
    code, out, err = run(run_cli, stacks, "promote", "--from", "staging", "--to", "prod", "--only", "tags",
                         "--write")
    assert code == EXIT_OK, out
    assert "+ [tags] dicom radiology: 00080070 Manufacturer" in out and "wrote" in err
    after = (stacks / "Pulumi.prod.yaml").read_text()
    assert "{path: Manufacturer, level: Series}" in after or "path: Manufacturer" in after
    tags = block_range(before, "extendedQueryTags")
    assert all(line in tags for line in changed_line_numbers(before, after)), difflib.unified_diff(
        before.splitlines(), after.splitlines())
    assert SECURE_LINE in after and "  # reviewed by the CAB\n" in after
    assert after.startswith("# Production imaging platform: private-only")


def test_promote_settings_and_bindings_leaves_environment_values(run_cli, stacks):
    def change(config):
        config["hdsctl:fhirServices"][0]["versionPolicy"]["default"] = "versioned-update"
        config["hdsctl:roleAssignments"].append(
            {"role": "FHIR Data Exporter", "principal": "pacs-router", "scope": "clinical"})
    edit(stacks / "Pulumi.staging.yaml", change)
    before = yaml.safe_load((stacks / "Pulumi.prod.yaml").read_text())["config"]
    code, out, _ = run(run_cli, stacks, "promote", "--from", "staging", "--to", "prod", "--write")
    assert code == EXIT_OK, out
    after = yaml.safe_load((stacks / "Pulumi.prod.yaml").read_text())["config"]
    assert after["hdsctl:fhirServices"][0]["versionPolicy"]["default"] == "versioned-update"
    assert {"role": "FHIR Data Exporter", "principal": "pacs-router", "scope": "clinical"} in after[
        "hdsctl:roleAssignments"]
    for key in ("hdsctl:principals", "hdsctl:privateNetworking", "hdsctl:diagnostics", "hdsctl:tags",
                "hdsctl:subscriptionId", "hdsctl:workspace", "hdsctl:lock", "azure-native:clientSecret"):
        assert after[key] == before[key], key
    for field in ("customerManagedKey", "storage", "identity", "cors"):
        assert after["hdsctl:dicomServices"][0][field] == before["hdsctl:dicomServices"][0][field]
    assert after["hdsctl:fhirServices"][0]["export"] == before["hdsctl:fhirServices"][0]["export"]


def test_second_promotion_has_nothing_to_do(run_cli, stacks):
    edit(stacks / "Pulumi.staging.yaml", lambda c: c["hdsctl:dicomServices"][0]["extendedQueryTags"].append(
        {"path": "Manufacturer", "level": "Series"}))
    run(run_cli, stacks, "promote", "--from", "staging", "--to", "prod", "--write")
    written = (stacks / "Pulumi.prod.yaml").read_text()
    code, out, _ = run(run_cli, stacks, "promote", "--from", "staging", "--to", "prod", "--write")
    assert code == EXIT_OK and "nothing to promote" in out
    assert (stacks / "Pulumi.prod.yaml").read_text() == written


def test_unmapped_alias_is_refused_and_nothing_written(run_cli, stacks):
    def change(config):
        config["hdsctl:principals"]["night-shift"] = {
            "objectId": "3c3c3c3c-0000-4000-8000-000000000003", "type": "Group"}
        config["hdsctl:roleAssignments"].append(
            {"role": "DICOM Data Reader", "principal": "night-shift", "scope": "radiology"})
    edit(stacks / "Pulumi.dev.yaml", change)
    before = (stacks / "Pulumi.staging.yaml").read_text()
    code, out, _ = run(run_cli, stacks, "promote", "--from", "dev", "--to", "staging", "--only", "roles",
                       "--write")
    assert code == EXIT_FAILED
    assert "REFUSED:" in out and "principal alias 'night-shift' is not mapped in" in out
    assert "add hdsctl:principals.night-shift" in out
    assert (stacks / "Pulumi.staging.yaml").read_text() == before


def test_network_exposure_is_never_promoted(run_cli, stacks):
    edit(stacks / "Pulumi.staging.yaml",
         lambda c: c["hdsctl:dicomServices"][0].update(publicNetworkAccess="Enabled"))
    before = (stacks / "Pulumi.prod.yaml").read_text()
    code, out, _ = run(run_cli, stacks, "promote", "--from", "staging", "--to", "prod", "--write", "--json")
    assert code == EXIT_OK
    result = json.loads(out)
    assert result["accepted"] is True and result["changes"] == []
    assert (stacks / "Pulumi.prod.yaml").read_text() == before
    code, out, _ = run(run_cli, stacks, "diff", "staging", "prod")
    assert "publicNetworkAccess" not in out


def test_promotion_that_would_not_validate_is_refused(run_cli, stacks):
    edit(stacks / "Pulumi.dev.yaml", lambda c: c["hdsctl:roleAssignments"].append(
        {"role": "DICOM Data Reader", "principal": "radiology-readers", "scope": "research"}) or
        c["hdsctl:dicomServices"].append({"name": "research"}))
    code, out, _ = run(run_cli, stacks, "promote", "--from", "dev", "--to", "staging", "--only", "roles")
    assert code == EXIT_FAILED
    assert "the promoted stack would not validate" in out and "scope 'research'" in out
    assert "exists only in dev: promote services first" in out


def test_new_service_is_created_and_target_only_service_kept(run_cli, stacks):
    edit(stacks / "Pulumi.staging.yaml", lambda c: c["hdsctl:dicomServices"].append(
        {"name": "research", "publicNetworkAccess": "Disabled",
         "extendedQueryTags": [{"path": "PatientSex", "level": "Study"}]}))
    edit(stacks / "Pulumi.prod.yaml", lambda c: c["hdsctl:fhirServices"].append(
        {"name": "legacy-fhir", "publicNetworkAccess": "Disabled"}))
    code, out, _ = run(run_cli, stacks, "promote", "--from", "staging", "--to", "prod")
    assert "+ [services] dicom research: service" in out
    assert "fhir legacy-fhir exists only in prod: promotion never removes a service" in out
    assert "new dicom research" in out
    # Prod's guardrails want the new service's own CMK: refused until it is set. The refusal is
    # about what the promotion brings in, and the new service is private like the rest of prod.
    assert code == EXIT_FAILED
    refused = out.split("REFUSED:")[1]
    assert "hds-customer-managed-keys" in refused and "'research'" in refused
    assert "hds-public-network-access-disabled" not in out


def test_bad_only_value_is_bad_input(run_cli, stacks):
    code, _, err = run(run_cli, stacks, "promote", "--from", "dev", "--to", "staging", "--only", "everything")
    assert code == 3 and "--only takes services, tags, roles" in err


@pytest.mark.parametrize(("provider", "schema", "files"), [
    ("github", "vendor.github-workflows", [".github/workflows/hdsctl-pull-request.yml",
                                           ".github/workflows/hdsctl-deploy.yml",
                                           ".github/workflows/hdsctl-role-audit.yml"]),
    ("azure-devops", "vendor.azure-pipelines", ["azure-pipelines.yml", "azure-pipelines-role-audit.yml"]),
])
def test_ci_definitions_validate_against_their_schemas(run_cli, tmp_path, provider, schema, files):
    code, out, _ = run_cli("--stacks-dir", str(STACKS), "ci", "init", "--provider", provider,
                           "--output", str(tmp_path))
    assert code == EXIT_OK
    paths = [tmp_path / f for f in files]
    assert all(p.exists() for p in paths) and all(f"wrote {p}" in out for p in paths)
    checker = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema]
    if provider == "azure-devops":
        checker += ["--regex-variant", "python"]  # the schema's patterns are Python-style
    result = subprocess.run([*checker, *map(str, paths)], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    text = "\n".join(p.read_text() for p in paths)
    assert "client-secret" not in text and "CLIENT_SECRET" not in text
    assert "local" not in [line.strip().removeprefix("- ") for line in text.splitlines()]


def test_github_workflows_follow_the_promotion_chain(run_cli, tmp_path):
    run_cli("--stacks-dir", str(STACKS), "ci", "init", "--provider", "github", "--output", str(tmp_path))
    workflows = tmp_path / ".github" / "workflows"
    deploy = yaml.safe_load((workflows / "hdsctl-deploy.yml").read_text())
    jobs = deploy["jobs"]
    assert list(jobs) == ["deploy-dev", "promote-staging", "deploy-staging", "promote-prod", "deploy-prod"]
    assert jobs["deploy-staging"]["environment"] == "staging"
    assert jobs["deploy-staging"]["needs"] == "deploy-dev"
    assert jobs["deploy-prod"]["permissions"]["id-token"] == "write"
    assert jobs["deploy-dev"]["env"]["STACK"] == "dev"
    steps = [s.get("run", "") for s in jobs["deploy-dev"]["steps"]]
    assert any('hdsctl tags sync --stack "$STACK"' in s for s in steps)
    assert any('hdsctl audit roles --stack "$STACK"' in s for s in steps)
    smoke = [s for s in jobs["deploy-dev"]["steps"] if "dicom smoke" in s.get("run", "")]
    assert [s["env"] for s in smoke] == [{"SERVICE": "radiology"}]
    assert steps.index(smoke[0]["run"]) > next(i for i, s in enumerate(steps) if "tags sync" in s)
    assert jobs["promote-staging"]["env"] == {"SOURCE": "dev", "TARGET": "staging"}
    promote = [s.get("run", "") for s in jobs["promote-staging"]["steps"]]
    assert any('hdsctl promote --from "$SOURCE" --to "$TARGET" --write' in s for s in promote)
    pull_request = yaml.safe_load((workflows / "hdsctl-pull-request.yml").read_text())
    offline = [s.get("run", "") for s in pull_request["jobs"]["offline"]["steps"]]
    assert any("--policy --sarif" in s for s in offline)
    audit = yaml.safe_load((workflows / "hdsctl-role-audit.yml").read_text())
    assert audit[True]["schedule"][0]["cron"]  # YAML 1.1 reads the `on:` key as True
    assert audit["jobs"]["audit"]["strategy"]["matrix"]["stack"] == ["dev", "staging", "prod"]


def test_storage_indexing_is_promoted_but_its_storage_objects_stay_the_targets(run_cli, tmp_path):
    """Shipped staging indexes its Data Lake; shipped prod not yet."""
    folder = tmp_path / "stacks"
    shutil.copytree(STACKS, folder)
    code, out, _ = run(run_cli, folder, "diff", "prod", "staging")
    assert code == EXIT_OK
    assert "~ [settings] dicom radiology: storage.indexing: None → {'partitions': []}" in out
    code, out, err = run(run_cli, folder, "promote", "--from", "staging", "--to", "prod", "--write")
    assert code == EXIT_OK, out + err
    assert "turned on with staging's queue and dead-letter container names" in out
    storage = yaml.safe_load((folder / "Pulumi.prod.yaml").read_text())["config"]["hdsctl:dicomServices"][0][
        "storage"]
    assert storage["indexing"] == {"queue": "storage-events",
                                   "deadLetter": {"container": "storage-event-dead-letters"}}
    assert storage["storageAccountId"].endswith("/ststmaryproddicom")  # prod's own account, untouched

    def own_names(config):  # prod names its own queue; staging then narrows what is indexed
        config["hdsctl:dicomServices"][0]["storage"]["indexing"]["queue"] = "prod-blob-events"
    edit(folder / "Pulumi.prod.yaml", own_names)
    edit(folder / "Pulumi.staging.yaml", lambda c: c["hdsctl:dicomServices"][0].update(dataPartitions=True))
    edit(folder / "Pulumi.prod.yaml", lambda c: c["hdsctl:dicomServices"][0].update(dataPartitions=True))
    edit(folder / "Pulumi.staging.yaml", lambda c: c["hdsctl:dicomServices"][0]["storage"]["indexing"].update(
        partitions=["ct"]))
    code, out, err = run(run_cli, folder, "promote", "--from", "staging", "--to", "prod", "--write")
    assert code == EXIT_OK, out + err
    indexing = yaml.safe_load((folder / "Pulumi.prod.yaml").read_text())["config"]["hdsctl:dicomServices"][0][
        "storage"]["indexing"]
    assert indexing["partitions"] == ["ct"] and indexing["queue"] == "prod-blob-events"

    edit(folder / "Pulumi.staging.yaml", lambda c: c["hdsctl:dicomServices"][0]["storage"].pop("indexing"))
    code, out, _ = run(run_cli, folder, "promote", "--from", "staging", "--to", "prod", "--write")
    assert code == EXIT_OK and "storage.indexing (not in staging; --prune removes it)" in out
    code, out, _ = run(run_cli, folder, "promote", "--from", "staging", "--to", "prod", "--prune", "--write")
    assert code == EXIT_OK
    storage = yaml.safe_load((folder / "Pulumi.prod.yaml").read_text())["config"]["hdsctl:dicomServices"][0][
        "storage"]
    assert "indexing" not in storage
