"""Numba kernels that paint implicit shapes into a label map and an HU map, box by box.

Every kernel works on an axis-aligned box of the grid (array index ranges), so a structure costs
only the voxels around it. Coordinates of voxel (k, j, i) are ``origin + index * spacing`` in LPS
mm (identity direction). A voxel is painted only where ``allow[current_label]`` is true, which
encodes the priority between structures (e.g. vessels may overwrite liver, tumours may not
overwrite vessels). HU is blended over a soft edge of ``edge_mm`` so boundaries show partial
volume like a real reconstruction; the label is set where the shape's signed distance is < 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_CACHE = True


@njit(cache=_CACHE, inline="always")
def _smin(a: float, b: float, k: float) -> float:
    """Polynomial smooth minimum (blends two signed distances over ``k`` mm)."""
    if k <= 0.0:
        return min(a, b)
    h = max(k - abs(a - b), 0.0) / k
    return min(a, b) - h * h * k * 0.25


@njit(cache=_CACHE, inline="always")
def _trilinear(grid: np.ndarray, g0: np.ndarray, gs: np.ndarray, x: float, y: float, z: float) -> float:
    """Trilinear sample of a coarse [k, j, i] grid with origin ``g0`` and spacing ``gs`` (x, y, z)."""
    fx = (x - g0[0]) / gs[0]
    fy = (y - g0[1]) / gs[1]
    fz = (z - g0[2]) / gs[2]
    nk, nj, ni = grid.shape
    fx = min(max(fx, 0.0), ni - 1.001)
    fy = min(max(fy, 0.0), nj - 1.001)
    fz = min(max(fz, 0.0), nk - 1.001)
    i0 = int(fx)
    j0 = int(fy)
    k0 = int(fz)
    tx = fx - i0
    ty = fy - j0
    tz = fz - k0
    c00 = grid[k0, j0, i0] * (1 - tx) + grid[k0, j0, i0 + 1] * tx
    c01 = grid[k0, j0 + 1, i0] * (1 - tx) + grid[k0, j0 + 1, i0 + 1] * tx
    c10 = grid[k0 + 1, j0, i0] * (1 - tx) + grid[k0 + 1, j0, i0 + 1] * tx
    c11 = grid[k0 + 1, j0 + 1, i0] * (1 - tx) + grid[k0 + 1, j0 + 1, i0 + 1] * tx
    c0 = c00 * (1 - ty) + c01 * ty
    c1 = c10 * (1 - ty) + c11 * ty
    return c0 * (1 - tz) + c1 * tz


@njit(cache=_CACHE, inline="always")
def _blend(labels, hu, k, j, i, f, edge, value, target, allow) -> None:
    """Paint one voxel given its signed distance ``f`` (mm, < 0 inside)."""
    cur = labels[k, j, i]
    if not allow[cur]:
        return
    if f < 0.0:
        labels[k, j, i] = value
    if edge > 0.0:
        a = 0.5 - f / edge
        if a <= 0.0:
            return
        if a > 1.0:
            a = 1.0
        old = hu[k, j, i]
        hu[k, j, i] = np.int16(round(old + (target - old) * a))
    elif f < 0.0:
        hu[k, j, i] = np.int16(target)


@njit(cache=_CACHE, parallel=True)
def body_layers(labels, hu, origin, spacing, params, values, hus, exponent, air_hu):
    """Fill every voxel once: air outside, then nested superelliptic shells (skin, fat, muscle, inner fat).

    ``params[k] = (cx, cy, a, b_ant, b_post, d1, d2, d3)``: centre, semi-axes in x and in
    anterior/posterior y, then the inward offsets (mm) where shells 1..3 begin. Each row's
    x-extent of a shell is solved analytically, so the cost is one write per voxel.
    """
    nk, nj, ni = labels.shape
    for k in prange(nk):
        cx, cy, a, b_ant, b_post = params[k, 0], params[k, 1], params[k, 2], params[k, 3], params[k, 4]
        lo = np.empty(5, np.int64)
        hi = np.empty(5, np.int64)
        for j in range(nj):
            y = origin[1] + j * spacing[1] - cy
            for s in range(4):
                d = 0.0 if s == 0 else params[k, 4 + s]
                b = (b_ant if y < 0 else b_post) - d
                aa = a - d
                lo[s], hi[s] = 0, -1
                if b > 0 and aa > 0 and abs(y) < b:
                    w = aa * (1.0 - (abs(y) / b) ** exponent) ** (1.0 / exponent)
                    lo[s] = max(int(np.ceil((cx - w - origin[0]) / spacing[0])), 0)
                    hi[s] = min(int(np.floor((cx + w - origin[0]) / spacing[0])), ni - 1)
                    if s > 0 and hi[s - 1] >= lo[s - 1]:
                        lo[s] = max(lo[s], lo[s - 1])
                        hi[s] = min(hi[s], hi[s - 1])
            for i in range(ni):
                v = np.uint8(0)
                h = air_hu
                for s in range(4):
                    if lo[s] <= i <= hi[s]:
                        v = values[s]
                        h = hus[s]
                    else:
                        break
                labels[k, j, i] = v
                hu[k, j, i] = h


@njit(cache=_CACHE, parallel=True)
def paint_blob(labels, hu, box, origin, spacing, lobes, smooth_mm, planes, noise, noise_origin,
               noise_spacing, noise_mm, value, target, edge_mm, allow, shell_mm, shell_hu):
    """Smooth union of ellipsoids, cut by half-spaces, with a low-frequency surface perturbation.

    ``lobes[m] = (cx, cy, cz, A00..A22, s)``: a point p is inside lobe m where
    ``|A (p - c)| < 1``; ``(|A (p - c)| - 1) * s`` approximates its signed distance in mm (s =
    smallest semi-axis). ``planes[n] = (nx, ny, nz, d)`` keeps ``n . p <= d``. The surface moves
    outward by ``noise_mm * noise(p)`` (noise sampled trilinearly from a coarse grid). Voxels
    within ``shell_mm`` of the surface get ``shell_hu`` (e.g. cortical bone) instead of ``target``.
    """
    k0, k1, j0, j1, i0, i1 = box[0], box[1], box[2], box[3], box[4], box[5]
    nl = lobes.shape[0]
    npl = planes.shape[0]
    for k in prange(k0, k1):
        z = origin[2] + k * spacing[2]
        for j in range(j0, j1):
            y = origin[1] + j * spacing[1]
            for i in range(i0, i1):
                if not allow[labels[k, j, i]]:
                    continue
                x = origin[0] + i * spacing[0]
                f = 1e9
                for m in range(nl):
                    dx = x - lobes[m, 0]
                    dy = y - lobes[m, 1]
                    dz = z - lobes[m, 2]
                    u = lobes[m, 3] * dx + lobes[m, 4] * dy + lobes[m, 5] * dz
                    v = lobes[m, 6] * dx + lobes[m, 7] * dy + lobes[m, 8] * dz
                    w = lobes[m, 9] * dx + lobes[m, 10] * dy + lobes[m, 11] * dz
                    fm = (np.sqrt(u * u + v * v + w * w) - 1.0) * lobes[m, 12]
                    f = _smin(f, fm, smooth_mm) if m > 0 else fm
                for n in range(npl):
                    fp = planes[n, 0] * x + planes[n, 1] * y + planes[n, 2] * z - planes[n, 3]
                    if fp > f:
                        f = fp
                if noise_mm != 0.0 and f < 3.0 * abs(noise_mm) + edge_mm:
                    f -= noise_mm * _trilinear(noise, noise_origin, noise_spacing, x, y, z)
                if f > 0.5 * edge_mm:
                    continue
                t = shell_hu if (shell_mm > 0.0 and f > -shell_mm) else target
                _blend(labels, hu, k, j, i, f, edge_mm, value, t, allow)


@njit(cache=_CACHE, inline="always")
def _segment_slice(labels, hu, k, box, origin, spacing, seg, value, hus, edge_mm, allow, shell_mm, mode):
    """One slice ``k`` of a tapered capsule's box (shared by the serial and parallel drivers)."""
    j0, j1, i0, i1 = box[2], box[3], box[4], box[5]
    ax, ay, az = seg[0], seg[1], seg[2]
    dx, dy, dz = seg[3] - ax, seg[4] - ay, seg[5] - az
    r0, r1, aux = seg[6], seg[7], seg[8]
    dd = dx * dx + dy * dy + dz * dz
    z = origin[2] + k * spacing[2]
    for j in range(j0, j1):
        y = origin[1] + j * spacing[1]
        for i in range(i0, i1):
            if not allow[labels[k, j, i]]:
                continue
            x = origin[0] + i * spacing[0]
            px, py, pz = x - ax, y - ay, z - az
            t = (px * dx + py * dy + pz * dz) / dd if dd > 0 else 0.0
            t = min(max(t, 0.0), 1.0)
            qx, qy, qz = px - t * dx, py - t * dy, pz - t * dz
            f = np.sqrt(qx * qx + qy * qy + qz * qz) - (r0 + t * (r1 - r0))
            if f > 0.5 * edge_mm:
                continue
            if labels[k, j, i] == value and (f >= 0.0 or (mode != 0 and f > -shell_mm)):
                continue  # already painted by a neighbouring segment: keep its interior
            tgt = hus[0]
            if mode == 1:  # bone: cortical shell, cancellous core
                if f > -shell_mm:
                    tgt = hus[1]
            elif mode == 2 and f < -shell_mm:  # bowel: wall; gas anterior to y = aux (up, supine)
                tgt = hus[1] if y > aux else hus[2]
            _blend(labels, hu, k, j, i, f, edge_mm, value, tgt, allow)


