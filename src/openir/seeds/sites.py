"""Site protocols (``data/sites.yaml``): margin, prescription, quality goals and organ limits.

>>> p = get_site("pancreas")
>>> p.margin_mm, p.prescription_gy, [o.name for o in p.organs_at_risk][:2]
(10.0, 120.0, ['bowel', 'great_vessels'])
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from openir.core import LabelMap, normalise_label_name
from openir.core.datafiles import load_packaged, load_yaml_model
from openir.core.errors import InputError

OarMetric = Literal["dmax", "d0_1cc", "d1cc", "d2cc", "dmean"]


class OrganLimit(BaseModel):
    """A dose limit for one organ at risk; ``labels`` are glob patterns matched to label names."""

    model_config = ConfigDict(extra="forbid")
    name: str
    labels: list[str] = Field(..., min_length=1)
    metric: OarMetric
    limit_gy: float = Field(..., gt=0)
    source: str = Field(..., min_length=5)

    def values_in(self, labels: LabelMap) -> list[int]:
        pats = [normalise_label_name(p) for p in self.labels]
        return [v for v, n in labels.labels.items()
                if any(fnmatch(normalise_label_name(n), p) for p in pats)]


class Quality(BaseModel):
    model_config = ConfigDict(extra="forbid")
    v100_min_pct: float = Field(..., gt=0, le=100)
    v100_min_source: str
    v150_max_pct: float = Field(..., gt=0, le=100)
    v200_max_pct: float = Field(..., gt=0, le=100)
    hot_source: str


class SiteProtocol(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    margin_mm: float = Field(..., ge=0, le=30)
    margin_source: str
    prescription_gy: float = Field(..., gt=0, le=300)
    prescription_range_gy: tuple[float, float]
    prescription_source: str
    activity_mci: float = Field(..., gt=0, le=5)
    activity_range_mci: tuple[float, float]
    activity_source: str
    needle_gauge: int = Field(18, ge=10, le=25)
    needle_gauge_source: str = ""
    organs_at_risk: list[OrganLimit] = Field(default_factory=list)
    positions: list[Literal["supine", "prone", "left_lateral", "right_lateral"]] = Field(
        default_factory=lambda: ["supine", "prone"], min_length=1,
        description="patient positions tried in order (entry never from the table side)")
    quality: Quality | None = None


class SiteTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    quality: Quality
    sites: dict[str, SiteProtocol]


def load_sites(path: str | Path | None = None) -> SiteTable:
    """The shipped site table or an edited copy (validated; errors name file and field)."""
    if path is None:
        return load_packaged(SiteTable, "openir.seeds", "data/sites.yaml")
    return load_yaml_model(SiteTable, path)


def get_site(name: str, path: str | Path | None = None) -> SiteProtocol:
    """The protocol of ``name`` with the table's quality goals attached; InputError if unknown."""
    table = load_sites(path)
    key = normalise_label_name(name)
    if key not in table.sites:
        raise InputError(f"unknown site {name!r}; known sites: {', '.join(sorted(table.sites))}", field="site")
    site = table.sites[key]
    return site.model_copy(update={"name": key, "quality": site.quality or table.quality})
