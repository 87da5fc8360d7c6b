"""Capacity and cost of DICOM storage over the years, from a workload profile.

The arithmetic, in one place:
- studies per day of a modality grow by `growthPerYear` each year (year 1 at the given rate);
- a year's new bytes = 365 × studies/day × instances/study × bytes/instance × (1 + updatedShare):
  an updated study keeps its original, so the updated share is stored twice;
- what a year wrote stays until it is `retentionYears` old, then `dicom expire` removes it;
- on the last day of a year, a year's files are between a and a + 365 days old (a = 365 × its
  age in whole years), spread evenly: the part younger than `coolAfterDays` is Hot, up to
  `coldAfterDays` Cool, older Cold. Age counts from the write: studies are assumed not read
  again (reads move files back to Hot, so this is the cheapest case for tiered data);
- monthly cost = Σ GB per tier × the price of that tier per GB-month (GB = 10^9 bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAYS_PER_YEAR = 365
GB = 10**9
TIERS = ("hot", "cool", "cold")


@dataclass(frozen=True)
class Modality:
    name: str
    studies_per_day: float
    instances_per_study: float
    bytes_per_instance: float
    source: str = ""

    @property
    def bytes_per_study(self) -> float:
        return self.instances_per_study * self.bytes_per_instance


@dataclass(frozen=True)
class Workload:
    service: str
    modalities: tuple[Modality, ...]
    growth_per_year: float = 0.0
    retention_years: int = 10
    updated_share: float = 0.0
    cool_after_days: int | None = None
    cold_after_days: int | None = None


@dataclass
class YearFigures:
    year: int
    written_bytes: float
    stored_bytes: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIERS, 0.0))
    monthly_cost: float = 0.0

    @property
    def stored_total(self) -> float:
        return sum(self.stored_bytes.values())

    def to_json(self) -> dict:
        return {"year": self.year, "writtenBytes": round(self.written_bytes),
                "storedBytes": {tier: round(b) for tier, b in self.stored_bytes.items()},
                "storedTotalBytes": round(self.stored_total), "monthlyCost": round(self.monthly_cost, 2)}


def written_in_year(workload: Workload, year: int) -> float:
    """Bytes written in year `year` (1 = the first)."""
    factor = (1 + workload.growth_per_year) ** (year - 1) * (1 + workload.updated_share)
    return sum(DAYS_PER_YEAR * m.studies_per_day * m.bytes_per_study for m in workload.modalities) * factor


def tier_shares(age_years: int, cool_after: int | None, cold_after: int | None) -> dict[str, float]:
    """How a year's files, `age_years` whole years old, spread over the tiers on the last day of a year."""
    start, end = age_years * DAYS_PER_YEAR, (age_years + 1) * DAYS_PER_YEAR
    cool_at = cool_after if cool_after is not None else float("inf")
    cold_at = cold_after if cold_after is not None else float("inf")
    cool_at = min(cool_at, cold_at)  # with only a Cold rule, Hot files go straight to Cold

    def overlap(low: float, high: float) -> float:
        return max(0.0, min(end, high) - max(start, low)) / DAYS_PER_YEAR

    return {"hot": overlap(0, cool_at), "cool": overlap(cool_at, cold_at),
            "cold": overlap(cold_at, float("inf"))}


def project(workload: Workload, years: int, prices: dict[str, float]) -> list[YearFigures]:
    figures = []
    for year in range(1, years + 1):
        result = YearFigures(year, written_in_year(workload, year))
        for written_year in range(1, year + 1):
            age = year - written_year
            if age >= workload.retention_years:
                continue  # expired through the DELETE API
            shares = tier_shares(age, workload.cool_after_days, workload.cold_after_days)
            for tier, share in shares.items():
                result.stored_bytes[tier] += written_in_year(workload, written_year) * share
        result.monthly_cost = sum(result.stored_bytes[t] / GB * prices[t] for t in TIERS)
        figures.append(result)
    return figures
