"""`make_abdomen`: a deterministic synthetic contrast-enhanced (portal-venous) abdominal CT.

Anatomy is placed in a fixed LPS frame (x = patient's left, y = posterior, z = superior; z = 0
near L1-L2) and varied per seed within plausible bounds. Each structure is an implicit shape
painted only in its own box (see `canvas`), so a 512 x 512 x 300 patient takes seconds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openir.core import Grid

from . import kernels
from .canvas import (
    BlobStyle,
    Canvas,
    NoiseField,
    ellipsoid,
    lobe_extent,
    polyline_segments,
    rotation,
)
from .common import body_wall, finish, jitter, make_canvas, ribs, spine
from .models import Phantom, TumourInfo, TumourSpec
from .tissues import hu, texture
from .tumours import DepthMap, TumourShape, TumourTone, make_shape, paint_tumour, place
from .vessels import Tree


class _Liver:
    """The liver's implicit shape (lobes, noise) and the diaphragm domes, for tree growth."""

    def __init__(self, lobes: np.ndarray, smooth: float, noise: NoiseField, noise_mm: float, domes: np.ndarray,
                 dia_mm: float, holes: list[np.ndarray]):
        self.lobes, self.smooth, self.noise, self.noise_mm = lobes, smooth, noise, noise_mm
        self.domes, self.dia_mm, self.holes = domes, dia_mm, holes
        self._planes = np.zeros((0, 4))

    def sdf(self, pts: np.ndarray) -> np.ndarray:
        pts = np.ascontiguousarray(np.atleast_2d(pts), dtype=np.float64)
        f = kernels.blob_sdf_points(pts, self.lobes, self.smooth, self._planes, self.noise.grid, self.noise.origin,
                                    self.noise.spacing, self.noise_mm)
        ux = (pts[:, 0:1] - self.domes[:, 0]) / self.domes[:, 3]
        uy = (pts[:, 1:2] - self.domes[:, 1]) / self.domes[:, 4]
        zd = np.max(self.domes[:, 2] - self.domes[:, 5] * (ux**2 + uy**2), axis=1)
        f = np.maximum(f, pts[:, 2] - zd)
        for h in self.holes:
            g = kernels.blob_sdf_points(pts, h, 0.0, self._planes, self.noise.grid, self.noise.origin,
                                        self.noise.spacing, 0.0)
            f = np.maximum(f, -g)
        return f


