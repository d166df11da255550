"""Peak skin dose of a fluoroscopic procedure from its irradiation-event geometry.

Model (state of the art for a first estimate, not a dosimeter):

* The patient is a box on the table top (width x thickness from ``data/skin_dose.yaml``), lying
  head-first supine; the isocentre of the first event sits mid-thickness above the table, on the
  mid-line. Later events move the isocentre by the *change* in table longitudinal, lateral and
  height positions (absolute table coordinates differ by vendor, so only differences are used;
  their sign convention is assumed: table +longitudinal = toward the head, +height = up).
* Beam direction from the positioner angles (primary: LAO +, secondary: CRA +), source at
  Distance Source to Isocenter (default 810 mm when absent) from the isocentre.
* The field at the reference point (15 cm from the isocentre toward the source, IEC 60601-2-43) is
  a square of area KAP / Ka,r (both from the event; exact for a uniform field) unless the report
  gives the collimated field height and width there.
* Air kerma at each skin cell inside the field = Ka,r x inverse square (reference point -> cell),
  x backscatter factor x tissue/air ratio, x table transmission for cells on the back when the
  source is under the table. Doses of all events add per cell; the peak is the largest cell.

Accuracy: not validated against measurement here. Published comparisons of comparable simple
models with film report deviations of tens of percent (patient size/shape, table attenuation
and field shape dominate); treat the estimate as triage for follow-up, never as the patient's dose.
Events without Ka,r, KAP or angles are skipped and counted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from pydantic import BaseModel, Field, ValidationError

from openir.core.errors import DataFileError

from .models import DoseReport, IrradiationEvent, SkinDoseResult

DEFAULT_FACTORS = Path(__file__).parent / "data" / "skin_dose.yaml"
REFERENCE_POINT_FROM_ISO_MM = 150.0  # IEC 60601-2-43 interventional reference point
DEFAULT_SOURCE_ISO_MM = 810.0  # used only when an event lacks Distance Source to Isocenter


class _Value(BaseModel):
    value: float = Field(gt=0)
    source: str = Field(min_length=3)


class _Patient(BaseModel):
    width_mm: _Value
    thickness_mm: _Value
    isocentre_above_table_mm: _Value


class SkinDoseFactors(BaseModel):
    version: int = 1
    backscatter_factor: _Value
    tissue_to_air: _Value
    table_transmission: _Value
    patient: _Patient


def load_factors(path: str | Path | None = None) -> SkinDoseFactors:
    p = Path(path) if path else DEFAULT_FACTORS
    try:
        return SkinDoseFactors.model_validate(yaml.safe_load(p.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise DataFileError(f"{p}: cannot read skin-dose factors: {exc}") from exc
    except ValidationError as exc:
        err = exc.errors()[0]
        raise DataFileError(f"{p} [{'.'.join(str(x) for x in err['loc'])}]: {err['msg']}") from exc


def beam_direction(primary_deg: float, secondary_deg: float) -> np.ndarray:
    """Unit vector source -> detector in the patient box frame (x left, y head, z anterior)."""
    a, b = np.radians(primary_deg), np.radians(secondary_deg)
    return np.array([np.sin(a) * np.cos(b), np.sin(b), np.cos(a) * np.cos(b)])


def _faces(width: float, thick: float, y: np.ndarray, grid: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Cell centres (n, 3) and outward normal of each skin face of the box."""
    nx = max(1, int(round(width / grid)))
    nz = max(1, int(round(thick / grid)))
    xs = (np.arange(nx) - (nx - 1) / 2) * (width / nx)
    zs = (np.arange(nz) + 0.5) * (thick / nz)
    out = {}
    gx, gy = np.meshgrid(xs, y, indexing="xy")
    for name, z, n in (("back", 0.0, (0, 0, -1)), ("front", thick, (0, 0, 1))):
        pts = np.stack([gx, gy, np.full_like(gx, z)], axis=-1)
        out[name] = (pts, np.array(n, float))
    gz, gy2 = np.meshgrid(zs, y, indexing="xy")
    for name, x, n in (("left", width / 2, (1, 0, 0)), ("right", -width / 2, (-1, 0, 0))):
        pts = np.stack([np.full_like(gz, x), gy2, gz], axis=-1)
        out[name] = (pts, np.array(n, float))
    return out


