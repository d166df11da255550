"""Seed detection on a post-implant CT: threshold, connected components, splitting of touching seeds.

Metal seeds are the brightest things on CT (their cores clip at the top of the scale), so a high
threshold keeps them apart from bone and contrast; streak artefacts are thin and fall below it or
leave specks far smaller than a seed, which the size filter drops. Seeds that touch (loaded end to
end on a needle, or side by side after migration) merge into one component. The number of seeds in
a component is its volume over the volume of one seed, measured on the isolated seeds of the same
scan (so it adapts to the scanner's blur and voxel size), corrected by its length along the
principal axis; such a component is split by weighted k-means started along each principal axis,
keeping the split whose parts look most like single seeds (their spread along and across the axis).
Centroids are weighted by how far each voxel rises above the threshold (sub-voxel); each seed's
orientation is the principal axis of its voxels. After Nguyen et al., IEEE TBME 2015 (threshold,
components, splitting by volume and PCA).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field
from scipy import ndimage

from openir.core import InputError, Volume

_STRUCT = np.ones((3, 3, 3), bool)  # 26-connectivity: seeds touch at corners when oblique
_PER_SEED = 0.2  # split score cost of each extra seed: of two near-equal splits, the one with fewer seeds wins


@dataclass(frozen=True)
class DetectOptions:
    """How seeds are found. ``threshold_hu``: metal threshold (cortical bone stays below ~1900 HU);
    ``seed_length_mm`` / ``seed_diameter_mm``: the capsule (6711: 4.5 x 0.8 mm), used when the scan
    holds too few isolated seeds to measure one; ``min_part`` / ``max_seeds``: components smaller
    than ``min_part`` of one seed are specks (streaks, noise), larger than ``max_seeds`` seeds are
    not seeds (bone, clips, needles) and are reported, not split; ``halo_mm`` / ``halo_floor_hu``: the
    partial-volume rim around each seed that also weighs in its centroid (metal above soft tissue)."""

    threshold_hu: float = 1500.0
    seed_length_mm: float = 4.5
    seed_diameter_mm: float = 0.8
    min_part: float = 0.25
    max_seeds: int = 24
    halo_mm: float = 1.6
    halo_floor_hu: float = 300.0


class DetectedSeed(BaseModel):
    """One seed found on the CT: centre and unit long axis (LPS mm) and the component it came from."""

    position_lps: tuple[float, float, float]
    direction_lps: tuple[float, float, float]
    component: int = Field(..., description="connected component (1-based) the seed was found in")
    group_size: int = Field(..., description="seeds in that component: > 1 means touching seeds were split")
    peak_hu: float


class SeedDetection(BaseModel):
    """All seeds found on a CT and what the detector measured and rejected on the way."""

    seeds: list[DetectedSeed]
    threshold_hu: float
    single_volume_mm3: float = Field(..., description="volume above threshold of one isolated seed")
    single_length_mm: float = Field(..., description="apparent length of one isolated seed")
    components: int
    split_components: int = Field(..., description="components holding touching seeds, split")
    rejected_small: int = Field(..., description="specks smaller than min_part of a seed (streaks, noise)")
    rejected_large: int = Field(..., description="objects larger than max_seeds seeds (bone, other metal)")
    warnings: list[str] = Field(default_factory=list)

    @property
    def positions_lps(self) -> np.ndarray:
        return np.array([s.position_lps for s in self.seeds], float).reshape(-1, 3)


@dataclass
class _Blob:
    label: int
    xyz: np.ndarray  # (n, 3) LPS mm of voxel centres
    w: np.ndarray  # weights (HU above threshold, > 0)
    peak: float
    box: tuple[slice, ...]
    kji: np.ndarray  # (n, 3) voxel indices

    @property
    def size(self) -> int:
        return len(self.w)


def check_ct_hu(ct: Volume, source: str | None = None) -> None:
    """Refuse what is not a CT in Hounsfield units: empty, NaN, other units, raw stored values.

    >>> from openir.core import make_affine
    >>> check_ct_hu(Volume(np.zeros((4, 4, 4)), make_affine((1, 1, 1))))
    Traceback (most recent call last):
    ...
    openir.core.errors.InputError: [units] the CT does not look like Hounsfield units: values 0..0, no air or fat below -200 HU (raw stored values without the rescale, or another modality?)
    """
    arr = ct.array
    if arr.size == 0:
        raise InputError("the CT is empty (no voxels)", source=source, field="image")
    units = str(ct.meta.get("units", "HU") or "HU").strip().upper()
    if units not in ("HU", "HOUNSFIELD", "HOUNSFIELD UNITS"):
        raise InputError(f"the CT is in {ct.meta.get('units')!r}, seed detection needs Hounsfield units (HU)",
                         source=source, field="units")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise InputError("the CT holds NaN or infinite values", source=source, field="image")
    lo, hi = float(arr.min()), float(arr.max())
    if lo > -200.0 or hi < 100.0 or hi > 60000.0:
        raise InputError(f"the CT does not look like Hounsfield units: values {lo:g}..{hi:g}, "
                         + ("no air or fat below -200 HU (raw stored values without the rescale, or another "
                            "modality?)" if lo > -200.0 else "outside the range of CT numbers"),
                         source=source, field="units")


def _components(ct: Volume, opts: DetectOptions) -> tuple[list[_Blob], np.ndarray]:
    arr = ct.array
    mask = arr >= opts.threshold_hu
    lab, n = ndimage.label(mask, structure=_STRUCT)
    blobs = []
    for idx, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is None:
            continue
        sub = lab[sl] == idx
        kji = np.argwhere(sub) + np.array([s.start for s in sl])
        vals = arr[sl][sub].astype(float)
        xyz = ct.index_to_world(kji[:, ::-1].astype(float))
        w = vals - opts.threshold_hu + 50.0  # every member counts; brighter ones more
        blobs.append(_Blob(idx, xyz, w, float(vals.max()), sl, kji))
    return blobs, lab


def _pca(xyz: np.ndarray, w: np.ndarray, voxel_cov: np.ndarray | None = None
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted centre, standard deviations (descending) and axes (columns) of a point cloud.

    ``voxel_cov`` (the covariance of one voxel's box) is added, so a blob one voxel thick has the
    spread of its voxels, not zero, and thick and thin slices compare fairly."""
    c = np.average(xyz, axis=0, weights=w)
    d = xyz - c
    cov = (d * w[:, None]).T @ d / w.sum()
    if voxel_cov is not None:
        cov = cov + voxel_cov
    ev, vec = np.linalg.eigh(cov)
    order = np.argsort(ev)[::-1]
    return c, np.sqrt(np.maximum(ev[order], 0.0)), vec[:, order]


