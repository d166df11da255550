"""Needle template export: the needle table and a 3D-printable plate fitted to the skin (binary STL).

The plate follows the skin under the planned entries (a shell of constant thickness along the
needle direction, its lower face on the skin) and has one guide hole per planned needle, along
that needle's own axis (coplanar or oblique). It is built as a voxel solid at 0.5 mm and meshed
with marching cubes, so the STL is closed (watertight) and printable; coordinates are LPS mm, so
the plate can be overlaid on the planning CT. Hole labels match the needle table.

>>> t = needle_table_rows(_example_plan())
>>> t[0]["hole"], t[0]["seeds"], t[0]["template_depth_mm"]
('M+0', 2, 65.0)
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from openir.core import LabelMap
from openir.core.errors import InputError

from .models import DoseMetrics, PlannedNeedle, SeedPlan


@dataclass(frozen=True)
class TemplateOptions:
    """Plate geometry (mm): thickness along the needle, border around the outer holes, guide-hole
    clearance around the needle, voxel size of the solid before meshing."""

    thickness_mm: float = 5.0
    border_mm: float = 10.0
    needle_diameter_mm: float = 1.27  # 18 G (ISO 9626), the pancreas guideline needle
    clearance_mm: float = 0.2
    voxel_mm: float = 0.5


@dataclass
class TemplateMesh:
    """Triangles (n, 3, 3) in LPS mm and facts about the plate."""

    triangles: np.ndarray
    holes: int
    thickness_mm: float
    size_mm: tuple[float, float]
    skin_found_pct: float


def needle_table_rows(plan: SeedPlan, thickness_mm: float = 5.0) -> list[dict]:
    """One row per needle: hole, depths (skin and template top to tip), seeds, entry/tip (LPS mm)."""
    rows = []
    for n in plan.needles:
        rows.append({
            "needle": n.index + 1, "hole": n.hole, "row": n.row, "col": n.col,
            "depth_from_skin_mm": round(n.depth_mm, 1),
            "template_depth_mm": round(n.depth_mm + thickness_mm, 1),
            "seeds": n.seeds, "seed_depths_from_skin_mm": " ".join(f"{v:.1f}" for v in n.seed_depths_mm),
            "entry_lps": " ".join(f"{v:.1f}" for v in n.entry_lps),
            "tip_lps": " ".join(f"{v:.1f}" for v in n.tip_lps),
            "direction_lps": " ".join(f"{v:.4f}" for v in n.direction_lps)})
    return rows


def needle_table_csv(plan: SeedPlan, thickness_mm: float = 5.0) -> str:
    rows = needle_table_rows(plan, thickness_mm)
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()


def _frame(plan: SeedPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if plan.template is not None:
        t = plan.template
        return (np.asarray(t.direction_lps), np.asarray(t.col_axis_lps), np.asarray(t.row_axis_lps))
    d = np.mean([n.direction_lps for n in plan.needles], axis=0)
    d /= np.linalg.norm(d)
    ref = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    cu = ref - (ref @ d) * d
    cu /= np.linalg.norm(cu)
    return d, cu, np.cross(d, cu)


def template_mesh(plan: SeedPlan, body: LabelMap | np.ndarray, grid_labels: LabelMap,
                  options: TemplateOptions | None = None) -> TemplateMesh:
    """The skin-fitted plate with guide holes for ``plan``'s needles (``body``: mask on the CT grid)."""
    from skimage.measure import marching_cubes

    opts = options or TemplateOptions()
    if not plan.needles:
        raise InputError("the plan has no needles: nothing to print", field="needles")
    mask = np.asarray(body.array > 0 if isinstance(body, LabelMap) else body, bool)
    grid = grid_labels.grid
    d, cu, rv = _frame(plan)
    entries = np.array([n.entry_lps for n in plan.needles])
    origin = entries.mean(axis=0)
    eu, ev = (entries - origin) @ cu, (entries - origin) @ rv
    h = opts.voxel_mm
    b = opts.border_mm
    us = np.arange(eu.min() - b, eu.max() + b + h, h)
    vs = np.arange(ev.min() - b, ev.max() + b + h, h)
    ew = (entries - origin) @ d
    # skin height along d for every (u, v): first body voxel walking in along d
    ws = np.arange(ew.min() - 40.0, ew.max() + 40.0, h)
    uu, vv = np.meshgrid(us, vs, indexing="ij")
    skin = np.full(uu.shape, np.nan)
    base = origin + uu[..., None] * cu + vv[..., None] * rv
    for w in ws:  # march inward; first hit wins
        pts = base + w * d
        idx = np.rint(grid.world_to_index(pts)).astype(np.int64)
        n = np.array(grid.shape_ijk)
        ok = np.all((idx >= 0) & (idx < n), axis=-1)
        hit = np.zeros(uu.shape, bool)
        ii = idx[ok]
        hit[ok] = mask[ii[:, 2], ii[:, 1], ii[:, 0]]
        new = hit & np.isnan(skin)
        skin[new] = w
    found = np.isfinite(skin)
    if not found.any():
        raise InputError("no skin found under the template area", field="template")
    lo_w = float(np.nanmin(skin)) - opts.thickness_mm - 2 * h
    hi_w = float(np.nanmax(skin)) + 2 * h
    wz = np.arange(lo_w, hi_w + h, h)
    solid = (found[..., None] & (wz[None, None, :] >= (skin[..., None] - opts.thickness_mm))
             & (wz[None, None, :] <= skin[..., None] - 0.5 * h))
    # guide holes along each needle's own axis: per w slice, the disc where the needle crosses it
    # (radius r / cos(tilt) covers the ellipse an oblique needle cuts: the hole errs on the wide side)
    r_hole = opts.needle_diameter_mm / 2 + opts.clearance_mm
    for n in plan.needles:
        a = np.asarray(n.entry_lps) - origin
        nd = np.asarray(n.direction_lps)
        a_u, a_v, a_w = a @ cu, a @ rv, a @ d
        n_u, n_v, n_w = nd @ cu, nd @ rv, nd @ d
        if n_w < 0.2:
            raise InputError(f"needle {n.hole} lies almost in the template plane: no printable guide", field="template")
        rad = r_hole / n_w
        for q, w in enumerate(wz):
            t = (w - a_w) / n_w
            cu_c, cv_c = a_u + t * n_u, a_v + t * n_v
            i0, i1 = np.searchsorted(us, [cu_c - rad - h, cu_c + rad + h])
            j0, j1 = np.searchsorted(vs, [cv_c - rad - h, cv_c + rad + h])
            if i1 <= i0 or j1 <= j0:
                continue
            du = us[i0:i1, None] - cu_c
            dv = vs[None, j0:j1] - cv_c
            solid[i0:i1, j0:j1, q] &= ~(du * du + dv * dv <= rad * rad)
    padded = np.pad(solid, 1).astype(np.float32)
    verts, faces, _n, _v = marching_cubes(padded, level=0.5, spacing=(h, h, h))
    verts -= h  # undo the pad
    faces = faces[:, ::-1]  # marching cubes winds toward the inside: outward normals for printers
    lps = (origin + (verts[:, 0:1] + us[0]) * cu + (verts[:, 1:2] + vs[0]) * rv + (verts[:, 2:3] + wz[0]) * d)
    tri = lps[faces]
    return TemplateMesh(tri, len(plan.needles), opts.thickness_mm,
                        (float(us[-1] - us[0]), float(vs[-1] - vs[0])), 100.0 * float(found.mean()))


