"""The ExtendedQueryTags dynamic resource: its provider against the emulator, called
directly and through Pulumi's dynamic provider servicer (which proves it pickles)."""

from __future__ import annotations

import pytest
from support.pulumi_servicer import create_through_servicer

from hdsctl.components.extended_query_tags import ExtendedQueryTagsProvider, tags_input
from hdsctl.dicomtags import check_tag
from hdsctl.emulator.server import Emulator
from hdsctl.emulator.store import Knobs

DECLARED = [check_tag("BodyPartExamined", "Series"), check_tag("StationName", "Series")]


@pytest.fixture
def emulator():
    with Emulator(instances=200, knobs=Knobs(instances_per_second=50_000)) as emu:
        yield emu


def props(emu, declared=DECLARED, **extra):
    return {"url": emu.url, "extended_query_tags": tags_input(declared), "poll_seconds": 0.02,
            "access_retry_seconds": 0.05, **extra}


def test_create_adds_the_declared_tags(emulator):
    result = ExtendedQueryTagsProvider().create(props(emulator))
    assert result.id == f"{emulator.url}/extendedquerytags"
    assert result.outs["state"] == {"00180015": {"status": "ready", "query_enabled": True},
                                    "00081010": {"status": "ready", "query_enabled": True}}
    assert len(emulator.store.operations) == 1


def test_diff_shows_tag_changes_and_replaces_on_a_new_url(emulator):
    provider = ExtendedQueryTagsProvider()
    old = props(emulator)
    assert provider.diff("id", old, props(emulator)).changes is False
    moved = props(emulator, [check_tag("BodyPartExamined", "Study"), DECLARED[1]])
    changed = provider.diff("id", old, moved)
    assert changed.changes and changed.replaces == []
    assert provider.diff("id", old, {**old, "url": "http://127.0.0.1:1"}).replaces == ["url"]


def test_update_removes_only_tags_it_declared_before(emulator):
    provider = ExtendedQueryTagsProvider()
    provider.create(props(emulator))
    from hdsctl.dicom.client import DicomClient

    with DicomClient(emulator.url) as client:
        client.add_tags([check_tag("Manufacturer", "Series")])  # someone else's tag
    emulator.store.wait_idle()
    provider.update("id", props(emulator), props(emulator, DECLARED[:1]))
    assert set(emulator.store.tags) == {"00180015", "00080070"}


def test_a_failing_tag_fails_the_deployment_with_the_reason(emulator):
    emulator.store.mark_bad_values("BodyPartExamined", 2)
    with pytest.raises(RuntimeError, match=r"00180015 \(BodyPartExamined\): query disabled by 2"):
        ExtendedQueryTagsProvider().create(props(emulator))


def test_access_denied_while_the_role_assignment_propagates_is_waited_out(emulator):
    emulator.knobs.deny_next = 2
    result = ExtendedQueryTagsProvider().create(props(emulator))
    assert all(state["status"] == "ready" for state in result.outs["state"].values())


def test_access_denied_for_too_long_fails(emulator):
    from hdsctl.dicom.errors import AccessDenied

    emulator.knobs.deny_next = 100
    with pytest.raises(AccessDenied, match="needs DICOM Data Owner"):
        ExtendedQueryTagsProvider().create(props(emulator, access_wait_seconds=0.2))


def test_read_reports_what_the_service_holds(emulator):
    provider = ExtendedQueryTagsProvider()
    provider.create(props(emulator))
    emulator.store.tags["00180015"].query_enabled = False
    read = provider.read("id", props(emulator))
    assert read.outs["extended_query_tags"]["00180015"]["query_enabled"] is False
    assert provider.diff("id", read.outs, props(emulator)).changes


def test_through_pulumis_dynamic_provider_servicer(emulator):
    _, outs = create_through_servicer(
        ExtendedQueryTagsProvider(), props(emulator),
        "urn:pulumi:local::hdsctl::pulumi-python:dynamic/hdsctl:ExtendedQueryTags::radiology-tags")
    assert outs["state"]["00081010"]["status"] == "ready"
    assert set(emulator.store.tags) == {"00180015", "00081010"}
