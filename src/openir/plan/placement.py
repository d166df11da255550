"""Multi-probe placement: how many probes, on which safe paths, how deep, at which setting.

Candidates are built on the target's crop: for each shortlisted feasible direction (from the
trajectory search), a lattice of zone centres (depths along the shaft x parallel lateral offsets)
for every usable catalogue setting; IRE pairs also get three roll angles of the electrode plane.
Each candidate's zone is a voxel stencil of the catalogue ellipsoid translated to a voxel centre, so
its coverage is exact on the planning grid. A candidate is dropped when its zone overlaps a
must-spare structure or when its needle (from the tip to the skin, marched by the trajectory
module) is not feasible. Then: greedy set cover (new target voxels, ties broken by new healthy
voxels), pruning of redundant probes, an exact search for fewer probes over the best candidates, and
local refinement (lattice-neighbour swaps that keep coverage and ablate less healthy tissue).
Parallel offsets of one direction give clusters (cryo/IRE); several depths on one lateral offset
give pull-back ablations along one track.

Whole arrays (cryo, IRE; `place_array`) are placed from a wide pool of safe directions: each
(direction, roll) pose is first screened by checking every probe's needle path with the array
centred on the target, and only the best poses get the full coverage search. Cryoprobes may
converge (a blocked shaft leans toward the array axis, within ``configurations.yaml``); IRE
electrodes may lean either way, kept only while every pulsed pair's spacing along the exposure stays
within the limits, and the zone credited is the parallel array's at the narrowest pair spacing.
"""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from openir.core.enums import THERMAL_MODALITIES

from . import _march
from .arrays import ArrayModelMissing, ArrayTemplate, ArrayZone, ModalityConfiguration, array_zone
from .devices import DeviceCatalogue, ZoneRow
from .models import Ellipsoid
from .target import PlanningTarget
from .trajectories import REASONS, CasePrep, trace_one
from .zones import _frame, ellipsoid_from

_POP = np.array([bin(i).count("1") for i in range(256)], dtype=np.int32)


@dataclass(frozen=True)
class ZoneOption:
    """One usable catalogue setting: device, row and the zone's semi-axes (along, across, across2)."""

    device: str
    modality: str
    row: ZoneRow
    semi_mm: tuple[float, float, float]
    setting: str
    sources: tuple[str, ...]
    tissue_match: bool
    template: ArrayTemplate | None = None  # cryo/IRE: the whole array, zone from the physics model
    array_zone: ArrayZone | None = None

    @property
    def n_probes(self) -> int:
        return self.template.n_probes if self.template is not None else 1

    def offsets(self) -> np.ndarray:
        """Probe positions across the shaft (n, 2), mm, in the (u, v) frame of the zone."""
        return self.template.offsets() if self.template is not None else np.zeros((1, 2))

    @property
    def tip_offset_mm(self) -> float | None:
        """Tip beyond the zone centre: the physics model's for arrays, else the catalogue row's."""
        if self.array_zone is not None:
            return self.array_zone.tip_to_centre_mm
        return self.row.centre_offset_mm

    @property
    def volume_ml(self) -> float:
        a, b, c = self.semi_mm
        return 4.0 / 3.0 * math.pi * a * b * c / 1000.0


def _array_device(catalogue: DeviceCatalogue, modality: str, devices: Sequence[str] | None) -> tuple[str | None, str]:
    """The catalogue device an array is made of, and why: the user's choice, else the modality's
    sourced default (``array_defaults`` in devices.yaml), else the first of the modality."""
    ids = [d.id for d in catalogue.devices if d.modality == modality]
    if devices:
        ids = [i for i in ids if i in devices]
        return (ids[0], "chosen by the user") if ids else (None, "")
    default = catalogue.array_defaults.get(modality)
    if default is not None and default.device in ids:
        return default.device, " ".join(default.reason.split())
    return (ids[0], "first device of the modality in the catalogue (no sourced default)") if ids else (None, "")


def array_options(catalogue: DeviceCatalogue, modality: str, cfg: ModalityConfiguration, *,
                  devices: Sequence[str] | None = None, max_probes: int | None = None,
                  tissue: str = "liver") -> tuple[list[ZoneOption], list[str]]:
    """One option per array template within the limits, its zone from the physics array model.

    Ordered by probe count, then zone volume (the smallest array that covers is preferred)."""
    from .arrays import templates

    notes: list[str] = []
    dev, why = _array_device(catalogue, modality, devices)
    if dev is None:
        return [], [f"no {modality} device in the catalogue" + (f" among {list(devices)}" if devices else "")]
    opts: list[ZoneOption] = []
    device = next(d for d in catalogue.devices if d.id == dev)
    active = device.active_length_mm if modality == "cryo" else None
    for t in templates(cfg, modality, max_probes, active_length_mm=active):
        try:
            z = array_zone(t, tissue=tissue)
        except ArrayModelMissing as exc:
            if "no confluent" in str(exc) or "no lethal" in str(exc):
                continue  # this spacing is too wide for a single ablation: not a template
            notes.append(str(exc))
            break
        row = ZoneRow(spacing_mm=t.spacing_mm if t.n_probes > 1 else None, exposure_mm=t.exposure_mm,
                      isotherm_c=z.settings.get("isotherm_c"),
                      probes=t.n_probes, length_mm=z.length_mm, diameter_mm=z.width_mm, diameter2_mm=z.depth_mm,
                      tip_to_centre_mm=z.tip_to_centre_mm, source=z.model)
        srcs = (z.model, *z.sources)
        opts.append(ZoneOption(dev, modality, row, (z.length_mm / 2, z.width_mm / 2, z.depth_mm / 2),
                               f"{t.label()} [{z.model}]", srcs, True, t, z))
    opts.sort(key=lambda o: (o.n_probes, o.volume_ml))
    if opts:
        notes.append(f"{modality}: zones of whole arrays from the physics model ({opts[0].array_zone.model}), "  # type: ignore[union-attr]
                     "not unions of single-probe zones")
        notes.append(f"{modality} device {dev}: {why}")
        if modality == "cryo":
            from .arrays import model_active_length_mm

            length = active if active is not None else model_active_length_mm()
            src = " ".join((device.active_length_source or "NOT SOURCED: no active length in the catalogue").split())
            notes.append(f"cryo freezing (active) length {length:g} mm"
                         + ("" if active is not None else " (the physics model's; the device has none)")
                         + f" [{src}]")
    return opts, notes


