"""`hdsctl dicom migrate plan`: the migration as a Kubernetes Indexed Job, checked offline against
the Kubernetes schemas (kubernetes-validate), the way the CI pipelines are checked against theirs."""

from __future__ import annotations

import pytest
import yaml
from conftest import STACKS

from hdsctl.errors import EXIT_BAD_INPUT, EXIT_OK

kubernetes_validate = pytest.importorskip("kubernetes_validate")

CLIENT_ID = "11111111-2222-4333-8444-555555555555"


def plan(run_cli, *extra):
    return run_cli("--stacks-dir", str(STACKS), "dicom", "migrate", "plan", "--stack", "prod", "--source",
                   "pvc://pacs-archive/export/2019", "--shards", "8", "--parallelism", "4", "--image",
                   "registry.example/hdsctl:1", "--journal-claim", "migration-journals", "--client-id",
                   CLIENT_ID, *extra)


def test_the_job_is_valid_kubernetes_and_runs_one_shard_per_index(run_cli):
    code, out, err = plan(run_cli)
    assert code == EXIT_OK, err
    documents = list(yaml.safe_load_all(out))
    for document in documents:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
    account, config, job = documents
    assert account["metadata"]["annotations"]["azure.workload.identity/client-id"] == CLIENT_ID
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 8, 4)
    assert spec["backoffLimitPerIndex"] >= 1  # a failing shard is retried alone
    assert spec["podReplacementPolicy"] == "Failed"  # never two pods of one shard at once
    ignored, failing = spec["podFailurePolicy"]["rules"]  # a drain is no try; bad input is not retried
    assert ignored == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    assert failing["action"] == "FailIndex" and failing["onExitCodes"]["values"] == [EXIT_BAD_INPUT]
    pod = spec["template"]
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
    container, = pod["spec"]["containers"]
    args = container["args"]
    assert args[args.index("--shard") + 1] == "$(JOB_COMPLETION_INDEX)/8"
    assert args[args.index("--journal") + 1] == "/journals/shard-$(JOB_COMPLETION_INDEX)-of-8.sqlite"
    assert "--reshard" not in args
    assert "/archive/export/2019" in args
    assert container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"].endswith(
        "['batch.kubernetes.io/job-completion-index']")
    claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["spec"]["volumes"]}
    assert claims["journals"] == "migration-journals" and claims["archive"] == "pacs-archive"
    stack = yaml.safe_load(config["data"]["Pulumi.prod.yaml"])["config"]
    assert all(key.startswith("hdsctl:") for key in stack)  # no provider settings or secure values
    assert "note: the workers' identity needs DICOM Data Owner on radiology" in err


def test_a_new_cut_takes_over_the_journals_of_the_earlier_one(run_cli):
    code, out, err = plan(run_cli, "--reshard-from", "4")
    assert code == EXIT_OK, err
    *_, job = yaml.safe_load_all(out)
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--reshard") + 1] == "/journals/shard-*-of-4.sqlite"
    assert args[args.index("--journal") + 1] == "/journals/shard-$(JOB_COMPLETION_INDEX)-of-8.sqlite"
    code, _, err = plan(run_cli, "--reshard-from", "8")
    assert code == EXIT_BAD_INPUT and "cut into 8 already" in err


def test_a_declared_grant_is_recognised(run_cli):
    code, _, err = plan(run_cli, "--principal", "pacs-router")
    assert code == EXIT_OK
    assert "ok: pacs-router holds DICOM Data Owner on radiology" in err


@pytest.mark.parametrize("extra, words", [
    (["--source", "/mnt/archive"], "give pvc://"),
    (["--source", "pvc://Bad_Claim/x"], "not a PersistentVolumeClaim name"),
    (["--journal-claim", "Journals!"], "not a Kubernetes name"),
])
def test_bad_input_is_named(run_cli, extra, words):
    code, _, err = plan(run_cli, *extra)
    assert code == EXIT_BAD_INPUT and words in err and "Traceback" not in err


def test_a_source_in_blob_storage_is_read_by_every_pod_without_a_volume(run_cli):
    source = "https://stpacsexport.blob.core.windows.net/export/2019"
    code, out, err = run_cli("--stacks-dir", str(STACKS), "dicom", "migrate", "plan", "--stack", "prod",
                             "--source", source, "--shards", "4", "--image", "registry.example/hdsctl:1",
                             "--journal-claim", "migration-journals", "--client-id", CLIENT_ID)
    assert code == EXIT_OK, err
    documents = list(yaml.safe_load_all(out))
    for document in documents:
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
    pod = documents[-1]["spec"]["template"]["spec"]
    assert source in pod["containers"][0]["args"]
    assert [v["name"] for v in pod["volumes"]] == ["journals", "stack"]  # no archive volume
    assert "Storage Blob Data Reader on that container" in err
    code, _, err = run_cli("--stacks-dir", str(STACKS), "dicom", "migrate", "plan", "--stack", "prod",
                           "--source", f"{source}?sig=secret", "--shards", "4", "--image", "i:1",
                           "--journal-claim", "j", "--client-id", CLIENT_ID)
    assert code == EXIT_BAD_INPUT and "without a SAS" in err and "secret" not in err


def test_the_report_job_gives_one_verdict_over_every_shards_journal(run_cli, shared_dicom, tmp_path):
    import json

    from test_shards import archive

    code, out, err = plan(run_cli, "--report")
    assert code == EXIT_OK, err
    job, = yaml.safe_load_all(out)
    kubernetes_validate.validate(job, kubernetes_validate.latest_version(), strict=True)
    assert job["metadata"]["name"] == "dicom-migration-report" and job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "dicom-migration"
    assert {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]} == {
        "journals": "migration-journals", "stack": None}  # no archive: the report reads journals only

    # The pod's own command, run here over two shards' journals (the claim is a folder).
    code, out, err = run_cli("--stacks-dir", str(STACKS), "dicom", "migrate", "plan", "--stack", "local",
                             "--source", "pvc://archive/x", "--shards", "2", "--image", "hdsctl:1",
                             "--journal-claim", "journals", "--client-id", CLIENT_ID, "--report")
    assert code == EXIT_OK, err
    job, = yaml.safe_load_all(out)
    container, = job["spec"]["template"]["spec"]["containers"]
    journals = tmp_path / "journals"
    journals.mkdir()
    args = [a.replace("/journals", str(journals)).replace("/stacks", str(STACKS)) for a in container["args"]]
    made = archive(tmp_path / "archive", studies=4)

    def shard(index: int):
        code, _, err = run_cli("--stacks-dir", str(STACKS), "dicom", "upload", str(tmp_path / "archive"),
                               "--stack", "local", "--url", shared_dicom.url, "--shard", f"{index}/2",
                               "--journal", str(journals / f"shard-{index}-of-2.sqlite"))
        assert code == EXIT_OK, err

    shard(0)
    code, out, _ = run_cli(*args)
    assert code != EXIT_OK and json.loads(out)["missingShards"] == [1]
    shard(1)
    code, out, _ = run_cli(*args)
    report = json.loads(out)
    assert code == EXIT_OK and report["ok"]
    assert report["counts"] == {"stored": sum(len(study.instances) for study in made)}
