"""Workload profiles and price tables: YAML files, checked like stack files (file, key path, reason)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from hdsctl.environment.yaml_text import parse_yaml
from hdsctl.errors import BadInput


class ProfileProblem(BadInput):
    pass


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ModalityLoad(_Model):
    studies_per_day: float = Field(ge=0)
    instances_per_study: float = Field(gt=0)
    bytes_per_instance: float = Field(gt=0)
    source: str = ""


class ServiceLoad(_Model):
    """A service's own figures; what it leaves out comes from the profile's top level."""

    modalities: dict[str, ModalityLoad] | None = None
    growth_per_year: float | None = Field(default=None, ge=-0.5, le=2)
    updated_share: float | None = Field(default=None, ge=0, le=1)
    retention_years: int | None = Field(default=None, ge=1, le=100)


class Profile(_Model):
    modalities: dict[str, ModalityLoad] = Field(min_length=1)
    growth_per_year: float = Field(default=0.0, ge=-0.5, le=2)
    updated_share: float = Field(default=0.0, ge=0, le=1)
    # Default: each service's retention.minimumYears (10 when it declares none).
    retention_years: int | None = Field(default=None, ge=1, le=100)
    services: dict[str, ServiceLoad] = Field(default_factory=dict)


class Prices(_Model):
    currency: str = "USD"
    per_gb_month: dict[str, float] = Field(min_length=1)


def _load(model, path: Path | None, packaged: str, what: str):
    if path is None:
        text, source = resources.files("hdsctl.capacity").joinpath(packaged).read_text(), f"(default {what})"
    else:
        try:
            text, source = path.read_text(encoding="utf-8"), str(path)
        except OSError as err:
            raise ProfileProblem(f"cannot read the {what} {path}: {err.strerror}") from None
    data = parse_yaml(text, source)
    try:
        return model.model_validate(data or {}), source
    except ValidationError as err:
        lines = [f"  - {'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in err.errors()]
        raise ProfileProblem(f"{source}: {len(lines)} problem(s) in the {what}\n" + "\n".join(lines)) from None


def load_profile(path: Path | None) -> tuple[Profile, str]:
    return _load(Profile, path, "default_profile.yaml", "workload profile")


def load_prices(path: Path | None) -> tuple[Prices, str]:
    prices, source = _load(Prices, path, "default_prices.yaml", "price table")
    missing = sorted({"hot", "cool", "cold"} - set(prices.per_gb_month))
    if missing:
        raise ProfileProblem(f"{source}: perGbMonth lacks {', '.join(missing)} (hot, cool and cold are priced)")
    return prices, source