def zone_options(catalogue: DeviceCatalogue, modality: str, organ: str, *, devices: Sequence[str] | None = None,
                 tissue: str = "prefer", evidence: str | None = None) -> tuple[list[ZoneOption], list[str]]:
    """Usable settings of ``modality`` (rows with a source), preferring rows measured in ``organ``.

    Each device contributes the rows of one evidence table (``evidence``, else its preferred one).
    ``tissue``: 'prefer' uses other-tissue rows only when no row matches the organ (with a note);
    'require' never does; 'any' ignores the tissue.
    """
    notes: list[str] = []
    opts: list[ZoneOption] = []
    for dev in catalogue.devices:
        if dev.modality != modality or (devices and dev.id not in devices):
            continue
        if evidence is not None and evidence not in dev.evidence_kinds:
            continue
        for r in dev.table(evidence):
            if r.length_mm is None or r.diameter_mm is None:
                continue
            if r.probes > 1:
                notes.append(f"{dev.id} ({r.label()}): a {r.probes}-probe zone without a placement model "
                             "is for look-up only, not planned with")
                continue
            d2 = r.diameter2_mm if r.diameter2_mm is not None else r.diameter_mm
            match = organ in (r.tissue or "").lower()
            setting = r.label() + (f" [{r.evidence}]" if r.evidence else "")
            opts.append(ZoneOption(dev.id, modality, r, (r.length_mm / 2, r.diameter_mm / 2, d2 / 2), setting,
                                   (r.source.strip(),), match))
    if tissue != "any" and opts:
        matched = [o for o in opts if o.tissue_match]
        if matched:
            opts = matched
        elif tissue == "require":
            notes.append(f"no sourced {modality} row measured in {organ}; none used (tissue='require')")
            opts = []
        else:
            tissues = sorted({o.row.tissue or "unstated" for o in opts})
            notes.append(f"no sourced {modality} zone measured in {organ}: using rows measured in "
                         f"{', '.join(tissues)} (zone size in {organ} may differ)")
    if not opts:
        notes.append(f"the catalogue has no usable (sourced) {modality} zone rows"
                     + (f" for devices {list(devices)}" if devices else ""))
    return opts, notes


@dataclass
class Candidate:
    option: int
    direction: np.ndarray  # insertion direction, entry -> tip
    roll: np.ndarray  # IRE: unit vector of the electrode plane across the shaft
    centre: np.ndarray  # zone centre, LPS
    lattice: tuple[int, int, int, int, int]  # (option, dir, roll, u, v) + depth index below
    depth_index: int
    ellipsoid: Ellipsoid
    tips: list[np.ndarray] = field(default_factory=list)
    entries: list[np.ndarray] = field(default_factory=list)
    path_mm: list[float] = field(default_factory=list)


@dataclass
class Placement:
    chosen: list[Candidate]
    options: list[ZoneOption]
    n_target: int
    covered: int
    required: int
    coverable: int
    n_candidates: int
    blocked: dict[str, int]  # cause -> target voxels no usable candidate covers
    notes: list[str] = field(default_factory=list)
    greedy_count: int = 0


def _stencil(e: Ellipsoid, grid) -> np.ndarray:
    """Voxel offsets (dk, dj, di) whose centres lie in ``e`` when it is centred on a voxel centre."""
    a3 = grid.affine[:3, :3]
    rot = e.rotation()
    semi = np.asarray(e.semi_axes_mm)
    half = np.sqrt(((rot * semi[None, :]) ** 2).sum(axis=1))  # LPS half extents
    inv = np.abs(np.linalg.inv(a3))
    h_ijk = np.ceil(inv @ half).astype(int) + 1
    rng = [np.arange(-h, h + 1) for h in h_ijk]
    di, dj, dk = np.meshgrid(*rng, indexing="ij")
    off = np.stack([di.ravel(), dj.ravel(), dk.ravel()], axis=1)
    local = (off @ a3.T) @ rot
    inside = ((local / semi) ** 2).sum(axis=1) <= 1.0
    return off[inside][:, ::-1].astype(np.int64)  # (k, j, i)


def _lattice(proj: np.ndarray, step: float, pad: float) -> np.ndarray:
    lo, hi = proj.min() - pad, proj.max() + pad
    return np.arange(math.floor(lo / step), math.ceil(hi / step) + 1, dtype=int)


def _feasible_path(prep: CasePrep, tip: np.ndarray, direction: np.ndarray, cache: dict) -> tuple[bool, str, float]:
    """March the needle from ``tip`` back out to the skin (same rules as the trajectory search)."""
    key = (tuple(np.round(tip, 2)), tuple(np.round(direction, 6)))
    if key in cache:
        return cache[key]
    st, b, length = trace_one(prep, tip, -np.asarray(direction, float))  # serial build, exact traversal
    if st == _march.FEASIBLE:
        out = (True, "", length)
    else:
        name = prep.names[b] if 0 <= b < len(prep.names) else ""
        out = (False, f"needle path {REASONS.get(st, 'blocked')} {name}".strip(), 0.0)
    cache[key] = out
    return out


# roll angles of the layout about the shaft (the layouts' own symmetry makes more redundant)
_ROLLS: dict[int, list[float]] = {2: [0.0, 60.0, 120.0], 3: [0.0, 60.0], 4: [0.0, 45.0], 5: [0.0, 45.0],
                                  6: [0.0, 60.0, 120.0]}


class _CSR:
    def __init__(self, rows: list[np.ndarray]):
        self.ptr = np.zeros(len(rows) + 1, dtype=np.int64)
        self.ptr[1:] = np.cumsum([len(r) for r in rows])
        self.data = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        self.row = np.repeat(np.arange(len(rows)), np.diff(self.ptr))

    def get(self, i: int) -> np.ndarray:
        return self.data[self.ptr[i]:self.ptr[i + 1]]

    def gain(self, taken: np.ndarray, n: int) -> np.ndarray:
        """Per row: entries not yet ``taken``."""
        return np.bincount(self.row, weights=~taken[self.data], minlength=n)


def build_candidates(pt: PlanningTarget, options: list[ZoneOption], directions: Sequence[np.ndarray],
                     prep: CasePrep | None, *, lattice_fraction: float = 0.5, tip_offset_mm: float = 0.0,
                     max_candidates: int = 20000, label_names: dict[int, str] | None = None):
    """All usable candidates with their target coverage and healthy voxels; plus what blocks the rest."""
    # thousands of tiny calls: full garbage collections over the whole heap (numba, scipy, pydantic
    # objects) would cost more than the work itself, and nothing here forms reference cycles
    was = gc.isenabled()
    gc.disable()
    try:
        return _build_candidates(pt, options, directions, prep, lattice_fraction=lattice_fraction,
                                 tip_offset_mm=tip_offset_mm, max_candidates=max_candidates,
                                 label_names=label_names)
    finally:
        if was:
            gc.enable()


