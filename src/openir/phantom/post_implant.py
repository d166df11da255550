"""`make_post_implant_ct`: a synthetic post-implant CT with I-125 seeds at known positions.

`implant_seeds` draws given seeds into any axial CT and `seeds_from_plan` applies implant errors to
planned seeds (so a plan from `openir seeds plan` on a phantom becomes its post-implant CT).

The patient is `make_abdomen`'s (body wall, liver, vessels, ribs, spine) with one liver tumour.
A coplanar template of parallel needles plus a few oblique free-hand needles carries seeds through
the tumour; each seed is implanted with a needle and a seed placement error, so the truth differs
from the plan the way it does after a real implant. Some needles are loaded end to end (chains of
touching seeds) and a few seeds migrate beside a neighbour (touching side by side), the cases that
defeat a plain threshold-and-label detector.

How a seed is drawn (constants with their sources in ``data/post_implant.yaml``): the 4.5 x 0.8 mm
capsule is integrated over each voxel (partial volume at the CT's voxel size, slice thickness =
slice spacing), blurred by the scanner's point-spread function, given streaks (alternating bright
and dark lines through each seed cross-section and dark bands between seeds in the same slice), and
the sum is clipped to the 12-bit CT scale, so seed cores saturate at 3071 HU as on clinical scans.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict
from pydantic.dataclasses import dataclass as pydantic_dataclass
from scipy import ndimage

from openir.core import InputError, LabelMap, Sourced, Volume
from openir.core.datafiles import load_packaged

from .abdomen import make_abdomen
from .models import TumourInfo, TumourSpec


class SeedLook(BaseModel):
    """The phantom's ``data/post_implant.yaml``: seed size and how metal renders on CT."""

    model_config = ConfigDict(extra="forbid")
    version: int
    seed_length_mm: Sourced
    seed_diameter_mm: Sourced
    metal_hu: Sourced
    ct_max_hu: Sourced
    ct_min_hu: Sourced
    psf_fwhm_mm: Sourced
    streak_hu: Sourced
    streak_decay_mm: Sourced
    dark_band_hu: Sourced


def seed_look() -> SeedLook:
    """The seed rendering table (read once).

    >>> seed_look().seed_length_mm.value, seed_look().ct_max_hu.value
    (4.5, 3071.0)
    """
    return load_packaged(SeedLook, "openir.phantom", "data/post_implant.yaml")


@dataclass(frozen=True)
class PostImplantSpec:
    """What to build. Lengths in mm, angles in degrees.

    ``spacing_mm`` is (x, y, z); slices are contiguous (thickness = spacing). Template needles run
    parallel, ``needle_pitch_mm`` apart, from the anterior abdominal wall; ``oblique_needles`` more
    are tilted ``oblique_deg`` out of the axial plane. Seeds sit ``seed_pitch_mm`` apart (centre to
    centre) along each needle inside the tumour; on ``chain_needles`` needles they are loaded end to
    end (touching); ``side_by_side`` seeds migrate beside a seed of a neighbouring needle.
    ``needle_error_mm`` and ``seed_error_mm`` are the SDs of the implant errors (per needle: a
    lateral shift and a tilt; per seed: a 3-D jitter), so implanted seeds differ from the plan.
    """

    seed: int = 0
    spacing_mm: tuple[float, float, float] = (0.8, 0.8, 1.25)
    tumour_diameter_mm: float = 40.0
    needle_pitch_mm: float = 10.0
    seed_pitch_mm: float = 10.0
    chain_needles: int = 2
    chain_length: int = 3
    side_by_side: int = 2
    oblique_needles: int = 2
    oblique_deg: float = 25.0
    needle_error_mm: float = 1.5
    seed_error_mm: float = 0.8
    streaks: bool = True
    noise_hu: float = 10.0
    fov_z_mm: float = 90.0

    def __post_init__(self) -> None:
        sp = np.asarray(self.spacing_mm, float)
        if sp.shape != (3,) or not np.all(np.isfinite(sp)) or np.any(sp < 0.3) or np.any(sp > 3.0):
            raise InputError(f"CT spacing must be three values of 0.3-3 mm, got {self.spacing_mm}", field="spacing_mm")
        if not 20.0 <= self.tumour_diameter_mm <= 60.0:
            raise InputError(f"tumour diameter must be 20-60 mm, got {self.tumour_diameter_mm}",
                             field="tumour_diameter_mm")
        if not 5.0 <= self.needle_pitch_mm <= 20.0:
            raise InputError(f"needle pitch must be 5-20 mm, got {self.needle_pitch_mm}", field="needle_pitch_mm")
        if not 5.0 <= self.seed_pitch_mm <= 20.0:
            raise InputError(f"seed pitch must be 5-20 mm, got {self.seed_pitch_mm}", field="seed_pitch_mm")
        if not 0.0 <= self.oblique_deg <= 60.0:
            raise InputError(f"oblique angle must be 0-60 degrees, got {self.oblique_deg}", field="oblique_deg")
        if min(self.chain_needles, self.chain_length, self.side_by_side, self.oblique_needles) < 0:
            raise InputError("needle and seed counts must not be negative", field="chain_needles")
        if not 40.0 <= self.fov_z_mm <= 300.0:
            raise InputError(f"z field of view must be 40-300 mm, got {self.fov_z_mm}", field="fov_z_mm")