def make_abdomen(
    seed: int = 0,
    tumours: Sequence[TumourSpec] = (TumourSpec(),),
    spacing_mm: Sequence[float] = (0.8, 0.8, 1.0),
    fov_mm: Sequence[float] = (409.6, 409.6, 300.0),
    noise_hu: float = 10.0,
    fov_centre_lps: Sequence[float] = (0.0, 0.0, 0.0),
    _full_boxes: bool = False,
) -> Phantom:
    """Build a synthetic abdomen CT (int16 HU) and its label map on the same grid.

    ``spacing_mm`` and ``fov_mm`` are (x, y, z); the grid is ``round(fov / spacing)`` voxels centred
    on ``fov_centre_lps`` with identity direction. The frame's z = 0 lies near L1-L2; the default
    FOV spans the lung bases (top) to the upper pelvis. Tumours go into the organ named in each
    spec (``liver`` is supported here); see `TumourSpec` for placement rules.
    ``_full_boxes`` disables per-structure cropping (benchmark baseline only).

    >>> p = make_abdomen(seed=0, tumours=(TumourSpec(30),), spacing_mm=(6, 6, 6))
    >>> p.ct.shape, p.ct.array.dtype.name, p.labels.names[:4]
    ((50, 68, 68), 'int16', ['skin', 'muscle', 'fat', 'liver'])
    >>> t = p.tumours[0]
    >>> t.name, t.organ, bool(p.labels.mask(t.name).any()), p.labels.value_of(t.name) == t.label
    ('tumour_1', 'liver', True, True)
    """
    seed = int(seed)
    specs = [s if isinstance(s, TumourSpec) else TumourSpec(**s) for s in tumours]
    for s in specs:
        if s.organ != "liver":
            from openir.core import InputError

            raise InputError(f"make_abdomen places tumours in the liver only, got organ {s.organ!r}", field="organ")
    r_anat, r_vessel, r_tum, r_noise, r_bowel = (np.random.default_rng(s) for s in
                                                np.random.SeedSequence(seed).spawn(5))
    cv = make_canvas(spacing_mm, fov_mm, fov_centre_lps, full_boxes=_full_boxes)
    lo, hi = cv.lo - 60, cv.hi + 60
    shape_noise = NoiseField(r_noise, lo, hi, 14.0)
    tex_noise = NoiseField(r_noise, cv.lo - 10, cv.hi + 10, 5.0)
    rn = r_anat

    # ---- body wall, muscles -----------------------------------------------------------------
    wall = body_wall(cv, rn, a0=rn.uniform(150, 172), b_ant0=rn.uniform(108, 122), b_post0=rn.uniform(108, 116),
                     belly=rn.uniform(0, 12))
    y_body = wall["b_post"] - wall["wall_mm"] - rn.uniform(52, 58)  # vertebral-body centre, mm posterior
    fat = cv.allow("fat")
    _z_lo, _z_hi = cv.lo[2] - 20, cv.hi[2] + 20
    for s in (-1, 1):  # paraspinal (erector spinae) and psoas
        cv.blob("muscle", [ellipsoid((s * 38, y_body + 45, 0), (26, 20, 600))], hu=hu("muscle"), allow=fat,
                style=BlobStyle(noise=shape_noise, noise_mm=2.0))
        psoas = polyline_segments(np.array([[s * 28, y_body - 5, 40], [s * 40, y_body - 12, -40],
                                            [s * 60, y_body - 25, -160]]), np.array([6.0, 16.0, 24.0]), step_mm=10)
        cv.tubes("muscle", psoas, hu=hu("muscle"), allow=fat)

    # ---- organs ------------------------------------------------------------------------------
    domes = np.array([[jitter(rn, -70, 8), 15, jitter(rn, 125, 8), 120, 130, 80],
                      [jitter(rn, 70, 8), 15, jitter(rn, 115, 8), 120, 130, 80]], float)
    liver_lobes = np.array([
        ellipsoid(jitter(rn, (-78, 2, 62), 6), jitter(rn, (68, 80, 78), 6), rotation(jitter(rn, 10, 8), 0, 0)),
        ellipsoid(jitter(rn, (5, -40, 88), 6), jitter(rn, (55, 38, 32), 5), rotation(jitter(rn, -15, 8), 0, 10)),
        ellipsoid(jitter(rn, (-100, 10, 10), 5), jitter(rn, (40, 55, 45), 5)),
    ])
    liver_noise_mm = rn.uniform(3, 6)
    cv.blob("liver", liver_lobes, hu=hu("liver"), allow=fat,
            style=BlobStyle(smooth_mm=25, noise=shape_noise, noise_mm=liver_noise_mm))
    kid = {}
    for name, s, zc in (("kidney_right", -1, jitter(rn, -35, 8)), ("kidney_left", 1, jitter(rn, -20, 8))):
        c = np.array([s * jitter(rn, 70, 5), y_body + 8, zc])
        rot = rotation(s * jitter(rn, 30, 8), s * jitter(rn, 10, 5), jitter(rn, -12, 4))
        lob = ellipsoid(c, jitter(rn, (27, 24, 55), 3), rot)
        cv.blob(name, [lob], hu=hu("kidney"), allow=cv.allow("fat", "liver", "muscle"),
                style=BlobStyle(noise=shape_noise, noise_mm=1.5))
        hilum = c + rot @ np.array([0, 0, 0]) + np.array([-s * 16, -10, 0])
        cv.blob("fat", [ellipsoid(hilum, (11, 9, 22), rot)], hu=hu("fat"), allow=cv.allow(name))
        kid[name] = (c, lob, hilum)
    cv.blob("spleen", [ellipsoid(jitter(rn, (88, 45, 55), 5), jitter(rn, (24, 58, 48), 5), rotation(-35, 0, 10))],
            hu=hu("spleen"), allow=fat, style=BlobStyle(noise=shape_noise, noise_mm=3))
    gb_c = jitter(rn, (-48, -48, 8), 5)
    gb_rot = rotation(0, 0, jitter(rn, 35, 10))
    cv.blob("gallbladder", [ellipsoid(gb_c, jitter(rn, (15, 16, 38), 3), gb_rot)], hu=hu("gallbladder"),
            allow=cv.allow("liver", "fat"), style=BlobStyle(shell_mm=1.5, shell_hu=hu("bowel_wall")))
    st_lobes = [ellipsoid(jitter(rn, (55, 5, 88), 5), (36, 34, 34)),
                ellipsoid(jitter(rn, (35, -45, 50), 5), (38, 26, 42), rotation(20, 0, -25))]
    cv.blob("stomach", st_lobes, hu=hu("stomach"), allow=fat,
            style=BlobStyle(smooth_mm=20, shell_mm=4, shell_hu=hu("bowel_wall")))
    y_gas = min(lb[1] for lb in st_lobes) - rn.uniform(10, 25)
    cv.blob("stomach", st_lobes, hu=hu("bowel_gas"), allow=cv.allow("stomach"),
            planes=[(0, 1, 0, y_gas)], style=BlobStyle(smooth_mm=20, edge_mm=1.0))
    cv.blob("heart", [ellipsoid(jitter(rn, (15, -35, 170), 6), (70, 55, 50), rotation(-30, 0, 0))], hu=hu("heart"),
            allow=cv.allow("fat", "liver", "stomach"))
    _bowel(cv, r_bowel, wall)

    # ---- lungs and diaphragm ----------------------------------------------------------------
    dia_mm = 4.0
    lung_allow = cv.allow("fat", "liver", "spleen", "stomach")
    kernels.paint_domes(cv.labels, cv.hu, cv.box(np.array([cv.lo[0], cv.lo[1], 25.0]), cv.hi), cv.origin, cv.spacing,
                        domes, dia_mm, np.uint8(cv.value("lung")), np.uint8(cv.value("diaphragm")), hu("lung"),
                        hu("diaphragm"), lung_allow, 1.0)

    # ---- great vessels -----------------------------------------------------------------------
    soft = cv.allow_except("spine", "ribs", "disc", "spinal_canal", "skin", "fat_subcutaneous")
    ax, ay = jitter(rn, 14, 3), y_body - 30
    aorta = polyline_segments(np.array([[ax + 4, ay + 8, 200], [ax + 2, ay + 2, 90], [ax, ay, 0], [ax - 2, ay - 2, -85]]),
                              np.array([12.0, 11.5, 10.5, 9.5]), step_mm=8)
    bif = np.array([ax - 2, ay - 2, -85])
    iliac = np.vstack([polyline_segments(np.array([bif, bif + [s * 30, 5, -40], bif + [s * 50, 15, -110]]), 5.5,
                                         step_mm=8) for s in (-1, 1)])
    branches = [polyline_segments(np.array([[ax, ay - 8, 35], [ax - 2, ay - 28, 42], [ax - 10, ay - 35, 45]]), 3.5),
                polyline_segments(np.array([[ax, ay - 8, 20], [ax + 2, ay - 30, 10], [ax + 5, ay - 45, -60]]), 3.8,
                                  step_mm=8)]
    for name in ("kidney_right", "kidney_left"):
        c, _, hil = kid[name]
        branches.append(polyline_segments(np.array([[ax, ay + 2, hil[2] + 8], hil + [0, 6, 4]]), 3.0))
    aorta_segs = np.vstack([aorta, iliac, *branches])
    ivc_x, ivc_y = jitter(rn, -24, 3), ay + 2
    ivc = polyline_segments(np.array([[ivc_x + 2, ivc_y - 5, 200], [ivc_x, ivc_y - 5, 110], [ivc_x, ivc_y, 40],
                                      [ivc_x + 2, ivc_y + 2, -80]]), np.array([13.0, 12.0, 11.0, 10.0]), step_mm=8)
    ibif = np.array([ivc_x + 2, ivc_y + 2, -80])
    ivc_il = np.vstack([polyline_segments(np.array([ibif, ibif + [s * 30, 10, -40], ibif + [s * 48, 20, -110]]), 6.5,
                                          step_mm=8) for s in (-1, 1)])
    renal_v = [polyline_segments(np.array([kid["kidney_right"][2], [ivc_x, ivc_y, kid["kidney_right"][2][2] + 5]]), 5.0),
               polyline_segments(np.array([kid["kidney_left"][2], [ax + 2, ay - 16, kid["kidney_left"][2][2] + 8],
                                           [ivc_x, ivc_y, kid["kidney_left"][2][2] + 8]]), 5.0, step_mm=6)]
    ivc_segs = np.vstack([ivc, ivc_il, *renal_v])

    # ---- portal and hepatic trees (main branches first) --------------------------------------
    holes = [np.array([kid["kidney_right"][1]]), np.array([ellipsoid(gb_c, (22, 23, 45), gb_rot)])]
    liver = _Liver(liver_lobes, 25.0, shape_noise, liver_noise_mm, domes, dia_mm + 4, holes)
    rv = r_vessel
    conf = np.array([ax - 12, ay - 22, jitter(rv, -5, 5)])
    hilum = np.array([-32.0, -5.0, 38.0]) + rv.uniform(-4, 4, 3)
    pv_main = polyline_segments(np.array([conf, (conf + hilum) / 2 + [0, -4, 0], hilum]), np.array([7.0, 7.0, 6.5]),
                                step_mm=8)
    spl_hil = np.array([70.0, 30.0, 45.0])
    splenic = polyline_segments(np.array([spl_hil, [40, 10, 25], [15, 0, 5], conf]), 4.5, step_mm=8)
    smv = polyline_segments(np.array([conf, conf + [8, -12, -50], conf + [12, -25, -120]]), 5.5, step_mm=10)
    portal = Tree(liver.sdf, rv, r_min_mm=1.5, max_segments=450)
    portal.add_root(hilum, [-0.8, 0.15, 0.35], 5.5)
    portal.add_root(hilum, [0.75, -0.55, 0.35], 5.0)
    hepatic = Tree(liver.sdf, rv, r_min_mm=1.5, max_segments=350)
    zc = jitter(rv, 100, 4)
    for d, r in (([-0.85, 0.1, -0.5], 6.0), ([-0.4, -0.75, -0.5], 5.5), ([0.45, -0.75, -0.3], 5.0)):
        start = np.array([ivc_x, ivc_y - 5, zc]) + 10 * np.asarray(d)
        hepatic.add_root(start, d, r)
    for t in (portal, hepatic):
        t.grow(until_r_mm=3.5)

    # ---- tumours: place against the main branches, then grow the small ones around them ------
    shapes: list[TumourShape] = []
    if specs:
        ext = [lobe_extent(lb) for lb in liver_lobes]
        b = cv.box(np.min([e[0] for e in ext], 0) - 20, np.max([e[1] for e in ext], 0) + 20)
        sub = cv.grid.subgrid((b[0], b[2], b[4]), (b[1] - b[0], b[3] - b[2], b[5] - b[4]))
        depth = DepthMap(cv.labels[b[0]:b[1], b[2]:b[3], b[4]:b[5]] == cv.value("liver"), sub,
                         target_mm=max(2.0, float(cv.spacing.max())))
        major = np.vstack([portal.array(), hepatic.array(), pv_main])
        # vessels a tumour may not touch but must not overlap either: painted later, they would take its volume
        others = np.vstack([ivc_segs, aorta_segs])
        for spec in specs:
            shp = make_shape(r_tum, spec.diameter_mm, spec.shape)
            shp.centre = place(spec, shp, depth, r_tum, major, shapes, avoid=others)
            shapes.append(shp)
    for t in (portal, hepatic):
        t.obstacles = [(s.centre, s.bound_mm) for s in shapes]
        t.grow()

    # ---- paint vessels, bones, tumours ---------------------------------------------------------
    cv.tubes("aorta", aorta_segs, hu=hu("aorta"), allow=soft)
    cv.tubes("ivc", ivc_segs, hu=hu("ivc"), allow=soft)
    pv_segs = np.vstack([pv_main, splenic, smv, portal.array()])
    cv.tubes("portal_vein", pv_segs, hu=hu("portal_vein"), allow=cv.allow("liver", "fat", "muscle", "stomach"))
    hv_segs = hepatic.array()
    cv.tubes("hepatic_veins", hv_segs, hu=hu("hepatic_veins"), allow=cv.allow("liver", "fat", "ivc"))
    zs = spine(cv, rn, y_body, cv.lo[2], cv.hi[2], pitch=rn.uniform(31, 35))
    del zs
    z_heads = 175 - 27.0 * np.arange(8) + rn.uniform(-5, 5)
    rib_segs = ribs(cv, rn, wall, y_body, z_heads, theta_end_deg=[150, 150, 148, 145, 140, 130, 100, 75],
                    drop_mm=[75, 80, 80, 78, 70, 60, 35, 20])
    infos = _paint_tumours(cv, specs, shapes, r_tum)
    ct, labels = finish(cv, r_noise, noise_hu, seed, tex_noise,
                        extra_texture={i.name: texture("tumour_liver") for i in infos})
    segs = {"aorta": aorta_segs, "ivc": ivc_segs, "portal_vein": pv_segs, "hepatic_veins": hv_segs, "ribs": rib_segs}
    return Phantom(ct=ct, labels=labels, tumours=infos, seed=seed, vessel_segments=segs)


