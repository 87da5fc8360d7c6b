"""`hdsctl dicom expire`: retention by rule against the local DICOM service (Orthanc)."""

from __future__ import annotations

import datetime
import json
import sqlite3

import pytest
from conftest import STACKS

from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.expire import Age, ExpiryRefused, check_retention, find_candidates, parse_age, study_date
from hdsctl.dicom.expiry_journal import ExpiryJournal
from hdsctl.dicom.synthetic import synthetic_study
from hdsctl.emulator.server import Emulator
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_OK

TODAY = datetime.date.today()


def years_ago(years: int) -> datetime.date:
    return Age(years=years).cutoff(TODAY) - datetime.timedelta(days=1)


def store(url: str, date: datetime.date):
    study = synthetic_study(instances_per_series=1, size=16, study_date=date)
    with DicomClient(url) as client:
        client.store([i.data for i in study.instances])
    return study


@pytest.fixture(autouse=True)
def journals_in_tmp(tmp_path, monkeypatch):
    """The default journal is written where the command runs: here, a test's own folder."""
    monkeypatch.chdir(tmp_path)


def expire(run_cli, url, *extra):
    return run_cli("--stacks-dir", str(STACKS), "dicom", "expire", "--stack", "local", "--url", url, *extra)


def store_dated(url: str, raw: str):
    """A study whose StudyDate is `raw` exactly (empty or malformed), stored now."""
    from io import BytesIO

    import pydicom

    study = synthetic_study(instances_per_series=1, size=16)
    parts = []
    for instance in study.instances:
        dataset = pydicom.dcmread(BytesIO(instance.data))
        dataset.StudyDate = raw
        buffer = BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        parts.append(buffer.getvalue())
    with DicomClient(url) as client:
        client.store(parts)
    return study


def exists(url: str, study: str) -> bool:
    with DicomClient(url) as client:
        return bool(client.search("studies", {"StudyInstanceUID": study}))


def test_a_duration_under_the_declared_minimum_is_refused_before_any_request(shared_dicom, run_cli):
    before = len(shared_dicom.data_requests())
    code, _, err = expire(run_cli, shared_dicom.url, "--older-than", "6mo", "--yes")
    assert code == EXIT_BAD_INPUT
    assert "shorter than the 1 years" in err and "retention.minimumYears" in err and "nothing was" in err
    assert len(shared_dicom.data_requests()) == before  # not even listed


def test_without_yes_nothing_is_deleted(shared_dicom, run_cli):
    old = store(shared_dicom.url, years_ago(3))
    code, out, err = expire(run_cli, shared_dicom.url, "--older-than", "2y", "--json")
    assert code == EXIT_OK, err
    report = json.loads(out)
    assert report["listedOnly"] and old.study_uid in {c["study"] for c in report["candidates"]}
    assert report["deleted"] == [] and exists(shared_dicom.url, old.study_uid)


def test_yes_deletes_what_is_past_retention_and_journals_it(shared_dicom, run_cli, tmp_path):
    old, recent = store(shared_dicom.url, years_ago(3)), store(shared_dicom.url, years_ago(1))
    journal = tmp_path / "expiry.sqlite"
    code, out, err = expire(run_cli, shared_dicom.url, "--older-than", "2y", "--yes", "--journal", str(journal))
    assert code == EXIT_OK, err
    assert "deleted" in out and old.study_uid in out and recent.study_uid not in out
    assert not exists(shared_dicom.url, old.study_uid) and exists(shared_dicom.url, recent.study_uid)
    rows = dict(sqlite3.connect(journal).execute("select study, status from studies").fetchall())
    assert rows[old.study_uid] == "deleted" and recent.study_uid not in rows


def test_modality_narrows_the_list(shared_dicom, run_cli):
    old = store(shared_dicom.url, years_ago(4))
    code, out, _ = expire(run_cli, shared_dicom.url, "--older-than", "3y", "--modality", "MR", "--json")
    assert code == EXIT_OK and old.study_uid not in {c["study"] for c in json.loads(out)["candidates"]}
    code, out, _ = expire(run_cli, shared_dicom.url, "--older-than", "3y", "--modality", "CT", "--json")
    assert old.study_uid in {c["study"] for c in json.loads(out)["candidates"]}


