"""`hdsctl dicom migrate plan`: a migration run as a Kubernetes Indexed Job, one pod per shard.

Rendered as data, then YAML (no text templating: names and URLs from the stack cannot break the
document): a ServiceAccount for AKS workload identity (the pods get an Entra token, no secret),
a ConfigMap with the stack file, and a batch/v1 Job with `completionMode: Indexed`, one
completion per shard, `backoffLimitPerIndex` so a failing shard is retried alone, each pod
running `hdsctl dicom upload --shard <its index>/N` over the archive on a mounted volume, with
its journal on a volume that outlives the pods (a restarted pod resumes its shard).
`--report` renders a Job running `hdsctl dicom upload --status` over those journals: the one
answer at the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hdsctl.errors import EXIT_BAD_INPUT, BadInput

INDEX = "JOB_COMPLETION_INDEX"
INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
# Measured: the upload's peak RSS is 66-83 MB for 2 GB (benchmarks/README.md); one core each.
RESOURCES = {"requests": {"cpu": "1", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
REPORT_RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class MigrationPlanError(BadInput):
    """A migration that cannot be rendered as asked."""


@dataclass(frozen=True)
class Migration:
    stack: str
    stack_file: Path
    service: str
    shards: int
    parallelism: int
    image: str
    source_claim: str | None  # the PersistentVolumeClaim holding the archive; None: in Blob storage
    source_path: str  # the archive's folder inside it, or its Blob container URL
    journal_claim: str  # a PersistentVolumeClaim that outlives the pods
    client_id: str  # the workload identity's application (client) id
    via: str = "stow"
    name: str = "dicom-migration"
    retries_per_shard: int = 3
    reshard_from: int | None = None  # the count of an earlier cut whose journals each pod takes over


def parse_source(text: str) -> tuple[str | None, str]:
    """`pvc://<claim>/<path>`: the archive on a volume every pod mounts read-only; or a Blob
    container URL, which every pod lists and reads itself (no claim)."""
    from hdsctl.dicom.blob_source import is_url, parse_root

    if is_url(text):
        parse_root(text)  # refused now (a SAS, another host) rather than in every pod
        return None, text
    if not text.startswith("pvc://"):
        raise MigrationPlanError(f"--source {text!r}: give pvc://<claim>/<folder> (the archive on a "
                                 "PersistentVolumeClaim every worker mounts read-only) or a Blob container URL "
                                 "(https://<account>.blob.core.windows.net/<container>/<folder>)")
    claim, _, path = text.removeprefix("pvc://").partition("/")
    if not DNS_LABEL.match(claim):
        raise MigrationPlanError(f"--source {text!r}: {claim!r} is not a PersistentVolumeClaim name")
    return claim, "/" + path.strip("/")


def journal_path(index: str, shards: int) -> str:
    """Named with the count: a later cut into another number of shards gets journals of its own."""
    return f"/journals/shard-{index}-of-{shards}.sqlite"


def manifests(migration: Migration, *, report: bool = False) -> list[dict]:
    """The workers' ServiceAccount, ConfigMap and Job; with `report`, the Job that merges their
    journals into one report instead (applied once the workers' Job is complete)."""
    if migration.reshard_from == migration.shards:
        raise MigrationPlanError(f"--reshard-from {migration.reshard_from}: the archive is cut into "
                                 f"{migration.shards} already; give the earlier cut's count")
    for what, value in (("--name", migration.name), ("--journal-claim", migration.journal_claim)):
        if not DNS_LABEL.match(value):
            raise MigrationPlanError(f"{what} {value!r} is not a Kubernetes name (lowercase letters, digits "
                                     "and -)")
    labels = {"app.kubernetes.io/name": migration.name, "app.kubernetes.io/part-of": "hdsctl"}
    if report:
        return [_report_job(migration, labels)]
    return [_service_account(migration, labels), _stack_config(migration, labels), _job(migration, labels)]


def _service_account(migration: Migration, labels: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": migration.name, "labels": labels,
                         "annotations": {CLIENT_ID_ANNOTATION: migration.client_id}}}


