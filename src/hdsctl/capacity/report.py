"""The capacity projection as a table, JSON, or one self-contained HTML page with SVG charts."""

from __future__ import annotations

import json
from dataclasses import dataclass

from hdsctl.capacity.projection import GB, TIERS, Workload, YearFigures

TB = 10**12
TIER_COLOURS = {"hot": "#c0392b", "cool": "#2980b9", "cold": "#7f8c8d"}


@dataclass
class ServiceProjection:
    workload: Workload
    figures: list[YearFigures]
    tiering_from: str  # where the tiering came from, for the reader


@dataclass
class CapacityReport:
    stack: str
    profile_source: str
    prices_source: str
    currency: str
    prices: dict[str, float]
    services: list[ServiceProjection]

    def to_json(self) -> dict:
        return {"stack": self.stack, "profile": self.profile_source, "prices": self.prices_source,
                "currency": self.currency, "perGbMonth": self.prices, "gigabyte": GB,
                "services": [{
                    "service": p.workload.service, "retentionYears": p.workload.retention_years,
                    "growthPerYear": p.workload.growth_per_year, "updatedShare": p.workload.updated_share,
                    "coolAfterDays": p.workload.cool_after_days, "coldAfterDays": p.workload.cold_after_days,
                    "modalities": [{"modality": m.name, "studiesPerDay": m.studies_per_day,
                                    "instancesPerStudy": m.instances_per_study,
                                    "bytesPerInstance": m.bytes_per_instance,
                                    "bytesPerStudy": m.bytes_per_study,
                                    "source": m.source} for m in p.workload.modalities],
                    "years": [f.to_json() for f in p.figures]} for p in self.services]}


def render(report: CapacityReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.to_json(), indent=2)
    if fmt == "html":
        return _html(report)
    return _table(report)


def _table(report: CapacityReport) -> str:
    lines = [f"Capacity of stack '{report.stack}' (profile: {report.profile_source}; "
             f"prices: {report.prices_source}, "
             f"{report.currency}/GB-month hot {report.prices['hot']}, cool {report.prices['cool']}, "
             f"cold {report.prices['cold']})"]
    for projection in report.services:
        w = projection.workload
        lines.append(f"\nDICOM service {w.service}: retention {w.retention_years} y, "
                     f"growth {w.growth_per_year:.0%}/y, "
                     f"updated {w.updated_share:.0%}, tiering {projection.tiering_from}")
        for m in w.modalities:
            lines.append(f"  {m.name:4} {m.studies_per_day:>7g} studies/day x {m.instances_per_study:g} "
                         "instances x "
                         f"{m.bytes_per_instance / 1e6:.2f} MB = {m.bytes_per_study / 1e6:,.1f} MB/study")
        lines.append(f"  {'year':>4} {'written TB':>11} {'hot TB':>9} {'cool TB':>9} {'cold TB':>9} "
                     f"{'stored TB':>10} {'per month':>12}")
        for f in projection.figures:
            tiers = " ".join(f"{f.stored_bytes[t] / TB:9.1f}" for t in TIERS)
            lines.append(f"  {f.year:>4} {f.written_bytes / TB:11.1f} {tiers} {f.stored_total / TB:10.1f} "
                         f"{f.monthly_cost:>12,.0f}")
    return "\n".join(lines)


def _bars(figures: list[YearFigures], width: int = 640, height: int = 260) -> str:
    """Stored TB per tier, one stacked bar per year."""
    top = max((f.stored_total for f in figures), default=0) / TB or 1
    step = width / max(len(figures), 1)
    parts = []
    for index, f in enumerate(figures):
        y = height
        for tier in TIERS:
            size = f.stored_bytes[tier] / TB / top * (height - 20)
            if size > 0:
                y -= size
                parts.append(f'<rect class="bar {tier}" x="{index * step + 4:.1f}" y="{y:.1f}" '
                             f'width="{step - 8:.1f}" height="{size:.1f}" fill="{TIER_COLOURS[tier]}">'
                             f'<title>year {f.year} {tier}: {f.stored_bytes[tier] / TB:.1f} TB</title></rect>')
        parts.append(f'<text x="{index * step + step / 2:.1f}" y="{height + 14}" '
                     f'text-anchor="middle">{f.year}</text>')
    return (f'<svg class="chart stored" viewBox="0 0 {width} {height + 20}" role="img" '
            f'aria-label="stored TB per tier by year">{"".join(parts)}</svg>')


def _line(figures: list[YearFigures], width: int = 640, height: int = 200) -> str:
    """Monthly cost at the end of each year."""
    top = max((f.monthly_cost for f in figures), default=0) or 1
    step = width / max(len(figures), 1)
    points = " ".join(f"{i * step + step / 2:.1f},{height - f.monthly_cost / top * (height - 20):.1f}"
                      for i, f in enumerate(figures))
    dots = "".join(f'<circle class="cost" cx="{i * step + step / 2:.1f}" '
                   f'cy="{height - f.monthly_cost / top * (height - 20):.1f}" r="3">'
                   f'<title>year {f.year}: {f.monthly_cost:,.0f} per month</title></circle>'
                   for i, f in enumerate(figures))
    return (f'<svg class="chart cost" viewBox="0 0 {width} {height}" role="img" '
            'aria-label="monthly cost by year">'
            f'<polyline fill="none" stroke="#2c3e50" stroke-width="2" points="{points}"/>{dots}</svg>')


def _html(report: CapacityReport) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("hdsctl.capacity", "templates"),
                      autoescape=select_autoescape(["j2"]))
    charts = {p.workload.service: {"bars": _bars(p.figures), "line": _line(p.figures)} for p in report.services}
    return env.get_template("report.html.j2").render(report=report, charts=charts, TB=TB, TIERS=TIERS,
                                                     colours=TIER_COLOURS)
