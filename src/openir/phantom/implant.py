"""`implant_tumour`: paint a synthetic tumour into a real CT and its label map."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from openir.core import (
    GeometryError,
    InputError,
    LabelMap,
    UnknownLabelError,
    Volume,
    bounding_box,
    pad_box,
)

from .models import Phantom, TumourInfo, TumourSpec
from .tissues import hu
from .tumours import DepthMap, TumourTone, make_shape, paint_tumour

_VESSEL_WORDS = ("vein", "vena", "portal", "hepatic_vessel", "aorta", "ivc", "artery")


def implant_tumour(ct: Volume, labels: LabelMap, spec: TumourSpec, seed: int = 0,
                   organ_label: str | int = "liver") -> Phantom:
    """A copy of ``ct``/``labels`` with a tumour inside ``organ_label`` (name or value).

    Placement follows ``spec.location`` using the organ's own label: central (surface >= 15 mm
    deep, relaxed if the organ is thin), subcapsular (0-3 mm from the surface), perivascular
    (touching a labelled vessel whose name contains vein/vena/portal/aorta/artery), or an LPS
    point. The tumour's contrast (spec.hu, default a hypodense lesion at ~45 HU, at least 30 HU
    below the organ's median) is added over a 1.5 mm soft edge, so the scan's own noise is kept.

    >>> from openir.core import make_affine
    >>> k, j, i = np.mgrid[:40, :40, :40]
    >>> organ = (i - 20) ** 2 + (j - 20) ** 2 + (k - 20) ** 2 < 15**2  # a 30 mm organ, 1 mm voxels
    >>> ct = Volume(np.where(organ, 100, -1000).astype(np.int16), make_affine((1.0, 1.0, 1.0)))
    >>> p = implant_tumour(ct, LabelMap(organ.astype(np.uint8), ct.affine, labels={1: "liver"}), TumourSpec(10))
    >>> t = p.tumours[0]
    >>> t.name, p.labels.names, round(t.volume_ml, 1)  # a 10 mm sphere holds pi/6 ml
    ('tumour_1', ['liver', 'tumour_1'], 0.5)
    """
    if not ct.grid.same_as(labels.grid, tol_mm=1e-2):
        raise GeometryError("CT and label map are not on the same grid")
    try:
        v_org = labels.value_of(organ_label)
    except UnknownLabelError as exc:
        raise InputError(str(exc), field="organ_label") from exc
    rng = np.random.default_rng(np.random.SeedSequence(int(seed)).spawn(1)[0])
    organ = labels.array == v_org
    if organ.sum() < 10:
        raise InputError(f"organ label {organ_label!r} is empty in the label map", field="organ_label")
    box = pad_box(bounding_box(organ), labels.grid, 10.0)
    start = [s.start for s in box]
    sub = labels.grid.subgrid(start, organ[box].shape)
    org_box = organ[box]
    depth = DepthMap(org_box, sub, target_mm=float(labels.grid.spacing.min()))
    shp = make_shape(rng, spec.diameter_mm, spec.shape)
    vessel_values = [v for v, n in labels.labels.items() if any(w in n.lower() for w in _VESSEL_WORDS)]
    vdist = None
    if vessel_values:
        vmask = np.isin(labels.array[box], vessel_values)
        if vmask.any():
            vdist = ndimage.distance_transform_edt(~vmask, sampling=labels.grid.spacing[::-1])
    shp.centre = _choose(spec, shp, depth, sub, vdist, rng)
    ref = float(np.median(ct.array[organ]))
    target = spec.hu if spec.hu is not None else min(hu("tumour_liver"), ref - 30.0)
    n_tum = len(labels.find("tumour")) + 1
    name = f"tumour_{n_tum}"
    while labels.has(name):
        n_tum += 1
        name = f"tumour_{n_tum}"
    value = max(labels.labels, default=0) + 1
    lab = labels.array
    if value > np.iinfo(lab.dtype).max if np.issubdtype(lab.dtype, np.integer) else True:
        lab = lab.astype(np.uint16)
    lab = lab.copy()
    arr = ct.array.copy()
    count = paint_tumour(lab, arr, ct.grid, shp, value, np.array([v_org]),
                         TumourTone(float(target), texture_hu=5.0, reference_hu=ref), rng)
    out_labels = labels.with_array(lab)
    out_labels.labels[value] = name
    info = TumourInfo(name=name, label=value, centre_lps=tuple(float(c) for c in shp.centre),
                      diameter_mm=float(spec.diameter_mm), shape=spec.shape, location=spec.location_name,
                      volume_ml=count * ct.grid.voxel_volume_mm3 / 1000.0, organ=labels.labels[v_org], hu=float(target))
    return Phantom(ct=ct.with_array(arr, synthetic_tumour=True), labels=out_labels, tumours=[info], seed=int(seed))


def _choose(spec: TumourSpec, shp, depth: DepthMap, sub, vdist, rng) -> np.ndarray:
    loc = spec.location
    if not isinstance(loc, str):
        return np.asarray(loc, float)

    def vd(c: np.ndarray) -> float:
        if vdist is None:
            return 1e9
        kji = np.rint(sub.world_to_index(c)[::-1]).astype(int)
        kji = np.clip(kji, 0, np.array(vdist.shape) - 1)
        return float(vdist[tuple(kji)])

    tol = float(sub.spacing.max())
    if loc == "central":
        for margin in (15.0, 10.0, 5.0, 0.0):
            for c in depth.candidates(shp.bound_mm + margin, 1e9, rng):
                if vd(c) >= shp.bound_mm + 1.0:
                    return c
            for c in depth.candidates(shp.bound_mm + margin, 1e9, rng, n=1):
                return c
    elif loc == "subcapsular":
        for slack in (1.0, 2.0, 4.0):
            for c in depth.candidates(shp.r_eq_mm * 0.6, shp.bound_mm * 1.6, rng, n=2000):
                rho = shp.radius_along(-depth.gradient_at(c))
                if rho - slack <= depth.at(c)[0] <= rho + 2.0 + slack and vd(c) >= shp.bound_mm:
                    return c
    elif loc == "perivascular":
        if vdist is None:
            raise InputError("perivascular placement needs a vessel label (e.g. portal vein) near the organ",
                             field="location")
        for need in (shp.bound_mm, shp.r_eq_mm, 0.6 * shp.r_eq_mm):
            for c in depth.candidates(need, 1e9, rng, n=3000):
                if abs(vd(c) - shp.r_eq_mm) <= tol:
                    return c
    raise InputError(f"cannot place a {spec.diameter_mm:g} mm tumour ({loc}) in this organ", field="location")