@njit(cache=_CACHE, parallel=True)
def segment_parallel(labels, hu, box, origin, spacing, seg, value, hus, edge_mm, allow, shell_mm, mode):
    for k in prange(box[0], box[1]):
        _segment_slice(labels, hu, k, box, origin, spacing, seg, value, hus, edge_mm, allow, shell_mm, mode)


@njit(cache=_CACHE)
def segment_serial(labels, hu, box, origin, spacing, seg, value, hus, edge_mm, allow, shell_mm, mode):
    for k in range(box[0], box[1]):
        _segment_slice(labels, hu, k, box, origin, spacing, seg, value, hus, edge_mm, allow, shell_mm, mode)


PARALLEL_MIN_VOXELS = 200_000  # below this, starting threads costs more than it saves


def segment_boxes(segs, origin, spacing, shape, pad_mm, full=False):
    """Index boxes ``(k0, k1, j0, j1, i0, i1)`` around each segment's capsule (or the whole grid)."""
    n = segs.shape[0]
    out = np.zeros((n, 6), dtype=np.int64)
    if full:
        out[:, 1], out[:, 3], out[:, 5] = shape[0], shape[1], shape[2]
        return out
    r = np.maximum(segs[:, 6], segs[:, 7]) + pad_mm
    for ax, col in enumerate((2, 1, 0)):
        lo = np.minimum(segs[:, col], segs[:, col + 3]) - r
        hi = np.maximum(segs[:, col], segs[:, col + 3]) + r
        out[:, 2 * ax] = np.clip(np.floor((lo - origin[col]) / spacing[col]), 0, shape[ax])
        out[:, 2 * ax + 1] = np.clip(np.ceil((hi - origin[col]) / spacing[col]) + 1, 0, shape[ax])
    return out


