"""`make_chest`: a synthetic chest CT with lungs, airways, heart, aorta and ground-glass nodules."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openir.core import InputError

from . import kernels
from .canvas import BlobStyle, NoiseField, ellipsoid, lobe_extent, polyline_segments, rotation
from .common import body_wall, finish, jitter, make_canvas, ribs, spine
from .models import Phantom, TumourInfo, TumourSpec
from .tissues import hu, texture
from .tumours import DepthMap, TumourTone, make_shape, paint_tumour, place
from .vessels import Tree

_GGO_HU = (-600.0, -300.0)


def make_chest(
    seed: int = 0,
    nodules: int | Sequence[TumourSpec] = 3,
    spacing_mm: Sequence[float] = (0.8, 0.8, 1.0),
    fov_mm: Sequence[float] = (409.6, 409.6, 300.0),
    noise_hu: float = 10.0,
    fov_centre_lps: Sequence[float] = (0.0, 0.0, 0.0),
) -> Phantom:
    """Build a chest CT and label map; ``nodules`` is a count (random 6-20 mm ground-glass
    nodules, HU -600..-300) or specs with ``organ`` lung, lung_left or lung_right.

    The frame's z = 0 is near the carina level minus 40 mm; the default FOV spans apex to base.
    Nodule labels are ``nodule_1``, ``nodule_2``, ...; nodules sit >= 3 mm inside the pleura
    (``central``) or touching it (``subcapsular``).

    >>> p = make_chest(seed=0, nodules=1, spacing_mm=(6, 6, 6))
    >>> [t.name for t in p.tumours], p.labels.has("lung_left"), p.tumours[0].hu < -250
    (['nodule_1'], True, True)
    """
    seed = int(seed)
    r_anat, r_tree, r_nod, r_noise = (np.random.default_rng(s) for s in np.random.SeedSequence(seed + 7919).spawn(4))
    if isinstance(nodules, (int, np.integer)):
        if not 0 <= int(nodules) <= 20:
            raise InputError(f"nodule count must be 0-20, got {nodules}", field="nodules")
        specs = [TumourSpec(diameter_mm=float(r_nod.uniform(6, 20)), shape=str(r_nod.choice(["sphere", "lobulated"])),
                            organ=str(r_nod.choice(["lung_left", "lung_right"])),
                            hu=float(np.round(r_nod.uniform(*_GGO_HU)))) for _ in range(int(nodules))]
    else:
        specs = list(nodules)
    for s in specs:
        if s.organ not in ("lung", "lung_left", "lung_right"):
            raise InputError(f"chest nodules go in lung, lung_left or lung_right, got {s.organ!r}", field="organ")
        if s.location == "perivascular":
            raise InputError("perivascular placement needs vessels; the chest phantom has none in the lungs",
                             field="location")
    cv = make_canvas(spacing_mm, fov_mm, fov_centre_lps)
    rn = r_anat
    shape_noise = NoiseField(r_noise, cv.lo - 60, cv.hi + 60, 16.0)
    tex_noise = NoiseField(r_noise, cv.lo - 10, cv.hi + 10, 4.0)
    wall = body_wall(cv, rn, a0=rn.uniform(155, 175), b_ant0=rn.uniform(105, 118), b_post0=rn.uniform(110, 118))
    y_body = wall["b_post"] - wall["wall_mm"] - rn.uniform(50, 56)
    fat = cv.allow("fat")
    for s in (-1, 1):
        cv.blob("muscle", [ellipsoid((s * 35, y_body + 42, 0), (24, 18, 600))], hu=hu("muscle"), allow=fat)
    lungs = {}
    for name, s in (("lung_right", -1), ("lung_left", 1)):
        lob = ellipsoid((s * jitter(rn, 72, 5), jitter(rn, 8, 4), jitter(rn, 10, 8)),
                        (wall["a_in"] * 0.5, wall["b_ant_in"] * 0.9, 175), rotation(0, 0, 0))
        planes = [(-s, 0, 0, -12.0)]  # keep medial edge off the midline
        cv.blob(name, [lob], hu=hu("lung"), allow=fat, planes=planes,
                style=BlobStyle(noise=shape_noise, noise_mm=6))
        lungs[name] = (np.array([lob]), np.array(planes, float))
    cv.blob("heart", [ellipsoid(jitter(rn, (12, -28, -45), 5), (62, 52, 60), rotation(-35, 0, 15))], hu=hu("heart"),
            allow=cv.allow("fat", "lung_left", "lung_right"))
    soft = cv.allow_except("spine", "disc", "spinal_canal", "skin", "fat_subcutaneous", "ribs")
    ax = 20.0
    aorta = polyline_segments(np.array([[5, -35, -20], [2, -30, 60], [8, -5, 95], [ax, y_body - 28, 70],
                                        [ax + 2, y_body - 28, -160]]), np.array([15, 15, 13, 12, 11.0]), step_mm=8)
    cv.tubes("aorta", aorta, hu=hu("aorta"), allow=soft)

    # airways: trachea, main bronchi, then a tree inside each lung
    carina = np.array([0.0, y_body - 55, jitter(rn, 50, 6)])
    trachea = polyline_segments(np.array([[0, y_body - 62, cv.hi[2] + 10], carina]), 8.5)
    air_segs = [trachea]
    for name, s in (("lung_right", -1), ("lung_left", 1)):
        lob, planes = lungs[name]

        def inside(p, lob=lob, planes=planes):
            p = np.ascontiguousarray(np.atleast_2d(p), dtype=np.float64)
            return kernels.blob_sdf_points(p, lob, 0.0, planes, shape_noise.grid, shape_noise.origin,
                                           shape_noise.spacing, 6.0)

        d = np.array([s * 0.8, 0.2, -0.55])
        hil = carina + d / np.linalg.norm(d) * 35
        air_segs.append(polyline_segments(np.array([carina, hil]), 6.0))
        t = Tree(inside, r_tree, r_min_mm=1.5, margin_mm=2.0, max_segments=120)
        t.add_root(hil, [s * 0.6, 0.2, 0.7], 4.5)
        t.add_root(hil, [s * 0.5, 0.3, -0.8], 5.0)
        t.grow()
        if len(t.segments):
            air_segs.append(t.array())
    air = np.vstack(air_segs)
    cv.tubes("airways", air, hu=[hu("airways"), hu("muscle")], allow=cv.allow("fat", "lung_left", "lung_right"),
             mode=1, shell_mm=1.2)
    spine(cv, rn, y_body, cv.lo[2], cv.hi[2], pitch=rn.uniform(25, 28), lumbar_below_z=-1e9)
    cv.blob("sternum", [ellipsoid((0, -wall["b_ant_in"] + 6, 30), (16, 7, 95))], hu=hu("bone_cancellous"),
            allow=cv.allow("fat", "muscle", "fat_subcutaneous", "heart", "lung_left", "lung_right"),
            style=BlobStyle(shell_mm=1.5, shell_hu=hu("bone_cortical")))
    n_ribs = 12
    z_heads = 190 - 26.0 * np.arange(n_ribs) + rn.uniform(-5, 5)
    rib_segs = ribs(cv, rn, wall, y_body, z_heads, theta_end_deg=[160] * 7 + [150, 140, 130, 100, 75],
                    drop_mm=[60] * 7 + [65, 65, 60, 35, 20])

    infos: list[TumourInfo] = []
    placed = []
    depth_maps: dict[str, DepthMap] = {}
    for n, spec in enumerate(specs, start=1):
        organ = spec.organ if spec.organ != "lung" else str(r_nod.choice(["lung_left", "lung_right"]))
        if organ not in depth_maps:
            lob, planes = lungs[organ]
            lo_, hi_ = lobe_extent(lob[0])
            b = cv.box(lo_ - 15, hi_ + 15)
            sub = cv.grid.subgrid((b[0], b[2], b[4]), (b[1] - b[0], b[3] - b[2], b[5] - b[4]))
            depth_maps[organ] = DepthMap(cv.labels[b[0]:b[1], b[2]:b[3], b[4]:b[5]] == cv.value(organ), sub,
                                         target_mm=max(2.0, float(cv.spacing.max())))
        shp = make_shape(r_nod, spec.diameter_mm, spec.shape)
        spec_c = spec if spec.location != "central" else TumourSpec(spec.diameter_mm, spec.shape, "central",
                                                                    organ=organ, hu=spec.hu)
        shp.centre = _place_nodule(spec_c, shp, depth_maps[organ], r_nod, air, placed)
        placed.append(shp)
        name = f"nodule_{n}"
        target = float(spec.hu) if spec.hu is not None else float(np.round(r_nod.uniform(*_GGO_HU)))
        count = paint_tumour(cv.labels, cv.hu, cv.grid, shp, cv.value(name), np.array([cv.value(organ)]),
                             TumourTone(target, texture_hu=0.0), r_nod)
        infos.append(TumourInfo(name=name, label=cv.value(name), centre_lps=tuple(float(c) for c in shp.centre),
                                diameter_mm=float(spec.diameter_mm), shape=spec.shape, location=spec.location_name,
                                volume_ml=count * cv.grid.voxel_volume_mm3 / 1000.0, organ=organ, hu=target))
    ct, labels = finish(cv, r_noise, noise_hu, seed, tex_noise,
                        extra_texture={i.name: texture("nodule_ggo") for i in infos})
    return Phantom(ct=ct, labels=labels, tumours=infos, seed=seed,
                   vessel_segments={"aorta": aorta, "airways": air, "ribs": rib_segs})


def _place_nodule(spec: TumourSpec, shp, depth: DepthMap, rng, airways: np.ndarray, placed) -> np.ndarray:
    """Central nodules >= 3 mm inside the pleura (not the 15 mm used for liver tumours)."""
    if spec.location == "central":
        for c in depth.candidates(shp.bound_mm + 3.0, 1e9, rng):
            from .vessels import point_segment_distance

            if np.any(point_segment_distance(c, airways) < airways[:, 6] + shp.bound_mm + 1.0):
                continue
            if all(np.linalg.norm(c - o.centre) >= o.bound_mm + shp.bound_mm + 2.0 for o in placed):
                return c
        raise InputError(f"cannot place a {spec.diameter_mm:g} mm nodule in {spec.organ}", field="location")
    return place(spec, shp, depth, rng, airways, placed)
