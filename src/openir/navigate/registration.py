"""Tracker -> image registration: paired points (fiducials) and surface-assisted refinement (ICP),
with the fiducial and the expected target registration errors, and the refusal rule.

- Paired points: least-squares rotation by SVD (Arun, Huang, Blostein 1987; Horn 1987), with the
  reflection guard (Umeyama 1991): the determinant sign is forced to +1, so a mirror image of the
  fiducials never passes as a rotation.
- Errors (Fitzpatrick, West, Maurer, IEEE TMI 1998;17:694-702), for isotropic fiducial localisation
  error (FLE): ``<FRE^2> = (1 - 2/N) <FLE^2>`` and, at a target r,
  ``<TRE^2(r)> = <FLE^2>/N * (1 + 1/3 * sum_k d_k^2 / f_k^2)``, d_k the distance of r from the k-th
  principal axis of the fiducial configuration and f_k the RMS distance of the fiducials from it.
  FLE is estimated from the measured FRE (``<FLE^2> = N/(N-2) FRE^2``) unless a larger one is given.
- Surface: ICP of points touched on the skin (or an organ) in the tracker frame to the segmented
  surface (marching cubes vertices) with a KD-tree (scipy cKDTree), started from the fiducial
  registration; its RMS distance is reported (TRE of ICP has no closed form: the fiducial TRE is kept).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from openir.core.errors import InputError

from .config import NavigationConfig, load_navigation_config
from .models import RegistrationResult


@dataclass
class Fiducials:
    """Paired points: the same landmarks in the image (LPS mm) and in the tracker frame (mm)."""

    image_lps: np.ndarray
    tracker: np.ndarray
    fle_mm: float | None = None  # known RMS localisation error (3D), e.g. from the tracker's specification

    def __post_init__(self) -> None:
        self.image_lps = np.asarray(self.image_lps, float).reshape(-1, 3)
        self.tracker = np.asarray(self.tracker, float).reshape(-1, 3)
        if self.image_lps.shape != self.tracker.shape:
            raise InputError(f"{len(self.image_lps)} image fiducials but {len(self.tracker)} tracker fiducials",
                             field="fiducials")
        if not (np.all(np.isfinite(self.image_lps)) and np.all(np.isfinite(self.tracker))):
            raise InputError("a fiducial coordinate is not a finite number", field="fiducials")


def rigid_fit(moving: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """4x4 rigid T minimising sum |T(moving) - fixed|^2 (SVD, reflection guarded).

    >>> rng = np.random.default_rng(0); p = rng.normal(size=(6, 3)) * 50
    >>> c, s = np.cos(0.3), np.sin(0.3); r = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    >>> t = rigid_fit(p, p @ r.T + [1, 2, 3]); bool(np.allclose(t[:3, :3], r)), t[:3, 3].round(6).tolist()
    (True, [1.0, 2.0, 3.0])
    """
    a = np.asarray(moving, float)
    b = np.asarray(fixed, float)
    ca, cb = a.mean(axis=0), b.mean(axis=0)
    h = (a - ca).T @ (b - cb)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = cb - r @ ca
    return m


def apply(m: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts, float) @ m[:3, :3].T + m[:3, 3]


def expected_tre(fiducials_lps: np.ndarray, target_lps: Sequence[float], fle_rms_mm: float) -> float:
    """Expected RMS TRE at ``target_lps`` for RMS FLE ``fle_rms_mm`` (Fitzpatrick 1998, eq. 46).

    >>> f = np.array([[50, 0, 0], [-50, 0, 0], [0, 50, 0], [0, -50, 0], [0, 0, 50], [0, 0, -50]], float)
    >>> round(expected_tre(f, (0, 0, 0), 1.0), 4)  # at the centroid: FLE / sqrt(N)
    0.4082
    """
    f = np.asarray(fiducials_lps, float)
    n = len(f)
    c = f.mean(axis=0)
    x = f - c
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt  # rows: principal axes
    r = np.asarray(target_lps, float) - c
    total = 0.0
    for e in axes:
        d2 = float(r @ r - (r @ e) ** 2)
        f2 = float(np.mean(np.sum(x * x, axis=1) - (x @ e) ** 2))
        total += d2 / f2 if f2 > 0 else np.inf
    return float(np.sqrt(fle_rms_mm ** 2 / n * (1.0 + total / 3.0)))


def expected_fre(fle_rms_mm: float, n: int) -> float:
    """Expected RMS FRE for ``n`` fiducials: sqrt(1 - 2/N) * FLE.

    >>> round(expected_fre(1.0, 6), 4)
    0.8165
    """
    return float(np.sqrt(max(0.0, 1.0 - 2.0 / n)) * fle_rms_mm)


def _judge(res: dict, config: NavigationConfig) -> tuple[bool, list[str], dict[str, str]]:
    lim = config.registration
    reasons: list[str] = []
    limits = {
        "max_fre_mm": f"{lim.max_fre_mm.value:g} ({lim.max_fre_mm.source})",
        "max_expected_tre_mm": f"{lim.max_expected_tre_mm.value:g} ({lim.max_expected_tre_mm.source})",
        "min_fiducials": f"{lim.min_fiducials.value:g} ({lim.min_fiducials.source})",
    }
    n = res.get("n_fiducials", 0)
    if n < lim.min_fiducials.value:
        reasons.append(f"{n} fiducials, at least {lim.min_fiducials.value:g} are needed")
    fre, tre = res.get("fre_mm"), res.get("expected_tre_mm")
    if fre is not None and not fre <= lim.max_fre_mm.value:
        reasons.append(f"FRE {fre:.2f} mm above the limit {lim.max_fre_mm.value:g} mm")
    if tre is not None and not tre <= lim.max_expected_tre_mm.value:
        reasons.append(f"expected TRE at the target {tre:.2f} mm above the limit {lim.max_expected_tre_mm.value:g} mm")
    srms = res.get("surface_rms_mm")
    if srms is not None:
        limits["max_surface_rms_mm"] = f"{lim.max_surface_rms_mm.value:g} ({lim.max_surface_rms_mm.source})"
        if not srms <= lim.max_surface_rms_mm.value:
            reasons.append(f"surface RMS {srms:.2f} mm above the limit {lim.max_surface_rms_mm.value:g} mm")
    return not reasons, reasons, limits


def register_paired_points(fid: Fiducials, target_lps: Sequence[float],
                           config: NavigationConfig | None = None) -> RegistrationResult:
    """Paired-point registration tracker -> image, its FRE, estimated FLE and expected TRE at
    ``target_lps``, accepted or refused against ``navigation.yaml``'s limits.

    >>> rng = np.random.default_rng(1); img = rng.uniform(-80, 80, (6, 3))
    >>> res = register_paired_points(Fiducials(img, img - [10, 0, 0]), (0, 0, 0))
    >>> res.accepted, round(res.fre_mm, 6), round(res.image_from_tracker[0][3], 6)
    (True, 0.0, 10.0)
    """
    cfg = config or load_navigation_config()
    n = len(fid.image_lps)
    if n < 3:
        raise InputError(f"{n} fiducial pair(s): at least 3 non-collinear are needed", field="fiducials")
    centred = fid.image_lps - fid.image_lps.mean(axis=0)
    if np.linalg.matrix_rank(centred, tol=1e-6 * max(1.0, float(np.abs(centred).max()))) < 2:
        raise InputError("the fiducials are collinear: the rotation about their line is undetermined",
                         field="fiducials")
    m = rigid_fit(fid.tracker, fid.image_lps)
    resid = np.linalg.norm(apply(m, fid.tracker) - fid.image_lps, axis=1)
    fre = float(np.sqrt(np.mean(resid ** 2)))
    fle_est = float(fre * np.sqrt(n / (n - 2))) if n > 2 else float("inf")
    fle = max(fle_est, fid.fle_mm or 0.0)
    tre = expected_tre(fid.image_lps, target_lps, fle)
    out = {"n_fiducials": n, "fre_mm": fre, "expected_tre_mm": tre}
    ok, reasons, limits = _judge(out, cfg)
    return RegistrationResult(method="paired_point", image_from_tracker=m.tolist(), n_fiducials=n, fre_mm=fre,
                              fle_estimate_mm=fle_est, expected_tre_mm=tre, residuals_mm=resid.tolist(),
                              accepted=ok, reasons=reasons, limits=limits)


def refine_with_surface(initial: RegistrationResult, tracker_points: np.ndarray, surface_lps: np.ndarray,
                        fid: Fiducials | None = None, target_lps: Sequence[float] | None = None,
                        config: NavigationConfig | None = None, max_iter: int = 60) -> RegistrationResult:
    """ICP of ``tracker_points`` (skin/organ points touched with the tracked pointer) onto the
    segmented ``surface_lps`` (N x 3), from ``initial``. Pairs farther than 3x the median distance
    are left out of each update (trimmed ICP), so a stray point does not pull the fit."""
    cfg = config or load_navigation_config()
    pts = np.asarray(tracker_points, float).reshape(-1, 3)
    if len(pts) < 6:
        raise InputError(f"{len(pts)} surface points: at least 6 are needed", field="surface_points")
    tree = cKDTree(np.asarray(surface_lps, float))
    m = np.asarray(initial.image_from_tracker, float)
    it = 0
    prev = np.inf
    for it in range(1, max_iter + 1):  # noqa: B007
        moved = apply(m, pts)
        d, idx = tree.query(moved)
        keep = d <= max(3.0 * float(np.median(d)), 1e-9)
        step = rigid_fit(moved[keep], tree.data[idx[keep]])
        m = step @ m
        rms = float(np.sqrt(np.mean(d[keep] ** 2)))
        if abs(prev - rms) < 1e-5:
            break
        prev = rms
    d, _ = tree.query(apply(m, pts))
    rms = float(np.sqrt(np.mean(d ** 2)))
    out: dict = {"surface_rms_mm": rms, "n_fiducials": initial.n_fiducials}
    fre = tre = fle_est = None
    resid: list[float] = []
    if fid is not None and len(fid.image_lps) >= 3:
        r = np.linalg.norm(apply(m, fid.tracker) - fid.image_lps, axis=1)
        resid = r.tolist()
        fre = float(np.sqrt(np.mean(r ** 2)))
        n = len(r)
        fle_est = float(initial.fle_estimate_mm or 0.0)
        if target_lps is not None:
            tre = expected_tre(fid.image_lps, target_lps, max(fle_est, fid.fle_mm or 0.0))
        out.update(fre_mm=fre, expected_tre_mm=tre, n_fiducials=n)
    ok, reasons, limits = _judge(out, cfg)
    return RegistrationResult(method="surface_icp", image_from_tracker=m.tolist(), n_fiducials=out["n_fiducials"],
                              fre_mm=fre, fle_estimate_mm=fle_est, expected_tre_mm=tre, residuals_mm=resid,
                              surface_points=len(pts), surface_rms_mm=rms, iterations=it, accepted=ok,
                              reasons=reasons, limits=limits)


def given_registration(image_from_tracker: np.ndarray, note: str = "") -> RegistrationResult:
    """A registration made elsewhere (e.g. the tracker already reports in the image frame)."""
    m = np.asarray(image_from_tracker, float)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise InputError("the registration must be a finite 4x4 matrix", field="image_from_tracker")
    return RegistrationResult(method="given", image_from_tracker=m.tolist(), accepted=True,
                              reasons=[], limits={"note": note or "registration given, errors not measured here"})