def _build_candidates(pt: PlanningTarget, options: list[ZoneOption], directions: Sequence[np.ndarray],
                      prep: CasePrep | None, *, lattice_fraction: float, tip_offset_mm: float,
                      max_candidates: int, label_names: dict[int, str] | None):
    g = pt.grid
    shape = np.array(pt.target.shape)
    tid = np.full(pt.target.shape, -1, dtype=np.int64)
    n_t = int(pt.target.sum())
    tid[pt.target] = np.arange(n_t)
    tid_f = tid.ravel()
    healthy_f = (pt.body & ~pt.target).ravel()
    spare_f = pt.must_spare.ravel()
    lab_f = pt.labels.ravel()
    tk = np.argwhere(pt.target)
    tw = g.index_to_world(tk[:, ::-1].astype(float))
    c0 = tw.mean(axis=0)
    vox = float(g.spacing.min())
    cands: list[Candidate] = []
    t_rows: list[np.ndarray] = []
    h_rows: list[np.ndarray] = []
    ok_cover = np.zeros(n_t, bool)
    blocked_by: dict[str, np.ndarray] = {}
    cache: dict = {}
    label_names = label_names or {}
    spare_names = set(pt.must_spare_names)
    for o_i, opt in enumerate(options):
        a, b, c = opt.semi_mm
        off = opt.tip_offset_mm if opt.tip_offset_mm is not None else tip_offset_mm
        lay = opt.offsets()
        rolls = _ROLLS.get(opt.n_probes, [0.0])
        for d_i, d in enumerate(directions):
            d = np.asarray(d, float) / np.linalg.norm(d)
            d_, u0, v0 = _frame(d)
            for r_i, rdeg in enumerate(rolls):
                th = math.radians(rdeg)
                u = math.cos(th) * u0 + math.sin(th) * v0
                v = np.cross(d, u)
                e0 = Ellipsoid(centre_lps=(0.0, 0.0, 0.0), axes_lps=(tuple(d), tuple(u), tuple(v)),
                               semi_axes_mm=(a, b, c), device=opt.device, setting=opt.setting,
                               thermal=opt.modality in THERMAL_MODALITIES, modality=opt.modality,
                               sources=list(opt.sources))
                if opt.template is None:
                    e0 = ellipsoid_from((0, 0, 0), d, (a, b, c), device=opt.device, setting=opt.setting,
                                        thermal=e0.thermal, modality=opt.modality, sources=list(opt.sources))
                    u, v = np.asarray(e0.axes_lps[1]), np.asarray(e0.axes_lps[2])
                st = _stencil(e0, g)
                s_a = max(vox, lattice_fraction * a)
                s_t = max(vox, lattice_fraction * min(b, c))
                rel = tw - c0
                ks = _lattice(rel @ d, s_a, 0.5 * a)
                us = _lattice(rel @ u, s_t, 0.5 * b)
                vs = _lattice(rel @ v, s_t, 0.5 * c)
                kk, uu, vv = np.meshgrid(ks, us, vs, indexing="ij")
                kk, uu, vv = kk.ravel(), uu.ravel(), vv.ravel()
                centres = c0 + np.outer(kk * s_a, d) + np.outer(uu * s_t, u) + np.outer(vv * s_t, v)
                idx = np.rint(g.world_to_index(centres)).astype(np.int64)[:, ::-1]  # k, j, i
                for p in range(len(idx)):
                    vk = idx[p][None, :] + st
                    inb = np.all((vk >= 0) & (vk < shape), axis=1)
                    vk = vk[inb]
                    flat = (vk[:, 0] * shape[1] + vk[:, 1]) * shape[2] + vk[:, 2]
                    t = tid_f[flat]
                    t = t[t >= 0]
                    if t.size == 0:
                        continue
                    hit = spare_f[flat]
                    if hit.any():
                        for lv in np.unique(lab_f[flat[hit]]).tolist():
                            name = label_names.get(int(lv), lv)
                            # a coarse planning voxel is must-spare when any native voxel in it is: its
                            # own label (liver, fat) then only borders the structure, which is named
                            key = (f"zone would overlap must-spare {name}" if name in spare_names else
                                   "zone would reach a planning voxel bordering a must-spare structure")
                            blocked_by.setdefault(key, np.zeros(n_t, bool))[t] = True
                        continue
                    centre = g.index_to_world(idx[p][::-1].astype(float))
                    tips = [centre + off * d + ox * u + oy * v for ox, oy in lay]
                    entries, lens, ok, why = [], [], True, ""
                    for tip in tips:
                        if prep is None:
                            f_ok, f_why, f_len = True, "", 0.0
                        else:
                            f_ok, f_why, f_len = _feasible_path(prep, tip, d, cache)
                        if not f_ok:
                            ok, why = False, f_why
                            break
                        entries.append(tip - d * f_len)
                        lens.append(f_len)
                    if not ok:
                        blocked_by.setdefault(why, np.zeros(n_t, bool))[t] = True
                        continue
                    ok_cover[t] = True
                    e = e0.model_copy(update={"centre_lps": tuple(float(x) for x in centre)})
                    cands.append(Candidate(o_i, d, u, centre, (o_i, d_i, r_i, int(uu[p]), int(vv[p])), int(kk[p]),
                                           e, tips, entries, lens))
                    t_rows.append(t)
                    h_rows.append(flat[healthy_f[flat]])
                    if len(cands) >= max_candidates:
                        break
    blocked: dict[str, int] = {}
    for why, m in blocked_by.items():
        n = int((m & ~ok_cover).sum())
        if n:
            blocked[why] = blocked.get(why, 0) + n
    return cands, _CSR(t_rows), _CSR(h_rows), n_t, ok_cover, blocked


def union_count(rows: _CSR, chosen: Sequence[int], n: int) -> int:
    m = np.zeros(n, bool)
    for i in chosen:
        m[rows.get(i)] = True
    return int(m.sum())