@njit(cache=_CACHE, parallel=True)
def paint_domes(labels, hu, box, origin, spacing, domes, dia_mm, lung_value, dia_value, lung_hu, dia_hu,
                allow, edge_mm):
    """Lung bases above a two-domed diaphragm.

    The diaphragm height is the max over paraboloid domes ``(cx, cy, apex_z, rx, ry, depth)``:
    ``apex_z - depth * ((x-cx)^2/rx^2 + (y-cy)^2/ry^2)``. Above it plus ``dia_mm`` is lung, the
    ``dia_mm`` sheet is diaphragm; only voxels that ``allow`` lets go are changed.
    """
    k0, k1, j0, j1, i0, i1 = box[0], box[1], box[2], box[3], box[4], box[5]
    nd = domes.shape[0]
    for k in prange(k0, k1):
        z = origin[2] + k * spacing[2]
        for j in range(j0, j1):
            y = origin[1] + j * spacing[1]
            for i in range(i0, i1):
                if not allow[labels[k, j, i]]:
                    continue
                x = origin[0] + i * spacing[0]
                zd = -1e9
                for m in range(nd):
                    ux = (x - domes[m, 0]) / domes[m, 3]
                    uy = (y - domes[m, 1]) / domes[m, 4]
                    h = domes[m, 2] - domes[m, 5] * (ux * ux + uy * uy)
                    if h > zd:
                        zd = h
                f_dia = zd - z  # < 0 above the diaphragm's lower surface
                if f_dia > 0.5 * edge_mm:
                    continue
                f_lung = zd + dia_mm - z
                if f_lung < 0.5 * edge_mm:
                    _blend(labels, hu, k, j, i, f_lung, edge_mm, lung_value, lung_hu, allow)
                    if f_lung < 0.0:
                        continue
                _blend(labels, hu, k, j, i, max(f_dia, -f_lung), edge_mm, dia_value, dia_hu, allow)


