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
"""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import _march
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
    pair_spacing_mm: float | None = None  # IRE: electrode spacing; the pair straddles the zone centre


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
            if r.probes > 1 and (modality != "ire" or r.spacing_mm is None):
                notes.append(f"{dev.id} ({r.label()}): a {r.probes}-probe zone without a placement model "
                             "is for look-up only, not planned with")
                continue
            d2 = r.diameter2_mm if r.diameter2_mm is not None else r.diameter_mm
            match = organ in (r.tissue or "").lower()
            setting = r.label() + (f" [{r.evidence}]" if r.evidence else "")
            opts.append(ZoneOption(dev.id, modality, r, (r.length_mm / 2, r.diameter_mm / 2, d2 / 2), setting,
                                   (r.source.strip(),), match,
                                   r.spacing_mm if modality == "ire" else None))
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
    for o_i, opt in enumerate(options):
        a, b, c = opt.semi_mm
        off = opt.row.centre_offset_mm if opt.row.centre_offset_mm is not None else tip_offset_mm
        rolls = [0.0, 60.0, 120.0] if opt.pair_spacing_mm else [0.0]
        for d_i, d in enumerate(directions):
            d = np.asarray(d, float) / np.linalg.norm(d)
            d_, u0, v0 = _frame(d)
            for r_i, rdeg in enumerate(rolls):
                th = math.radians(rdeg)
                u = math.cos(th) * u0 + math.sin(th) * v0
                v = np.cross(d, u)
                e0 = Ellipsoid(centre_lps=(0.0, 0.0, 0.0), axes_lps=(tuple(d), tuple(u), tuple(v)),
                               semi_axes_mm=(a, b, c), device=opt.device, setting=opt.setting,
                               thermal=opt.modality in ("microwave", "radiofrequency"), modality=opt.modality,
                               sources=list(opt.sources))
                if not opt.pair_spacing_mm:
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
                            key = f"zone would overlap must-spare {label_names.get(int(lv), lv)}"
                            blocked_by.setdefault(key, np.zeros(n_t, bool))[t] = True
                        continue
                    centre = g.index_to_world(idx[p][::-1].astype(float))
                    tips = ([centre + off * d] if not opt.pair_spacing_mm else
                            [centre + off * d + s * opt.pair_spacing_mm / 2 * u for s in (-1, 1)])
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
            healthy_weight: float) -> list[int]:
    taken_t = np.zeros(n_t, bool)
    taken_h = np.zeros(n_h, bool)
    chosen: list[int] = []
    covered = 0
    while covered < required and len(chosen) < max_probes:
        gt = trows.gain(taken_t, n_c)
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
            required: int, passes: int = 2) -> list[int]:
    """Lattice-neighbour swaps: keep coverage >= required (or raise it), ablate less healthy tissue."""
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


def place_probes(pt: PlanningTarget, options: list[ZoneOption], directions: Sequence[np.ndarray],
                 prep: CasePrep | None, *, required_coverage: float = 0.99, max_probes: int = 12,
                 healthy_weight: float = 0.05, lattice_fraction: float = 0.5, tip_offset_mm: float = 0.0,
                 exact_pool: int = 60, exact_max_k: int = 3,
                 label_names: dict[int, str] | None = None) -> Placement:
    """Choose probes covering >= ``required_coverage`` of the target with no must-spare overlap."""
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
    chosen = _greedy(trows, hrows, len(cands), n_t, n_h, required, max_probes, healthy_weight)
    greedy_n = len(chosen)
    chosen = _prune(trows, hrows, chosen, n_t, required)
    # exact search for fewer probes among the best candidates (plus those chosen)
    if len(chosen) > 1 and union_count(trows, chosen, n_t) >= required:
        sizes = np.diff(trows.ptr)
        pool = list(dict.fromkeys(list(chosen) + np.argsort(-sizes)[:exact_pool].tolist()))
        res = min_probes_exhaustive([trows.get(i) for i in pool], n_t, required,
                                    max_k=min(exact_max_k, len(chosen) - 1), max_combinations=300_000)
        if res is not None and res[0] < len(chosen):
            chosen = [pool[i] for i in res[1]]
            notes.append(f"exact search found {res[0]} probes (greedy {greedy_n})")
    chosen = _refine(cands, trows, hrows, chosen, n_t, n_h, required)
    covered = union_count(trows, chosen, n_t)
    return Placement([cands[i] for i in chosen], options, n_t, covered, required, coverable, len(cands),
                     blocked, notes, greedy_n)

