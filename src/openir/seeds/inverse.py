"""Inverse seed placement: fewest needles, then fewest seeds, reaching D90 >= Rx and V100 >= goal.

A greedy set-cover heuristic (the family of D'Souza et al. 2001 and the greedy/IPSA-like planners
of seed-implantation-sources.md), on a precomputed influence matrix (dose of each candidate slot at
sample points of the target and the organs at risk):

1. *Fill*: repeatedly add the slot that removes most of the target's dose deficit below the
   prescription, discounted when it opens a new needle and penalised for pushing target points over
   200 % of Rx; a slot that would break an organ limit is never taken.
2. *Fewer needles*: try to empty each needle (fewest seeds first) and refill on the others; keep
   the change when the goals still hold.
3. *Fewer seeds*: drop single seeds (weakest first) while the goals hold.

Goals are checked on the sample points with a small safety margin; the caller re-checks every
figure on the full dose grid.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class OrganConstraint:
    """Total-dose matrix rows of one organ's sample points and its limit on ``metric``."""

    name: str
    matrix: np.ndarray  # (n_points, n_slots) Gy
    metric: str
    limit_gy: float
    k_voxels: int  # DxCC: the k-th hottest point; dmax: 1


@dataclass(frozen=True)
class InverseOptions:
    """Goals and knobs of the optimiser (doses in Gy)."""

    prescription_gy: float
    v100_goal_pct: float = 90.0
    d90_goal_factor: float = 1.0
    margin_v100_pct: float = 2.0
    margin_d90: float = 0.03
    new_needle_factor: float = 0.55
    hot_weight: float = 0.5
    max_seeds: int = 400
    prune_needles: bool = True
    prune_seeds: bool = True
    time_budget_s: float = 40.0


@dataclass
class InverseResult:
    chosen: list[int]
    needles_used: list[int]
    v100_pct: float
    d90_gy: float
    goals_met: bool
    organ_ok: bool
    seconds: float
    log: list[str] = field(default_factory=list)


def _organ_value(col_sum: np.ndarray, k: int, metric: str) -> float:
    if col_sum.size == 0:
        return 0.0
    if metric == "dmean":
        return float(col_sum.mean())
    k = min(k, col_sum.size)
    return float(np.partition(col_sum, col_sum.size - k)[col_sum.size - k])


class _State:
    def __init__(self, a: np.ndarray, organs: Sequence[OrganConstraint], needle_of: np.ndarray,
                 opts: InverseOptions):
        self.a = a
        self.organs = organs
        self.needle_of = needle_of
        self.opts = opts
        self.d = np.zeros(a.shape[0], np.float64)
        self.od = [np.zeros(o.matrix.shape[0]) for o in organs]
        self.chosen: list[int] = []
        self.taken = np.zeros(a.shape[1], bool)

    def add(self, j: int) -> None:
        self.d += self.a[:, j]
        for q, o in enumerate(self.organs):
            self.od[q] += o.matrix[:, j]
        self.chosen.append(j)
        self.taken[j] = True

    def remove(self, j: int) -> None:
        self.d -= self.a[:, j]
        for q, o in enumerate(self.organs):
            self.od[q] -= o.matrix[:, j]
        self.chosen.remove(j)
        self.taken[j] = False

    def organ_ok_with(self, j: int | None) -> bool:
        for q, o in enumerate(self.organs):
            v = self.od[q] if j is None else self.od[q] + o.matrix[:, j]
            if _organ_value(v, o.k_voxels, o.metric) > o.limit_gy:
                return False
        return True

    def v100(self) -> float:
        return 100.0 * float(np.count_nonzero(self.d >= self.opts.prescription_gy)) / self.d.size

    def d90(self) -> float:
        return float(np.percentile(self.d, 10.0, method="lower"))

    def goals(self) -> bool:
        o = self.opts
        return (self.v100() >= min(100.0, o.v100_goal_pct + o.margin_v100_pct)
                and self.d90() >= o.prescription_gy * o.d90_goal_factor * (1.0 + o.margin_d90))

    def open_needles(self) -> set[int]:
        return {int(self.needle_of[j]) for j in self.chosen}