def _extent(xyz: np.ndarray, axis: np.ndarray, voxel_mm: float) -> float:
    t = xyz @ axis
    return float(t.max() - t.min()) + voxel_mm


@dataclass(frozen=True)
class _Single:
    """What one isolated seed looks like on this scan."""

    volume_mm3: float
    length_mm: float
    sd: np.ndarray  # standard deviations along its 3 principal axes
    voxel_cov: np.ndarray  # covariance of one voxel's box (LPS mm^2)


def _reference(blobs: list[_Blob], voxel_mm3: float, voxel_mm: float, opts: DetectOptions,
               voxel_cov: np.ndarray) -> tuple[_Single, list[str]]:
    """Measure one seed on the isolated ones (length close to a capsule's, thin); fall back to the capsule."""
    warn: list[str] = []
    cand = []
    for b in blobs:
        if b.size < 3:
            continue
        _, sd, ax = _pca(b.xyz, b.w, voxel_cov)
        length = _extent(b.xyz, ax[:, 0], voxel_mm)
        if length < 1.6 * opts.seed_length_mm + 2 * voxel_mm and sd[1] < 1.5 * opts.seed_diameter_mm + voxel_mm:
            cand.append((b.size * voxel_mm3, length, sd))
    if len(cand) >= 3:
        vols = np.array([c[0] for c in cand])
        med = float(np.median(vols))
        keep = [c for c in cand if 0.5 * med <= c[0] <= 1.5 * med]
        return _Single(float(np.median([c[0] for c in keep])), float(np.median([c[1] for c in keep])),
                       np.median(np.array([c[2] for c in keep]), axis=0), voxel_cov), warn
    # too few isolated seeds to measure: the capsule grown by half a voxel all round
    r = opts.seed_diameter_mm / 2.0 + voxel_mm / 2.0
    length = opts.seed_length_mm + voxel_mm
    warn.append(f"fewer than 3 isolated seeds: seed size taken from the capsule ({opts.seed_length_mm:g} x "
                f"{opts.seed_diameter_mm:g} mm), splitting of touching seeds is less certain")
    sd = np.sqrt(np.array([length**2 / 12, r * r / 4, r * r / 4]) + np.sort(np.linalg.eigvalsh(voxel_cov))[::-1])
    return _Single(np.pi * r * r * length, length, sd, voxel_cov), warn


