"""The HTML audit report, loaded in headless Chromium: what a reviewer actually sees."""

from __future__ import annotations

import shutil

import pytest
from test_audit import INCIDENT_USER, SUB, WS, arm, audit, prod_env, seed_declared  # noqa: F401

from hdsctl import roles

CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="headless Chromium is not installed (apt-get install chromium chromium-driver)",
)


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,1600"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_html_report_reads_well_in_a_browser(browser, audit, arm, prod_env, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By

    seed_declared(arm, prod_env, skip={("clinical", "pacs-router", "FHIR Data Writer")})
    arm.assign(WS, roles.role_by_name("Owner").guid, INCIDENT_USER, "User", SUB, "owner")
    arm.graph_denied = True
    report = tmp_path / "audit.html"
    code, _, _ = audit("--format", "html", "--output", str(report))
    assert code == 1
    browser.get(report.as_uri())
    visible = browser.find_element(By.TAG_NAME, "body").text
    assert browser.title == "Role audit: prod"
    assert "Role audit: prod (prod)" in visible
    assert "Findings need attention" in visible
    assert "Display names were not resolved" in visible
    sections = [h.text for h in browser.find_elements(By.TAG_NAME, "h2")]
    assert sections == ["workspace", "dicom radiology", "fhir clinical", "storage-queue events:imaging-events",
                        "blob-container events:dead-letters", "storage-account storage:radiology"]
    rows = browser.find_elements(By.CSS_SELECTOR, "section:first-of-type tbody tr")
    texts = [row.text for row in rows]
    assert any("privileged" in t and "Owner" in t and INCIDENT_USER in t and "az role assignment delete" in t
               for t in texts)
    assert any("hdsctl:principals.<alias>" in t for t in texts)
    # Nothing runs off the page: the report fits the window it is read in.
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    counts = {c.text.split("\n")[1]: c.text.split("\n")[0]
              for c in browser.find_elements(By.CLASS_NAME, "count")}
    # 7 declared bindings and the event topic's 2 grants are ok
    assert counts["missing"] == "1" and counts["privileged"] == "1" and counts["ok"] == "10"
    browser.save_screenshot(str(tmp_path / "audit.png"))
    import os
    if os.environ.get("HDSCTL_SCREENSHOT"):
        browser.save_screenshot(os.environ["HDSCTL_SCREENSHOT"])
