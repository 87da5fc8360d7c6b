"""`hdsctl capacity`: the projection's arithmetic against hand-computed cases, the seed's figure,
the report formats (HTML read in headless Chromium), and --measure against the local service."""

from __future__ import annotations

import datetime
import json
import shutil

import pytest
import yaml
from conftest import STACKS

from hdsctl.capacity.projection import GB, Modality, Workload, project, tier_shares
from hdsctl.dicom.client import DicomClient
from hdsctl.dicom.synthetic import synthetic_study
from hdsctl.errors import EXIT_BAD_INPUT, EXIT_OK

PRICES = {"hot": 0.02, "cool": 0.01, "cold": 0.004}
ONE_GB_A_DAY = (Modality("CT", studies_per_day=1, instances_per_study=1, bytes_per_instance=GB),)


def workload(**changes) -> Workload:
    return Workload("radiology", ONE_GB_A_DAY, **changes)


def test_without_tiering_everything_stays_hot_and_adds_up():
    years = project(workload(), 3, PRICES)
    assert [y.written_bytes for y in years] == [365 * GB] * 3
    assert [y.stored_bytes["hot"] for y in years] == [365 * GB, 730 * GB, 1095 * GB]
    assert years[0].monthly_cost == pytest.approx(365 * 0.02)  # 365 GB at 0.02 a GB-month


def test_tiering_spreads_a_year_of_files_by_their_age():
    first, second = project(workload(cool_after_days=30, cold_after_days=180), 2, PRICES)
    # On day 365 the year's files are 0-365 days old: 30 days' worth Hot, 150 Cool, 185 Cold.
    assert first.stored_bytes == pytest.approx({"hot": 30 * GB, "cool": 150 * GB, "cold": 185 * GB})
    # A year later those are all over 180 days old; the new year spreads like the first.
    assert second.stored_bytes == pytest.approx({"hot": 30 * GB, "cool": 150 * GB, "cold": 550 * GB})
    assert first.monthly_cost == pytest.approx(30 * 0.02 + 150 * 0.01 + 185 * 0.004)
    assert tier_shares(0, None, 90) == pytest.approx({"hot": 90 / 365, "cool": 0, "cold": 275 / 365})


def test_growth_updates_and_retention():
    years = project(workload(growth_per_year=0.10, updated_share=0.5, retention_years=2), 3, PRICES)
    assert years[1].written_bytes == pytest.approx(365 * GB * 1.10 * 1.5)  # an update keeps the original
    # Year 3 keeps what years 2 and 3 wrote: year 1's files turned 2 and were expired.
    assert years[2].stored_total == pytest.approx(365 * GB * 1.5 * (1.10 + 1.10**2))


def test_the_default_profile_has_the_seed_articles_ct_figure(run_cli):
    code, out, _ = run_cli("--stacks-dir", str(STACKS), "capacity", "--stack", "prod", "--format", "json")
    assert code == EXIT_OK
    service, = json.loads(out)["services"]
    ct = next(m for m in service["modalities"] if m["modality"] == "CT")
    assert ct["bytesPerStudy"] == 500 * 512 * 512 * 2 == 250 * 2**20  # "a 500-slice CT is about 250 MB"
    assert "seed article" in ct["source"] and all(m["source"] for m in service["modalities"])
    assert service["retentionYears"] == 10 and len(service["years"]) == 10