@pydantic_dataclass
class NeedleTruth:
    """One needle: planned and actual path through the tumour (LPS mm, unit direction)."""

    index: int
    kind: str  # "template" or "oblique"
    planned_entry_lps: tuple[float, float, float]
    planned_direction: tuple[float, float, float]
    actual_entry_lps: tuple[float, float, float]
    actual_direction: tuple[float, float, float]


@pydantic_dataclass
class SeedTruth:
    """One seed: where the plan put it and where it really is (centre, unit long axis)."""

    index: int
    needle: int
    planned_lps: tuple[float, float, float]
    position_lps: tuple[float, float, float]
    direction: tuple[float, float, float]
    touching: str = "none"  # "none", "chain" (end to end) or "side" (side by side)


@dataclass
class PostImplantPhantom:
    """A post-implant CT, its label map, the tumour, the needles and the seeds (plan and truth)."""

    ct: Volume
    labels: LabelMap
    tumour: TumourInfo
    needles: list[NeedleTruth]
    seeds: list[SeedTruth]
    spec: PostImplantSpec = field(default_factory=PostImplantSpec)

    @property
    def planned_lps(self) -> np.ndarray:
        return np.array([s.planned_lps for s in self.seeds], float).reshape(-1, 3)

    @property
    def true_lps(self) -> np.ndarray:
        return np.array([s.position_lps for s in self.seeds], float).reshape(-1, 3)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _perpendicular_basis(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = _unit(np.cross(d, a))
    return u, np.cross(d, u)


def _tilt(d: np.ndarray, sd_rad: float, rng: np.random.Generator) -> np.ndarray:
    u, v = _perpendicular_basis(d)
    a, b = rng.normal(0.0, sd_rad, 2)
    return _unit(d + a * u + b * v)


def _layout(spec: PostImplantSpec, centre: np.ndarray, rng: np.random.Generator,
            seed_len: float) -> tuple[list[NeedleTruth], list[SeedTruth]]:
    """Needles and seeds: planned positions on the needle paths, then the implant errors."""
    radius = spec.tumour_diameter_mm / 2.0
    yaw = np.radians(rng.uniform(-25.0, 25.0))
    d0 = _unit(np.array([np.sin(yaw), np.cos(yaw), 0.0]))  # from anterior, posteriorly (+y in LPS)
    u, v = _perpendicular_basis(d0)
    reach = radius - 4.0  # needles and seeds stay >= 4 mm inside the tumour surface
    half = int(np.floor(reach / spec.needle_pitch_mm))
    holes = [(a * spec.needle_pitch_mm, b * spec.needle_pitch_mm) for a in range(-half, half + 1)
             for b in range(-half, half + 1) if np.hypot(a, b) * spec.needle_pitch_mm <= reach]
    paths: list[tuple[str, np.ndarray, np.ndarray]] = [("template", centre + a * u + b * v, d0) for a, b in holes]
    tilt = np.radians(spec.oblique_deg)
    for n in range(spec.oblique_needles):
        side = 1.0 if n % 2 == 0 else -1.0
        d = _unit(np.cos(tilt) * d0 + side * np.sin(tilt) * v)  # tilted cranially / caudally
        off = (n // 2 + 0.5) * spec.needle_pitch_mm * 0.5 * side
        paths.append(("oblique", centre + off * u, d))
    chain_ids = set(rng.choice([i for i, p in enumerate(paths) if p[0] == "template"],
                               size=min(spec.chain_needles, len(holes)), replace=False).tolist())
    needles: list[NeedleTruth] = []
    seeds: list[SeedTruth] = []
    for ni, (kind, through, d) in enumerate(paths):
        # planned path: entry 80 mm before the point where it passes closest to the centre
        t_mid = float(np.dot(centre - through, d))
        mid = through + t_mid * d
        chord = np.sqrt(max(reach**2 - float(np.sum((mid - centre) ** 2)), 0.0))
        entry = mid - 80.0 * d
        actual_d = _tilt(d, np.radians(1.5), rng)
        su, sv = _perpendicular_basis(d)
        actual_entry = entry + rng.normal(0.0, spec.needle_error_mm / 2.0, 2) @ np.stack([su, sv])
        needles.append(NeedleTruth(ni, kind, tuple(entry), tuple(d), tuple(actual_entry), tuple(actual_d)))
        if ni in chain_ids:
            n_seeds = max(2, spec.chain_length)
            ts = (np.arange(n_seeds) - (n_seeds - 1) / 2.0) * (seed_len + 0.1)
            touching = "chain"
        else:
            n_seeds = int(np.floor(2 * chord / spec.seed_pitch_mm)) + 1
            ts = (np.arange(n_seeds) - (n_seeds - 1) / 2.0) * spec.seed_pitch_mm
            touching = "none"
        for t in ts:
            planned = mid + t * d
            depth = 80.0 + t
            if touching == "chain":
                jitter = rng.normal(0.0, 0.1, 3)  # a loaded chain stays together
            else:
                jitter = rng.normal(0.0, spec.seed_error_mm, 3)
            pos = actual_entry + depth * actual_d + jitter
            axis = _tilt(actual_d, np.radians(2.0 if touching == "chain" else 8.0), rng)
            seeds.append(SeedTruth(len(seeds), ni, tuple(planned), tuple(pos), tuple(axis), touching))
    _migrate_side_by_side(spec, seeds, rng)
    return needles, seeds


def _migrate_side_by_side(spec: PostImplantSpec, seeds: list[SeedTruth], rng: np.random.Generator) -> None:
    """Move ``spec.side_by_side`` seeds beside a seed of another needle (touching, parallel)."""
    lone = [s for s in seeds if s.touching == "none"]
    rng.shuffle(lone)  # type: ignore[arg-type]
    used: set[int] = set()
    moved = 0
    for s in lone:
        if moved >= spec.side_by_side:
            break
        if s.index in used:
            continue
        hosts = [h for h in lone if h.needle != s.needle and h.index not in used and h.index != s.index]
        if not hosts:
            break
        host = min(hosts, key=lambda h: float(np.linalg.norm(np.subtract(h.position_lps, s.position_lps))))
        hd = np.asarray(host.direction)
        side, _ = _perpendicular_basis(hd)
        new_pos = np.asarray(host.position_lps) + 0.95 * side + rng.uniform(-0.8, 0.8) * hd
        seeds[s.index] = SeedTruth(s.index, s.needle, s.planned_lps, tuple(new_pos), tuple(hd), "side")
        seeds[host.index] = SeedTruth(host.index, host.needle, host.planned_lps, host.position_lps,
                                      host.direction, "side")
        used.update({s.index, host.index})
        moved += 1


def _capsule_fraction(ct: Volume, s: SeedTruth, length: float, radius: float) -> tuple[tuple[slice, ...], np.ndarray]:
    """Fraction of each voxel inside one seed capsule, over the seed's index box (supersampled)."""
    sp = ct.spacing
    p = np.asarray(s.position_lps)
    d = np.asarray(s.direction)
    half_seg = length / 2.0 - radius
    ext = np.abs(d) * (length / 2.0) + radius + sp
    lo = np.floor(ct.world_to_index(p - ext)).astype(int)
    hi = np.ceil(ct.world_to_index(p + ext)).astype(int) + 1
    n = np.array(ct.grid.shape_ijk)
    lo, hi = np.clip(lo, 0, n), np.clip(hi, 0, n)
    box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    if np.any(hi <= lo):
        return box, np.zeros((0, 0, 0))
    sub = np.maximum(2, np.ceil(sp / 0.2).astype(int))  # sub-samples per voxel along i, j, k
    offs = [((np.arange(m) + 0.5) / m - 0.5) for m in sub]
    ii = (np.arange(lo[0], hi[0])[:, None] + offs[0][None, :]).ravel()
    jj = (np.arange(lo[1], hi[1])[:, None] + offs[1][None, :]).ravel()
    kk = (np.arange(lo[2], hi[2])[:, None] + offs[2][None, :]).ravel()
    # identity direction (make_abdomen): world = origin + index * spacing
    x = ct.origin[0] + ii * sp[0] - p[0]
    y = ct.origin[1] + jj * sp[1] - p[1]
    z = ct.origin[2] + kk * sp[2] - p[2]
    rel = np.stack(np.meshgrid(z, y, x, indexing="ij"), axis=-1)[..., ::-1]  # [k, j, i, xyz]
    t = np.clip(rel @ d, -half_seg, half_seg)
    dist2 = np.sum((rel - t[..., None] * d) ** 2, axis=-1)
    inside = (dist2 <= radius * radius).astype(np.float32)
    shape = (hi[2] - lo[2], sub[2], hi[1] - lo[1], sub[1], hi[0] - lo[0], sub[0])
    frac = inside.reshape(shape).mean(axis=(1, 3, 5))
    return box, frac


def _streaks(ct: Volume, metal: np.ndarray, seeds: list[SeedTruth], look: SeedLook,
             rng: np.random.Generator) -> np.ndarray:
    """Streak artefact (HU) per axial slice: alternating lines through each seed cross-section and
    dark bands between seeds sharing the slice; amplitude follows the metal in that slice."""
    out = np.zeros(metal.shape, np.float32)
    sp = ct.spacing
    full = np.pi * (seed_look().seed_diameter_mm.value / 2.0) ** 2 / (sp[0] * sp[1])  # voxels of one cross-section
    amp, decay, dark = look.streak_hu.value, look.streak_decay_mm.value, look.dark_band_hu.value
    phases = rng.uniform(0.0, np.pi, len(seeds))
    n_lines = 4
    reach = 5.0 * decay
    ij = np.array([ct.world_to_index(s.position_lps) for s in seeds]).reshape(-1, 3)
    for k in range(metal.shape[0]):
        z = ct.origin[2] + k * sp[2]
        near = [n for n, s in enumerate(seeds) if abs(s.position_lps[2] - z) < 4.0]
        if not near:
            continue
        # metal of each nearby seed in this slice (its cross-section area in voxels)
        w = []
        for n in near:
            i0, j0 = int(round(ij[n, 0])), int(round(ij[n, 1]))
            win = metal[k, max(j0 - 5, 0):j0 + 6, max(i0 - 5, 0):i0 + 6]
            w.append(float(win.sum()))
        w_arr = np.minimum(np.asarray(w) / full, 1.5)
        act = [(n, wn) for n, wn in zip(near, w_arr, strict=True) if wn > 0.05]
        if not act:
            continue
        pts = np.array([seeds[n].position_lps[:2] for n, _ in act])
        lo = np.floor((pts.min(0) - reach - ct.origin[:2]) / sp[:2]).astype(int).clip(0)
        hi = np.ceil((pts.max(0) + reach - ct.origin[:2]) / sp[:2]).astype(int) + 1
        hi = np.minimum(hi, [metal.shape[2], metal.shape[1]])
        xs = ct.origin[0] + np.arange(lo[0], hi[0]) * sp[0]
        ys = ct.origin[1] + np.arange(lo[1], hi[1]) * sp[1]
        gx, gy = np.meshgrid(xs, ys)
        acc = np.zeros(gx.shape, np.float32)
        for (n, wn), (px, py) in zip(act, pts, strict=True):
            dx, dy = gx - px, gy - py
            r = np.hypot(dx, dy)
            fall = (decay / (r + decay)) * np.clip((r - 1.0) / 1.5, 0.0, 1.0) * np.clip(1.0 - r / reach, 0.0, 1.0)
            for m in range(n_lines):
                th = phases[n] + m * np.pi / n_lines
                dist = np.abs(-np.sin(th) * dx + np.cos(th) * dy)
                acc += np.float32((1.0 if m % 2 == 0 else -1.0) * amp * wn) * np.exp(-0.5 * (dist / 0.5) ** 2) * fall
        deepest = np.zeros(gx.shape, np.float32)  # bands do not add up: the deepest one shows
        for a in range(len(act)):
            for b in range(a + 1, len(act)):
                pa, pb = pts[a], pts[b]
                seg = pb - pa
                length = float(np.hypot(*seg))
                if length < 3.0 or length > 60.0:
                    continue
                t = ((gx - pa[0]) * seg[0] + (gy - pa[1]) * seg[1]) / length**2
                inside = (t > 0.0) & (t < 1.0)
                dist = np.abs(seg[0] * (gy - pa[1]) - seg[1] * (gx - pa[0])) / length
                r_end = np.minimum(t, 1.0 - t) * length
                band = np.exp(-0.5 * (dist / 0.8) ** 2) * inside * np.clip((r_end - 2.0) / 2.0, 0.0, 1.0)
                np.maximum(deepest, np.float32(dark * min(act[a][1], act[b][1], 1.0)) * band, out=deepest)
        out[k, lo[1]:hi[1], lo[0]:hi[0]] += acc - deepest
    return out


def make_post_implant_ct(spec: PostImplantSpec | None = None) -> PostImplantPhantom:
    """Build a post-implant abdominal CT with I-125 seeds in a liver tumour; deterministic per spec.

    Returns the CT (int16 HU, metal clipped at 3071), its label map (``make_abdomen``'s labels),
    the tumour, the needles (planned and actual) and the seeds (planned and true positions, long
    axis, whether each touches another).

    >>> p = make_post_implant_ct(PostImplantSpec(spacing_mm=(1.5, 1.5, 2.0), tumour_diameter_mm=30))
    >>> len(p.seeds) > 10, int(p.ct.array.max()), p.ct.meta["units"]
    (True, 3071, 'HU')
    >>> sum(s.touching == "chain" for s in p.seeds) >= 4
    True
    """
    spec = spec or PostImplantSpec()
    look = seed_look()
    r_lay = np.random.default_rng(np.random.SeedSequence(spec.seed + 4241).spawn(2)[0])
    base = make_abdomen(seed=spec.seed, tumours=(TumourSpec(spec.tumour_diameter_mm),), spacing_mm=spec.spacing_mm,
                        fov_mm=(409.6, 409.6, spec.fov_z_mm), noise_hu=spec.noise_hu, fov_centre_lps=(0.0, 0.0, 50.0))
    tumour = base.tumours[0]
    centre = np.asarray(tumour.centre_lps, float)
    ct = base.ct
    zmin, zmax = ct.origin[2], ct.origin[2] + (ct.shape[0] - 1) * ct.spacing[2]
    radius = spec.tumour_diameter_mm / 2.0
    if centre[2] - radius - 5 < zmin or centre[2] + radius + 5 > zmax:
        raise InputError(f"tumour (z {centre[2]:.0f} mm) does not fit the {spec.fov_z_mm:g} mm z field of view; "
                         "enlarge fov_z_mm", field="fov_z_mm")
    needles, seeds = _layout(spec, centre, r_lay, look.seed_length_mm.value)
    out = implant_seeds(ct, seeds, streaks=spec.streaks, seed=spec.seed)
    return PostImplantPhantom(out, base.labels, tumour, needles, seeds, spec)


def implant_seeds(ct: Volume, seeds: Sequence[SeedTruth], streaks: bool = True, seed: int = 0) -> Volume:
    """Draw ``seeds`` (true centres and axes) into a CT in HU: partial volume at its voxel size, the
    scanner's blur, streaks, clipping to the 12-bit scale. The CT must be axial (identity direction).

    >>> from openir.core import make_affine
    >>> ct = Volume(np.full((20, 30, 30), 40, np.int16), make_affine((0.8, 0.8, 1.25), (-12.0, -12.0, -12.0)))
    >>> post = implant_seeds(ct, [SeedTruth(0, 0, (0, 0, 0), (0.1, -0.2, 0.3), (1, 0, 0))])
    >>> int(post.array.max()), post.meta["seed_count"]
    (3071, 1)
    """
    if not np.allclose(ct.direction, np.eye(3), atol=1e-6):
        raise InputError("seeds can be drawn only into an axial CT with identity direction", field="ct")
    look = seed_look()
    length, diameter = look.seed_length_mm.value, look.seed_diameter_mm.value
    seeds = list(seeds)
    metal = np.zeros(ct.shape, np.float32)
    for s in seeds:
        box, frac = _capsule_fraction(ct, s, length, diameter / 2.0)
        if frac.size:
            metal[box] += frac.astype(np.float32)
    np.minimum(metal, 1.0, out=metal)
    sigma_mm = look.psf_fwhm_mm.value / 2.3548
    blurred = ndimage.gaussian_filter(metal, sigma=(0.0, sigma_mm / ct.spacing[1], sigma_mm / ct.spacing[0]))
    hu = ct.array.astype(np.float32) + blurred * np.float32(look.metal_hu.value)
    if streaks and seeds:
        r_art = np.random.default_rng(np.random.SeedSequence(seed + 4241).spawn(2)[1])
        hu += _streaks(ct, metal, seeds, look, r_art)
    np.clip(hu, look.ct_min_hu.value, look.ct_max_hu.value, out=hu)
    return ct.with_array(np.rint(hu).astype(np.int16), post_implant=True, seed_count=len(seeds), units="HU")


def seeds_from_plan(planned_lps: np.ndarray, directions: np.ndarray, needles: Sequence[int],
                    needle_error_mm: float = 1.5, seed_error_mm: float = 0.8, seed: int = 0) -> list[SeedTruth]:
    """Where planned seeds end up: per needle a lateral shift (SD ``needle_error_mm`` / 2 at entry,
    80 mm before the seed) and a 1.5 degree tilt, per seed a jitter across the track (SD
    ``seed_error_mm``) and a quarter of it along (seeds in one track keep their spacing).

    >>> t = seeds_from_plan(np.zeros((2, 3)), np.tile([0.0, 1.0, 0.0], (2, 1)), [0, 0], seed=1)
    >>> len(t), t[0].needle, bool(0 < np.linalg.norm(t[0].position_lps) < 10)
    (2, 0, True)
    """
    pts = np.asarray(planned_lps, float).reshape(-1, 3)
    dirs = np.asarray(directions, float).reshape(-1, 3)
    if len(pts) != len(dirs) or len(pts) != len(needles) or not np.all(np.isfinite(pts)) or \
            np.any(np.linalg.norm(dirs, axis=1) < 1e-9):
        raise InputError("planned seeds need one finite position, one direction and one needle each", field="seeds")
    rng = np.random.default_rng(np.random.SeedSequence(seed + 977))
    out: list[SeedTruth] = []
    moves: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for n, (p, d) in enumerate(zip(pts, dirs, strict=True)):
        d = _unit(d)
        nid = int(needles[n])
        if nid not in moves:
            su, sv = _perpendicular_basis(d)
            moves[nid] = (rng.normal(0.0, needle_error_mm / 2.0, 2) @ np.stack([su, sv]), _tilt(d, np.radians(1.5), rng))
        shift, actual_d = moves[nid]
        entry = p - 80.0 * d + shift
        su, sv = _perpendicular_basis(actual_d)
        # seeds of one needle keep their order and spacing: jitter mostly across the track
        jitter = rng.normal(0.0, seed_error_mm, 2) @ np.stack([su, sv]) + rng.normal(0.0, 0.25 * seed_error_mm) * actual_d
        pos = entry + 80.0 * actual_d + jitter
        out.append(SeedTruth(n, nid, tuple(p), tuple(pos), tuple(_tilt(actual_d, np.radians(8.0), rng))))
    return out
