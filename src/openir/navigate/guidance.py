"""Live needle guidance against a planned path: per tracked pose (already in the image frame),
tip-to-planned-tip distance, distance from the planned line, angle, depth to go, and the distance
from the needle (inserted shaft, and the straight course ahead of the tip) to every forbidden
structure, with alerts.

Speed: one Euclidean distance map per forbidden structure is computed once (scipy EDT) on the part
of the grid around the planned path; each pose then costs a few hundred table look-ups.
Safety: every distance reported is a lower bound. At a sample the map's 8 surrounding voxel centres
give a bound that is exact on the centres (see `Guide._clearances`), half the sampling step is then
subtracted (distance is 1-Lipschitz: between two samples it cannot dip lower), then the needle
radius: a reported clearance never over-states the true one to the structure's voxel centres (the
planner's convention).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from openir.core import LabelMap
from openir.core.labels import normalise_label_name
from openir.plan import TrajectoryPolicy, is_target_label, load_policy, matches

from ._bound import min_bound
from .config import NavigationConfig, load_navigation_config
from .frames import is_rigid, needle_pose
from .models import Alert, GuidanceFrame, PlannedPath

_CORNERS = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], np.int64)


def clearance_bound_numpy(pts: np.ndarray, affine: np.ndarray, s: ForbiddenStructure, cap: float) -> float:
    """Reference (numpy) of the compiled bound in `_bound`: the squared distance to a point set,
    less ``|x|^2``, is a minimum of linear functions, hence concave; trilinear weights w_c reproduce x
    from the 8 voxel centres c around it, so by Jensen ``d(x)^2 >= sum w_c d(c)^2 - sum w_c |c - x|^2``:
    a lower bound, exact on voxel centres. Returns the smallest bound over ``pts`` (mm)."""
    inv = np.linalg.inv(affine)
    ijk = pts @ inv[:3, :3].T + inv[:3, 3]
    base = np.floor(ijk).astype(np.int64)
    frac = ijk - base
    corners = base[:, None, :] + _CORNERS[None, :, :]
    w = np.prod(np.where(_CORNERS[None, :, :] == 1, frac[:, None, :], 1.0 - frac[:, None, :]), axis=2)
    cw = corners @ affine[:3, :3].T + affine[:3, 3]
    spread = np.sum(w * np.sum((pts[:, None, :] - cw) ** 2, axis=2), axis=1)
    if s.dist_mm is None:
        return cap
    loc = corners[..., ::-1] - s.lo_kji
    ok = np.all((loc >= 0) & (loc < s.dist_mm.shape), axis=2)
    d2 = np.full(ok.shape, cap * cap)
    d2[ok] = np.minimum(s.dist_mm[loc[ok][:, 0], loc[ok][:, 1], loc[ok][:, 2]].astype(float) ** 2, cap * cap)
    return float(np.sqrt(max(0.0, float((np.sum(w * d2, axis=1) - spread).min()))))


@dataclass
class ForbiddenStructure:
    """One structure the needle must keep away from, with its distance map on a box of the grid."""

    name: str
    values: list[int]
    keep_away_mm: float
    source: str
    lo_kji: np.ndarray = field(default_factory=lambda: np.zeros(3, int))
    dist_mm: np.ndarray | None = None  # float32 [k, j, i] on the box, None when absent near the path


def forbidden_structures(labels: LabelMap, policy: TrajectoryPolicy, default_keep_away_mm: float,
                         default_source: str, exclude: tuple[str, ...] = ()) -> list[ForbiddenStructure]:
    """The label map's must-not-cross structures by the plan's trajectory policy, grouped as the
    policy groups labels (first matching entry wins; unlisted labels follow ``policy.unlisted``)."""
    groups: dict[str, ForbiddenStructure] = {}
    skip = {normalise_label_name(e) for e in exclude}
    for value in sorted(labels.labels):
        name = labels.labels[value]
        if is_target_label(name) or normalise_label_name(name) in skip:
            continue
        for key, rule in policy.structures.items():
            if matches(name, rule.labels or [key]):
                if rule.cross == "forbid":
                    keep = max(policy.margin_for(rule), default_keep_away_mm)
                    src = "trajectory policy " + policy.policy_version if policy.margin_for(rule) >= default_keep_away_mm \
                        else default_source
                    groups.setdefault(key, ForbiddenStructure(key, [], keep, src)).values.append(value)
                break
        else:
            if policy.unlisted == "forbid":
                groups[normalise_label_name(name)] = ForbiddenStructure(normalise_label_name(name), [value],
                                                                        default_keep_away_mm, default_source)
    return list(groups.values())


class Guide:
    """Guidance for one planned path over one label map (planning grid, LPS).

    >>> import numpy as np
    >>> from openir.core import LabelMap, make_affine
    >>> a = np.zeros((40, 40, 40), np.uint8); a[:, 20:24, 30:34] = 1   # a vessel along k
    >>> lm = LabelMap(a, make_affine((1, 1, 1)), labels={1: "portal_vein"})
    >>> from openir.navigate.models import PlannedPath
    >>> p = PlannedPath(probe_order=1, tumour="t", device="d", entry_lps=(5, 20, 0), tip_lps=(5, 20, 30),
    ...                 direction_lps=(0, 0, 1), length_mm=30)
    >>> g = Guide(p, lm); f = g.frame(0, 0.0, np.array([[1, 0, 0, 5], [0, 1, 0, 20], [0, 0, 1, 20], [0, 0, 0, 1.]]))
    >>> f.depth_to_go_mm, f.lateral_mm, round(f.clearance_mm["portal_vein"], 2)   # 25 mm, less half a step
    (10.0, 0.0, 24.74)
    """

    def __init__(self, path: PlannedPath, labels: LabelMap, config: NavigationConfig | None = None,
                 policy: TrajectoryPolicy | None = None, needle_radius_mm: float = 0.0,
                 exclude: tuple[str, ...] = ()):
        self.path = path
        self.cfg = config or load_navigation_config()
        g = self.cfg.guidance
        self.labels = labels
        self.entry = np.asarray(path.entry_lps, float)
        self.tip = np.asarray(path.tip_lps, float)
        self.u = np.asarray(path.direction_lps, float)
        self.u = self.u / np.linalg.norm(self.u)
        self.radius = float(needle_radius_mm)
        self.step = float(g.sample_step_mm.value)
        self.cap = float(g.clearance_cap_mm.value)
        self.affine = np.asarray(labels.affine, float)
        self.inv = np.linalg.inv(self.affine)
        self.shape = np.array(labels.shape)  # k, j, i
        sp = np.asarray(labels.spacing, float)  # i, j, k
        pad = float(g.guided_margin_mm.value)
        corners = np.array([self.entry, self.tip])
        lo_w, hi_w = corners.min(axis=0) - pad, corners.max(axis=0) + pad
        box = np.array([[a, b, c] for a in (lo_w[0], hi_w[0]) for b in (lo_w[1], hi_w[1]) for c in (lo_w[2], hi_w[2])])
        ijk = box @ self.inv[:3, :3].T + self.inv[:3, 3]
        lo = np.maximum(np.floor(ijk.min(axis=0)).astype(int), 0)[::-1]
        hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 1, self.shape[::-1] - 1 + 1)[::-1]
        self.g_lo, self.g_hi = lo, hi  # guided region, k, j, i (hi exclusive)
        capv = np.ceil(self.cap / sp[::-1]).astype(int)
        glo2, ghi2 = np.maximum(lo - capv, 0), np.minimum(hi + capv, self.shape)
        sub = labels.array[glo2[0]:ghi2[0], glo2[1]:ghi2[1], glo2[2]:ghi2[2]]
        self.structures = forbidden_structures(labels, policy or load_policy(), g.default_keep_away_mm.value,
                                               g.default_keep_away_mm.source, exclude)
        for s in self.structures:
            m = np.isin(sub, s.values)
            if not m.any():
                continue
            idx = np.nonzero(m)
            blo = np.maximum(np.array([a.min() for a in idx]) - capv, 0)
            bhi = np.minimum(np.array([a.max() for a in idx]) + 1 + capv, m.shape)
            mb = m[blo[0]:bhi[0], blo[1]:bhi[1], blo[2]:bhi[2]]
            s.dist_mm = ndimage.distance_transform_edt(~mb, sampling=tuple(sp[::-1])).astype(np.float32)
            s.lo_kji = blo + glo2
        self.frame(-1, 0.0, needle_pose(self.tip, self.u))  # load the compiled kernel now, not at the first pose

    # ---- distances ---------------------------------------------------------------------------
    def _inside(self, pts: np.ndarray) -> np.ndarray:
        """Which samples lie in the guided region (their nearest voxel)."""
        near = np.rint(pts @ self.inv[:3, :3].T + self.inv[:3, 3]).astype(np.int64)[:, ::-1]
        return np.all((near >= self.g_lo) & (near < self.g_hi), axis=1)

    def _clearances(self, pts: np.ndarray) -> tuple[dict[str, float], np.ndarray]:
        """Lower-bound distance (mm, capped) from the polyline samples ``pts`` to each structure,
        needle radius off; and which samples lie in the guided region (see `_bound`)."""
        inside = self._inside(pts)
        slack = 0.5 * self.step + self.radius
        out: dict[str, float] = {}
        for s in self.structures:
            if s.dist_mm is None or not inside.any():
                out[s.name] = self.cap
                continue
            lb = min_bound(pts, self.inv, self.affine, s.dist_mm, s.lo_kji, inside, self.cap)
            out[s.name] = self.cap if lb >= self.cap else float(max(0.0, lb - slack))  # cap: "at least"
        return out, inside

    def _samples(self, start: np.ndarray, direction: np.ndarray, length: float) -> np.ndarray:
        n = max(1, int(math.ceil(length / self.step)) + 1)
        s = np.linspace(0.0, max(length, 0.0), n)
        return start[None, :] + s[:, None] * direction[None, :]

    # ---- one pose ----------------------------------------------------------------------------
    def frame(self, seq: int, t_s: float, pose_lps: np.ndarray) -> GuidanceFrame:
        """Guidance for the needle pose ``pose_lps`` (4x4 in the image frame: origin at the tip, +z
        the advancing direction)."""
        t0 = time.perf_counter()
        m = np.asarray(pose_lps, float)
        if not is_rigid(m):
            return GuidanceFrame(seq=seq, t_s=t_s, state="invalid_pose", alerts=[Alert(
                kind="invalid_pose", severity="critical",
                message="tracked pose is not a finite rigid transform: ignored (no guidance for it)")],
                compute_ms=(time.perf_counter() - t0) * 1e3)
        g = self.cfg.guidance
        tip = m[:3, 3]
        d = m[:3, 2] / np.linalg.norm(m[:3, 2])
        rel = tip - self.entry
        inserted = float(rel @ self.u)
        lateral = float(np.linalg.norm(rel - inserted * self.u))
        angle = math.degrees(math.acos(max(-1.0, min(1.0, float(d @ self.u)))))
        to_go = float((self.tip - tip) @ self.u)
        shaft_len = min(g.shaft_length_mm.value, max(inserted, 0.0) + 10.0)
        shaft_pts = self._samples(tip, -d, shaft_len)
        shaft, inside = self._clearances(shaft_pts)
        in_body = np.arange(len(shaft_pts)) * (shaft_len / max(1, len(shaft_pts) - 1)) <= max(inserted, 0.0)
        ahead = max(to_go, 0.0) + g.past_target_mm.value
        course, _ = self._clearances(self._samples(tip + self.step * d, d, ahead))
        alerts: list[Alert] = []
        if inserted > 0 and lateral > g.off_path_mm.value:
            alerts.append(Alert(kind="off_path", severity="warning", value_mm=lateral, limit_mm=g.off_path_mm.value,
                                message=f"tip {lateral:.1f} mm off the planned line (tolerance {g.off_path_mm.value:g} mm)"))
        if inserted > 0 and angle > g.off_path_deg.value:
            alerts.append(Alert(kind="off_path", severity="warning", value_mm=None, limit_mm=None,
                                message=f"needle {angle:.1f} deg from the planned path (tolerance {g.off_path_deg.value:g} deg)"))
        warn = g.approach_warning_mm.value
        for s in self.structures:
            c, k = shaft[s.name], s.keep_away_mm
            if c < k:
                alerts.append(Alert(kind="keep_away", severity="critical", structure=s.name, value_mm=c, limit_mm=k,
                                    message=f"needle {c:.1f} mm from {s.name}: inside its keep-away {k:g} mm"))
            elif c < k + warn:
                alerts.append(Alert(kind="approaching", severity="warning", structure=s.name, value_mm=c, limit_mm=k,
                                    message=f"needle {c:.1f} mm from {s.name} (keep-away {k:g} mm)"))
            elif course[s.name] < k and inserted > 0:
                alerts.append(Alert(kind="approaching", severity="warning", structure=s.name,
                                    value_mm=course[s.name], limit_mm=k,
                                    message=f"the course ahead passes {course[s.name]:.1f} mm from {s.name} "
                                            f"(keep-away {k:g} mm)"))
        if to_go < -g.past_target_mm.value:
            alerts.append(Alert(kind="past_target", severity="critical", value_mm=-to_go, limit_mm=g.past_target_mm.value,
                                message=f"tip {-to_go:.1f} mm past the planned tip"))
        if inserted > 0 and not inside[in_body].all():
            alerts.append(Alert(kind="outside_region", severity="warning",
                                message="needle outside the guided region around the planned path: distances to "
                                        "structures beyond it are not checked"))
        return GuidanceFrame(
            seq=seq, t_s=t_s, state="guiding", tip_lps=tuple(float(v) for v in tip),  # type: ignore[arg-type]
            direction_lps=tuple(float(v) for v in d),  # type: ignore[arg-type]
            tip_to_target_mm=float(np.linalg.norm(self.tip - tip)), lateral_mm=lateral, angle_deg=angle,
            depth_to_go_mm=to_go, inserted_mm=inserted, clearance_mm=shaft, course_clearance_mm=course,
            alerts=alerts, compute_ms=(time.perf_counter() - t0) * 1e3)
