"""Shared helpers: stack files written from Python data, and the CLI run in-process."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
STACKS = REPO / "stacks"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROGRAM = REPO / "infra" / "__main__.py"


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.fixture(autouse=True)
def no_ambient_azure_credentials(monkeypatch):
    """DefaultAzureCredential would look for a managed identity on the network and for an
    Azure CLI login: tests get only the environment's credential (none), so "no credential"
    is a quick, offline answer."""
    import azure.identity
    from azure.identity import EnvironmentCredential

    for name in ("HDSCTL_ACCESS_TOKEN", "HDSCTL_DICOM_TOKEN", "HDSCTL_ARM_TOKEN", "HDSCTL_GRAPH_TOKEN",
                 "HDSCTL_STORAGE_TOKEN",
                 "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda **_: EnvironmentCredential())


@pytest.fixture
def write_stack(tmp_path):
    """Write `{'config': {...}}` as stacks/Pulumi.<name>.yaml under tmp_path; return its path."""

    def write(name: str, document: dict) -> Path:
        folder = tmp_path / "stacks"
        folder.mkdir(exist_ok=True)
        path = folder / f"Pulumi.{name}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    return write


@pytest.fixture
def max_document() -> dict:
    return copy.deepcopy(load_yaml(FIXTURES / "Pulumi.max.yaml"))


@pytest.fixture
def dev_document() -> dict:
    return copy.deepcopy(load_yaml(STACKS / "Pulumi.dev.yaml"))


@pytest.fixture
def run_cli(capsys):
    """Run `hdsctl ARGS` in-process; return (exit code, stdout, stderr)."""
    from hdsctl.cli import main

    def run(*args: str):
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def journaled(journal: Path, *statuses: str) -> int:
    """Files an upload's journal records (with one of `statuses`, if given): read while the
    upload runs; 0 before the journal exists."""
    import sqlite3

    where = f" where status in ({', '.join('?' * len(statuses))})" if statuses else ""
    try:
        db = sqlite3.connect(journal)
        try:
            return db.execute(f"select count(*) from files{where}", statuses).fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def until_journaled(journal: Path, process, *statuses: str, seconds: float = 60) -> None:
    """Wait until the running upload `process` has journaled a file, or has ended."""
    import time

    deadline = time.monotonic() + seconds
    while journaled(journal, *statuses) == 0 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


PROD_DATA_LAKE_LINE = "        fileSystemName: dicom\n"
PROD_INDEXING = ("        indexing: {queue: storage-events, "
                 "deadLetter: {container: storage-event-dead-letters}}\n")


def index_prod_like_staging(folder: Path) -> None:
    """Shipped staging indexes its Data Lake and shipped prod does not yet (a change waiting for
    promotion): give a copy of prod the same, for tests that start from equal promotable parts."""
    prod = folder / "Pulumi.prod.yaml"
    text = prod.read_text()
    assert PROD_DATA_LAKE_LINE in text
    prod.write_text(text.replace(PROD_DATA_LAKE_LINE, PROD_DATA_LAKE_LINE + PROD_INDEXING, 1))


@functools.cache
def _shipped_plan(stack: str):
    from hdsctl.preview import run_preview

    return run_preview(STACKS / f"Pulumi.{stack}.yaml", PROGRAM)


def shipped_plan(stack: str):
    """The offline plan of a shipped stack, previewed once per test process; a copy each time,
    so a test that edits it changes no other test's plan."""
    return copy.deepcopy(_shipped_plan(stack))


@pytest.fixture(scope="session")
def shared_dicom():
    """The Orthanc-backed local DICOM service, started once per test session (per worker)."""
    from hdsctl.emulator.orthanc import OrthancEngine
    from hdsctl.emulator.process import EngineUnavailable
    from hdsctl.emulator.server import Emulator
    from hdsctl.emulator.store import Knobs

    try:
        emulator = Emulator(engine=OrthancEngine(), knobs=Knobs(instances_per_second=50_000)).start()
    except EngineUnavailable as err:
        pytest.skip(f"needs the local DICOM engine: {err}")
    yield emulator
    emulator.stop()



@pytest.fixture(scope="session")
def shared_fhir_engine():
    """Medplum's FHIR engine, started once per test session (per worker); each test's front empties it."""
    from hdsctl.emulator.medplum import MedplumEngine
    from hdsctl.emulator.process import EngineUnavailable

    try:
        engine = MedplumEngine().start()
    except EngineUnavailable as err:
        pytest.skip(f"needs the local FHIR engine: {err}")
    yield engine
    engine.stop()


@pytest.fixture(scope="session")
def shared_events():
    """Azurite and the Orthanc-backed local DICOM service delivering the local stack's events
    into it and indexing what is written into its Data Lake, started once per test session (per
    worker)."""
    from hdsctl.emulator.azurite import Azurite
    from hdsctl.emulator.events import EventPublisher, routes_of
    from hdsctl.emulator.indexer import LocalIndexer, indexing_of
    from hdsctl.emulator.orthanc import OrthancEngine
    from hdsctl.emulator.process import EngineUnavailable
    from hdsctl.emulator.server import Emulator
    from hdsctl.environment.load import load_environment

    env = load_environment(STACKS / "Pulumi.local.yaml")
    routes, _ = routes_of(env, "radiology")
    try:
        storage = Azurite().start()
    except EngineUnavailable as err:
        pytest.skip(f"needs Azurite: {err}")
    try:
        emulator = Emulator(engine=OrthancEngine())
        emulator.events = EventPublisher(storage.connection_string, routes, emulator.url.split("://", 1)[1],
                                         env.spec.events.dead_letter.container)
        emulator.start()
    except EngineUnavailable as err:
        storage.stop()
        pytest.skip(f"needs the local DICOM engine: {err}")
    indexer = LocalIndexer(storage.connection_string, emulator.front, base_url=f"{emulator.url}/v2",
                           **indexing_of(env, "radiology")).start()
    emulator.indexer = indexer  # tests hold it back or deny its deliveries, as they turn the service's knobs
    yield emulator, storage
    indexer.stop()
    emulator.stop()
    storage.stop()