def _join_fragments(blobs: list[_Blob], lab: np.ndarray, ref: _Single, voxel_mm3: float,
                    join_mm: float) -> list[_Blob]:
    """Join each small component (< 60 % of a seed) to a larger one within ``join_mm``: with thick
    slices the end of an oblique seed can fall apart from its body and would count as a seed."""
    small_vol = 0.6 * ref.volume_mm3
    centres = np.array([b.xyz.mean(0) for b in blobs]).reshape(-1, 3)
    alive = [True] * len(blobs)
    order = sorted(range(len(blobs)), key=lambda i: blobs[i].size)
    for i in order:
        s = blobs[i]
        if s.size * voxel_mm3 >= small_vol:
            break
        near = [j for j in np.flatnonzero(np.linalg.norm(centres - centres[i], axis=1) < 15.0)
                if j != i and alive[j] and blobs[j].size > s.size]
        best, best_d = None, join_mm
        for j in near:
            d = float(np.min(np.linalg.norm(s.xyz[:, None, :] - blobs[j].xyz[None, :, :], axis=-1)))
            if d <= best_d:
                best, best_d = j, d
        if best is None:
            continue
        t = blobs[best]
        lab[lab == s.label] = t.label
        box = tuple(slice(min(a.start, b.start), max(a.stop, b.stop)) for a, b in zip(t.box, s.box, strict=True))
        blobs[best] = _Blob(t.label, np.vstack([t.xyz, s.xyz]), np.concatenate([t.w, s.w]), max(t.peak, s.peak), box,
                            np.vstack([t.kji, s.kji]))
        alive[i] = False
    return [b for b, a in zip(blobs, alive, strict=True) if a]


def _kmeans(xyz: np.ndarray, w: np.ndarray, init: np.ndarray, iters: int = 30) -> np.ndarray:
    """Weighted Lloyd iterations from ``init`` centres; returns each point's cluster."""
    c = init.copy()
    lab = np.zeros(len(xyz), int)
    for _ in range(iters):
        d2 = ((xyz[:, None, :] - c[None, :, :]) ** 2).sum(-1)
        new = d2.argmin(1)
        if _ > 0 and np.array_equal(new, lab):
            break
        lab = new
        for m in range(len(c)):
            sel = lab == m
            if sel.any():
                c[m] = np.average(xyz[sel], axis=0, weights=w[sel])
    return lab


def _part_score(xyz: np.ndarray, w: np.ndarray, voxel_mm3: float, ref: _Single) -> float:
    """How unlike one seed a group of voxels is: spread along/across its axis and its volume."""
    _, psd, _ = _pca(xyz, w, ref.voxel_cov)
    shape = float(np.sum(((psd - ref.sd) / (ref.sd + 0.2)) ** 2))
    size = (len(w) * voxel_mm3 / ref.volume_mm3 - 1.15) / 0.5  # merged seeds bloom ~ 15-35 % larger
    return shape + size * size