@njit(cache=_CACHE, inline="always")
def _splitmix(x):
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & np.uint64(0xFFFFFFFFFFFFFFFF)
    return x ^ (x >> np.uint64(31))


@njit(cache=_CACHE, parallel=True)
def finish_ct(labels, hu, origin, spacing, noise, noise_origin, noise_spacing, texture_lut, sigma_hu, seed, remap):
    """Add per-tissue smooth texture and white quantum noise in one pass; relabel via ``remap``.

    The texture field is interpolated separably (its y-z plane once per row, then along x).
    The noise is a counter-based hash of (seed, voxel index): the same seed gives the same
    volume whatever the number of threads. Each Gaussian sample is a sum of four uniforms.
    """
    nk, nj, ni = labels.shape
    gk, gj, gi = noise.shape
    s0 = _splitmix(np.uint64(seed) * np.uint64(0x100000001B3))
    scale = sigma_hu * np.sqrt(3.0) / 65536.0
    ix = np.empty(ni, np.int64)
    tx = np.empty(ni)
    for i in range(ni):
        f = min(max((origin[0] + i * spacing[0] - noise_origin[0]) / noise_spacing[0], 0.0), gi - 1.001)
        ix[i] = int(f)
        tx[i] = f - int(f)
    for k in prange(nk):
        fz = min(max((origin[2] + k * spacing[2] - noise_origin[2]) / noise_spacing[2], 0.0), gk - 1.001)
        k0 = int(fz)
        tz = fz - k0
        row = np.empty(gi)
        for j in range(nj):
            fy = min(max((origin[1] + j * spacing[1] - noise_origin[1]) / noise_spacing[1], 0.0), gj - 1.001)
            j0 = int(fy)
            ty = fy - j0
            for g in range(gi):
                row[g] = ((noise[k0, j0, g] * (1 - ty) + noise[k0, j0 + 1, g] * ty) * (1 - tz)
                          + (noise[k0 + 1, j0, g] * (1 - ty) + noise[k0 + 1, j0 + 1, g] * ty) * tz)
            base = np.uint64((k * nj + j) * ni)
            for i in range(ni):
                lab = remap[labels[k, j, i]]
                labels[k, j, i] = lab
                v = float(hu[k, j, i])
                amp = texture_lut[lab]
                if amp != 0.0:
                    v += amp * (row[ix[i]] * (1.0 - tx[i]) + row[ix[i] + 1] * tx[i])
                if sigma_hu > 0.0:
                    h = _splitmix(s0 ^ (base + np.uint64(i)))
                    a = (h & np.uint64(0xFFFF)) + ((h >> np.uint64(16)) & np.uint64(0xFFFF))
                    b = ((h >> np.uint64(32)) & np.uint64(0xFFFF)) + (h >> np.uint64(48))
                    v += (float(a + b) - 131070.0) * scale
                v = min(max(v, -1024.0), 3071.0)
                hu[k, j, i] = np.int16(round(v))


@njit(cache=_CACHE)
def blob_sdf_points(pts, lobes, smooth_mm, planes, noise, noise_origin, noise_spacing, noise_mm):
    """The signed distance (mm) that `paint_blob` uses, at arbitrary LPS points ``(n, 3)``."""
    n = pts.shape[0]
    out = np.empty(n)
    for p in range(n):
        x, y, z = pts[p, 0], pts[p, 1], pts[p, 2]
        f = 1e9
        for m in range(lobes.shape[0]):
            dx = x - lobes[m, 0]
            dy = y - lobes[m, 1]
            dz = z - lobes[m, 2]
            u = lobes[m, 3] * dx + lobes[m, 4] * dy + lobes[m, 5] * dz
            v = lobes[m, 6] * dx + lobes[m, 7] * dy + lobes[m, 8] * dz
            w = lobes[m, 9] * dx + lobes[m, 10] * dy + lobes[m, 11] * dz
            fm = (np.sqrt(u * u + v * v + w * w) - 1.0) * lobes[m, 12]
            f = _smin(f, fm, smooth_mm) if m > 0 else fm
        for q in range(planes.shape[0]):
            fp = planes[q, 0] * x + planes[q, 1] * y + planes[q, 2] * z - planes[q, 3]
            if fp > f:
                f = fp
        if noise_mm != 0.0:
            f -= noise_mm * _trilinear(noise, noise_origin, noise_spacing, x, y, z)
        out[p] = f
    return out
