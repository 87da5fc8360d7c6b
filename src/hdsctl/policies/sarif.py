"""SARIF 2.1.0 from policy reports, so GitHub code scanning shows findings on the pull request,
pointing at the stack file line that declares the offending resource."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from hdsctl import __version__
from hdsctl.policies.evaluate import PACK_NAME, PolicyReport

SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"mandatory": "error", "advisory": "warning"}


def to_sarif(reports: list[PolicyReport]) -> dict:
    from hdsctl.policies.rules import POLICIES, TIER_LEVELS

    rules = [
        {
            "id": policy.name,
            "name": "".join(part.title() for part in policy.name.split("-")),
            "shortDescription": {"text": policy.description},
            "fullDescription": {"text": policy.description},
            "helpUri": "https://learn.microsoft.com/azure/healthcare-apis/",
            "properties": {"enforcementLevelByTier": {
                tier: level.value for tier, level in TIER_LEVELS[policy.name].items()}},
        }
        for policy in POLICIES
    ]
    index = {rule["id"]: number for number, rule in enumerate(rules)}
    return {
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [_run(report, rules, index) for report in reports],
    }


def _run(report: PolicyReport, rules: list[dict], index: dict[str, int]) -> dict:
    uri = _repository_path(report.source)
    lines = _read_lines(report.source)
    return {
        "tool": {"driver": {"name": PACK_NAME, "version": __version__,
                            "informationUri": "https://www.pulumi.com/docs/iac/using-pulumi/crossguard/",
                            "rules": rules}},
        "automationDetails": {"id": f"hdsctl-policy/{report.stack}/"},
        "results": [
            {
                "ruleId": violation.policy,
                "ruleIndex": index[violation.policy],
                "level": LEVELS[violation.level],
                "message": {"text": violation.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": uri},
                        "region": {"startLine": _line_of(lines, violation.resource)},
                    },
                    "logicalLocations": [{
                        "name": (violation.resource or f"stack {report.stack}").split("::")[-1],
                        "fullyQualifiedName": violation.resource or f"stack {report.stack}",
                        "kind": "resource",
                    }],
                }],
                "partialFingerprints": {"hdsctlPolicy/v1": hashlib.sha256(
                    f"{report.stack}|{violation.policy}|{violation.resource}|{violation.message}".encode()
                ).hexdigest()},
                "properties": {"stack": report.stack, "tier": report.tier,
                               "enforcementLevel": violation.level},
            }
            for violation in report.violations
        ],
    }


def _repository_path(source: str) -> str:
    """Relative to the working directory (the repository root in CI), as code scanning expects."""
    path = Path(source)
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        path = path.relative_to(Path.cwd())
    return path.as_uri() if path.is_absolute() else path.as_posix()


def _read_lines(source: str) -> list[str]:
    try:
        return Path(source).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []


def _line_of(lines: list[str], resource: str | None) -> int:
    """The first line naming the resource (its name in the stack file), else line 1."""
    if resource:
        name = resource.split("::")[-1]
        for candidate in (f"name: {name}", name):
            for number, line in enumerate(lines, start=1):
                if candidate in line:
                    return number
    return 1


def write_sarif(reports: list[PolicyReport], path: str) -> None:
    """Write the findings to `path`, or to standard output for '-'."""
    import json

    from hdsctl.files import STDOUT, write_atomic

    text = json.dumps(to_sarif(reports), indent=2) + "\n"
    if path == STDOUT:
        sys.stdout.write(text)
    else:
        write_atomic(path, text)
