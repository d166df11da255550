"""Minimal ablative margin and coverage of a tumour by an ablation zone (masks in one frame).

Why this shape:
- Work happens in a crop around the tumour (box + search range + shell), never on the whole
  volume: a margin only needs the zone surface near the tumour. If every surface point is farther
  than the search range, the range doubles until the answer is exact or the crop is the image.
- Binary masks put a surface anywhere within half a voxel; taking the minimum over thousands of
  surface points turns that staircase noise into a bias of almost a voxel. Both masks are therefore
  anti-aliased with a Gaussian whose width follows the voxel size along each axis (a 5 mm slice
  direction never blurs the 0.7 mm in-plane directions), their 0.5 iso-surfaces extracted with
  marching cubes, and the margin at each tumour-surface vertex is its exact distance to the zone
  mesh, positive inside the zone and negative outside.
- That estimate assumes a smooth tumour. A pointed spur can hide between slices, and any
  smoothing blunts it, so the estimate would over-state the margin. Where the tumour near the
  minimal margin is pointed at the scale of the grid (little of a 3 mm neighbourhood is tumour),
  the margin is marked unresolved and the conservative value is reported: the tumour grown to its
  largest extent the samples allow (up to the next voxel centre in every direction) against the
  zone surface. The error table on analytic shapes is in benchmarks/RESULTS.md (issue 16).
- A voxel-centre estimate (signed Euclidean distance transform of the zone at tumour-surface
  voxels) is kept as a cross-check; the benchmark compares it with the whole-volume transform.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage.measure import marching_cubes

from openir.core.crop import Box, bounding_box, pad_box
from openir.core.errors import GeometryError, InputError
from openir.core.volume import Grid, Volume

from .config import load_config
from .meshdist import point_mesh_distance
from .models import MarginHistogram, MarginReport, ResidualTumour
from .verdict import classify

_LPS_WORDS = (("left", "right"), ("posterior", "anterior"), ("superior", "inferior"))
SMOOTH_ITER = 5  # ~2 voxels of neighbour averaging on the mesh: removes staircase noise, keeps the shape
_FULL = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class MarginOptions:
    """How to measure; ``None`` takes the packaged default from ``data/verification.yaml``.

    ``capsule_rule`` / ``vessel_rule``: no margin is required beyond the organ capsule or the wall
    of a large vessel (Sandu et al. 2021): a tumour-surface point closer than the exclusion distance
    to it is left out of the minimal margin where the zone reaches that boundary.
    """

    shell_mm: float | None = None
    search_mm: float = 15.0
    smoothing_factor: float | None = None  # x voxel size along each axis; 0 = raw masks
    capsule_rule: bool = False
    capsule_exclusion_mm: float | None = None
    vessel_rule: bool = False
    vessel_exclusion_mm: float | None = None
    tumour_label: str = "tumour"
    zone_label: str = "ablation_zone"
    case_id: str | None = None


@dataclass(frozen=True)
class _Settings:
    shell: float
    caps_mm: float
    vessel_mm: float
    sigma_kji: np.ndarray  # Gaussian sigma per array axis, mm
    sharp_sigma: float
    sharp_threshold: float
    capsule_rule: bool
    vessel_rule: bool


@dataclass
class CropMargins:
    """Everything measured on the crop around the tumour (crop millimetres, array k, j, i order)."""

    t: np.ndarray
    z: np.ndarray
    vt: np.ndarray  # tumour-surface vertices
    faces: np.ndarray
    margins: np.ndarray  # sub-voxel estimate per vertex (signed, mm)
    excluded: np.ndarray  # left out by the capsule / vessel rule
    filled: np.ndarray  # fraction of a sharpness_sigma neighbourhood that is tumour, per vertex
    filled_voxel_min: float  # the same at the tumour-surface voxels nearest the zone boundary
    conservative_min: float  # tumour at its largest sampled extent vs the zone surface
    vox: np.ndarray  # voxel-centre margins at tumour-surface voxels
    grown: np.ndarray  # tumour + shell
    shell_only: np.ndarray


@dataclass
class MarginAnalysis:
    """A `MarginReport` plus the margin map (surface mesh in LPS mm and values per vertex)."""

    report: MarginReport
    vertices_lps: np.ndarray
    faces: np.ndarray
    margins_mm: np.ndarray
    excluded: np.ndarray
    surface_map: Volume  # signed margin on tumour-surface voxels (NaN elsewhere), on the crop grid
    crop_box: Box
    extra: dict = field(default_factory=dict)


def _check_grid(grid: Grid) -> None:
    d = grid.direction
    if not np.allclose(d.T @ d, np.eye(3), atol=1e-4):
        raise GeometryError("margins need an orthogonal voxel grid; resample the masks first")


def _smooth(mask: np.ndarray, sigma_kji: np.ndarray, spacing_kji: np.ndarray) -> np.ndarray:
    f = mask.astype(np.float32)
    if not np.any(sigma_kji > 0):
        return f
    return ndimage.gaussian_filter(f, sigma=tuple(sigma_kji / spacing_kji), mode="nearest", truncate=3.0)


def _surface(field: np.ndarray, spacing_kji: np.ndarray, level: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Iso-surface in crop millimetres (k, j, i order); empty arrays when there is none."""
    if field.min() >= level or field.max() <= level:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    v, f, _, _ = marching_cubes(field, level, spacing=tuple(float(s) for s in spacing_kji))
    return v, f


