"""Pydantic models that leave the io package: Slicer markups and `openir info` results."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
    "Resources/Schema/markups-schema-v1.0.3.json#"
)


# ---- 3D Slicer markups (schema v1.0.3), LPS millimetres --------------------------------------------------
class ControlPoint(BaseModel):
    """One markup point; ``position`` in the markup's coordinate system (LPS when written by OpenIR)."""

    model_config = ConfigDict(extra="allow")

    id: str = ""
    label: str = ""
    description: str = ""
    associatedNodeID: str = ""
    position: list[float] = Field(min_length=3, max_length=3)
    orientation: list[float] = Field(default_factory=lambda: [-1.0, -0.0, -0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 1.0])
    selected: bool = True
    locked: bool = False
    visibility: bool = True
    positionStatus: Literal["undefined", "preview", "defined"] = "defined"


class Markup(BaseModel):
    """One markups node: a point list ("Fiducial") or a "Line" of exactly two points."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Fiducial", "Line", "Angle", "Curve", "ClosedCurve", "Plane", "ROI"]
    name: str = ""
    coordinateSystem: Literal["LPS", "RAS"] = "LPS"
    coordinateUnits: Literal["mm", "um"] = "mm"
    locked: bool = False
    fixedNumberOfControlPoints: bool = False
    labelFormat: str = "%N-%d"
    lastUsedControlPointNumber: int = 0
    controlPoints: list[ControlPoint] = Field(default_factory=list)
    measurements: list[dict] = Field(default_factory=list)
    display: dict | None = None

    @field_validator("controlPoints")
    @classmethod
    def _finite(cls, v: list[ControlPoint]) -> list[ControlPoint]:
        for cp in v:
            if any(x != x or x in (float("inf"), float("-inf")) for x in cp.position):
                raise ValueError(f"control point {cp.label or cp.id!r} has a non-finite position")
        return v


class MarkupsFile(BaseModel):
    """A Slicer ``.mrk.json`` file."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: str = Field(default=MARKUPS_SCHEMA, alias="@schema")
    markups: list[Markup]


class PointSet(BaseModel):
    """Named points in LPS mm (a Fiducial list)."""

    name: str
    points: dict[str, tuple[float, float, float]]


class LineMarkup(BaseModel):
    """A named straight line (e.g. a needle path) from ``start`` to ``end``, LPS mm."""

    name: str
    start: tuple[float, float, float]
    end: tuple[float, float, float]


# ---- openir info --------------------------------------------------------------------------------------
class LabelInfo(BaseModel):
    value: int
    name: str
    voxels: int
    volume_ml: float


class SeriesInfo(BaseModel):
    series_instance_uid: str
    modality: str
    files: int
    description: str = ""


class FileInfo(BaseModel):
    """What `openir info` found at a path."""

    path: str
    kind: Literal["dicom-series", "dicom-folder", "dicom-seg", "rtstruct", "dicom-other", "nifti", "nrrd", "markups"]
    modality: str = ""
    transfer_syntax: str = ""
    shape_ijk: tuple[int, int, int] | None = None
    spacing_mm: tuple[float, float, float] | None = None
    origin_lps_mm: tuple[float, float, float] | None = None
    direction: list[list[float]] | None = None
    grid: str = ""
    dtype: str = ""
    value_range: tuple[float, float] | None = None
    units: str = ""
    labels: list[LabelInfo] = Field(default_factory=list)
    series: list[SeriesInfo] = Field(default_factory=list)
    rois: list[str] = Field(default_factory=list)
    markups: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
