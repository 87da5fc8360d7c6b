"""Extended query tags inside `pulumi up`: a dynamic resource per DICOM service that runs
the same reconciler as `hdsctl tags sync`.

Its `extended_query_tags` input is a map keyed by tag path, so `pulumi preview` shows a changed level or
an added tag as a property change. Tags that a previous deployment declared and this one
does not are removed; tags it never declared are left alone. Deleting the resource leaves
the tags on the service (they go with the service when it is deleted).
"""

from __future__ import annotations

import time
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, ResourceProvider, UpdateResult

from hdsctl.dicomtags import TagDefinition

# The DICOM service caches authorization decisions for up to 5 minutes and new role
# assignments take a while to reach it: a 403 right after the deployer's grant is retried.
ACCESS_WAIT_SECONDS = 900
ACCESS_RETRY_SECONDS = 30
REINDEX_TIMEOUT_SECONDS = 3600
# The resource's own timeout covers both waits; the client's retries never run past it.
RESOURCE_TIMEOUT = f"{(ACCESS_WAIT_SECONDS + REINDEX_TIMEOUT_SECONDS) // 60}m"


def tags_input(definitions: list[TagDefinition]) -> dict[str, dict[str, Any]]:
    return {
        tag.path: {"keyword": tag.keyword or "", "vr": tag.vr, "level": tag.level,
                   "private_creator": tag.private_creator or "", "query_enabled": tag.query_enabled}
        for tag in definitions
    }


def definitions_of(tags: dict[str, dict[str, Any]]) -> list[TagDefinition]:
    return [
        TagDefinition(path, value["vr"], value["level"], value.get("private_creator") or None,
                      bool(value.get("query_enabled", True)))
        for path, value in sorted((tags or {}).items())
    ]


def reconcile(props: dict[str, Any], retired: list[str]) -> dict[str, Any]:
    """Sync the declared tags, removing `retired` ones first; raise if anything failed."""
    from hdsctl.dicom.client import DicomClient
    from hdsctl.dicom.errors import AccessDenied
    from hdsctl.retry import Budget
    from hdsctl.tags.apply import PollSchedule, sync
    from hdsctl.tags.report import tag_states

    desired = definitions_of(props["extended_query_tags"])
    access_wait = float(props.get("access_wait_seconds", ACCESS_WAIT_SECONDS))
    reindex_timeout = float(props.get("timeout_seconds", REINDEX_TIMEOUT_SECONDS))
    deadline = time.monotonic() + access_wait
    retry_every = float(props.get("access_retry_seconds", ACCESS_RETRY_SECONDS))
    with DicomClient(props["url"], trusted_hosts=tuple(props.get("trusted_hosts") or ()),
                     budget=Budget.until(access_wait + reindex_timeout)) as client:
        while True:
            try:
                for path in retired:
                    client.delete_tag(path)
                outcome = sync(client, desired, timeout=reindex_timeout,
                               schedule=PollSchedule(first=float(props.get("poll_seconds", 1.0))))
                break
            except AccessDenied:
                if time.monotonic() + retry_every > deadline:
                    raise
                pulumi.log.info(f"{props['url']}: access denied, waiting for the role assignment "
                                "to reach the DICOM service")
                time.sleep(retry_every)
        states = tag_states(desired, outcome.observed, client)
    problems = [f"{s.desired.path} ({s.desired.keyword or s.desired.private_creator}): {s.problem}"
                for s in states if s.problem]
    problems += [f"{b.path}: {b.reason}" for b in outcome.final_plan.blocked]
    problems += [f"reindex {op.id} {op.status}" for op in outcome.failed_operations]
    if problems:
        raise RuntimeError("extended query tags did not converge:\n  " + "\n  ".join(problems)
                           + "\nSee `hdsctl tags status` for the errors of each tag.")
    return {s.desired.path: {"status": s.status, "query_enabled": s.observed.query_enabled}
            for s in states}


class ExtendedQueryTagsProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        state = reconcile(props, retired=[])
        return CreateResult(id_=f"{props['url'].rstrip('/')}/extendedquerytags",
                            outs={**props, "state": state})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = ["url"] if olds.get("url") != news.get("url") else []
        changed = olds.get("extended_query_tags") != news.get("extended_query_tags")
        return DiffResult(changes=bool(replaces) or changed, replaces=replaces,
                          delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        declared_before = set(olds.get("extended_query_tags") or {})
        retired = sorted(declared_before - set(news.get("extended_query_tags") or {}))
        return UpdateResult(outs={**news, "state": reconcile(news, retired)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        from hdsctl.dicom.client import DicomClient

        with DicomClient(props["url"], trusted_hosts=tuple(props.get("trusted_hosts") or ())) as client:
            observed = {tag.path: tag for tag in client.list_tags()}
        # What the service holds for the declared paths, so a refresh shows drift as a diff.
        tags = {
            path: {"keyword": value["keyword"], "vr": observed[path].vr, "level": observed[path].level,
                   "private_creator": observed[path].private_creator or "",
                   "query_enabled": observed[path].query_enabled}
            for path, value in (props.get("extended_query_tags") or {}).items() if path in observed
        }
        return ReadResult(id_=id_, outs={**props, "extended_query_tags": tags})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


class ExtendedQueryTags(pulumi.dynamic.Resource, module="hdsctl", name="ExtendedQueryTags"):
    """The declared extended query tags of one DICOM service, reconciled on every deployment."""

    state: pulumi.Output[dict]

    def __init__(self, name: str, *, url: pulumi.Input[str], tags: list[TagDefinition],
                 trusted_hosts: list[str] | None = None, opts: pulumi.ResourceOptions | None = None):
        timeouts = pulumi.ResourceOptions(custom_timeouts=pulumi.CustomTimeouts(
            create=RESOURCE_TIMEOUT, update=RESOURCE_TIMEOUT))
        super().__init__(
            ExtendedQueryTagsProvider(), name,
            {"url": url, "extended_query_tags": tags_input(tags), "trusted_hosts": trusted_hosts or [],
             "state": None},
            pulumi.ResourceOptions.merge(timeouts, opts),
        )
