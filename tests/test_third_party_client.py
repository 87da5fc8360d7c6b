"""A DICOMweb client no one here wrote (dicomweb-client, as used by hospital tooling), in its
own environment, against the local service: it must store, find, return and delete as it would
against Azure's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "tools" / "dicomweb-client" / "site"
SCRIPT = Path(__file__).resolve().parent / "support" / "dicomweb_client_run.py"


def test_dicomweb_client_stores_finds_returns_and_deletes(shared_dicom):
    if not (SITE / "dicomweb_client").is_dir():
        pytest.skip("needs dicomweb-client in tools/dicomweb-client/site (scripts/bootstrap installs it)")
    run = subprocess.run([sys.executable, str(SCRIPT), f"{shared_dicom.url}/v2"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(SITE)})
    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout)
    assert sorted(seen["stored"]) == sorted(seen["sent"]) and not seen["failed"]
    assert seen["foundStudies"] == [seen["study"]]
    assert sorted(seen["foundInstances"]) == sorted(seen["sent"])
    # an in-memory dataset goes out without a preamble; it comes back as a Part 10 file pydicom reads
    assert seen["returned"] == seen["sent"][1] and seen["samePixels"]
    assert seen["metadataNumbers"] == [1, 2] and seen["metadataPatients"] == [seen["patient"]]
    assert seen["afterDelete"] == []