def test_an_interrupted_expiry_resumes(shared_dicom, run_cli, tmp_path):
    from hdsctl.dicom import expire as expiry

    studies = [store(shared_dicom.url, years_ago(5)) for _ in range(3)]
    journal_path = tmp_path / "expiry.sqlite"
    cutoff = Age(years=4).cutoff(TODAY)
    with DicomClient(shared_dicom.url) as client:
        journal = ExpiryJournal(journal_path, client.base_url)
        candidates = [c for c in find_candidates(client, journal, cutoff) if c.study in
                      {s.study_uid for s in studies}]

        def interrupt(candidate):
            raise KeyboardInterrupt  # Ctrl-C right after the first deletion was journaled

        with pytest.raises(KeyboardInterrupt):
            expiry.carry_out(client, candidates, cutoff, journal, expiry.ExpiryReport("", candidates),
                             interrupt)
        journal.close()
    first = candidates[0].study
    assert not exists(shared_dicom.url, first)
    assert all(exists(shared_dicom.url, c.study) for c in candidates[1:])
    code, out, err = expire(run_cli, shared_dicom.url, "--older-than", "4y", "--yes", "--journal",
                            str(journal_path), "--json")
    assert code == EXIT_OK, err
    assert {c.study for c in candidates[1:]} <= set(json.loads(out)["deleted"])
    assert not any(exists(shared_dicom.url, c.study) for c in candidates)
    rows = dict(sqlite3.connect(journal_path).execute("select study, status from studies").fetchall())
    assert all(rows[c.study] == "deleted" for c in candidates)


def test_a_study_without_a_date_is_as_old_as_its_first_storage(tmp_path):
    class Service:  # the change feed of a service that has held studies for years
        base_url = "https://x.dicom.azurehealthcareapis.com"

        def search(self, level, filters, limit=100, offset=0, includefield=()):
            if "StudyDate" in filters:
                return []
            dated = {"1.2": "20200101"}.get(filters["StudyInstanceUID"], "")
            return [{"0020000D": {"Value": [filters["StudyInstanceUID"]]},
                     **({"00080020": {"Value": [dated]}} if dated else {}), "00080061": {"Value": ["CR"]}}]

        def search_all(self, level, filters, **options):
            return self.search(level, filters)

        def change_feed(self, start, end_time=None):
            return [{"Sequence": 1, "Action": "Create", "StudyInstanceUid": "1.1", "SopInstanceUid": "1.1.1",
                     "Timestamp": "2012-03-04T05:06:07Z"},
                    {"Sequence": 2, "Action": "Create", "StudyInstanceUid": "1.2", "SopInstanceUid": "1.2.1",
                     "Timestamp": "2012-03-04T05:06:07Z"},
                    {"Sequence": 3, "Action": "Create", "StudyInstanceUid": "1.3", "SopInstanceUid": "1.3.1",
                     "Timestamp": "2012-03-04T05:06:07Z"},
                    # 1.3 was deleted and stored again lately: its data is new, whatever its UID
                    {"Sequence": 4, "Action": "Delete", "StudyInstanceUid": "1.3", "SopInstanceUid": "1.3.1",
                     "Timestamp": "2024-01-01T00:00:00Z"},
                    {"Sequence": 5, "Action": "Create", "StudyInstanceUid": "1.3", "SopInstanceUid": "1.3.1",
                     "Timestamp": "2024-01-02T00:00:00Z"}]

    journal = ExpiryJournal(tmp_path / "j.sqlite", Service.base_url)
    found = find_candidates(Service(), journal, datetime.date(2016, 1, 1))
    assert [(c.study, c.date, c.basis) for c in found] == [("1.1", "20120304", "stored")]


def test_only_dates_the_client_itself_reads_as_dates_count():
    assert study_date("20200115") == datetime.date(2020, 1, 15)
    for bad in ("", "2020", "20201301", "20200230", "2020-01-15", "99991231", None, "0000000x"):
        assert study_date(bad) is None, bad


def test_ages_and_the_minimum():
    assert parse_age("7y6mo") == Age(7, 6, 0) and parse_age("400d") == Age(days=400)
    for bad in ("", "ten years", "5x", "y", "2025y", "999999999d", "9999999y"):
        with pytest.raises(ValueError):
            parse_age(bad)
    assert Age(years=10).cutoff(datetime.date(2026, 2, 28)) == datetime.date(2016, 2, 28)
    assert Age(years=1).cutoff(datetime.date(2024, 2, 29)) == datetime.date(2023, 2, 28)
    with pytest.raises(ExpiryRefused, match="declares no retention"):
        check_retention(Age(years=20), None, TODAY, "service x")
    assert check_retention(Age(years=10), 10, TODAY, "x") == Age(years=10).cutoff(TODAY)
    with pytest.raises(ExpiryRefused):
        check_retention(Age(years=9, months=11), 10, TODAY, "x")


def test_a_journal_that_is_not_one_is_refused(shared_dicom, run_cli, tmp_path):
    store(shared_dicom.url, years_ago(6))
    code, _, err = expire(run_cli, shared_dicom.url, "--older-than", "5y", "--yes", "--journal",
                          str(STACKS / "Pulumi.local.yaml"))
    assert code == EXIT_BAD_INPUT and "Traceback" not in err
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a database, just notes\n" * 100)
    code, _, err = expire(run_cli, shared_dicom.url, "--older-than", "5y", "--yes", "--journal", str(text_file))
    assert code == EXIT_BAD_INPUT and "is not a usable expiry journal" in err


