"""A migration cut into shards by study: workers with `--shard I/N` share the archive without
overlap or gaps, each with its own journal, and `--status` merges their journals into one answer."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import STACKS, journaled, load_yaml, until_journaled

from hdsctl.dicom.journal import Journal, JournalRefused
from hdsctl.dicom.shards import Shard, shard_of
from hdsctl.dicom.synthetic import synthetic_study
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK


@pytest.fixture
def stack(write_stack):
    return write_stack("local", load_yaml(STACKS / "Pulumi.local.yaml"))


def archive(folder, studies: int = 6):
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for number in range(studies):
        study = synthetic_study(instances_per_series=1, size=16)
        for index, instance in enumerate(study.instances):
            (folder / f"s{number}-{index}.dcm").write_bytes(instance.data)
        made.append(study)
    return made


def upload(run_cli, stack, url, folder, *extra):
    code, out, err = run_cli("--stacks-dir", str(stack.parent), "dicom", "upload", str(folder), "--stack",
                             "local", "--url", url, "--json", *extra)
    return code, (json.loads(out) if out.strip().startswith("{") else out), err


@pytest.mark.parametrize("given", ["3/2", "0/0", "2/2", "a/4", "1/10001", "-1/3"])
def test_a_shard_that_is_not_one_is_a_usage_error(run_cli, stack, given, tmp_path, capsys):
    with pytest.raises(SystemExit) as ended:
        run_cli("--stacks-dir", str(stack.parent), "dicom", "upload", str(tmp_path), "--stack", "local",
                "--shard", given)
    err = capsys.readouterr().err
    assert ended.value.code == EXIT_BAD_INPUT and "--shard" in err and "Traceback" not in err


def test_the_cut_is_the_same_on_every_machine_and_python():
    uids = [f"1.2.826.0.1.3680043.8.498.{n}" for n in range(50)]
    code = ("import sys, json; from hdsctl.dicom.shards import shard_of; "
            "print(json.dumps([shard_of(u, 7) for u in sys.argv[1:]]))")
    seen = {tuple(json.loads(subprocess.run([sys.executable, "-c", code, *uids], capture_output=True, text=True,
                                            env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout))
            for seed in ("1", "2", "random")}
    assert seen == {tuple(shard_of(u, 7) for u in uids)}
    assert len(set(next(iter(seen)))) > 3  # the studies spread over the shards


def test_workers_share_the_archive_without_overlap_or_gap(run_cli, stack, shared_dicom, tmp_path):
    studies = archive(tmp_path / "archive")
    files = {f"s{n}-{i}.dcm" for n, study in enumerate(studies) for i in range(len(study.instances))}
    journals = [tmp_path / f"shard{i}.sqlite" for i in range(3)]
    stored: list[str] = []
    for index, journal in enumerate(journals):
        code, report, err = upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", "--shard",
                                   f"{index}/3", "--journal", str(journal))
        assert code == EXIT_OK, err
        assert report["counts"]["stored"] + report["counts"]["otherShards"] == len(files)
        stored += [k for k in _stored_keys(journal)]
    assert sorted(stored) == sorted(str(tmp_path / "archive" / f) for f in files)  # each file exactly once
    code, out, _ = run_cli("dicom", "upload", "--status", *map(str, journals), "--json")
    merged = json.loads(out)
    assert code == EXIT_OK and merged["ok"] and merged["counts"]["stored"] == len(files)
    code, out, _ = run_cli("dicom", "upload", "--status", *map(str, journals[:2]), "--json")
    assert code == EXIT_FAILED and json.loads(out)["missingShards"] == [2]
    code, out, _ = run_cli("dicom", "upload", "--status", *map(str, journals[:2]))
    assert "missing: 2" in out and "NOT OK" in out


def _stored_keys(journal) -> list[str]:
    import sqlite3

    db = sqlite3.connect(journal)
    try:
        return [row[0] for row in db.execute("select key from files where status = 'stored'")]
    finally:
        db.close()


@pytest.mark.parametrize("studies", [1, 2])  # with one study, the shard may hold the whole archive
def test_a_journal_keeps_its_shard(run_cli, stack, shared_dicom, tmp_path, studies):
    made = archive(tmp_path / "archive", studies=studies)
    mine = shard_of(made[0].study_uid, 2)
    journal = tmp_path / "j.sqlite"
    code, _, err = upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", "--shard", f"{mine}/2",
                          "--journal", str(journal))
    assert code == EXIT_OK, err
    for other in (["--shard", f"{1 - mine}/2"], ["--shard", f"{mine}/3"], []):
        code, _, err = upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", *other, "--journal",
                              str(journal))
        assert code == EXIT_BAD_INPUT and f"is the journal of shard {mine}/2" in err


def test_two_workers_on_one_journal_at_once_are_refused(tmp_path):
    path = tmp_path / "j.sqlite"
    first = Journal(path, "http://127.0.0.1:1", Shard(1, 4))
    try:
        with pytest.raises(JournalRefused, match="in use by another upload") as refused:
            Journal(path, "http://127.0.0.1:1", Shard(1, 4))
        assert refused.value.exit_code == EXIT_FAILED  # busy now, not bad input: a Job tries it again
    finally:
        first.close()
    Journal(path, "http://127.0.0.1:1", Shard(1, 4)).close()  # free again once the first is done


def _mounted(tmp_path, monkeypatch, kind: str):
    """A mount table in which `tmp_path/share dir` is a share of type `kind`."""
    from hdsctl import filesystems

    share = tmp_path / "share dir"
    share.mkdir()
    table = tmp_path / "mounts"
    escaped = str(share).replace(" ", r"\040")  # as the kernel writes a space in a mount point
    table.write_text(f"/dev/sda1 / ext4 rw 0 0\nserver:/exports {escaped} {kind} rw 0 0\n")
    monkeypatch.setattr(filesystems, "MOUNT_TABLE", table)
    return share


def _journal_mode(path) -> str:
    import sqlite3

    with sqlite3.connect(path) as db:
        return db.execute("pragma journal_mode").fetchone()[0]


@pytest.mark.parametrize("kind", ["nfs4", "cifs"])
def test_a_journal_on_a_network_share_keeps_a_rollback_journal(tmp_path, monkeypatch, kind):
    """A Job's journals sit on a shared claim (Azure Files): SQLite's write-ahead log needs
    memory shared through the file system, which a network share does not give."""
    share = _mounted(tmp_path, monkeypatch, kind)
    Journal(share / "j.sqlite", "http://127.0.0.1:1", Shard(0, 2)).close()
    Journal(tmp_path / "local.sqlite", "http://127.0.0.1:1", Shard(0, 2)).close()
    assert _journal_mode(share / "j.sqlite") == "delete"
    assert _journal_mode(tmp_path / "local.sqlite") == "wal"


def test_a_journal_on_blobfuse_is_refused_with_a_message(run_cli, stack, tmp_path, monkeypatch):
    share = _mounted(tmp_path, monkeypatch, "fuse.blobfuse2")
    archive(tmp_path / "archive", studies=1)
    code, _, err = upload(run_cli, stack, "http://127.0.0.1:1", tmp_path / "archive", "--journal",
                          str(share / "j.sqlite"))
    assert code == EXIT_BAD_INPUT and "blobfuse" in err and "Traceback" not in err
    assert not (share / "j.sqlite").exists()


def test_a_shard_whose_run_stopped_early_is_unfinished_until_run_again(run_cli, stack, shared_dicom, tmp_path):
    archive(tmp_path / "archive", studies=4)
    journal = tmp_path / "shard-0-of-1.sqlite"
    shared_dicom.knobs.fail_dependency_next = 1  # a 424: the run stops, the rest is not sent
    code, report, _ = upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", "--shard", "0/1",
                             "--journal", str(journal), "--concurrency", "1", "--batch-mb", "0.01")
    assert code == EXIT_FAILED and report["stopped"] and report["counts"]["pending"] > 0
    code, out, _ = run_cli("dicom", "upload", "--status", str(journal), "--json")
    merged = json.loads(out)
    assert code == EXIT_FAILED and "not sent" in merged["unfinished"][0]["why"]
    code, out, _ = run_cli("dicom", "upload", "--status", str(journal))
    assert "Unfinished" in out and "NOT OK" in out
    code, _, err = upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", "--shard", "0/1",
                          "--journal", str(journal))
    assert code == EXIT_OK, err
    code, out, _ = run_cli("dicom", "upload", "--status", str(journal), "--json")
    assert code == EXIT_OK and json.loads(out)["unfinished"] == []


def test_a_source_without_dicom_files_is_not_a_finished_shard(run_cli, stack, shared_dicom, tmp_path):
    """An archive volume that is not mounted looks like an empty folder: no pod may call that done."""
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "README.txt").write_text("not an image")
    journal = tmp_path / "shard-0-of-2.sqlite"
    code, out, _ = upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", "--shard", "0/2",
                          "--journal", str(journal))
    assert code == EXIT_FAILED and out["foundNoDicom"] and not out["ok"]
    code, out, _ = upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", "--dry-run")
    assert code == EXIT_FAILED
    code, out, _ = run_cli("--stacks-dir", str(stack.parent), "dicom", "upload", str(tmp_path / "archive"),
                           "--stack", "local", "--url", shared_dicom.url)
    assert code == EXIT_FAILED and "no DICOM file under the paths given (1 other file(s) looked at)" in out
    code, out, _ = run_cli("dicom", "upload", "--status", str(journal), "--json")
    assert code == EXIT_FAILED and "no DICOM file" in json.loads(out)["unfinished"][0]["why"]
    made = archive(tmp_path / "archive", studies=1)  # one study: shard 0 or shard 1 holds it
    other = 1 - shard_of(made[0].study_uid, 2)
    code, out, _ = upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", "--shard", f"{other}/2",
                          "--journal", str(tmp_path / f"shard-{other}-of-2.sqlite"))
    assert code == EXIT_OK and out["counts"]["otherShards"] > 0  # nothing of its own, but the archive is there


def test_status_refuses_journals_of_different_cuts(run_cli, tmp_path):
    for name, shard in (("a", Shard(0, 2)), ("b", Shard(0, 3))):
        Journal(tmp_path / f"{name}.sqlite", "http://127.0.0.1:1", shard).close()
    code, _, err = run_cli("dicom", "upload", "--status", str(tmp_path / "a.sqlite"),
                           str(tmp_path / "b.sqlite"))
    assert code == EXIT_BAD_INPUT and "cut the archive into 2" in err


def test_workers_in_parallel_and_a_killed_worker_restarted_finish_the_archive_once(stack, shared_dicom,
                                                                                     tmp_path):
    """Two worker processes at once; the first is killed mid-run (SIGKILL, as a pod is) and run
    again with the same index: every file ends stored exactly once, and --status says so."""
    import signal

    from hdsctl.dicom.client import DicomClient

    studies = archive(tmp_path / "archive", studies=10)
    total = sum(len(s.instances) for s in studies)

    def worker(index: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "hdsctl.cli", "--stacks-dir", str(stack.parent), "dicom", "upload",
             str(tmp_path / "archive"), "--stack", "local", "--url", shared_dicom.url, "--shard", f"{index}/2",
             "--journal", str(tmp_path / f"shard{index}.sqlite"), "--batch-mb", "0.01", "--concurrency", "1",
             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    first_journal = tmp_path / "shard0.sqlite"
    shared_dicom.knobs.latency_ms = 150  # each request slow enough to kill the worker between two
    try:
        first, second = worker(0), worker(1)
        until_journaled(first_journal, first, "stored", "already")
        killed = first.poll() is None
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        assert second.wait(120) == 0, second.stderr.read()[-2000:]
    finally:
        shared_dicom.knobs.latency_ms = 0
    assert killed, "the first worker ended before it could be killed"
    mine = sum(len(s.instances) for s in studies if shard_of(s.study_uid, 2) == 0)
    assert journaled(first_journal, "stored", "already") < mine  # it was cut short
    cut_short = subprocess.run([sys.executable, "-m", "hdsctl.cli", "dicom", "upload", "--status",
                                str(tmp_path / "shard0.sqlite"), str(tmp_path / "shard1.sqlite"), "--json"],
                               capture_output=True, text=True)
    merged = json.loads(cut_short.stdout)  # all it recorded is stored, but not all of its files are recorded
    assert cut_short.returncode == EXIT_FAILED and not merged["ok"] and not merged["failures"]
    assert [u["journal"] for u in merged["unfinished"]] == [str(tmp_path / "shard0.sqlite")]
    again = worker(0)
    assert again.wait(120) == 0, again.stderr.read()[-2000:]
    with DicomClient(shared_dicom.url) as client:
        held = sum(len(client.search("instances", study=s.study_uid)) for s in studies)
    assert held == total  # every instance once
    code = subprocess.run([sys.executable, "-m", "hdsctl.cli", "dicom", "upload", "--status",
                           str(tmp_path / "shard0.sqlite"), str(tmp_path / "shard1.sqlite"), "--json"],
                          capture_output=True, text=True)
    merged = json.loads(code.stdout)
    assert code.returncode == 0 and merged["ok"]
    assert merged["counts"].get("stored", 0) + merged["counts"].get("already", 0) == total


def test_a_worker_ended_by_sigterm_reports_what_it_did_and_its_shard_stays_unfinished(stack, shared_dicom,
                                                                                        tmp_path):
    """Kubernetes ends a pod with SIGTERM (a drain, a preemption): the run stops as on Ctrl-C,
    with what was answered journaled and a report, instead of vanishing unreported."""
    import signal

    archive(tmp_path / "archive", studies=10)
    journal = tmp_path / "shard-0-of-1.sqlite"

    shared_dicom.knobs.latency_ms = 150
    try:
        worker = subprocess.Popen(
            [sys.executable, "-m", "hdsctl.cli", "--stacks-dir", str(stack.parent), "dicom", "upload",
             str(tmp_path / "archive"), "--stack", "local", "--url", shared_dicom.url, "--shard", "0/1",
             "--journal", str(journal), "--batch-mb", "0.01", "--concurrency", "1", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        until_journaled(journal, worker, "stored")
        assert worker.poll() is None, "the worker ended before it could be stopped"
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=30)
    finally:
        shared_dicom.knobs.latency_ms = 0
    report = json.loads(out)
    assert worker.returncode == EXIT_FAILED and "Traceback" not in err
    assert report["stopped"].startswith("terminated (SIGTERM)") and report["counts"]["pending"] > 0
    assert report["counts"]["stored"] == journaled(journal, "stored") > 0
    status = subprocess.run([sys.executable, "-m", "hdsctl.cli", "dicom", "upload", "--status", str(journal),
                             "--json"], capture_output=True, text=True)
    assert status.returncode == EXIT_FAILED and "SIGTERM" in json.loads(status.stdout)["unfinished"][0]["why"]


def test_a_new_cut_takes_what_the_old_cut_recorded_and_sends_nothing_twice(run_cli, stack, shared_dicom,
                                                                           tmp_path):
    """Cut in two, shard 0 run to the end and shard 1 never started; then cut in three: each new
    worker takes shard 0's records of its studies and sends only the rest (old shard 1's files),
    and --status over the new journals says every file is stored."""
    studies = archive(tmp_path / "archive", studies=9)
    old = tmp_path / "old"
    old.mkdir()
    code, report, err = upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", "--shard", "0/2",
                               "--journal", str(old / "shard-0-of-2.sqlite"))
    assert code == EXIT_OK, err
    sent = 0
    for index in range(3):
        code, report, err = upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", "--shard",
                                   f"{index}/3", "--journal", str(tmp_path / f"shard-{index}-of-3.sqlite"),
                                   "--reshard", str(old / "shard-*-of-2.sqlite"))
        assert code == EXIT_OK, err
        mine = [s for s in studies if shard_of(s.study_uid, 3) == index]
        from_old = sum(len(s.instances) for s in mine if shard_of(s.study_uid, 2) == 0)
        assert report["counts"]["doneInEarlierRuns"] == from_old  # taken over, not sent
        assert report["counts"]["stored"] == sum(len(s.instances) for s in mine) - from_old
        assert "the old cut into 2 has no journal for shard(s) 1" in err
        sent += report["counts"]["stored"]
    assert sent == sum(len(s.instances) for s in studies if shard_of(s.study_uid, 2) == 1)
    code, out, _ = run_cli("dicom", "upload", "--status", *(str(tmp_path / f"shard-{i}-of-3.sqlite")
                                                              for i in range(3)), "--json")
    status = json.loads(out)
    assert code == EXIT_OK and status["ok"] and status["counts"]["stored"] == sum(len(s.instances)
                                                                                    for s in studies)


def test_a_reshard_that_could_send_twice_is_refused(run_cli, stack, shared_dicom, tmp_path):
    archive(tmp_path / "archive", studies=2)
    old = tmp_path / "shard-0-of-2.sqlite"
    code, _, err = upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", "--shard", "0/2",
                          "--journal", str(old))
    assert code == EXIT_OK, err

    def reshard(journal, *olds):
        return upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", "--shard", "0/3", "--journal",
                      str(journal), "--reshard", *map(str, olds))

    code, _, err = upload(run_cli, stack, shared_dicom.url, tmp_path / "archive", "--shard", "0/3",
                          "--journal", str(old))
    assert code == EXIT_BAD_INPUT and "--reshard OLD_JOURNAL" in err  # the count changed
    code, _, err = reshard(old, old)
    assert code == EXIT_BAD_INPUT and "not of shard 0/3" in err
    code, _, err = reshard(tmp_path / "new.sqlite", tmp_path / "none-*.sqlite")
    assert code == EXIT_BAD_INPUT and "no journal matches" in err
    Journal(tmp_path / "other.sqlite", "http://127.0.0.1:1").close()
    code, _, err = reshard(tmp_path / "new.sqlite", tmp_path / "other.sqlite")
    assert code == EXIT_BAD_INPUT and "records an upload to http://127.0.0.1:1" in err
    running = Journal(old, shared_dicom.url, Shard(0, 2))  # a worker of the old cut still runs
    try:
        code, _, err = reshard(tmp_path / "new.sqlite", old)
    finally:
        running.close()
    assert code == EXIT_BAD_INPUT and "in use by a worker of the old cut" in err
    code, _, err = run_cli("--stacks-dir", str(stack.parent), "dicom", "upload", str(tmp_path / "archive"),
                           "--stack", "local", "--reshard", str(old))
    assert code == EXIT_BAD_INPUT and "give --shard J/M and --journal NEW" in err


def test_a_source_that_changes_during_the_run_is_reported_and_settled_by_the_next_run(stack, shared_dicom,
                                                                                       tmp_path, run_cli):
    """While a worker runs, a file not sent yet is removed, another is written over and a new one
    appears: the run fails the first two with the reason (nothing claimed stored); the next run
    stores the changed and the new file and records the removed one as gone, and --status agrees."""

    studies = archive(tmp_path / "archive", studies=6)
    files = sorted((tmp_path / "archive").iterdir())
    removed, rewritten, added = files[-1], files[-2], tmp_path / "archive" / "z-new.dcm"
    journal = tmp_path / "shard-0-of-1.sqlite"
    command = [sys.executable, "-m", "hdsctl.cli", "--stacks-dir", str(stack.parent), "dicom", "upload",
               str(tmp_path / "archive"), "--stack", "local", "--url", shared_dicom.url, "--shard", "0/1",
               "--journal", str(journal), "--batch-mb", "0.001", "--concurrency", "1", "--json"]

    shared_dicom.knobs.latency_ms = 150
    try:
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        until_journaled(journal, first)
        assert first.poll() is None, "the run ended before the source could change"
        removed.unlink()
        rewritten.write_bytes(synthetic_study(instances_per_series=1, size=16).instances[0].data)
        added.write_bytes(synthetic_study(instances_per_series=1, size=16).instances[0].data)
        out, err = first.communicate(timeout=120)
    finally:
        shared_dicom.knobs.latency_ms = 0
    report = json.loads(out)
    assert first.returncode == EXIT_FAILED, err
    failed = {f["file"]: f for f in report["failures"]}
    assert set(failed) == {str(removed), str(rewritten)}
    assert all(f["reason"] == "changed" for f in failed.values())
    assert report["counts"]["stored"] == sum(len(s.instances) for s in studies) - 2
    again = subprocess.run(command, capture_output=True, text=True, timeout=120)
    report = json.loads(again.stdout)
    assert again.returncode == EXIT_OK, again.stderr
    assert report["counts"]["stored"] == 2 and report["counts"]["goneFromSource"] == 1  # rewritten + added
    code, out, _ = run_cli("dicom", "upload", "--status", str(journal), "--json")
    status = json.loads(out)
    assert code == EXIT_OK and status["ok"] and [g["file"] for g in status["gone"]] == [str(removed)]