def _paint_tumours(cv: Canvas, specs: Sequence[TumourSpec], shapes: Sequence[TumourShape],
                   rng: np.random.Generator) -> list[TumourInfo]:
    infos = []
    grid: Grid = cv.grid
    allowed = np.array([cv.value("liver"), cv.value("fat")])
    for n, (spec, shp) in enumerate(zip(specs, shapes, strict=True), start=1):
        name = f"tumour_{n}"
        v = cv.value(name)
        target = hu("tumour_liver") if spec.hu is None else spec.hu
        count = paint_tumour(cv.labels, cv.hu, grid, shp, v, allowed, TumourTone(target, texture_hu=0.0), rng)
        infos.append(TumourInfo(name=name, label=v, centre_lps=tuple(float(c) for c in shp.centre),
                                diameter_mm=float(spec.diameter_mm), shape=spec.shape, location=spec.location_name,
                                volume_ml=count * grid.voxel_volume_mm3 / 1000.0, organ=spec.organ, hu=float(target)))
    return infos


def _bowel(cv: Canvas, rng: np.random.Generator, wall: dict[str, float]) -> None:
    """Colon frame and small-bowel loops (random walks) with gas anterior, fluid posterior."""
    allow = cv.allow("fat")
    hus = [hu("bowel_wall"), hu("bowel_fluid"), hu("bowel_gas")]
    colon = np.array([[-95, 20, -150], [-100, 10, -60], [-90, -15, -5], [-55, -65, 5], [0, -75, -10],
                      [55, -60, 10], [92, -5, 25], [100, 25, -40], [95, 20, -110], [60, 0, -150]], float)
    colon[:, :2] += rng.uniform(-6, 6, (len(colon), 2))
    r = rng.uniform(20, 25)
    level = colon[:, 1].min() - r + 2 * r * rng.uniform(0.5, 0.8)  # gas fills the anterior-most parts
    cv.tubes("bowel", polyline_segments(colon, r, aux=level, step_mm=10), hu=hus, allow=allow, mode=2, shell_mm=3.0)
    lo, hi = np.array([-75.0, -95.0, -150.0]), np.array([75.0, 15.0, -25.0])
    for _ in range(7):
        p = lo + rng.uniform(0, 1, 3) * (hi - lo)
        d = rng.normal(size=3)
        pts = [p]
        for _ in range(14):
            d = d / np.linalg.norm(d) + rng.normal(0, 0.6, 3)
            d /= np.linalg.norm(d)
            q = pts[-1] + 14.0 * d
            out = (q < lo) | (q > hi)
            d[out] *= -1
            pts.append(np.clip(q, lo, hi))
        pts = np.array(pts)
        r = rng.uniform(9, 13)
        level = pts[:, 1].min() - r + 2 * r * rng.uniform(0.0, 0.4)
        cv.tubes("bowel", polyline_segments(pts, r, aux=level, step_mm=8), hu=hus, allow=allow, mode=2, shell_mm=2.5)
