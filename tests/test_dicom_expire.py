"""`hdsctl dicom expire`: retention by rule against the local DICOM service (Orthanc)."""

from __future__ import annotations

import datetime
import json
import sqlite3

import pytest
from conftest import STACKS

from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.expire import Age, ExpiryRefused, check_retention, parse_age, plan
from hdsctl.dicom.synthetic import synthetic_study
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_OK

TODAY = datetime.date.today()


def years_ago(years: int) -> datetime.date:
    return Age(years=years).cutoff(TODAY) - datetime.timedelta(days=1)


def store(url: str, date: datetime.date):
    study = synthetic_study(instances_per_series=1, size=16, study_date=date)
    with DicomClient(url) as client:
        client.store([i.data for i in study.instances])
    return study


def expire(run_cli, url, *extra):
    return run_cli("--stacks-dir", str(STACKS), "dicom", "expire", "--stack", "local", "--url", url, *extra)


def exists(url: str, study: str) -> bool:
    with DicomClient(url) as client:
        return bool(client.search("studies", {"StudyInstanceUID": study}))


def test_a_duration_under_the_declared_minimum_is_refused_before_any_request(local_dicom, run_cli):
    before = len(local_dicom.data_requests())
    code, _, err = expire(run_cli, local_dicom.url, "--older-than", "6mo", "--yes")
    assert code == EXIT_BAD_INPUT
    assert "shorter than the 1 years" in err and "retention.minimumYears" in err and "nothing was" in err
    assert len(local_dicom.data_requests()) == before  # not even listed


def test_without_yes_nothing_is_deleted(local_dicom, run_cli):
    old = store(local_dicom.url, years_ago(3))
    code, out, err = expire(run_cli, local_dicom.url, "--older-than", "2y", "--json")
    assert code == EXIT_OK, err
    report = json.loads(out)
    assert report["listedOnly"] and old.study_uid in {c["study"] for c in report["candidates"]}
    assert report["deleted"] == [] and exists(local_dicom.url, old.study_uid)


def test_yes_deletes_what_is_past_retention_and_journals_it(local_dicom, run_cli, tmp_path):
    old, recent = store(local_dicom.url, years_ago(3)), store(local_dicom.url, years_ago(1))
    journal = tmp_path / "expiry.sqlite"
    code, out, err = expire(run_cli, local_dicom.url, "--older-than", "2y", "--yes", "--journal", str(journal))
    assert code == EXIT_OK, err
    assert "deleted" in out and old.study_uid in out and recent.study_uid not in out
    assert not exists(local_dicom.url, old.study_uid) and exists(local_dicom.url, recent.study_uid)
    rows = dict(sqlite3.connect(journal).execute("select study, status from studies").fetchall())
    assert rows[old.study_uid] == "deleted" and recent.study_uid not in rows


def test_modality_narrows_the_list(local_dicom, run_cli):
    old = store(local_dicom.url, years_ago(4))
    code, out, _ = expire(run_cli, local_dicom.url, "--older-than", "3y", "--modality", "MR", "--json")
    assert code == EXIT_OK and old.study_uid not in {c["study"] for c in json.loads(out)["candidates"]}
    code, out, _ = expire(run_cli, local_dicom.url, "--older-than", "3y", "--modality", "CT", "--json")
    assert old.study_uid in {c["study"] for c in json.loads(out)["candidates"]}


def test_an_interrupted_expiry_resumes(local_dicom, run_cli, tmp_path):
    from hdsctl.dicom import expire as expiry

    studies = [store(local_dicom.url, years_ago(5)) for _ in range(3)]
    journal_path = tmp_path / "expiry.sqlite"
    with DicomClient(local_dicom.url) as client:
        candidates = [c for c in plan(client, Age(years=4).cutoff(TODAY)) if c.study in
                      {s.study_uid for s in studies}]
        journal = expiry.ExpiryJournal(journal_path, client.base_url)

        def interrupt(candidate):
            raise KeyboardInterrupt  # Ctrl-C right after the first deletion was journaled

        with pytest.raises(KeyboardInterrupt):
            expiry.expire(client, candidates, journal, expiry.ExpiryReport("", candidates), interrupt)
        journal.close()
    first = candidates[0].study
    assert not exists(local_dicom.url, first) and all(exists(local_dicom.url, c.study) for c in candidates[1:])
    code, out, err = expire(run_cli, local_dicom.url, "--older-than", "4y", "--yes", "--journal",
                            str(journal_path), "--json")
    assert code == EXIT_OK, err
    assert {c.study for c in candidates[1:]} <= set(json.loads(out)["deleted"])
    assert not any(exists(local_dicom.url, c.study) for c in candidates)
    rows = dict(sqlite3.connect(journal_path).execute("select study, status from studies").fetchall())
    assert all(rows[c.study] == "deleted" for c in candidates)


def test_a_study_without_a_date_is_as_old_as_its_first_storage():
    class Service:  # the change feed of a service that has held studies for years
        def search(self, level, filters, limit=100, offset=0):
            if "StudyDate" in filters:
                return []
            dated = {"dated": "20200101"}.get(filters["StudyInstanceUID"], "")
            return [{"0020000D": {"Value": [filters["StudyInstanceUID"]]},
                     **({"00080020": {"Value": [dated]}} if dated else {}), "00080061": {"Value": ["CR"]}}]

        def change_feed(self, start, end_time=None):
            return [{"Action": "Create", "StudyInstanceUid": "undated", "Timestamp": "2012-03-04T05:06:07Z"},
                    {"Action": "Create", "StudyInstanceUid": "dated", "Timestamp": "2012-03-04T05:06:07Z"}]

    found = plan(Service(), datetime.date(2016, 1, 1))
    assert [(c.study, c.date, c.basis) for c in found] == [("undated", "20120304", "stored")]


def test_ages_and_the_minimum():
    assert parse_age("7y6mo") == Age(7, 6, 0) and parse_age("400d") == Age(days=400)
    for bad in ("", "ten years", "5x", "y"):
        with pytest.raises(ValueError):
            parse_age(bad)
    assert Age(years=10).cutoff(datetime.date(2026, 2, 28)) == datetime.date(2016, 2, 28)
    assert Age(years=1).cutoff(datetime.date(2024, 2, 29)) == datetime.date(2023, 2, 28)
    with pytest.raises(ExpiryRefused, match="declares no retention"):
        check_retention(Age(years=20), None, TODAY, "service x")
    assert check_retention(Age(years=10), 10, TODAY, "x") == Age(years=10).cutoff(TODAY)
    with pytest.raises(ExpiryRefused):
        check_retention(Age(years=9, months=11), 10, TODAY, "x")


def test_a_journal_that_is_not_one_is_refused(local_dicom, run_cli, tmp_path):
    store(local_dicom.url, years_ago(6))
    code, _, err = expire(run_cli, local_dicom.url, "--older-than", "5y", "--yes", "--journal",
                          str(STACKS / "Pulumi.local.yaml"))
    assert code == EXIT_BAD_INPUT and "Traceback" not in err
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a database, just notes\n" * 100)
    code, _, err = expire(run_cli, local_dicom.url, "--older-than", "5y", "--yes", "--journal", str(text_file))
    assert code == EXIT_BAD_INPUT and "cannot be the expiry journal" in err
