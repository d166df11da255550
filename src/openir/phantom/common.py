"""Pieces shared by the abdomen and chest generators: grid set-up, body wall, spine, ribs, finish."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from openir.core import InputError, LabelMap, Volume

from . import kernels
from .canvas import BlobStyle, Canvas, NoiseField, ellipsoid, polyline_segments
from .tissues import hu, load_tissues


def make_canvas(spacing_mm: Sequence[float], fov_mm: Sequence[float], centre_lps: Sequence[float],
                full_boxes: bool = False) -> Canvas:
    sp = np.asarray(spacing_mm, float)
    fov = np.asarray(fov_mm, float)
    cen = np.asarray(centre_lps, float)
    for name, v in (("spacing_mm", sp), ("fov_mm", fov), ("fov_centre_lps", cen)):
        if v.shape != (3,) or not np.all(np.isfinite(v)):
            raise InputError(f"{name} must be three finite numbers (x, y, z mm), got {v.tolist()}", field=name)
    if np.any(sp <= 0) or np.any(sp > 10):
        raise InputError(f"spacing must be in (0, 10] mm, got {sp.tolist()}", field="spacing_mm")
    if np.any(fov <= 10 * sp) or np.any(fov > 1000):
        raise InputError(f"field of view must span > 10 voxels and <= 1000 mm, got {fov.tolist()}", field="fov_mm")
    n = np.maximum(1, np.round(fov / sp)).astype(int)
    if np.prod(n) > 2.0e8:
        raise InputError(f"grid of {n.tolist()} voxels is too large (max 2e8)", field="spacing_mm")
    origin = cen - (n - 1) / 2.0 * sp
    return Canvas((int(n[2]), int(n[1]), int(n[0])), origin, sp, full_boxes=full_boxes)


def jitter(rng: np.random.Generator, value: float | Sequence[float], spread: float) -> np.ndarray | float:
    v = np.asarray(value, float)
    out = v + rng.uniform(-spread, spread, v.shape)
    return float(out) if out.ndim == 0 else out


def body_wall(cv: Canvas, rng: np.random.Generator, a0: float, b_ant0: float, b_post0: float,
              belly: float = 0.0) -> dict[str, float]:
    """Skin, subcutaneous fat, muscle wall and inner (visceral) fat, as nested superellipses."""
    fat_mm = rng.uniform(12, 28)
    musc_mm = rng.uniform(9, 14)
    p = rng.uniform(2.3, 2.7)
    z = cv.origin[2] + np.arange(cv.shape[0]) * cv.spacing[2]
    wave = 1.0 + 0.025 * np.cos(2 * np.pi * (z - rng.uniform(0, 400)) / 400.0)
    a = a0 * wave + 0.12 * np.maximum(0.0, -90.0 - z)
    b_ant = b_ant0 * wave + belly * np.clip((-z - 20.0) / 100.0, 0, 1)
    b_post = np.full_like(z, b_post0)
    params = np.stack([np.zeros_like(z), np.zeros_like(z), a, b_ant, b_post,
                       np.full_like(z, 2.0), np.full_like(z, 2.0 + fat_mm), np.full_like(z, 2.0 + fat_mm + musc_mm)],
                      axis=1)
    values = np.array([cv.value("skin"), cv.value("fat_subcutaneous"), cv.value("muscle"), cv.value("fat")],
                      np.uint8)
    hus = np.array([hu("skin"), hu("fat"), hu("muscle"), hu("fat")], np.int16)
    kernels.body_layers(cv.labels, cv.hu, cv.origin, cv.spacing, np.ascontiguousarray(params), values, hus, p,
                        np.int16(hu("air")))
    d3 = 2.0 + fat_mm + musc_mm
    return {"a": a0, "b_ant": b_ant0, "b_post": b_post0, "wall_mm": d3, "p": p,
            "a_in": a0 - d3, "b_ant_in": b_ant0 - d3, "b_post_in": b_post0 - d3}


def spine(cv: Canvas, rng: np.random.Generator, y_body: float, z_lo: float, z_hi: float, pitch: float,
          lumbar_below_z: float = 40.0) -> np.ndarray:
    """Vertebrae (cortical shell, cancellous core), discs, canal and posterior arches along z.

    Returns the list of vertebral-body centre heights (z, mm) so ribs can attach.
    """
    allow = cv.allow_except("aorta", "ivc", "skin", "fat_subcutaneous")
    allow[0] = False
    zs = []
    z = z_hi + rng.uniform(0, pitch)
    cortical, cancellous = hu("bone_cortical"), hu("bone_cancellous")
    arch_segs, proc_segs = [], []
    while z > z_lo - pitch:
        lumbar = z < lumbar_below_z
        w, dpt = (24.0, 17.0) if lumbar else (19.0, 15.0)
        h = pitch * 0.75
        zs.append(z)
        cv.blob("disc", [ellipsoid((0, y_body, z - pitch / 2), (w - 1, dpt - 1, 200))], hu=hu("disc"), allow=allow,
                planes=[(0, 0, 1, z - pitch / 2 + pitch * 0.15), (0, 0, -1, -(z - pitch / 2 - pitch * 0.15))])
        cv.blob("spine", [ellipsoid((0, y_body, z), (w, dpt, 200))], hu=cancellous, allow=allow,
                planes=[(0, 0, 1, z + h / 2), (0, 0, -1, -(z - h / 2))], style=BlobStyle(shell_mm=1.5, shell_hu=cortical))
        yc = y_body + dpt + 11.0  # canal centre
        zc = z + 2.0
        for s in (-1, 1):
            arch_segs.append([s * 12, y_body + dpt - 3, zc, s * 13, yc + 2, zc, 4.0, 4.0, 0])  # pedicle
            arch_segs.append([s * 13, yc + 2, zc, 0, yc + 14, zc - 2, 3.5, 3.5, 0])  # lamina
            tp = 45.0 if lumbar else 32.0
            proc_segs.append([s * 13, yc, zc, s * tp, yc + (0 if lumbar else 8), zc + 2, 3.5, 2.8, 0])  # transverse
        proc_segs.append([0, yc + 14, zc - 2, 0, yc + 32, zc - 8 - (6 if not lumbar else 0), 3.5, 3.0, 0])  # spinous
        z -= pitch
    canal = polyline_segments(np.array([[0, y_body + 28.0, z_hi + pitch], [0, y_body + 28.0, z_lo - pitch]]), 8.0)
    cv.tubes("spinal_canal", canal, hu=hu("spinal_canal"), allow=allow)
    bone_allow = cv.allow_except("aorta", "ivc", "skin", "fat_subcutaneous", "spinal_canal", "disc")
    bone_allow[0] = False
    cv.tubes("spine", np.array(arch_segs + proc_segs, float), hu=[cancellous, cortical], allow=bone_allow, mode=1,
             shell_mm=1.2)
    return np.array(zs)


def ribs(cv: Canvas, rng: np.random.Generator, wall: dict[str, float], y_body: float, z_heads: Sequence[float],
         theta_end_deg: Sequence[float], drop_mm: Sequence[float], radius_mm: float = 4.0) -> np.ndarray:
    """Curved ribs: from the transverse process, around the inside of the body wall, descending.

    Each rib follows the inner wall ellipse (angle 0 = posterior midline) at 4 mm inside the muscle
    layer, from ~25 degrees to ``theta_end``, dropping ``drop_mm`` by its anterior end.
    """
    allow = cv.allow_except("aorta", "ivc", "portal_vein", "hepatic_veins", "spine", "disc", "spinal_canal", "skin")
    allow[0] = False
    segs = []
    a = wall["a_in"] + 4.0
    b_post, b_ant = wall["b_post_in"] + 4.0, wall["b_ant_in"] + 4.0
    p = wall["p"]
    for zh, te, drop in zip(z_heads, theta_end_deg, drop_mm, strict=True):
        for s in (-1, 1):
            th = np.radians(np.linspace(22, te, 24))
            c, sn = np.cos(th), np.sin(th)
            b = np.where(c >= 0, b_post, b_ant)
            # superellipse in polar form
            rr = 1.0 / (np.abs(sn / a) ** p + np.abs(c / b) ** p) ** (1.0 / p)
            x = s * rr * sn
            y = rr * c
            z = zh - drop * ((th - th[0]) / (th[-1] - th[0])) ** 1.3
            pts = np.stack([x, y, z], axis=1)
            head = np.array([[s * 14.0, y_body + 30.0, zh + 4.0]])
            pts = np.vstack([head, pts])
            r = np.full(len(pts), radius_mm)
            r[-3:] = radius_mm * np.array([0.9, 0.8, 0.7])
            segs.append(polyline_segments(pts, r))
    out = np.vstack(segs)
    cv.tubes("ribs", out, hu=[hu("bone_cancellous"), hu("bone_cortical")], allow=allow, mode=1, shell_mm=1.2)
    return out


def finish(cv: Canvas, rng: np.random.Generator, noise_hu: float, seed: int, tex_field: NoiseField,
           extra_texture: dict[str, float] | None = None) -> tuple[Volume, LabelMap]:
    """Texture and noise in one pass, subcutaneous fat merged into ``fat``, then wrap as Volume/LabelMap."""
    tissues = load_tissues()
    lut = np.zeros(256, np.float64)
    for name, v in cv.names.items():
        key = {"fat_subcutaneous": "fat", "kidney_left": "kidney", "kidney_right": "kidney",
               "lung_left": "lung", "lung_right": "lung", "spine": "bone_cancellous", "ribs": "bone_cancellous",
               "sternum": "bone_cancellous", "bowel": "bowel_fluid"}.get(name, name)
        if extra_texture and name in extra_texture:
            lut[v] = extra_texture[name]
        elif key in tissues:
            lut[v] = tissues[key].texture_hu
    if noise_hu < 0 or not np.isfinite(noise_hu):
        raise InputError(f"noise_hu must be >= 0, got {noise_hu}", field="noise_hu")
    names = dict(cv.names)
    remap = np.arange(256, dtype=np.uint8)
    if "fat_subcutaneous" in names:  # one 'fat' label for users; kept apart while painting
        remap[names.pop("fat_subcutaneous")] = names["fat"]
    kernels.finish_ct(cv.labels, cv.hu, cv.origin, cv.spacing, tex_field.grid, tex_field.origin, tex_field.spacing,
                      lut, float(noise_hu), int(seed) & 0x7FFFFFFFFFFFFFFF, remap)
    grid = cv.grid
    meta = {"modality": "CT", "units": "HU", "synthetic": True, "seed": int(seed)}
    ct = Volume(cv.hu, grid.affine.copy(), meta)
    labels = LabelMap(cv.labels, grid.affine.copy(), dict(meta), {v: n for n, v in names.items()})
    return ct, labels

