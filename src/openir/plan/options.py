"""`PlanOptions`: every setting of an ablation plan in one validated model.

The same model sits behind the CLI (`openir plan`), the Python API (`plan_ablation`) and the web, so
a bad value is refused the same way everywhere: one message naming the field (``InputError``, exit
code 2), before anything is planned or written.

>>> from openir.plan import PlanOptions
>>> PlanOptions(modality="cryo", margin_mm=5).margin_mm
5.0
>>> PlanOptions.build(margin_mm=-1)
Traceback (most recent call last):
...
openir.core.errors.InputError: [margin_mm] must be >= 0 mm, got -1
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from openir.core.enums import AblationModality
from openir.core.errors import InputError

ModalityName = AblationModality
EvidenceName = Literal["manufacturer", "clinical", "in vivo animal", "ex vivo", "phantom"]


class PlanOptions(BaseModel):
    """Settings of one plan (units in the names). Defaults follow the packaged data files."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    modality: ModalityName | None = Field(None, description="override; default: weighed per tumour")
    devices: list[str] = Field(default_factory=list, description="restrict to these catalogue device ids")
    tumour_type: str = "unknown"
    margin_mm: float | None = Field(None, ge=0, description="default: per organ, margins.yaml")
    clip_to_organ: bool | None = None
    uncertainty_mm: float | None = Field(None, ge=0)
    needle_length_mm: float = Field(150.0, gt=0)
    keep_away: dict[str, float] = Field(default_factory=dict)
    n_directions: int = Field(4000, ge=10)
    n_paths: int = Field(6, ge=1)
    plan_voxel_mm: float = Field(2.0, gt=0)
    required_coverage: float | None = Field(None, gt=0, le=1)
    tip_offset_mm: float = Field(0.0, ge=0, description="tip beyond the zone centre where the catalogue has none")
    tissue: Literal["prefer", "require", "any"] = "prefer"
    max_probes: int | None = Field(None, ge=1, description="cap per tumour; never above configurations.yaml")
    beyond_practice: bool = Field(False, description="lift the practice probe count by tumour size "
                                  "(configurations.yaml practice_probes); the plan says so")
    lattice_fraction: float = Field(0.5, gt=0, le=1)
    zone_model: Literal["table", "physics", "both"] = "table"
    physics_spacing_mm: float = Field(2.0, gt=0)
    evidence: EvidenceName | None = None
    compare_modalities: bool = Field(True, description="plan the rule-near modalities and weigh them")

    @classmethod
    def build(cls, base: PlanOptions | None = None, **overrides) -> PlanOptions:
        """``base`` with ``overrides`` applied; a bad value raises ``InputError`` naming the field."""
        data = (base.model_dump() if base is not None else {}) | overrides
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(x) for x in err["loc"]) or "options"
            raise InputError(_message(err), field=field) from None


def _message(err: dict) -> str:
    kind, ctx, got = err.get("type", ""), err.get("ctx") or {}, err.get("input")
    unit = " mm" if str(err["loc"][0]).endswith("_mm") else ""
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}{unit}, got {got!r}"
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')}{unit}, got {got!r}"
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}{unit}, got {got!r}"
    if kind == "extra_forbidden":
        return f"unknown plan option {err['loc'][0]!r}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}, got {got!r}"
    return f"{err.get('msg', 'invalid')}, got {got!r}"