def test_an_empty_or_malformed_study_date_never_makes_a_study_old(shared_dicom, run_cli):
    """Finding 1: studies stored minutes ago with StudyDate '', '2020' or '20201301' were listed
    (and deleted with --yes) because the service's date range matched them."""
    fresh = [store_dated(shared_dicom.url, raw) for raw in ("", "2020", "20201301")]
    code, out, err = expire(run_cli, shared_dicom.url, "--older-than", "2y", "--yes", "--json")
    assert code == EXIT_OK, err
    report = json.loads(out)
    listed = {c["study"] for c in report["candidates"]}
    assert not listed & {s.study_uid for s in fresh}
    assert all(exists(shared_dicom.url, s.study_uid) for s in fresh)


def test_plan_out_then_apply_deletes_exactly_the_reviewed_plan(shared_dicom, run_cli, tmp_path):
    old, other = store(shared_dicom.url, years_ago(6)), store(shared_dicom.url, years_ago(6))
    plan_file = tmp_path / "expiry-plan.json"
    code, out, err = expire(run_cli, shared_dicom.url, "--older-than", "5y", "--plan-out", str(plan_file))
    assert code == EXIT_OK, err
    assert f"Plan written to {plan_file}" in out and exists(shared_dicom.url, old.study_uid)
    plan_body = json.loads(plan_file.read_text())
    planned = {item["study"]: item for item in plan_body["studies"]}
    assert planned[old.study_uid]["basis"] == "StudyDate"
    assert planned[old.study_uid]["instances"] == len(old.instances)
    assert "is before" in planned[old.study_uid]["why"]

    # The reviewer takes one study out of the plan: a plan changed by hand is refused whole...
    plan_body["studies"] = [item for item in plan_body["studies"] if item["study"] != other.study_uid]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(plan_body))
    code, _, err = expire(run_cli, shared_dicom.url, "--apply", str(edited))
    assert code == EXIT_BAD_INPUT and "changed after it was made" in err
    assert exists(shared_dicom.url, old.study_uid) and exists(shared_dicom.url, other.study_uid)

    # ...and a study stored after the plan is not deleted by it, though it is just as old.
    late = store(shared_dicom.url, years_ago(7))
    code, out, err = expire(run_cli, shared_dicom.url, "--apply", str(plan_file), "--json")
    assert code == EXIT_OK, err
    report = json.loads(out)
    assert old.study_uid in report["deleted"] and other.study_uid in report["deleted"]
    assert late.study_uid not in report["deleted"] and exists(shared_dicom.url, late.study_uid)
    assert not exists(shared_dicom.url, old.study_uid)


def test_apply_rechecks_each_study_and_skips_what_no_longer_holds(shared_dicom, run_cli, tmp_path):
    changed, kept = store(shared_dicom.url, years_ago(8)), store(shared_dicom.url, years_ago(8))
    plan_file = tmp_path / "plan.json"
    assert expire(run_cli, shared_dicom.url, "--older-than", "7y", "--plan-out", str(plan_file))[0] == EXIT_OK
    with DicomClient(shared_dicom.url) as client:  # a series added after the review
        client.store([i.data for i in synthetic_study(instances_per_series=1, size=16,
                                                      study_uid=changed.study_uid,
                                                      patient_id=changed.patient_id,
                                                      study_date=years_ago(8)).instances])
        client.delete(kept.study_uid)  # and one deleted by someone else
    code, out, err = expire(run_cli, shared_dicom.url, "--apply", str(plan_file), "--json")
    assert code == EXIT_OK, err
    report = json.loads(out)
    assert "plan again" in report["skipped"][changed.study_uid]
    assert report["skipped"][kept.study_uid] == "not on the service any more"
    assert exists(shared_dicom.url, changed.study_uid)


def test_a_plan_for_another_service_or_retention_is_refused(shared_dicom, run_cli, tmp_path, write_stack):
    import yaml

    store(shared_dicom.url, years_ago(9))
    plan_file = tmp_path / "plan.json"
    assert expire(run_cli, shared_dicom.url, "--older-than", "8y", "--plan-out", str(plan_file))[0] == EXIT_OK
    document = yaml.safe_load((STACKS / "Pulumi.local.yaml").read_text())
    document["config"]["hdsctl:dicomServices"][0]["retention"] = {"minimumYears": 9}
    stacks = write_stack("local", document).parent
    code, _, err = run_cli("--stacks-dir", str(stacks), "dicom", "expire", "--stack", "local", "--url",
                           shared_dicom.url, "--apply", str(plan_file))
    assert code == EXIT_BAD_INPUT and "retention.minimumYears is 9 now, 1 when the plan was made" in err
    with Emulator() as elsewhere:
        code, _, err = expire(run_cli, elsewhere.url, "--apply", str(plan_file))
    assert code == EXIT_BAD_INPUT and "the plan is for radiology of stack local at" in err
    code, _, err = expire(run_cli, shared_dicom.url, "--apply", str(plan_file), "--older-than", "8y")
    assert code == EXIT_BAD_INPUT and "--apply carries out the plan file as it is" in err