def _stack_config(migration: Migration, labels: dict) -> dict:
    """The stack file's hdsctl: keys only: no provider settings, no `secure:` values, reach the pods."""
    import yaml

    document = yaml.safe_load(migration.stack_file.read_text()) or {}
    config = {key: value for key, value in (document.get("config") or {}).items() if key.startswith("hdsctl:")}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{migration.name}-stack", "labels": labels},
            "data": {migration.stack_file.name: yaml.safe_dump({"config": config}, sort_keys=False)}}


def _job(migration: Migration, labels: dict) -> dict:
    in_blob = migration.source_claim is None
    source = migration.source_path if in_blob else "/archive" + migration.source_path
    args = ["--stacks-dir", "/stacks", "dicom", "upload", source, "--stack", migration.stack, "--service",
            migration.service, "--shard", f"$({INDEX})/{migration.shards}",
            "--journal", journal_path(f"$({INDEX})", migration.shards), "--json"]
    if migration.reshard_from is not None:  # hdsctl expands the pattern: a pod's command has no shell
        args += ["--reshard", journal_path("*", migration.reshard_from)]
    if migration.via == "datalake":
        args += ["--via", "datalake"]
    container = {
        "name": "upload", "image": migration.image, "command": ["hdsctl"], "args": args,
        "env": [{"name": INDEX, "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{INDEX_ANNOTATION}']"}}}],
        "resources": RESOURCES,
        "volumeMounts": [*([] if in_blob else [{"name": "archive", "mountPath": "/archive", "readOnly": True}]),
                         {"name": "journals", "mountPath": "/journals"},
                         {"name": "stack", "mountPath": "/stacks", "readOnly": True}],
    }
    archive = [] if in_blob else [{"name": "archive", "persistentVolumeClaim": {
        "claimName": migration.source_claim, "readOnly": True}}]
    pod = _pod(migration, labels, container, archive)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": migration.name, "labels": labels},
            "spec": {"completionMode": "Indexed", "completions": migration.shards,
                     "parallelism": min(migration.parallelism, migration.shards),
                     "backoffLimitPerIndex": migration.retries_per_shard,
                     # A shard's next pod starts once the failed one has ended, not while it
                     # still terminates: one writer per journal, also on shares where locks are local.
                     "podReplacementPolicy": "Failed", "podFailurePolicy": _failure_policy(), "template": pod}}


def _failure_policy() -> dict:
    """A pod ended by a disruption (drain, preemption) is not a try of its shard; a shard whose
    input is refused (exit 3: a journal of another shard, a bad option) fails at once, since
    trying again cannot help."""
    return {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailIndex", "onExitCodes": {"containerName": "upload", "operator": "In",
                                                "values": [EXIT_BAD_INPUT]}}]}


def _report_job(migration: Migration, labels: dict) -> dict:
    """One pod running `--status` over every shard's journal: its log is the merged report, and
    the Job succeeds only when every file of every shard is stored. With --stack, files copied
    into the Data Lake and not yet indexed are looked up on the service."""
    args = ["--stacks-dir", "/stacks", "dicom", "upload", "--status", journal_path("*", migration.shards),
            "--stack", migration.stack, "--service", migration.service, "--json"]
    container = {"name": "report", "image": migration.image, "command": ["hdsctl"], "args": args,
                 "resources": REPORT_RESOURCES,
                 "volumeMounts": [{"name": "journals", "mountPath": "/journals"},
                                  {"name": "stack", "mountPath": "/stacks", "readOnly": True}]}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"{migration.name}-report", "labels": labels},
            "spec": {"backoffLimit": 0, "template": _pod(migration, labels, container, [])}}


def _pod(migration: Migration, labels: dict, container: dict, volumes: list[dict]) -> dict:
    """A pod with the workers' identity, the journals' claim and the stack's settings."""
    return {"metadata": {"labels": {**labels, WORKLOAD_IDENTITY_LABEL: "true"}},
            "spec": {"serviceAccountName": migration.name, "restartPolicy": "Never",
                     "containers": [container],
                     "volumes": [
                         *volumes,
                         {"name": "journals", "persistentVolumeClaim": {"claimName": migration.journal_claim}},
                         {"name": "stack", "configMap": {"name": f"{migration.name}-stack"}}]}}


def render(documents: list[dict]) -> str:
    import yaml

    return "---\n".join(yaml.safe_dump(document, sort_keys=False) for document in documents)
