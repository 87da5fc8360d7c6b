"""What only the real Pulumi CLI and an Azure subscription can show. These skip, visibly, on
machines that have neither; CI pipelines rendered by `hdsctl ci init` run the real thing."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import REPO

HAS_CLI = shutil.which("pulumi") is not None
HAS_AZURE = any(os.environ.get(name) for name in ("ARM_CLIENT_ID", "AZURE_CLIENT_ID"))
needs_cloud = pytest.mark.skipif(
    not (HAS_CLI and HAS_AZURE),
    reason="needs the Pulumi CLI and Azure credentials (ARM_CLIENT_ID/AZURE_CLIENT_ID); none here",
)


@needs_cloud
@pytest.mark.parametrize(("stack", "tier"), [("dev", "dev"), ("staging", "test"), ("prod", "prod")])
def test_pulumi_preview_with_the_policy_pack(stack, tier):
    result = subprocess.run(
        ["pulumi", "preview", "--stack", stack, "--non-interactive", "--policy-pack", "policies",
         "--policy-pack-config", f"policies/config/{tier}.json"],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hdsctl-guardrails" in result.stdout