def min_probes_exhaustive(cover: Sequence[np.ndarray], n_target: int, required: int, max_k: int = 3,
                          max_combinations: int = 2_000_000) -> tuple[int, tuple[int, ...]] | None:
    """Smallest k (<= max_k) such that some k candidates cover >= ``required`` target voxels.

    ``cover`` holds each candidate's covered target ids. Exact (bitset popcount over every
    combination); returns None when no k <= max_k works or the search would exceed the budget.
    """
    nb = (n_target + 7) // 8
    bits = np.zeros((len(cover), nb), dtype=np.uint8)
    for i, t in enumerate(cover):
        m = np.zeros(n_target, bool)
        m[t] = True
        bits[i] = np.packbits(m)
    sizes = _POP[bits].sum(axis=1)
    for k in range(1, max_k + 1):
        if math.comb(len(cover), k) > max_combinations:
            return None
        if k == 1:
            ok = np.flatnonzero(sizes >= required)
            if ok.size:
                return 1, (int(ok[np.argmax(sizes[ok])]),)
            continue
        it = itertools.combinations(range(len(cover)), k)
        while True:
            chunk = list(itertools.islice(it, 4096))
            if not chunk:
                break
            idx = np.asarray(chunk)
            if sizes[idx].sum(axis=1).max() < required:
                continue
            u = bits[idx[:, 0]]
            for j in range(1, k):
                u = u | bits[idx[:, j]]
            cnt = _POP[u].sum(axis=1)
            best = int(np.argmax(cnt))
            if cnt[best] >= required:
                return k, tuple(int(x) for x in idx[best])
    return None


def _greedy(trows: _CSR, hrows: _CSR, n_c: int, n_t: int, n_h: int, required: int, max_probes: int,
            healthy_weight: float, tracks: np.ndarray | None = None, max_tracks: int | None = None) -> list[int]:
    """Greedy set cover; with ``tracks`` (track id per candidate) at most ``max_tracks`` insertions."""
    taken_t = np.zeros(n_t, bool)
    taken_h = np.zeros(n_h, bool)
    chosen: list[int] = []
    covered = 0
    while covered < required and len(chosen) < max_probes:
        gt = trows.gain(taken_t, n_c)
        if tracks is not None and max_tracks is not None:
            used = np.unique(tracks[chosen]) if chosen else np.zeros(0, tracks.dtype)
            if len(used) >= max_tracks:
                gt = np.where(np.isin(tracks, used), gt, 0.0)
        if gt.max() <= 0:
            break
        gh = hrows.gain(taken_h, n_c)
        score = gt - healthy_weight * gh
        score[gt <= 0] = -np.inf
        if (gt + covered >= required).any():  # one more probe finishes: take the least healthy of those
            fin = gt + covered >= required
            score = np.where(fin, 1e12 - gh, -np.inf)
        i = int(np.argmax(score))
        chosen.append(i)
        taken_t[trows.get(i)] = True
        taken_h[hrows.get(i)] = True
        covered = int(taken_t.sum())
    return chosen


def _counts(rows: _CSR, chosen: Sequence[int], n: int) -> np.ndarray:
    c = np.zeros(n, np.int32)
    for i in chosen:
        np.add.at(c, rows.get(i), 1)
    return c


def _prune(trows: _CSR, hrows: _CSR, chosen: list[int], n_t: int, required: int) -> list[int]:
    out = list(chosen)
    changed = True
    while changed and len(out) > 1:
        changed = False
        ct = _counts(trows, out, n_t)
        # try removing the probe that ablates most healthy tissue first
        for i in sorted(out, key=lambda i: -len(hrows.get(i))):
            t = trows.get(i)
            lost = int((ct[t] == 1).sum())
            if int((ct > 0).sum()) - lost >= required:
                out.remove(i)
                changed = True
                break
    return out


def _refine(cands: list[Candidate], trows: _CSR, hrows: _CSR, chosen: list[int], n_t: int, n_h: int,
            required: int, passes: int = 2, max_tracks: int | None = None) -> list[int]:
    """Lattice-neighbour swaps: keep coverage >= required (or raise it), ablate less healthy tissue;
    never more than ``max_tracks`` distinct insertions."""
    where = {(c.lattice, c.depth_index): i for i, c in enumerate(cands)}
    out = list(chosen)
    ct = _counts(trows, out, n_t)
    ch = _counts(hrows, out, n_h)
    for _ in range(passes):
        improved = False
        for pos in range(len(out)):
            i = out[pos]
            c = cands[i]
            o, d, r, u, v = c.lattice
            cov_now = int((ct > 0).sum())
            h_now = int((ch > 0).sum())
            ti, hi = trows.get(i), hrows.get(i)
            np.add.at(ct, ti, -1)
            np.add.at(ch, hi, -1)
            best = (i, cov_now, h_now)
            for du, dv, dk in itertools.product((-1, 0, 1), repeat=3):
                j = where.get(((o, d, r, u + du, v + dv), c.depth_index + dk))
                if j is None or j == i or j in out:
                    continue
                if max_tracks is not None and len({cands[x].lattice for x in out if x != i} | {cands[j].lattice}) > max_tracks:
                    continue
                tj, hj = trows.get(j), hrows.get(j)
                cov = int((ct > 0).sum()) + int((ct[tj] == 0).sum())
                h = int((ch > 0).sum()) + int((ch[hj] == 0).sum())
                bc, bh = best[1], best[2]
                better = (cov >= required and bc >= required and h < bh) or (bc < required and cov > bc)
                if better:
                    best = (j, cov, h)
            j = best[0]
            np.add.at(ct, trows.get(j), 1)
            np.add.at(ch, hrows.get(j), 1)
            if j != i:
                out[pos] = j
                improved = True
        if not improved:
            break
    return out


@dataclass(frozen=True)
class PlacementSearch:
    """Search knobs of place_probes: ``healthy_weight`` (cost of healthy tissue per covered target
    voxel in the greedy pick), candidate ``lattice_fraction`` and ``tip_offset_mm``, and the exact
    search over the ``exact_pool`` best candidates for up to ``exact_max_k`` probes.

    >>> PlacementSearch(tip_offset_mm=2.0).exact_max_k
    3
    """

    healthy_weight: float = 0.05
    lattice_fraction: float = 0.5
    tip_offset_mm: float = 0.0
    exact_pool: int = 60
    exact_max_k: int = 3