def write_stl(path: str | Path, triangles: np.ndarray, name: str = "OpenIR seed template") -> Path:
    """Binary STL (little-endian): 80-byte header, count, then normal + 3 vertices + attribute per triangle.

    Written to a temporary file and renamed, so a crash never leaves a half-written STL.
    """
    tri = np.asarray(triangles, dtype=np.float64).reshape(-1, 3, 3)
    nrm = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    ln = np.linalg.norm(nrm, axis=1, keepdims=True)
    nrm = np.where(ln > 0, nrm / np.where(ln > 0, ln, 1), 0.0)
    rec = np.zeros(len(tri), dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]))
    rec["n"] = nrm
    rec["v"] = tri
    header = name.encode("ascii", "replace")[:80].ljust(80, b" ")
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".part")
    with open(tmp, "wb") as f:
        f.write(header)
        f.write(np.uint32(len(tri)).tobytes())
        f.write(rec.tobytes())
    tmp.replace(path)
    return path


def read_stl(path: str | Path) -> np.ndarray:
    """Triangles (n, 3, 3) of a binary STL (used by tests and to check a written file)."""
    data = Path(path).read_bytes()
    if len(data) < 84:
        raise InputError("not a binary STL (too short)", source=path)
    n = int(np.frombuffer(data[80:84], "<u4")[0])
    if len(data) != 84 + 50 * n:
        raise InputError(f"binary STL size does not match its {n} triangles", source=path)
    rec = np.frombuffer(data[84:], dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]))
    return rec["v"].astype(float)


def mesh_is_closed(triangles: np.ndarray, decimals: int = 4) -> bool:
    """True when every edge is shared by exactly two triangles (a watertight surface)."""
    v = np.round(np.asarray(triangles).reshape(-1, 3), decimals)
    _u, inv = np.unique(v, axis=0, return_inverse=True)
    f = inv.reshape(-1, 3)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _e, counts = np.unique(edges, axis=0, return_counts=True)
    return bool(np.all(counts == 2))


def _example_plan() -> SeedPlan:
    m = DoseMetrics(prescription_gy=120, target_volume_ml=1, d90_gy=130, d100_gy=90, v100_pct=95, v150_pct=50,
                    v200_pct=20, ci=0.7, ei=0.2, hi=0.5)
    n = PlannedNeedle(index=0, hole="M+0", row=0, col=0, direction_lps=(1, 0, 0), entry_lps=(-60, 0, 0),
                      tip_lps=(0, 0, 0), depth_mm=60.0, seeds=2, seed_depths_mm=[50.0, 55.0])
    return SeedPlan(site="liver", tumour="t", seed_model="6711", activity_mci=0.6, air_kerma_strength_U=0.762,
                    prescription_gy=120, margin_mm=5, seed_spacing_mm=5, needles=[n], seeds=[], metrics=m,
                    total_activity_mci=1.2, total_air_kerma_strength_U=1.5, target_centroid_lps=(0, 0, 0))

