"""The planning target: tumour plus its required margin, and the uncertainty band kept apart.

The margin comes from ``data/margins.yaml`` (per organ, with its source) unless given. Voxels of the
margin that lie outside the body, inside a must-spare structure or (when clipping is on, as for
subcapsular liver tumours) beyond the organ capsule are left out of the target and reported by
reason. Everything is computed on a crop around the tumour, optionally coarsened (integer stride)
to a planning voxel size so the optimiser's cost does not grow with the scan resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from openir.core import Grid, LabelMap
from openir.core.body import body_mask_from_arrays
from openir.core.crop import Box, bounding_box, pad_box

from .models import TargetSpec
from .policy import is_target_label
from .rules import MarginTable, load_margins, matches


@dataclass(frozen=True)
class TargetOverrides:
    """User choices that replace the margin table's: ``margin_mm``, ``clip_to_organ``,
    ``uncertainty_mm`` (None: the table's sourced value) and must-spare names added
    (``spare_extra``) or allowed (``spare_allow``).

    >>> TargetOverrides(margin_mm=10.0).clip_to_organ is None
    True
    """

    margin_mm: float | None = None
    clip_to_organ: bool | None = None
    uncertainty_mm: float | None = None
    spare_extra: list[str] | None = None
    spare_allow: list[str] | None = None


@dataclass
class PlanningTarget:
    """Masks of one target on its crop (array order k, j, i) plus the spec that describes them."""

    spec: TargetSpec
    box: Box  # native crop box in the full label map
    native_grid: Grid
    grid: Grid  # planning grid (native crop, possibly strided)
    stride: tuple[int, int, int]
    labels: np.ndarray  # label values on the planning grid
    tumour: np.ndarray
    target: np.ndarray
    band: np.ndarray
    body: np.ndarray
    must_spare: np.ndarray
    must_spare_names: list[str] = field(default_factory=list)
    host_value: int | None = None
    native: dict[str, np.ndarray] = field(default_factory=dict)  # the same masks at full resolution


def must_spare_values(labels: LabelMap, margins: MarginTable, host_label: str | None,
                      extra: list[str] | None = None, allow: list[str] | None = None) -> dict[int, str]:
    """Label values that zones must never overlap (the host organ and tumours excluded)."""
    pats = list(margins.must_spare.labels) + list(extra or [])
    out = {}
    for v, n in labels.labels.items():
        if is_target_label(n) or (host_label and n == host_label):
            continue
        if allow and matches(n, allow):
            continue
        if matches(n, pats):
            out[v] = n
    return out


def _strided(grid: Grid, f: tuple[int, int, int]) -> tuple[Grid, tuple[slice, slice, slice]]:
    """The grid of every f-th voxel (starting at f//2) and the slices that pick it (k, j, i)."""
    sl = tuple(slice(fa // 2, None, fa) for fa in f)
    shape = tuple(len(range(s.start, n, s.step)) for s, n in zip(sl, grid.shape, strict=True))
    aff = grid.affine.copy()
    aff[:3, :3] = aff[:3, :3] * np.array(f[::-1], dtype=float)[None, :]
    aff[:3, 3] = grid.index_to_world([f[2] // 2, f[1] // 2, f[0] // 2])
    return Grid(shape, aff), sl  # type: ignore[arg-type]


def build_target(labels: LabelMap, tumour: str, *, organ: str = "soft_tissue", organ_label: str | None = None,
                 overrides: TargetOverrides | None = None, pad_mm: float = 0.0, plan_voxel_mm: float = 2.0,
                 body_mask: np.ndarray | None = None, margins: MarginTable | None = None) -> PlanningTarget:
    """Tumour + margin target on a crop padded by ``pad_mm`` (room for every zone touching it);
    ``overrides`` (TargetOverrides) replace the margin table's values."""
    ov = overrides or TargetOverrides()
    margin_mm, clip_to_organ, uncertainty_mm = ov.margin_mm, ov.clip_to_organ, ov.uncertainty_mm
    spare_extra, spare_allow = ov.spare_extra, ov.spare_allow
    margins = margins or load_margins()
    om = margins.for_organ(organ)
    m_mm = om.margin_mm if margin_mm is None else float(margin_mm)
    m_src = om.source if margin_mm is None else "user"
    clip = om.clip_to_organ if clip_to_organ is None else bool(clip_to_organ)
    unc = margins.uncertainty_mm if uncertainty_mm is None else float(uncertainty_mm)
    unc_src = margins.uncertainty_source if uncertainty_mm is None else "user"
    tm_full = labels.mask(tumour)
    g = labels.grid
    box = pad_box(bounding_box(tm_full), g, m_mm + unc + pad_mm + 2 * float(g.spacing.max()))
    arr = labels.array[box]
    ngrid = g.subgrid([s.start for s in box], arr.shape)
    sp = g.spacing[::-1]
    tm = tm_full[box]
    body = arr > 0 if body_mask is None else (body_mask[box] | (arr > 0))
    spare = must_spare_values(labels, margins, organ_label, spare_extra, spare_allow)
    spare_mask = np.isin(arr, list(spare)) if spare else np.zeros(arr.shape, bool)
    dist = ndimage.distance_transform_edt(~tm, sampling=sp)
    shell = (dist <= m_mm + 1e-6) & ~tm
    excluded: dict[str, float] = {}
    vv = g.voxel_volume_mm3 / 1000.0
    out_body = shell & ~body
    if out_body.any():
        excluded["outside the body"] = float(out_body.sum() * vv)
    shell &= body
    in_spare = shell & spare_mask
    for v in np.unique(arr[in_spare]).tolist():
        excluded[f"inside must-spare {spare[int(v)]}"] = float((in_spare & (arr == v)).sum() * vv)
    shell &= ~spare_mask
    host_value = labels.value_of(organ_label) if organ_label else None
    if clip and host_value is not None:
        beyond = shell & (arr != host_value) & ~np.isin(arr, [v for v, n in labels.labels.items() if is_target_label(n)])
        if beyond.any():
            excluded["beyond the organ capsule"] = float(beyond.sum() * vv)
        shell &= ~beyond
    target = tm | shell
    band = (dist <= m_mm + unc + 1e-6) & ~target & body & ~spare_mask
    if clip and host_value is not None:
        band &= (arr == host_value)
    spec = TargetSpec(tumour=labels.labels[labels.value_of(tumour)], organ_label=organ_label, margin_mm=m_mm,
                      margin_source=m_src, clip_to_organ=clip, uncertainty_mm=unc, uncertainty_source=unc_src,
                      tumour_ml=float(tm.sum() * vv), target_ml=float(target.sum() * vv),
                      uncertainty_band_ml=float(band.sum() * vv), excluded_ml={k: round(v, 3) for k, v in excluded.items()})
    f = tuple(max(1, int(round(plan_voxel_mm / s))) for s in sp) if plan_voxel_mm else (1, 1, 1)
    pgrid, sl = _strided(ngrid, f) if f != (1, 1, 1) else (ngrid, (slice(None),) * 3)
    # coarse grid: a planning voxel is must-spare when any native voxel of its block is (conservative)
    spare_p = ndimage.maximum_filter(spare_mask, size=f)[sl] if f != (1, 1, 1) else spare_mask
    return PlanningTarget(spec=spec, box=box, native_grid=ngrid, grid=pgrid, stride=f, labels=arr[sl],
                          tumour=tm[sl], target=target[sl], band=band[sl], body=body[sl],
                          must_spare=spare_p, must_spare_names=sorted(set(spare.values())),
                          host_value=host_value,
                          native={"labels": arr, "tumour": tm, "target": target, "body": body, "must_spare": spare_mask})


def body_from_ct(ct: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The body on the planning CT: above -500 HU or labelled, air pockets (bowel gas, lungs) filled
    slice by slice. The mask `plan_ablation` is given by `openir plan`, so others can rebuild its target."""
    return body_mask_from_arrays(ct, labels)


def target_mask(labels: LabelMap, spec: TargetSpec, *, body_mask: np.ndarray | None = None,
                margins: MarginTable | None = None) -> np.ndarray:
    """The planning target of ``spec`` (a `Plan`'s ``targets[i].target``) on the full grid of
    ``labels``, voxel for voxel as `plan_ablation` built it (its ``targets_out``).

    ``body_mask``: the body the plan was made with (`body_from_ct` of the planning CT for
    `openir plan`; None when the plan was made without one, as `plan_ablation`'s default).

    >>> import numpy as np
    >>> from openir.core import LabelMap
    >>> from openir.core.volume import make_affine
    >>> a = np.ones((9, 9, 9), np.uint8); a[4, 4, 4] = 2
    >>> lm = LabelMap(a, make_affine((1.0, 1.0, 1.0)), {}, {1: "liver", 2: "tumour"})
    >>> spec = TargetSpec(tumour="tumour", margin_mm=1.0, margin_source="t", clip_to_organ=False, uncertainty_mm=0,
    ...                   uncertainty_source="t", tumour_ml=0, target_ml=0, uncertainty_band_ml=0)
    >>> int(target_mask(lm, spec).sum())  # the voxel and its 6 face neighbours
    7
    """
    pt = build_target(labels, spec.tumour, organ_label=spec.organ_label,
                      overrides=TargetOverrides(margin_mm=spec.margin_mm, clip_to_organ=spec.clip_to_organ,
                                                uncertainty_mm=0.0),
                      plan_voxel_mm=0.0, body_mask=body_mask, margins=margins)
    full = np.zeros(labels.shape, bool)
    full[pt.box] = pt.native["target"]
    return full