def place_probes(pt: PlanningTarget, options: list[ZoneOption], directions: Sequence[np.ndarray],
                 prep: CasePrep | None, *, required_coverage: float = 0.99, max_probes: int = 12,
                 max_tracks: int | None = None, search: PlacementSearch | None = None,
                 label_names: dict[int, str] | None = None) -> Placement:
    """Choose zones (single-probe options) covering >= ``required_coverage`` of the target with no
    must-spare overlap: at most ``max_probes`` zones on at most ``max_tracks`` insertions;
    ``search`` (PlacementSearch) tunes candidates and the exact search."""
    s = search or PlacementSearch()
    healthy_weight, lattice_fraction, tip_offset_mm = s.healthy_weight, s.lattice_fraction, s.tip_offset_mm
    exact_pool, exact_max_k = s.exact_pool, s.exact_max_k
    notes: list[str] = []
    cands, trows, hrows, n_t, ok_cover, blocked = build_candidates(
        pt, options, directions, prep, lattice_fraction=lattice_fraction, tip_offset_mm=tip_offset_mm,
        label_names=label_names)
    coverable = int(ok_cover.sum())
    need = int(math.ceil(required_coverage * n_t - 1e-9))
    required = min(need, coverable)
    if coverable < need:
        notes.append(f"full coverage impossible: only {coverable / max(n_t, 1):.1%} of the target can be "
                     "covered by a zone with a safe path that spares every must-spare structure")
    if not cands:
        return Placement([], options, n_t, 0, required, coverable, 0, blocked, notes)
    n_h = pt.target.size
    track_of: dict = {}
    tracks = np.array([track_of.setdefault(c.lattice, len(track_of)) for c in cands], dtype=np.int64)
    chosen = _greedy(trows, hrows, len(cands), n_t, n_h, required, max_probes, healthy_weight, tracks, max_tracks)
    greedy_n = len(chosen)
    chosen = _prune(trows, hrows, chosen, n_t, required)
    # exact search for fewer probes among the best candidates (plus those chosen)
    if len(chosen) > 1 and union_count(trows, chosen, n_t) >= required:
        sizes = np.diff(trows.ptr)
        pool = list(dict.fromkeys(list(chosen) + np.argsort(-sizes)[:exact_pool].tolist()))
        res = min_probes_exhaustive([trows.get(i) for i in pool], n_t, required,
                                    max_k=min(exact_max_k, len(chosen) - 1), max_combinations=300_000)
        if res is not None and res[0] < len(chosen) and (
                max_tracks is None or len({cands[pool[i]].lattice for i in res[1]}) <= max_tracks):
            chosen = [pool[i] for i in res[1]]
            notes.append(f"exact search found {res[0]} probes (greedy {greedy_n})")
    chosen = _refine(cands, trows, hrows, chosen, n_t, n_h, required, max_tracks=max_tracks)
    covered = union_count(trows, chosen, n_t)
    return Placement([cands[i] for i in chosen], options, n_t, covered, required, coverable, len(cands),
                     blocked, notes, greedy_n)



def _extents(pt: PlanningTarget) -> tuple[float, float, float]:
    """Full extents (mm) of the target along its principal axes, largest first."""
    pts = pt.grid.index_to_world(np.argwhere(pt.target)[:, ::-1].astype(float))
    if len(pts) < 4:
        return (float(pt.grid.spacing.max()),) * 3  # type: ignore[return-value]
    c = pts - pts.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov(c.T))
    proj = c @ vecs
    e = np.sort(np.ptp(proj, axis=0) + float(pt.grid.spacing.min()))[::-1]
    return float(e[0]), float(e[1]), float(e[2])


def _could_cover(opt: ZoneOption, ext: tuple[float, float, float], max_positions: int, slack: float = 0.9,
                 step: float | None = None) -> bool:
    """A zone (with its pull-backs) smaller than the target along some sorted axis cannot cover it."""
    a, b, c = opt.semi_mm
    if step is None:  # an upper bound of the pull-back
        step = (opt.template.exposure_mm or 0.0) if opt.template else 0.0
    dims = sorted([2 * a + (max_positions - 1) * step, 2 * b, 2 * c], reverse=True)
    return all(d >= slack * e for d, e in zip(dims, ext, strict=True))


LEAN_PARTIAL_TRIES = 3  # anchors tried per pose after a leaned array falls short (search time, not clinical)


@dataclass
class _Pose:
    """The best pose found for one array template: coverage, healthy voxels and the positions."""

    option: int
    covered: int
    healthy: int
    full: bool
    positions: list[Candidate]
    coverable: int
    lean_note: str = ""  # IRE: electrodes not parallel (pair spacings, credited zone)


def _kernel(offsets: np.ndarray) -> np.ndarray:
    """Dense 0/1 kernel of stencil offsets (k, j, i), anchored at its centre voxel."""
    h = np.abs(offsets).max(axis=0) if len(offsets) else np.zeros(3, int)
    k = np.zeros(tuple(2 * h + 1), np.float32)
    k[tuple((offsets + h).T)] = 1.0
    return k