def skin_dose_maps(
    events: list[IrradiationEvent],
    *,
    grid_mm: float = 10.0,
    half_length_mm: float = 500.0,
    factors: SkinDoseFactors | None = None,
) -> tuple[dict[str, np.ndarray], int, int]:
    """Skin dose (Gy) per face cell, plus the number of events used and skipped."""
    f = factors or load_factors()
    width, thick = f.patient.width_mm.value, f.patient.thickness_mm.value
    h = f.patient.isocentre_above_table_mm.value
    scale = f.backscatter_factor.value * f.tissue_to_air.value
    y = np.arange(-half_length_mm, half_length_mm + grid_mm / 2, grid_mm)
    faces = _faces(width, thick, y, grid_mm)
    maps = {k: np.zeros(p.shape[:2]) for k, (p, _) in faces.items()}
    first = next((e for e in events), None)
    used = skipped = 0
    for e in events:
        kar, kap = e.dose_rp_gy, e.kap_gy_cm2
        if not kar or kar <= 0 or e.primary_angle_deg is None or e.secondary_angle_deg is None:
            skipped += 1
            continue
        d_si = e.source_isocenter_mm or DEFAULT_SOURCE_ISO_MM
        d_rp = d_si - REFERENCE_POINT_FROM_ISO_MM
        if e.field_height_mm and e.field_width_mm and e.source_detector_mm:
            s = d_rp / e.source_detector_mm  # reported sizes are at the receptor
            half = np.array([e.field_width_mm, e.field_height_mm]) * s / 2
        elif kap and kap > 0:
            side = np.sqrt(kap / kar * 100.0)  # cm² -> mm², square field at the reference point
            half = np.array([side, side]) / 2
        else:
            skipped += 1
            continue
        iso = np.array([0.0, 0.0, h])
        for attr, axis, sign in (("table_lateral_mm", 0, -1), ("table_longitudinal_mm", 1, -1), ("table_height_mm", 2, -1)):
            v, v0 = getattr(e, attr), getattr(first, attr)
            if v is not None and v0 is not None:
                iso[axis] += sign * (v - v0)
        u = beam_direction(e.primary_angle_deg, e.secondary_angle_deg)
        src = iso - d_si * u
        ref = np.array([0.0, 1.0, 0.0]) if abs(u[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
        e1 = np.cross(u, ref)
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(u, e1)
        tan_half = half / d_rp
        for name, (pts, normal) in faces.items():
            v = pts - src
            du = v @ u
            entering = (v @ normal) < 0
            with np.errstate(divide="ignore", invalid="ignore"):
                t1, t2 = (v @ e1) / du, (v @ e2) / du
            inside = entering & (du > 0) & (np.abs(t1) <= tan_half[0]) & (np.abs(t2) <= tan_half[1])
            if not inside.any():
                continue
            r2 = np.einsum("...i,...i->...", v, v)
            dose = kar * (d_rp**2 / r2) * scale
            if name == "back" and src[2] < 0:
                dose = dose * f.table_transmission.value
            maps[name][inside] += dose[inside]
        used += 1
    return maps, used, skipped


def peak_skin_dose(report: DoseReport | list[IrradiationEvent], *, grid_mm: float = 10.0,
                   factors: SkinDoseFactors | None = None) -> SkinDoseResult:
    """Peak skin dose estimate (Gy) of a projection report, with the model's assumptions."""
    events = report.events if isinstance(report, DoseReport) else list(report)
    f = factors or load_factors()
    maps, used, skipped = skin_dose_maps(events, grid_mm=grid_mm, factors=f)
    peak_face, peak = max(((k, float(m.max(initial=0.0))) for k, m in maps.items()), key=lambda kv: kv[1])
    kar = sum(e.dose_rp_gy or 0.0 for e in events)
    return SkinDoseResult(
        peak_skin_dose_gy=peak,
        dose_rp_total_gy=kar,
        events_used=used,
        events_skipped=skipped,
        face_of_peak=peak_face,
        grid_mm=grid_mm,
        assumptions=[
            f"box patient {f.patient.width_mm.value:g} x {f.patient.thickness_mm.value:g} mm, head-first supine",
            "isocentre mid-thickness on the mid-line at the first event; later events move it by table-position changes",
            "field at the reference point = KAP / Ka,r (square) unless field width/height are reported",
            f"backscatter {f.backscatter_factor.value:g}, tissue/air {f.tissue_to_air.value:g}, "
            f"table transmission {f.table_transmission.value:g} (see data/skin_dose.yaml)",
            "accuracy not validated here; expect deviations of tens of percent; triage only",
        ],
    )