def _fill(st: _State, allowed: np.ndarray, deadline: float) -> None:
    """Greedy fill until the goals hold (or nothing useful is left)."""
    o = st.opts
    rx = o.prescription_gy
    blocked = np.zeros_like(allowed)
    while not st.goals() and len(st.chosen) < o.max_seeds and time.perf_counter() < deadline:
        deficit = np.maximum(rx - st.d, 0.0).astype(np.float32)
        gain = np.minimum(st.a, deficit[:, None]).sum(axis=0) / rx
        score = gain
        if o.hot_weight > 0:  # target points this slot would newly push over 200 % of Rx
            room = np.where(st.d < 2.0 * rx, 2.0 * rx - st.d, np.inf).astype(np.float32)
            hot = np.count_nonzero(st.a >= room[:, None], axis=0)
            score = gain - o.hot_weight * hot
        open_n = np.zeros(st.needle_of.max() + 1, bool)
        if st.chosen:
            open_n[st.needle_of[st.chosen]] = True
        score = np.where(open_n[st.needle_of], score, score - (1.0 - o.new_needle_factor) * np.abs(gain))
        score[~allowed | st.taken | blocked] = -np.inf
        placed = False
        for j in np.argsort(score)[::-1][:50]:
            if not math.isfinite(score[j]) or gain[j] <= 1e-6:
                break
            if st.organ_ok_with(int(j)):
                st.add(int(j))
                placed = True
                break
            blocked[j] = True
        if not placed:
            break


def optimise(a_target: np.ndarray, organs: Sequence[OrganConstraint], needle_of: np.ndarray,
             opts: InverseOptions) -> InverseResult:
    """Choose slots (columns of ``a_target``, total dose in Gy per slot) as described above."""
    t0 = time.perf_counter()
    deadline = t0 + opts.time_budget_s
    st = _State(np.ascontiguousarray(a_target, dtype=np.float32), organs, np.asarray(needle_of), opts)
    all_ok = np.ones(a_target.shape[1], bool)
    log: list[str] = []
    _fill(st, all_ok, deadline)
    log.append(f"fill: {len(st.chosen)} seeds on {len(st.open_needles())} needles, V100 {st.v100():.1f} %")
    if st.goals() and opts.prune_needles:
        _prune_needles(st, deadline, log)
    if st.goals() and opts.prune_seeds:
        _prune_seeds(st, deadline)
        log.append(f"fewer seeds: {len(st.chosen)} seeds on {len(st.open_needles())} needles")
    return InverseResult(chosen=sorted(st.chosen), needles_used=sorted(st.open_needles()),
                         v100_pct=st.v100(), d90_gy=st.d90(), goals_met=st.goals(),
                         organ_ok=st.organ_ok_with(None), seconds=time.perf_counter() - t0, log=log)


def _prune_needles(st: _State, deadline: float, log: list[str]) -> None:
    tried: set[int] = set()
    while time.perf_counter() < deadline:
        counts: dict[int, int] = {}
        for j in st.chosen:
            counts[int(st.needle_of[j])] = counts.get(int(st.needle_of[j]), 0) + 1
        order = sorted((c, n) for n, c in counts.items() if n not in tried)
        if not order:
            break
        _c, n = order[0]
        tried.add(n)
        before = list(st.chosen)
        for j in [j for j in st.chosen if st.needle_of[j] == n]:
            st.remove(j)
        allowed = np.isin(st.needle_of, list({int(st.needle_of[j]) for j in st.chosen}))
        _fill(st, allowed, deadline)
        if not st.goals() or len(st.chosen) > len(before) + 2:
            for j in list(st.chosen):
                st.remove(j)
            for j in before:
                st.add(j)
    log.append(f"fewer needles: {len(st.open_needles())} needles, {len(st.chosen)} seeds")


def _prune_seeds(st: _State, deadline: float) -> None:
    changed = True
    while changed and time.perf_counter() < deadline:
        changed = False
        rx = st.opts.prescription_gy
        # weakest first: least dose delivered to under-covered (near-Rx) target points
        near = (st.d < 1.3 * rx).astype(np.float32)
        contrib = {j: float(near @ st.a[:, j]) for j in st.chosen}
        for j in sorted(contrib, key=contrib.get):
            st.remove(j)
            if st.goals():
                changed = True
            else:
                st.add(j)
            if time.perf_counter() > deadline:
                break