def test_the_stacks_tiering_and_a_price_table_are_used(run_cli, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("currency: EUR\nperGbMonth: {hot: 1.0, cool: 0.5, cold: 0.25}\n")
    code, out, _ = run_cli("--stacks-dir", str(STACKS), "capacity", "--stack", "staging", "--prices",
                           str(prices), "--years", "2", "--format", "json")
    report = json.loads(out)
    year = report["services"][0]["years"][0]
    stored = year["storedBytes"]
    assert code == EXIT_OK and report["currency"] == "EUR"
    assert stored["hot"] < stored["cool"] < stored["cold"]  # 30 / 150 / 185 days of the year
    assert year["monthlyCost"] == pytest.approx((stored["hot"] + stored["cool"] / 2 + stored["cold"] / 4) / GB,
                                                rel=1e-6)


def test_a_bad_profile_names_the_file_and_the_key(run_cli, tmp_path):
    profile = tmp_path / "profile.yaml"
    profile.write_text("modalities:\n  CT: {studiesPerDay: -3, instancesPerStudy: 500, bytesPerInstance: 1}\n")
    code, _, err = run_cli("--stacks-dir", str(STACKS), "capacity", "--stack", "prod", "--profile",
                           str(profile))
    assert code == EXIT_BAD_INPUT
    assert str(profile) in err and "modalities.CT.studiesPerDay" in err and "Traceback" not in err


CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="headless Chromium is not installed")
def test_the_html_report_reads_well_in_a_browser(run_cli, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    page = tmp_path / "capacity.html"
    code, _, _ = run_cli("--stacks-dir", str(STACKS), "capacity", "--stack", "staging", "--years", "8",
                         "--format", "html", "--output", str(page))
    assert code == EXIT_OK
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # self-contained
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                 "--window-size=1280,1600"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    try:
        browser.get(page.as_uri())
        assert browser.title == "Capacity: staging"
        bars = browser.find_elements(By.CSS_SELECTOR, "svg.stored rect.bar")
        assert {b.get_attribute("class").split()[1] for b in bars} == {"hot", "cool", "cold"}
        assert all(b.rect["height"] > 0 and b.rect["width"] > 0 for b in bars)  # drawn, not zero-sized
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg.cost circle.cost")) == 8
        rows = browser.find_elements(By.CSS_SELECTOR, "table.years tbody tr")
        assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == [str(y) for y in range(1, 9)]
        # A bar is read without the table: axes with units, and each bar's and point's value on it
        stored = browser.find_element(By.CSS_SELECTOR, "svg.stored")
        titles = [t.text for t in stored.find_elements(By.CSS_SELECTOR, "text.axis-title")]
        assert titles == ["stored (TB)", "year"]
        assert len(stored.find_elements(By.CSS_SELECTOR, "text.tick")) == 3 + 8  # y ticks, then years
        values = [t.text for t in stored.find_elements(By.CSS_SELECTOR, "text.value")]
        totals = [r.find_elements(By.TAG_NAME, "td")[-2].text.strip() for r in rows]
        assert values == totals, (values, totals)
        cost = browser.find_element(By.CSS_SELECTOR, "svg.cost")
        assert "per month" in cost.find_elements(By.CSS_SELECTOR, "text.axis-title")[0].text
        assert len(cost.find_elements(By.CSS_SELECTOR, "text.value")) == 8
        assert "seed article" in browser.find_element(By.CSS_SELECTOR, "table.modalities").text
    finally:
        browser.quit()


def test_measure_reads_a_running_service_into_a_profile(shared_dicom, run_cli, tmp_path):
    day = datetime.date(2019, 6, 1)  # a day no other test stores studies on
    studies = [synthetic_study(instances_per_series=3, size=16, study_date=day) for _ in range(2)]
    with DicomClient(shared_dicom.url) as client:
        for study in studies:
            client.store([i.data for i in study.instances])
    profile = tmp_path / "measured.yaml"
    code, _, err = run_cli("--stacks-dir", str(STACKS), "capacity", "--stack", "local", "--measure",
                           "--url", shared_dicom.url, "--since", "20190601", "--until", "20190601",
                           "--output", str(profile))
    assert code == EXIT_OK, err
    measured = yaml.safe_load(profile.read_text())["modalities"]
    ct = measured["CT"]  # the first modality of these studies
    assert ct["studiesPerDay"] == 2 and ct["instancesPerStudy"] == len(studies[0].instances)
    assert ct["bytesPerInstance"] > 0 and "measured: 2 studies" in ct["source"]
    code, out, _ = run_cli("--stacks-dir", str(STACKS), "capacity", "--stack", "local", "--profile",
                           str(profile), "--years", "1", "--format", "json")
    assert code == EXIT_OK
    written = json.loads(out)["services"][0]["years"][0]["writtenBytes"]
    expected = 365 * 2 * len(studies[0].instances) * ct["bytesPerInstance"]
    assert written == pytest.approx(expected, rel=1e-3)


def test_the_report_is_never_written_over_a_stack_file_or_the_profile(run_cli, tmp_path):
    profile = tmp_path / "profile.yaml"
    profile.write_text("modalities:\n  CT: {studiesPerDay: 1, instancesPerStudy: 1, bytesPerInstance: 1}\n")
    for target in (STACKS / "Pulumi.prod.yaml", profile):
        before = target.read_text()
        code, _, err = run_cli("--stacks-dir", str(STACKS), "capacity", "--stack", "prod", "--profile",
                               str(profile), "--output", str(target))
        assert code == EXIT_BAD_INPUT and target.read_text() == before, err