def _adjacency(faces: np.ndarray, n: int):
    from scipy import sparse

    i = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2], faces[:, 1], faces[:, 2], faces[:, 0]])
    j = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0], faces[:, 0], faces[:, 1], faces[:, 2]])
    adj = sparse.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    adj.data[:] = 1.0
    return adj


def _smooth_on_mesh(values: np.ndarray, faces: np.ndarray, n: int, iterations: int) -> np.ndarray:
    """Average each vertex value with its mesh neighbours ``iterations`` times (staircase noise)."""
    if iterations <= 0 or len(faces) == 0 or not np.all(np.isfinite(values)):
        return values
    from scipy import sparse

    adj = _adjacency(faces, n) + sparse.identity(n, format="csr")
    w = np.asarray(adj.sum(axis=1)).ravel()
    out = values.astype(float)
    for _ in range(iterations):
        out = (adj @ out) / w
    return out


def _vertex_areas(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    tri = v[f]
    a = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    out = np.zeros(len(v))
    for c in range(3):
        np.add.at(out, f[:, c], a / 3.0)
    return out


def signed_voxel_margin(tumour: np.ndarray, zone: np.ndarray, spacing_kji: np.ndarray) -> np.ndarray:
    """Voxel-centre margin at the tumour-surface voxels (same order as ``np.nonzero`` of them).

    Inside the zone: distance to the nearest non-zone voxel centre; outside: minus the distance to
    the nearest zone voxel centre. Exact for the masks as sampled, so it agrees between a crop and
    the whole volume wherever the crop holds the nearest voxel.
    """
    surf = tumour & ~ndimage.binary_erosion(tumour, border_value=1)
    if zone.all():
        return np.full(int(surf.sum()), np.inf)
    d_in = ndimage.distance_transform_edt(zone, sampling=spacing_kji)
    d_out = ndimage.distance_transform_edt(~zone, sampling=spacing_kji) if zone.any() else None
    vals = d_in[surf]
    if d_out is not None:
        outside = ~zone[surf]
        vals = np.where(outside, -d_out[surf], vals)
    else:
        vals = np.full(vals.shape, -np.inf)
    return vals


def _direction_words(v: np.ndarray) -> str:
    if np.linalg.norm(v) < 1e-6:
        return "central"
    parts = []
    a = np.abs(v)
    for ax in np.argsort(-a):
        if a[ax] >= 0.5 * a.max():
            parts.append(_LPS_WORDS[ax][0 if v[ax] > 0 else 1])
    return "-".join(parts)


def _settings(opts: MarginOptions, spacing_kji: np.ndarray) -> _Settings:
    cfg = load_config().margins
    factor = float(cfg.smoothing_factor.value if opts.smoothing_factor is None else opts.smoothing_factor)  # type: ignore[arg-type]
    return _Settings(
        shell=float(cfg.shell_mm.value if opts.shell_mm is None else opts.shell_mm),  # type: ignore[arg-type]
        caps_mm=float(cfg.capsule_exclusion_mm.value if opts.capsule_exclusion_mm is None  # type: ignore[arg-type]
                      else opts.capsule_exclusion_mm),
        vessel_mm=float(cfg.vessel_exclusion_mm.value if opts.vessel_exclusion_mm is None  # type: ignore[arg-type]
                        else opts.vessel_exclusion_mm),
        sigma_kji=factor * spacing_kji,
        sharp_sigma=float(cfg.sharpness_sigma_mm.value),  # type: ignore[arg-type]
        sharp_threshold=float(cfg.sharpness_threshold.value),  # type: ignore[arg-type]
        capsule_rule=opts.capsule_rule,
        vessel_rule=opts.vessel_rule,
    )


def margin_analysis(
    tumour: np.ndarray,
    zone: np.ndarray,
    grid: Grid,
    *,
    organ: np.ndarray | None = None,
    vessels: np.ndarray | None = None,
    options: MarginOptions | None = None,
) -> MarginAnalysis:
    """Margins of ``tumour`` inside ``zone`` (boolean ``[k, j, i]`` masks on ``grid``).

    ``organ`` / ``vessels`` are used by the capsule / vessel rules of ``options``; coverage always
    counts every tumour voxel.

    >>> import numpy as np
    >>> from openir.core import Grid, make_affine
    >>> g = Grid((40, 40, 40), make_affine((1.0, 1.0, 1.0)))
    >>> d = np.linalg.norm(g.voxel_centres() - 19.6, axis=-1)
    >>> r = margin_analysis(d <= 8.0, d <= 14.0, g).report
    >>> abs(r.min_margin_mm - 6.0) < 0.5, r.margin_resolved, r.verdict.margin_class
    (True, True, '>=5 mm')
    """
    opts = options or MarginOptions()
    tumour = np.asarray(tumour, dtype=bool)
    zone = np.asarray(zone, dtype=bool)
    if tumour.shape != grid.shape or zone.shape != grid.shape:
        raise GeometryError(f"the tumour mask {tumour.shape} and the ablation-zone mask {zone.shape} must be on one "
                            f"voxel grid {grid.shape} (k, j, i): resample one onto the other's image first")
    if not tumour.any():
        raise InputError(f"the tumour mask '{opts.tumour_label}' is empty", field=opts.tumour_label)
    if not zone.any():
        raise InputError(f"the ablation-zone mask '{opts.zone_label}' is empty", field=opts.zone_label)
    for name, m in (("organ", organ), ("vessel", vessels)):
        if m is not None and np.asarray(m).shape != grid.shape:
            raise GeometryError(f"{name} mask {np.asarray(m).shape} does not match the grid {grid.shape}")
    _check_grid(grid)
    spacing_kji = grid.spacing[::-1].copy()
    st = _settings(opts, spacing_kji)
    tbox = bounding_box(tumour)
    rule_mm = max(st.caps_mm if st.capsule_rule else 0.0, st.vessel_mm if st.vessel_rule else 0.0)
    search = max(float(opts.search_mm), st.shell + 1.0, rule_mm + 1.0)
    # the zone is smoothed up to the crop edge; the tumour (and its sharpness field) lies >= search inside
    pad_extra = 4.0 * float(st.sigma_kji.max()) + 2.0 * float(spacing_kji.max())
    while True:
        box = pad_box(tbox, grid, search + pad_extra)
        whole = all(s.start == 0 and s.stop == n for s, n in zip(box, grid.shape, strict=True))
        crop_m = _analyse_crop(
            tumour[box], zone[box],
            None if organ is None else np.asarray(organ, dtype=bool)[box],
            None if vessels is None else np.asarray(vessels, dtype=bool)[box],
            spacing_kji, st,
        )
        finite = crop_m.margins[np.isfinite(crop_m.margins)]
        beyond = finite.size == 0 or np.abs(finite).min() >= search
        if not beyond or whole:
            break
        search *= 2.0
    sub = grid.subgrid([s.start for s in box], tumour[box].shape)
    return _build(crop_m, sub, box, grid, st, bool(beyond and not whole), opts)


def _signed_to_mesh(points: np.ndarray, vz: np.ndarray, fzt: np.ndarray, fz: np.ndarray,
                    spacing_kji: np.ndarray) -> np.ndarray:
    dist, _ = point_mesh_distance(points, vz, fzt)
    inside = ndimage.map_coordinates(fz, (points / spacing_kji).T, order=1, mode="nearest") >= 0.5
    return np.where(inside, dist, -dist)


def _rule_exclusion(points: np.ndarray, margins: np.ndarray, boundary_dist: np.ndarray | None,
                    limit_mm: float, spacing_kji: np.ndarray) -> np.ndarray:
    """Points near a boundary (capsule, vessel wall) where the zone reaches that boundary."""
    if boundary_dist is None:
        return np.zeros(len(points), dtype=bool)
    d = ndimage.map_coordinates(boundary_dist, (points / spacing_kji).T, order=1, mode="nearest")
    reach_tol = float(spacing_kji.max())  # the boundary distance from voxel centres is good to a voxel
    return (d < limit_mm) & (margins >= 0.0) & (margins >= d - reach_tol)


def _analyse_crop(t, z, organ, vessels, spacing_kji: np.ndarray, st: _Settings) -> CropMargins:
    ft = _smooth(t, st.sigma_kji, spacing_kji)
    if ft.max() <= 0.5:  # tumour smaller than the smoothing kernel: use the raw mask
        ft = t.astype(np.float32)
    fz = _smooth(z, st.sigma_kji, spacing_kji)
    vt, ftri = _surface(ft, spacing_kji)
    vz, fzt = _surface(fz, spacing_kji)
    margins = _smooth_on_mesh(_signed_to_mesh(vt, vz, fzt, fz, spacing_kji), ftri, len(vt), SMOOTH_ITER)
    # capsule / vessel rules: distance of each point to the boundary it may not need a margin beyond
    d_caps = d_ves = None
    if st.capsule_rule and organ is not None and organ.any() and not organ.all():
        d_caps = ndimage.distance_transform_edt(organ, sampling=spacing_kji).astype(np.float32)
    if st.vessel_rule and vessels is not None and vessels.any():
        d_ves = ndimage.distance_transform_edt(~vessels, sampling=spacing_kji).astype(np.float32)

    def excluded_at(points: np.ndarray, m: np.ndarray) -> np.ndarray:
        return (_rule_exclusion(points, m, d_caps, st.caps_mm, spacing_kji)
                | _rule_exclusion(points, m, d_ves, st.vessel_mm, spacing_kji))

    excluded = excluded_at(vt, margins)
    # how pointed the tumour is around each surface point (a smooth surface fills about half)
    fl = ndimage.gaussian_filter(t.astype(np.float32), sigma=tuple(st.sharp_sigma / spacing_kji), mode="constant",
                                 truncate=2.5)
    filled = ndimage.map_coordinates(fl, (vt / spacing_kji).T, order=1, mode="nearest")
    # ... and at the sampled tumour surface itself, where smoothing has not yet blunted a spur
    surf = t & ~ndimage.binary_erosion(t, border_value=1)
    # conservative: tumour up to the next voxel centre in every direction vs the zone surface
    vmax, _ = _surface(ndimage.binary_dilation(t, _FULL).astype(np.float32), spacing_kji, level=0.98)
    m_max = _signed_to_mesh(vmax, vz, fzt, fz, spacing_kji)
    keep = ~excluded_at(vmax, m_max) & np.isfinite(m_max)
    cons = float(m_max[keep].min()) if keep.any() else float(np.min(m_max, initial=np.inf))
    # voxel-level cross-check and coverage
    vox = signed_voxel_margin(t, z, spacing_kji)
    h = float(spacing_kji.max())
    vox_near = vox <= np.min(vox, initial=np.inf) + h
    filled_vox_min = float(fl[surf][vox_near].min()) if vox_near.any() else 1.0
    d_t = ndimage.distance_transform_edt(~t, sampling=spacing_kji)
    grown = d_t <= st.shell
    return CropMargins(t=t, z=z, vt=vt, faces=ftri, margins=margins, excluded=excluded, filled=filled,
                       filled_voxel_min=filled_vox_min, conservative_min=cons, vox=vox, grown=grown,
                       shell_only=grown & ~t)


def _residual_pieces(vt: np.ndarray, faces: np.ndarray, margins: np.ndarray, areas: np.ndarray,
                     min_area: float) -> int:
    """Connected patches of tumour surface outside the zone (mesh connectivity), ignoring specks."""
    neg = margins < 0
    if not neg.any():
        return 0
    from scipy.sparse.csgraph import connected_components

    idx = np.flatnonzero(neg)
    sub = _adjacency(faces, len(vt))[idx][:, idx]
    n, lab = connected_components(sub, directed=False)
    patch_area = np.bincount(lab, weights=areas[idx], minlength=n)
    return max(int((patch_area >= min_area).sum()), 1)


@dataclass(frozen=True)
class _MinMargin:
    value: float
    estimate: float
    conservative: float
    resolved: bool
    note: str
    index: int  # vertex of the estimate's minimum


def _minimal(c: CropMargins, use: np.ndarray, st: _Settings, spacing_kji: np.ndarray) -> _MinMargin:
    m_use = c.margins[use]
    imin = int(np.flatnonzero(use)[np.argmin(m_use)])
    est = float(c.margins[imin])
    h = float(spacing_kji.max())
    near = use & (c.margins <= est + h)
    coarse = h > st.sharp_sigma  # the grid cannot even show whether the tumour is pointed
    sharp = coarse or c.filled_voxel_min < st.sharp_threshold or bool(np.any(c.filled[near] < st.sharp_threshold))
    cons = min(c.conservative_min, est)
    if not sharp:
        return _MinMargin(est, est, cons, True, "", imin)
    sp = " x ".join(f"{s:g}" for s in spacing_kji[::-1])
    why = (f"voxels longer than {st.sharp_sigma:g} mm cannot show whether the tumour is pointed" if coarse
           else "the tumour is pointed near its minimal margin")
    note = (f"unresolved: {why}, so a {sp} mm grid cannot place the tumour surface within half a voxel "
            f"({h / 2:.1f} mm); the conservative value {cons:.1f} mm is reported (sub-voxel estimate "
            f"{est:.1f} mm)")
    return _MinMargin(cons, est, cons, False, note, imin)


def _build(c: CropMargins, sub: Grid, box, grid: Grid, st: _Settings, bound: bool,
           opts: MarginOptions) -> MarginAnalysis:
    cfg = load_config().margins
    t, z, vt, faces, margins, excluded = c.t, c.z, c.vt, c.faces, c.margins, c.excluded
    spacing_kji = sub.spacing[::-1]
    areas = _vertex_areas(vt, faces)
    use = ~excluded & np.isfinite(margins)
    if not use.any():  # everything excluded by the rules: fall back to all points
        use = np.isfinite(margins)
    if not use.any():
        raise InputError("no tumour-surface point lies within reach of the ablation zone")
    mm = _minimal(c, use, st, spacing_kji)
    m_use, a_use = margins[use], areas[use]
    idx_ijk = (vt / spacing_kji)[:, ::-1]
    verts_lps = sub.index_to_world(idx_ijk)
    order = np.argsort(m_use)
    cum = np.cumsum(a_use[order]) / a_use.sum()
    median = float(m_use[order][np.searchsorted(cum, 0.5)])
    edges_cls = [float(e) for e in cfg.histogram_edges_mm.value]  # type: ignore[union-attr]
    lo, hi = edges_cls[0], edges_cls[1]
    tot = a_use.sum()
    by_class = {
        f"<{lo:g}": float(100 * a_use[m_use < lo].sum() / tot),
        f"{lo:g}-{hi:g}": float(100 * a_use[(m_use >= lo) & (m_use < hi)].sum() / tot),
        f">={hi:g}": float(100 * a_use[m_use >= hi].sum() / tot),
    }
    fine_lo = float(np.clip(np.floor(m_use.min()), -20, 0))
    fine_hi = float(np.clip(np.ceil(m_use.max()), 1, 20))
    fine_edges = np.arange(fine_lo, fine_hi + 1.0, 1.0)
    hist, _ = np.histogram(np.clip(m_use, fine_edges[0], fine_edges[-1]), bins=fine_edges, weights=a_use)
    vv = sub.voxel_volume_mm3 / 1000.0
    n_t = int(t.sum())
    resid = t & ~z
    sorted_sp = np.sort(spacing_kji)
    n_comp = _residual_pieces(vt, faces, margins, areas, float(sorted_sp[1] * sorted_sp[2])) if resid.any() else 0
    residual = ResidualTumour(volume_ml=float(resid.sum() * vv), n_components=n_comp)
    if resid.any():
        c_res = np.argwhere(resid).mean(axis=0)[::-1]
        c_t = np.argwhere(t).mean(axis=0)[::-1]
        p_res, p_t = sub.index_to_world(c_res), sub.index_to_world(c_t)
        residual.centroid_lps = [round(float(x), 2) for x in p_res]
        residual.direction = _direction_words(p_res - p_t)
    verdict = classify(mm.value, residual_ml=residual.volume_ml, resolved=mm.resolved, estimate_mm=mm.estimate)
    report = MarginReport(
        case_id=opts.case_id,
        tumour_label=opts.tumour_label,
        zone_label=opts.zone_label,
        min_margin_mm=round(mm.value, 3),
        min_margin_is_bound=bound,
        min_margin_location_lps=[round(float(x), 2) for x in verts_lps[mm.index]],
        min_margin_estimate_mm=round(mm.estimate, 3),
        min_margin_conservative_mm=round(mm.conservative, 3),
        margin_resolved=mm.resolved,
        resolution_note=mm.note,
        min_margin_voxel_mm=round(float(c.vox.min()), 3),
        mean_margin_mm=round(float(np.average(m_use, weights=a_use)), 3),
        median_margin_mm=round(median, 3),
        surface_pct_by_class={k: round(v, 2) for k, v in by_class.items()},
        histogram=MarginHistogram(
            edges_mm=[float(e) for e in fine_edges], area_pct=[round(float(h), 3) for h in 100 * hist / tot]
        ),
        tumour_volume_ml=round(n_t * vv, 4),
        zone_volume_ml=round(float(z.sum()) * vv, 4),  # within the crop; whole zone if it fits
        tumour_covered_pct=round(100.0 * float((t & z).sum()) / n_t, 3),
        tumour_plus_shell_covered_pct=round(100.0 * float((c.grown & z).sum()) / max(int(c.grown.sum()), 1), 3),
        shell_covered_pct=round(100.0 * float((c.shell_only & z).sum()) / max(int(c.shell_only.sum()), 1), 3),
        shell_mm=st.shell,
        residual=residual,
        capsule_rule=st.capsule_rule,
        capsule_exclusion_mm=st.caps_mm if st.capsule_rule else None,
        vessel_rule=st.vessel_rule,
        vessel_exclusion_mm=st.vessel_mm if st.vessel_rule else None,
        excluded_surface_pct=round(100.0 * float(areas[excluded].sum() / areas.sum()), 2),
        spacing_mm=[round(float(s), 4) for s in grid.spacing],
        smoothing_mm=[round(float(s), 3) for s in st.sigma_kji[::-1]],
        verdict=verdict,
    )
    # margin map on the crop: per surface voxel, the smallest vertex margin falling in it
    vmap = np.full(t.shape, np.inf, dtype=np.float32)
    ki = np.clip(np.rint(vt / spacing_kji).astype(int), 0, np.array(t.shape) - 1)
    np.minimum.at(vmap, (ki[:, 0], ki[:, 1], ki[:, 2]), margins.astype(np.float32))
    vmap[~np.isfinite(vmap)] = np.nan
    surface_map = Volume(vmap, sub.affine.copy(), {"quantity": "signed margin", "unit": "mm"})
    return MarginAnalysis(report, verts_lps, faces, margins, excluded, surface_map, box)


__all__ = ["CropMargins", "MarginAnalysis", "MarginOptions", "margin_analysis", "signed_voxel_margin"]
