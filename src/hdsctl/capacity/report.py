"""The capacity projection as a table, JSON, or one self-contained HTML page with SVG charts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from html import escape

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


# Room around each chart's plot area for the axes, their ticks and titles.
LEFT, BOTTOM, TOP = 64, 40, 22


def _axes(width: int, height: int, top_value: float, unit: str, x_title: str) -> list[str]:
    """A y axis with three ticks labelled in `unit`, an x axis, and both titles."""
    plot = height - BOTTOM - TOP
    parts = [f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot}" stroke="#57606a"/>',
             f'<line class="axis" x1="{LEFT}" y1="{TOP + plot}" x2="{width}" y2="{TOP + plot}" '
             'stroke="#57606a"/>']
    for share in (0, 0.5, 1):
        y = TOP + plot - share * plot
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{share * top_value:,.0f}</text>')
    parts.append(f'<text class="axis-title" x="14" y="{TOP + plot / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {TOP + plot / 2:.1f})">{escape(unit)}</text>')
    parts.append(f'<text class="axis-title" x="{(LEFT + width) / 2:.1f}" y="{height - 4}" '
                 f'text-anchor="middle">{escape(x_title)}</text>')
    return parts


def _bars(figures: list[YearFigures], width: int = 640, height: int = 300) -> str:
    """Stored TB per tier, one stacked bar per year, its total written above it."""
    top = max((f.stored_total for f in figures), default=0) / TB or 1
    plot = height - BOTTOM - TOP
    step = (width - LEFT) / max(len(figures), 1)
    parts = _axes(width, height, top, "stored (TB)", "year")
    for index, f in enumerate(figures):
        x, y = LEFT + index * step, TOP + plot
        for tier in TIERS:
            size = f.stored_bytes[tier] / TB / top * plot
            if size > 0:
                y -= size
                parts.append(f'<rect class="bar {tier}" x="{x + 4:.1f}" y="{y:.1f}" '
                             f'width="{step - 8:.1f}" height="{size:.1f}" fill="{TIER_COLOURS[tier]}">'
                             f'<title>year {f.year} {tier}: {f.stored_bytes[tier] / TB:.1f} TB</title></rect>')
        parts.append(f'<text class="value" x="{x + step / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle">'
                     f'{f.stored_total / TB:.1f}</text>')
        parts.append(f'<text class="tick" x="{x + step / 2:.1f}" y="{TOP + plot + 14}" '
                     f'text-anchor="middle">{f.year}</text>')
    return (f'<svg class="chart stored" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="stored TB per tier by year">{"".join(parts)}</svg>')


def _line(figures: list[YearFigures], currency: str, width: int = 640, height: int = 240) -> str:
    """Monthly cost at the end of each year, each point labelled with its value."""
    top = max((f.monthly_cost for f in figures), default=0) or 1
    plot = height - BOTTOM - TOP
    step = (width - LEFT) / max(len(figures), 1)
    points = [(LEFT + i * step + step / 2, TOP + plot - f.monthly_cost / top * plot, f)
              for i, f in enumerate(figures)]
    parts = _axes(width, height, top, f"{currency} per month", "year")
    parts.append('<polyline fill="none" stroke="#2c3e50" stroke-width="2" points="'
                 + " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points) + '"/>')
    for x, y, f in points:
        parts.append(f'<circle class="cost" cx="{x:.1f}" cy="{y:.1f}" r="3">'
                     f'<title>year {f.year}: {f.monthly_cost:,.0f} {escape(currency)} per month</title>'
                     '</circle>')
        parts.append(f'<text class="value" x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle">'
                     f'{f.monthly_cost:,.0f}</text>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{TOP + plot + 14}" text-anchor="middle">'
                     f'{f.year}</text>')
    return (f'<svg class="chart cost" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="monthly cost by year">{"".join(parts)}</svg>')


def _html(report: CapacityReport) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(loader=PackageLoader("hdsctl.capacity", "templates"),
                      autoescape=select_autoescape(["j2"]))
    charts = {p.workload.service: {"bars": _bars(p.figures), "line": _line(p.figures, report.currency)}
              for p in report.services}
    return env.get_template("report.html.j2").render(report=report, charts=charts, TB=TB, TIERS=TIERS,
                                                     colours=TIER_COLOURS)