def _split(b: _Blob, n: int, ref: _Single, voxel_mm3: float) -> tuple[float, list[np.ndarray]]:
    """Split a component into ``n`` seeds; keep the split whose parts look most like single seeds.

    Candidates: slabs across each principal axis (1-D k-means of the projections: seeds end to end
    along the first axis, side by side across the others) and a free 3-D k-means. Free k-means
    alone would cut two parallel seeds across their length (it minimises spread, and short halves
    spread less than long seeds). Returns (mean part score, parts)."""
    if n == 1:
        return _part_score(b.xyz, b.w, voxel_mm3, ref), [np.arange(b.size)]
    c, sd, ax = _pca(b.xyz, b.w, ref.voxel_cov)
    best: tuple[float, list[np.ndarray]] = (np.inf, [])
    labels = []
    for a in range(3):
        t = ((b.xyz - c) @ ax[:, a])[:, None]
        qs = np.quantile(t[:, 0], (np.arange(n) + 0.5) / n)[:, None]
        labels.append(_kmeans(t, b.w, qs))
    t0 = (b.xyz - c) @ ax[:, 0]
    labels.append(_kmeans(b.xyz, b.w, c + np.quantile(t0, (np.arange(n) + 0.5) / n)[:, None] * ax[:, 0][None, :]))
    for lab in labels:
        parts = [np.flatnonzero(lab == m) for m in range(n)]
        if any(len(p) < 3 for p in parts):
            continue
        score = float(np.mean([_part_score(b.xyz[p], b.w[p], voxel_mm3, ref) for p in parts])) + _PER_SEED * (n - 1)
        if score < best[0]:
            best = (score, parts)
    return best


def _separate(b: _Blob, ref: _Single, voxel_mm3: float, opts: DetectOptions) -> list[np.ndarray] | None:
    """The seeds of one component (index arrays into its voxels); None when it is too large for seeds.

    Candidate counts run from its volume over a merged seed's to its volume over a single seed's;
    a chain (much longer than one seed) holds n seeds end to end, one seed length apart, when its
    spread along the axis is sqrt(sd_1^2 + L^2 (n^2 - 1) / 12), or one more when it is also fat (a
    seed beside the chain). The count whose split looks most like seeds wins."""
    max_seeds = opts.max_seeds
    by_volume = b.size * voxel_mm3 / ref.volume_mm3
    if by_volume < 1.2 or b.size < 6:
        return [np.arange(b.size)]
    _, sd, _ = _pca(b.xyz, b.w, ref.voxel_cov)
    if int(np.floor(by_volume / 1.6)) > max_seeds:
        return None
    if sd[0] > 1.6 * ref.sd[0] and sd[1] < 1.6 * ref.sd[1]:  # a chain: end-to-end seeds spread like a longer seed
        pitch = opts.seed_length_mm
        n_chain = max(2, int(round(np.sqrt(1.0 + 12.0 * (sd[0] ** 2 - ref.sd[0] ** 2) / pitch**2))))
        candidates = [n_chain] + ([n_chain + 1] if by_volume / n_chain > 1.3 else [])
    elif by_volume < 3.0:  # a few seeds side by side
        candidates = list(range(1, max(2, int(round(by_volume / 1.1))) + 1))
    else:  # a cluster (seeds of neighbouring needles): overlapping seeds share voxels, so up to 1.3x its volume
        candidates = list(range(max(2, int(by_volume / 1.6)), int(np.ceil(1.3 * by_volume)) + 1))
    best: tuple[float, list[np.ndarray]] = (np.inf, [np.arange(b.size)])
    for n in candidates:
        if n > max_seeds:
            return None
        if b.size < 3 * n:
            break
        score, parts = _split(b, n, ref, voxel_mm3)
        if score < best[0]:
            best = (score, parts)
    return best[1]