def _correlate_full(mask: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Per anchor (every voxel where the kernel meets ``mask``): how many ``mask`` voxels it holds.

    'full' FFT correlation: output index n is the anchor at mask index n - h (h = kernel half)."""
    from scipy.signal import fftconvolve

    return np.rint(fftconvolve(mask.astype(np.float32), kernel[::-1, ::-1, ::-1], mode="full"))


def _count_at(mask: np.ndarray, anchor: np.ndarray, offsets: np.ndarray) -> int:
    idx = anchor[None, :] + offsets
    ok = np.all((idx >= 0) & (idx < np.array(mask.shape)), axis=1)
    return int(mask[tuple(idx[ok].T)].sum())


@dataclass
class _PathCheck:
    """Needle-path checks of one array search (cached), with the converging tilt the limits allow."""

    prep: CasePrep | None
    cache: dict
    blocked: dict[str, int]
    converge_deg: float = 0.0  # each shaft may lean toward the array axis by up to this angle
    diverge: bool = False  # IRE: ... or away from it (pair spacing checked by the caller)
    pair_range: tuple[float, float] | None = None  # IRE: allowed pair spacing along the exposure (mm)

    def probe(self, tip: np.ndarray, d: np.ndarray, lateral: np.ndarray) -> tuple[bool, str, float, np.ndarray]:
        """(safe, why not, skin-to-tip length, insertion direction) of one probe whose tip is ``lateral``
        (mm, across the shaft) from the array axis: parallel first; else, for a converging array,
        leaning toward the axis by half or all of the allowed angle (never crossing it before the skin)."""
        if self.prep is None:
            return True, "", 0.0, d
        ok, why, length = _feasible_path(self.prep, tip, d, self.cache)
        r = float(np.linalg.norm(lateral))
        if ok or self.converge_deg <= 0 or r < 1e-6:
            return ok, why, length, d
        w = lateral / r
        side = np.cross(d, w)
        azimuths = (0.0, 40.0, -40.0) + ((180.0,) if self.diverge else ())
        for deg in (self.converge_deg / 2, self.converge_deg):
            t = math.tan(math.radians(deg))
            for az in azimuths:
                a = math.radians(az)
                dd = d + t * (math.cos(a) * w + math.sin(a) * side)  # cos > 0: the shaft moves toward the axis
                dd /= np.linalg.norm(dd)
                ok2, _, ln2 = _feasible_path(self.prep, tip, dd, self.cache)
                if ok2 and ln2 * t * math.cos(a) <= r:  # still on its side of the axis at the skin
                    return True, "", ln2, dd
        return ok, why, length, d


def _fine_rolls(n_probes: int, step_deg: float = 15.0) -> list[float]:
    """Roll angles about the shaft over one period of the layout's symmetry."""
    period = {1: 0.0, 2: 180.0, 3: 120.0, 4: 90.0, 5: 90.0, 6: 180.0}.get(n_probes, 180.0)
    return [0.0] if period == 0 else [float(a) for a in np.arange(0.0, period, step_deg)]


def screen_array_poses(pt: PlanningTarget, opt: ZoneOption, directions: Sequence[np.ndarray], check: _PathCheck,
                       keep: int = 6) -> list[tuple[int, np.ndarray, int, float]]:
    """The (direction, roll) poses of an array worth a full search: every probe's needle path is checked
    with the array centred on the target (tips at the layout positions); poses where all paths are
    safe come first (in the directions' order), then those with most safe paths.

    Returns up to ``keep`` poses as (direction index, unit direction, roll index, roll degrees)."""
    dirs = [np.asarray(d, float) / np.linalg.norm(d) for d in directions]
    rolls = _fine_rolls(opt.n_probes)
    if check.prep is None:
        return [(d_i, d, r_i, r) for d_i, d in enumerate(dirs) for r_i, r in enumerate(rolls)][:keep]
    nz = np.argwhere(pt.target)
    centre = pt.grid.index_to_world(nz.mean(axis=0)[::-1]) if len(nz) else pt.grid.index_to_world(
        (np.array(pt.target.shape)[::-1] - 1) / 2.0)
    off = opt.tip_offset_mm or 0.0
    lay = opt.offsets()
    parallel = _PathCheck(check.prep, check.cache, check.blocked)  # first pass: straight shafts only

    def best_roll(d: np.ndarray, chk: _PathCheck) -> tuple[int, int, float]:
        _, u0, v0 = _frame(d)
        best = (-1, 0, 0.0)
        for r_i, rdeg in enumerate(rolls):
            th = math.radians(rdeg)
            u = math.cos(th) * u0 + math.sin(th) * v0
            v = np.cross(d, u)
            n_ok = sum(chk.probe(centre + off * d + ox * u + oy * v, d, ox * u + oy * v)[0] for ox, oy in lay)
            if n_ok > best[0]:
                best = (n_ok, r_i, rdeg)
            if n_ok == len(lay):
                break
        return best

    scored = []
    for d_i, d in enumerate(dirs):  # directions come in order of preference: stop at ``keep`` safe poses
        n_ok, r_i, rdeg = best_roll(d, parallel)
        scored.append((n_ok, -d_i, d_i, r_i, rdeg))
        if sum(s_[0] == len(lay) for s_ in scored) >= keep:
            break
    scored.sort(reverse=True)
    if check.converge_deg > 0 and sum(s_[0] == len(lay) for s_ in scored) < keep:
        # second pass, only for the most promising directions: let blocked shafts lean
        redo = [s_ for s_ in scored if s_[0] < len(lay)][: 2 * keep]
        rest = [s_ for s_ in scored if s_ not in redo]
        for _, _, d_i, _, _ in redo:
            b = best_roll(dirs[d_i], check)
            rest.append((b[0], -d_i, d_i, b[1], b[2]))
        scored = sorted(rest, reverse=True)
    return [(d_i, dirs[d_i], r_i, rdeg) for _, _, d_i, r_i, rdeg in scored[:keep]]


def _ire_lean(opt: ZoneOption, tips: np.ndarray, dirs: np.ndarray, pair_range: tuple[float, float],
              e0: Ellipsoid, drawn_back_mm: float = 0.0) -> tuple[Ellipsoid, str] | None:
    """Electrodes that converge or diverge: every pulsed pair's spacing along the exposure must stay
    within ``pair_range``; the zone credited is the parallel array's at the narrowest spacing (the
    voltage is set from the widest). None when a pair leaves the range or no zone exists there."""
    from .arrays import pair_spacings

    t = opt.template
    assert t is not None
    expo = float(t.exposure_mm or 0.0)
    pairs = pair_spacings(tips, dirs, expo + drawn_back_mm, pair_range[1])  # every position's exposure
    if not pairs:
        return None
    lo = min(p.min_mm for p in pairs)
    hi = max(p.max_mm for p in pairs)
    if lo < pair_range[0] - 1e-6 or hi > pair_range[1] + 1e-6:
        return None
    s_cred = min(float(t.spacing_mm), math.floor(lo))
    try:
        z = array_zone(ArrayTemplate(t.modality, t.n_probes, s_cred, t.exposure_mm))
    except ArrayModelMissing:
        return None
    semi = (z.length_mm / 2, z.width_mm / 2, z.depth_mm / 2)
    e = e0.model_copy(update={"semi_axes_mm": tuple(min(a, b) for a, b in zip(semi, opt.semi_mm, strict=True))})
    note = (f"electrodes not parallel (tips at the modelled layout, shafts leaning to reach safe paths): pulsed pair "
            f"spacing {lo:.1f}-{hi:.1f} mm along the {expo + drawn_back_mm:g} mm exposed (all positions; tip {min(p.tip_mm for p in pairs):.1f}-"
            f"{max(p.tip_mm for p in pairs):.1f}, back {min(p.back_mm for p in pairs):.1f}-"
            f"{max(p.back_mm for p in pairs):.1f} mm); zone credited as the parallel array's at {s_cred:g} mm, "
            f"voltage per pair set from its widest spacing")
    return e, note


def _array_pose(pt: PlanningTarget, o_i: int, opt: ZoneOption, poses: Sequence[tuple[int, np.ndarray, int, float]],
                check: _PathCheck, need: int, n_positions: int, step_mm: float) -> _Pose | None:
    """Best pose of one array at ``n_positions`` positions (deepest first, drawn back by ``step_mm``).

    For each direction and roll, the coverage at every anchor is one FFT correlation of the target
    (cropped to its bounding box) with the composite zone stencil; anchors whose zone would touch a
    must-spare structure are dropped (a second correlation, only where such structures are near);
    the best anchors are then checked for safe needle paths of every probe."""
    g = pt.grid
    a3inv = np.linalg.inv(g.affine[:3, :3])
    a, b, c = opt.semi_mm
    off = opt.tip_offset_mm or 0.0
    lay = opt.offsets()
    healthy = pt.body & ~pt.target
    nz = np.argwhere(pt.target)
    lo, hi = nz.min(axis=0), nz.max(axis=0) + 1
    tcrop = pt.target[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    best: _Pose | None = None
    coverable = 0
    reduced: dict[tuple, np.ndarray] = {}  # composite stencils of credited (narrower) zones of leaned arrays
    for d_i, d, r_i, rdeg in poses:
        _, u0, v0 = _frame(d)
        th = math.radians(rdeg)
        u = math.cos(th) * u0 + math.sin(th) * v0
        v = np.cross(d, u)
        e0 = Ellipsoid(centre_lps=(0.0, 0.0, 0.0), axes_lps=(tuple(d), tuple(u), tuple(v)),
                       semi_axes_mm=(a, b, c), device=opt.device, setting=opt.setting, thermal=False,
                       modality=opt.modality, sources=list(opt.sources))
        st = _stencil(e0, g)
        shifts = [np.rint(a3inv @ (-q * step_mm * d))[::-1].astype(np.int64) for q in range(n_positions)]
        comp = np.unique(np.concatenate([st + s_ for s_ in shifts]), axis=0)
        ker = _kernel(comp)
        h = (np.array(ker.shape) - 1) // 2
        cov = _correlate_full(tcrop, ker)  # anchors lo - h ... hi + h - 1 (planning indices)
        base = lo - h
        ok = cov >= (1 if best is None else need if best.full else best.covered + 1)
        if not ok.any():
            continue
        spare_box = [slice(max(0, int(base[i] - h[i])), int(base[i] + cov.shape[i] + h[i])) for i in range(3)]
        sp = pt.must_spare[tuple(spare_box)]
        if sp.any():
            pad = [(int(spare_box[i].start - (base[i] - h[i])),
                    int(base[i] + cov.shape[i] + h[i] - spare_box[i].start - sp.shape[i])) for i in range(3)]
            spp = np.pad(sp, [(max(0, p0), max(0, p1)) for p0, p1 in pad])
            from scipy.signal import fftconvolve

            hit = np.rint(fftconvolve(spp.astype(np.float32), ker[::-1, ::-1, ::-1], mode="valid"))
            ok &= hit[:cov.shape[0], :cov.shape[1], :cov.shape[2]] < 0.5
        cand_idx = np.argwhere(ok)
        if not len(cand_idx):
            continue
        covs = cov[tuple(cand_idx.T)]
        full_any = bool((covs >= need).any())
        if full_any:
            sel = cand_idx[covs >= need]
            sel = sel[np.argsort(np.linalg.norm(sel - (cov.shape[0] // 2, cov.shape[1] // 2, cov.shape[2] // 2),
                                                axis=1))][:400]
            hv = np.array([_count_at(healthy, base + x, comp) for x in sel])
            order = sel[np.argsort(hv, kind="stable")][:64]
        else:
            order = cand_idx[np.argsort(-covs, kind="stable")][:32]  # partial coverage: the best few anchors show what is reachable
        lean_partial = 0
        for x in order:
            anchor = base + x
            cvx = int(cov[tuple(x)])
            centre = g.index_to_world(anchor[::-1].astype(float))
            tips = [centre + off * d + ox * u + oy * v for ox, oy in lay]
            entries, lens, dirs_used, feasible = [], [], [], True
            for tip, (ox, oy) in zip(tips, lay, strict=True):
                f_ok, f_why, f_len, f_dir = check.probe(tip, d, ox * u + oy * v)
                if not f_ok:
                    check.blocked[f_why] = check.blocked.get(f_why, 0) + 1
                    feasible = False
                    break
                entries.append(tip - f_dir * f_len)
                lens.append(f_len)
                dirs_used.append(f_dir)
            if not feasible:
                continue
            e_pos, lean_note = e0, ""
            if check.pair_range is not None and opt.template is not None and any(
                    float(f @ d) < 1.0 - 1e-9 for f in dirs_used):
                lean = _ire_lean(opt, np.array(tips), np.array(dirs_used), check.pair_range, e0,
                                 (n_positions - 1) * step_mm)
                if lean is None:
                    check.blocked["electrode pair spacing outside the limits along the exposure"] = (
                        check.blocked.get("electrode pair spacing outside the limits along the exposure", 0) + 1)
                    continue
                e_pos, lean_note = lean
                rkey = (d_i, r_i, tuple(round(x, 3) for x in e_pos.semi_axes_mm))
                if rkey not in reduced:
                    st_r = _stencil(e_pos, g)
                    reduced[rkey] = np.unique(np.concatenate([st_r + s_ for s_ in shifts]), axis=0)
                comp_r = reduced[rkey]
                cvx = _count_at(pt.target, anchor, comp_r)  # credited: the zone at the narrowest pair spacing
            coverable = max(coverable, cvx)
            hvx = _count_at(healthy, anchor, comp)
            cand = _Pose(o_i, cvx, hvx, cvx >= need, [], coverable, lean_note)
            if best is None or (cand.full, -cand.healthy if cand.full else cand.covered) > (
                    best.full, -best.healthy if best.full else best.covered):
                pos = []
                for q in range(n_positions):
                    cq = centre - q * step_mm * d
                    e = e_pos.model_copy(update={"centre_lps": tuple(float(x) for x in cq)})
                    pos.append(Candidate(o_i, d, u, cq, (o_i, d_i, r_i, 0, 0), -q, e,
                                         [t - q * step_mm * f for t, f in zip(tips, dirs_used, strict=True)],
                                         list(entries), [max(0.0, ln - q * step_mm) for ln in lens]))
                cand.positions = pos
                best = cand
            lean_partial += bool(lean_note) and not cand.full
            if cand.full or not lean_note or lean_partial >= LEAN_PARTIAL_TRIES:
                break  # the best feasible anchor of this direction and roll (a leaned partial one: a few more)
    if best is not None:
        best.coverable = max(best.coverable, coverable)
    return best


def _step(cfg: ModalityConfiguration, o: ZoneOption) -> float:
    """Pull-back step of one array template (0: none): its exposure (IRE) or freezing length (cryo)."""
    t = o.template
    if t is None:
        return 0.0
    active = None
    if cfg.pullback_step == "active_length":
        from .arrays import model_active_length_mm

        active = t.active_length_mm if t.active_length_mm is not None else model_active_length_mm()
    return cfg.pullback_step_mm(t.exposure_mm, active)


def place_array(pt: PlanningTarget, options: list[ZoneOption], directions: Sequence[np.ndarray],
                prep: CasePrep | None, cfg: ModalityConfiguration, *, required_coverage: float = 0.99,
                max_evaluations: int = 16, max_poses: int = 6, partial_tolerance_pct: float = 0.0) -> Placement:
    """Place one whole array (cryo/IRE) with the fewest probes that covers the target.

    ``options`` are array templates (one zone each, from the physics model), fewest probes first.
    Templates whose zone (with the allowed pull-backs) is smaller than the target along a principal
    axis are skipped; the rest are tried fewest probes first until one covers, each first at one
    position, then with pull-backs. When none covers within the limits, the plan keeps the best
    coverage within them and says what blocks the rest; among partial arrays within
    ``partial_tolerance_pct`` points of the best coverage the one with the fewest probes is kept
    (probes that add less than that are punctures without benefit)."""
    notes: list[str] = []
    n_t = int(pt.target.sum())
    need = int(math.ceil(required_coverage * n_t - 1e-9))
    if not options:
        return Placement([], options, n_t, 0, need, 0, 0, {"no usable array template": n_t}, notes)
    max_pos = cfg.positions_per_tumour.max if cfg.pullbacks else 1
    ext = _extents(pt)
    fits = [o for o in options if _could_cover(o, ext, max_pos, step=_step(cfg, o))]
    if fits and options[0].modality == "cryo":  # say why fewer probes were not tried (the count practice uses)
        fewest = min(o.n_probes for o in fits)
        small = [o for o in options if o.n_probes < fewest and o.n_probes >= 2]
        if small:
            big = max(small, key=lambda o: (o.n_probes, o.volume_ml))
            dims = " x ".join(f"{2 * x:.0f}" for x in big.semi_mm)
            notes.append(f"arrays of {min(o.n_probes for o in small)}-{big.n_probes} probes not tried: the largest "
                         f"({big.template.label() if big.template else big.setting}) has a modelled zone of {dims} mm "
                         f"(along x across), smaller than the target ({' x '.join(f'{e:.0f}' for e in ext)} mm) "
                         f"even with {max_pos - 1} pull-back(s)")
    lean_ok = bool(fits) or not cfg.diverging  # IRE: no array can cover anyway - keep parallel, search fast
    if not fits:  # none is large enough: the largest shows the best coverage within the limits
        fits = sorted(options, key=lambda o: (-o.volume_ml, o.n_probes))
        notes.append(f"no array within the limits is as large as the target "
                     f"({' x '.join(f'{e:.0f}' for e in ext)} mm)")
    screened: dict[tuple, list] = {}
    blocked_paths: dict[str, int] = {}
    check = _PathCheck(prep, {}, blocked_paths, float(cfg.converging_max_deg or 0.0) if lean_ok else 0.0,
                       bool(cfg.diverging) and lean_ok,
                       (float(cfg.pair_spacing_mm.min or 0.0), float(cfg.pair_spacing_mm.max))
                       if cfg.pair_spacing_mm is not None else None)
    tried: list[_Pose] = []
    labels_tried: list[str] = []
    for o in fits[:max_evaluations]:
        o_i = options.index(o)
        step = _step(cfg, o)
        labels_tried.append(o.template.label() if o.template else o.setting)
        pose = None
        key = (o.n_probes, float(o.template.spacing_mm) if o.template else 0.0, round(o.tip_offset_mm or 0.0, 1))
        if key not in screened:
            screened[key] = screen_array_poses(pt, o, directions, check, keep=max_poses)
        for n_pos in range(1, (max_pos if step else 1) + 1):
            pose = _array_pose(pt, o_i, o, screened[key], check, need, n_pos, step)
            if pose is not None:
                tried.append(pose)
                if pose.full:
                    break
        if pose is not None and pose.full:
            break
    if not tried:  # no template large enough has safe paths: the largest smaller ones show what is reachable
        rest = sorted((o for o in options if o not in fits), key=lambda o: (-o.volume_ml, o.n_probes))
        for o in rest[:max_evaluations]:
            key = (o.n_probes, float(o.template.spacing_mm) if o.template else 0.0, round(o.tip_offset_mm or 0.0, 1))
            if key not in screened:
                screened[key] = screen_array_poses(pt, o, directions, check, keep=max_poses)
            labels_tried.append(o.template.label() if o.template else o.setting)
            pose = _array_pose(pt, options.index(o), o, screened[key], check, need, 1, 0.0)
            if pose is not None:
                tried.append(pose)
                notes.append("no array large enough for the target has safe needle paths; the largest that has "
                             "is shown (partial coverage)")
                break
    full = [p for p in tried if p.full]
    if full:
        best = min(full, key=lambda p: (options[p.option].n_probes, len(p.positions), p.healthy))
    elif tried:
        top = max(tried, key=lambda p: (p.covered, -options[p.option].n_probes, -len(p.positions)))
        slack = partial_tolerance_pct / 100.0 * n_t
        near = [p for p in tried if p.covered >= top.covered - slack]
        best = min(near, key=lambda p: (options[p.option].n_probes, len(p.positions), -p.covered))
        if best is not top:
            t_opt = options[top.option]
            notes.append(f"{options[best.option].n_probes} probes kept: the best partial array "
                         f"({t_opt.template.label() if t_opt.template else t_opt.setting}) covers only "
                         f"{100.0 * (top.covered - best.covered) / max(n_t, 1):.1f} points more of the target "
                         f"(< {partial_tolerance_pct:g}, modality_rules.yaml coverage_tolerance_pct)")
    else:
        blocked = {k: n_t for k in blocked_paths} or {"no array pose spares the must-spare structures": n_t}
        notes.append("no array pose with safe paths that spares every must-spare structure")
        return Placement([], options, n_t, 0, need, 0, 0, blocked, notes)
    opt = options[best.option]
    blocked = {}
    if not best.full:
        short = n_t - best.covered
        why = max(blocked_paths, key=blocked_paths.get) if blocked_paths else (  # type: ignore[arg-type]
            "zone would overlap must-spare structures" if pt.must_spare.any() else "configuration limits")
        blocked[why] = short
        notes.append(f"full coverage impossible within the configuration limits: the best array "
                     f"({opt.template.label() if opt.template else opt.setting}, {len(best.positions)} "
                     f"position(s)) covers {best.covered / max(n_t, 1):.1%} of the target (needs "
                     f"{need / max(n_t, 1):.0%})")
    if best.lean_note:
        notes.append(best.lean_note)
    if len(best.positions) > 1:
        notes.append(f"{len(best.positions) - 1} pull-back(s) of the array along its tracks")
    notes.append(f"array templates evaluated: {', '.join(labels_tried)}")
    return Placement(best.positions, options, n_t, best.covered, need, best.coverable, len(tried), blocked, notes,
                     len(best.positions))
