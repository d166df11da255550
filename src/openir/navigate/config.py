"""Navigation thresholds from ``data/navigation.yaml``: registration limits, guidance tolerances and
alert distances, each with its source (unsourced values are marked NOT SOURCED in the file)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from openir.core.datafiles import Sourced, load_packaged, load_yaml_model


class RegistrationLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_fre_mm: Sourced
    max_expected_tre_mm: Sourced
    min_fiducials: Sourced
    max_surface_rms_mm: Sourced


class GuidanceLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    off_path_mm: Sourced
    off_path_deg: Sourced
    past_target_mm: Sourced
    approach_warning_mm: Sourced
    default_keep_away_mm: Sourced
    shaft_length_mm: Sourced
    sample_step_mm: Sourced
    guided_margin_mm: Sourced
    clearance_cap_mm: Sourced


class RobotSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approach_standoff_mm: Sourced


class NavigationConfig(BaseModel):
    """The whole ``navigation.yaml`` file."""

    model_config = ConfigDict(extra="forbid")
    version: str
    registration: RegistrationLimits
    guidance: GuidanceLimits
    robot: RobotSettings


def load_navigation_config(path: str | Path | None = None) -> NavigationConfig:
    """The packaged thresholds, or those of ``path`` (same schema).

    >>> load_navigation_config().guidance.off_path_mm.value > 0
    True
    """
    if path is not None:
        return load_yaml_model(NavigationConfig, path)
    return load_packaged(NavigationConfig, "openir.navigate", "data/navigation.yaml")
