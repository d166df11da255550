"""Results of ablation verification that cross package borders (JSON via pydantic)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class MarginHistogram(BaseModel):
    """Distribution of tumour-surface-to-zone-surface distances, weighted by surface area."""

    edges_mm: list[float] = Field(description="bin edges, mm; first/last bins are open-ended")
    area_pct: list[float] = Field(description="percent of the evaluated tumour surface per bin")


class ResidualTumour(BaseModel):
    """Tumour left outside the ablation zone."""

    volume_ml: float
    n_components: int = Field(0, description="separate patches of tumour surface outside the zone")
    centroid_lps: list[float] | None = Field(None, description="mm, LPS, of the residual tumour")
    direction: str | None = Field(None, description="where, seen from the tumour centre (LPS words)")


class RegistrationQuality(BaseModel):
    """How well the pre image was brought onto the post image."""

    method: str = Field(description="stages run, e.g. 'rigid+affine+bspline' or 'identity'")
    organ_dice: float | None = Field(None, description="Dice of warped pre organ vs post organ")
    organ_mean_surface_distance_mm: float | None = None
    metric_value: float | None = Field(None, description="final image similarity (SimpleITK)")
    image_similarity: float | None = Field(
        None, description="normalised correlation of the aligned images in their overlap (-1..1)"
    )
    overlap_fraction: float | None = Field(None, description="fraction of the post image the moved pre image covers")
    landmark_tre_mm: float | None = Field(None, description="mean residual of paired landmarks")
    measured_by: list[str] = Field(default_factory=list, description="'organ', 'image', 'landmarks'")
    accepted: bool = Field(False, description="quality measured and within the thresholds")
    usable_for_verdict: bool = Field(
        False, description="a verdict may rest on this alignment (accepted, or the same scanner frame by choice)"
    )
    message: str = ""


class Verdict(BaseModel):
    """Outcome by the standard ablation terminology (Ahmed et al. 2014)."""

    complete: bool = Field(description="technical success: tumour covered completely")
    term: str = Field(description="'technical success (complete ablation)' or 'incomplete ablation'")
    margin_class: str
    explanation: str
    sources: list[str] = Field(default_factory=list)


class MarginReport(BaseModel):
    """Minimal ablative margin, coverage and verdict for one tumour."""

    case_id: str | None = None
    tumour_label: str
    zone_label: str
    min_margin_mm: float = Field(
        description="signed, mm; negative = tumour outside the zone. The sub-voxel estimate where the grid "
        "resolves the tumour near its minimal margin, else the conservative value (margin_resolved false)"
    )
    min_margin_is_bound: bool = Field(
        False, description="true when every surface point was beyond the search range: a bound"
    )
    min_margin_location_lps: list[float] | None = None
    min_margin_estimate_mm: float = Field(description="sub-voxel estimate (anti-aliased surfaces)")
    min_margin_conservative_mm: float = Field(
        description="lower bound: tumour grown to the next voxel centre in every direction vs the zone surface"
    )
    margin_resolved: bool = Field(
        True, description="false when a pointed tumour part near the minimum is finer than the grid"
    )
    resolution_note: str = ""
    min_margin_voxel_mm: float = Field(description="voxel-centre EDT estimate (coarser, cross-check)")
    mean_margin_mm: float
    median_margin_mm: float
    surface_pct_by_class: dict[str, float] = Field(description="'<0', '0-5', '>=5' -> % surface")
    histogram: MarginHistogram
    tumour_volume_ml: float
    zone_volume_ml: float
    tumour_covered_pct: float
    tumour_plus_shell_covered_pct: float
    shell_covered_pct: float
    shell_mm: float
    residual: ResidualTumour
    capsule_rule: bool = False
    capsule_exclusion_mm: float | None = None
    vessel_rule: bool = False
    vessel_exclusion_mm: float | None = None
    excluded_surface_pct: float = 0.0
    spacing_mm: list[float] = Field(description="voxel size i, j, k of the evaluation grid")
    smoothing_mm: list[float] = Field(description="Gaussian anti-aliasing sigma per axis i, j, k (mm)")
    zone_restored_under_tumour: bool = Field(
        False, description="one-label-per-voxel map: the zone hidden under the tumour label was restored"
    )
    layout_note: str = ""
    registration: RegistrationQuality | None = None
    verdict: Verdict
    files: dict[str, str] = Field(default_factory=dict, description="outputs written, name -> path")
