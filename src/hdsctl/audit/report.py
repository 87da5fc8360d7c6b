"""The audit report in four formats: a table for the terminal, JSON, and Markdown and HTML
rendered from jinja2 templates shipped in the package."""

from __future__ import annotations

import datetime
import json
from collections import Counter
from dataclasses import dataclass, field

from hdsctl.audit.compare import CATEGORIES, FAILING, Finding
from hdsctl.environment.access import Scope


@dataclass
class AuditReport:
    stack: str
    tier: str
    subscription_id: str
    scopes: list[Scope]
    findings: list[Finding]
    names_resolved: bool
    include_inherited: bool
    generated: str = field(default_factory=lambda: datetime.datetime.now(datetime.UTC)
                           .strftime("%Y-%m-%d %H:%M UTC"))

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(f.category for f in self.findings)
        return {category: counted.get(category, 0) for category in CATEGORIES}

    @property
    def clean(self) -> bool:
        return not any(f.category in FAILING for f in self.findings)

    def sections(self) -> list[tuple[str, str, list[Finding]]]:
        """(title, scope id, findings) per audited scope, then one for inherited assignments."""
        ordered = sorted(self.findings, key=lambda f: (CATEGORIES.index(f.category), f.role, f.principal_id))
        result = [(f"{scope.kind} {scope.name}" if scope.kind != "workspace" else "workspace",
                   scope.id, [f for f in ordered if f.scope == scope.name and f.category != "inherited"])
                  for scope in self.scopes]
        inherited = [f for f in ordered if f.scope not in {s.name for s in self.scopes}]
        if self.include_inherited:
            result.append(("inherited from resource group, subscription or management group", "", inherited))
        return result

    def to_json(self) -> dict:
        return {
            "stack": self.stack, "tier": self.tier, "subscriptionId": self.subscription_id,
            "generated": self.generated, "clean": self.clean, "counts": self.counts,
            "namesResolved": self.names_resolved, "includeInherited": self.include_inherited,
            "scopes": [{"name": s.name, "kind": s.kind, "id": s.id} for s in self.scopes],
            "findings": [f.to_json() for f in self.findings],
        }


def render(report: AuditReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2)
    if fmt == "table":
        return _table(report)
    from jinja2 import Environment, PackageLoader

    # Names come from Azure and Graph: HTML must escape them (the .j2 suffix hides the kind).
    templates = Environment(loader=PackageLoader("hdsctl.audit", "templates"),
                            autoescape=fmt == "html", trim_blocks=True, lstrip_blocks=True)
    templates.filters["md"] = markdown_cell
    name = {"markdown": "report.md.j2", "html": "report.html.j2"}[fmt]
    return templates.get_template(name).render(report=report, failing=FAILING)


def markdown_cell(value) -> str:
    """Text from Azure or Graph as one Markdown table cell: no column breaks (|), no line
    breaks, no HTML, no code-span breaks."""
    import html

    text = " ".join(str(value).split())
    text = html.escape(text, quote=False).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return text


def who(finding: Finding) -> str:
    parts = [finding.display_name or finding.alias or "", finding.principal_id]
    return " ".join(p for p in parts if p)


def _table(report: AuditReport) -> str:
    counts = ", ".join(f"{n} {c}" for c, n in report.counts.items() if n)
    verdict = "clean" if report.clean else "FINDINGS NEED ATTENTION"
    lines = [f"Role audit of stack '{report.stack}' (tier {report.tier}), subscription "
             f"{report.subscription_id}: {verdict}", f"  {counts or 'no assignments'}"]
    if not report.names_resolved:
        lines.append("  display names were not resolved (no Microsoft Graph access); object ids shown")
    for title, scope_id, findings in report.sections():
        lines.append(f"\n{title}  {scope_id}")
        if not findings:
            lines.append("  (no assignments)")
        for f in findings:
            lines.append(f"  {f.category:<13} {f.role:<32} {f.principal_type or '-':<16} {who(f)}")
            if f.category in FAILING:
                lines.append(f"      fix: {f.fix}")
    return "\n".join(lines)