def test_the_journal_never_overrules_the_service(shared_dicom, run_cli, tmp_path):
    """Finding 2: a study deleted once, stored again and expired again was 'already gone'."""
    old = store(shared_dicom.url, years_ago(11))
    journal = tmp_path / "j.sqlite"
    assert expire(run_cli, shared_dicom.url, "--older-than", "10y", "--yes", "--journal", str(journal))[0] == 0
    assert not exists(shared_dicom.url, old.study_uid)
    with DicomClient(shared_dicom.url) as client:
        client.store([i.data for i in old.instances])
    code, out, err = expire(run_cli, shared_dicom.url, "--older-than", "10y", "--yes", "--journal",
                            str(journal), "--json")
    assert code == EXIT_OK, err
    assert old.study_uid in json.loads(out)["deleted"] and not exists(shared_dicom.url, old.study_uid)


def test_yes_deletes_the_list_it_printed_not_a_later_one(shared_dicom, run_cli, monkeypatch):
    """Finding 2: --yes listed again after printing and deleted that second list."""
    from hdsctl.dicom import expire as expiry

    first = store(shared_dicom.url, years_ago(12))
    listed = expiry.find_candidates
    calls = []

    def list_then_store(client, journal, cutoff, modality=None):
        found = listed(client, journal, cutoff, modality)
        calls.append(store(shared_dicom.url, years_ago(12)))  # appears after the list was made
        return found

    monkeypatch.setattr(expiry, "find_candidates", list_then_store)
    code, out, err = expire(run_cli, shared_dicom.url, "--older-than", "11y", "--yes")
    assert code == EXIT_OK, err
    assert first.study_uid in out.split("deleted", 1)[0]  # printed before acting
    assert len(calls) == 1 and exists(shared_dicom.url, calls[0].study_uid)
    assert f"deleted  {first.study_uid}" in out


def test_an_interrupted_delete_is_journaled_as_done_once_the_service_confirms(shared_dicom, tmp_path):
    """Finding 2: Ctrl-C while a DELETE was answered left the journal short of a deletion."""
    from hdsctl.dicom import expire as expiry

    old = store(shared_dicom.url, years_ago(13))
    cutoff = Age(years=12).cutoff(TODAY)
    with DicomClient(shared_dicom.url) as client:
        journal = ExpiryJournal(tmp_path / "j.sqlite", client.base_url)
        candidates = [c for c in find_candidates(client, journal, cutoff) if c.study == old.study_uid]
        real_delete = client.delete

        def delete_then_interrupt(study, *rest):
            real_delete(study, *rest)
            raise KeyboardInterrupt  # the answer came, the run did not see it

        client.delete = delete_then_interrupt
        with pytest.raises(KeyboardInterrupt):
            expiry.carry_out(client, candidates, cutoff, journal, expiry.ExpiryReport("", candidates))
        assert journal.status(old.study_uid) == "deleting"  # the intent was written first
        client.delete = real_delete
        report = expiry.carry_out(client, candidates, cutoff, journal, expiry.ExpiryReport("", candidates))
        assert report.deleted == [old.study_uid] and journal.status(old.study_uid) == "deleted"
        journal.close()


def test_the_change_feed_is_read_from_the_checkpoint(shared_dicom, run_cli, tmp_path):
    """Finding 2: every run read the change feed from the beginning."""
    store(shared_dicom.url, years_ago(3))
    journal = tmp_path / "j.sqlite"

    def feed_reads():
        return [r for r in shared_dicom.data_requests("GET") if r.path.endswith("/changefeed")]

    expire(run_cli, shared_dicom.url, "--older-than", "2y", "--journal", str(journal))
    entries = sqlite3.connect(journal).execute("select count(*) from instances").fetchone()[0]
    assert entries > 0
    before = len(feed_reads())
    expire(run_cli, shared_dicom.url, "--older-than", "2y", "--journal", str(journal))
    assert len(feed_reads()) - before == 1  # one short page from the checkpoint on
    before = len(feed_reads())
    expire(run_cli, shared_dicom.url, "--older-than", "2y", "--journal", str(journal), "--full")
    assert len(feed_reads()) - before >= 2  # read again from the start, then from the checkpoint
    assert sqlite3.connect(journal).execute("select count(*) from instances").fetchone()[0] == entries