def _halo(ct: Volume, lab: np.ndarray, b: _Blob, parts: list[np.ndarray],
          opts: DetectOptions) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each seed's voxels for its centroid: its part of the component plus the voxels within
    ``halo_mm`` of it (nearest part wins, other components excluded), weighted by HU above
    ``halo_floor_hu``. The partial-volume voxels below the threshold carry the sub-voxel position
    (they are where a seed leaves a slice); streaks run through the seed both ways and cancel."""
    sp_kji = ct.spacing[::-1]
    pad = np.ceil(opts.halo_mm / sp_kji).astype(int) + 1
    lo = np.maximum([s.start - p for s, p in zip(b.box, pad, strict=True)], 0)
    hi = np.minimum([s.stop + p for s, p in zip(b.box, pad, strict=True)], lab.shape)
    box = tuple(slice(a, z) for a, z in zip(lo, hi, strict=True))
    owner = np.zeros(hi - lo, np.int32)
    for m, p in enumerate(parts, start=1):
        k = b.kji[p] - lo
        owner[k[:, 0], k[:, 1], k[:, 2]] = m
    dist, idx = ndimage.distance_transform_edt(owner == 0, sampling=sp_kji, return_indices=True)
    near = owner[tuple(idx)]
    lb = lab[box]
    region = (dist <= opts.halo_mm) & ((lb == 0) | (lb == b.label))
    vals = ct.array[box].astype(float)
    w_all = np.clip(vals - opts.halo_floor_hu, 0.0, None)
    out = []
    for m in range(1, len(parts) + 1):
        sel = region & (near == m) & (w_all > 0)
        kji = np.argwhere(sel)
        if len(kji) == 0:
            p = parts[m - 1]
            out.append((b.xyz[p], b.w[p]))
            continue
        out.append((ct.index_to_world((kji + lo)[:, ::-1].astype(float)), w_all[sel]))
    return out


def detect_seeds(ct: Volume, options: DetectOptions | None = None, source: str | None = None) -> SeedDetection:
    """Find the seeds on a post-implant CT (HU); raises InputError for a non-HU CT or one without seeds.

    >>> from openir.phantom.post_implant import PostImplantSpec, make_post_implant_ct  # doctest: +SKIP
    >>> p = make_post_implant_ct(PostImplantSpec())  # doctest: +SKIP
    >>> len(detect_seeds(p.ct).seeds) == len(p.seeds)  # doctest: +SKIP
    True
    """
    opts = options or DetectOptions()
    check_ct_hu(ct, source)
    if float(ct.array.max()) < opts.threshold_hu:
        raise InputError(f"no seeds: no voxel reaches the metal threshold of {opts.threshold_hu:g} HU "
                         f"(maximum {float(ct.array.max()):g} HU); is this a post-implant CT?", source=source,
                         field="image")
    voxel_mm3 = ct.grid.voxel_volume_mm3
    voxel_mm = float(np.cbrt(voxel_mm3))
    blobs, lab = _components(ct, opts)
    box_axes = ct.affine[:3, :3]  # columns: one voxel step along i, j, k in LPS mm
    voxel_cov = box_axes @ box_axes.T / 12.0
    ref, warnings = _reference(blobs, voxel_mm3, voxel_mm, opts, voxel_cov)
    sp = np.sort(ct.spacing)
    blobs = _join_fragments(blobs, lab, ref, voxel_mm3, join_mm=sp[2] + 2.0 * sp[0])
    seeds: list[DetectedSeed] = []
    small = large = split = 0
    for b in blobs:
        if b.size * voxel_mm3 < opts.min_part * ref.volume_mm3:
            small += 1
            continue
        parts = _separate(b, ref, voxel_mm3, opts)
        if parts is None:
            large += 1
            continue
        split += len(parts) > 1
        for xyz, w in _halo(ct, lab, b, parts, opts):
            if len(w) >= 2:
                c, _, ax = _pca(xyz, w)
                axis = ax[:, 0] * (1.0 if ax[np.argmax(np.abs(ax[:, 0])), 0] > 0 else -1.0)
            else:
                c, axis = xyz.mean(0), np.array([0.0, 0.0, 1.0])
            seeds.append(DetectedSeed(position_lps=tuple(float(v) for v in c), direction_lps=tuple(float(v) for v in axis),
                                      component=b.label, group_size=len(parts), peak_hu=b.peak))
    if not seeds:
        raise InputError(f"no seeds: nothing above {opts.threshold_hu:g} HU has the size of a seed "
                         f"({small} specks, {large} large objects)", source=source, field="image")
    if large:
        warnings.append(f"{large} bright object(s) larger than {opts.max_seeds} seeds were not counted "
                        "(bone, surgical clips or a needle left in place?)")
    return SeedDetection(seeds=seeds, threshold_hu=opts.threshold_hu, single_volume_mm3=ref.volume_mm3,
                         single_length_mm=ref.length_mm, components=len(blobs), split_components=split,
                         rejected_small=small, rejected_large=large, warnings=warnings)
