"""Plan scoring (issue 22): time of `score_plan` and its coverage / margin figures against an
independent numpy/scipy computation on the same case (full grid, no openir geometry code).

The case: a synthetic abdomen (openir.phantom, seed 11, 22 mm liver tumour) with the planner's
expert plan; trainee plans = the expert plan with its probe moved 0-8 mm sideways. The baseline
computes what the score's coverage and margin criteria need with plain numpy (zones tested voxel by
voxel, target = tumour dilated 5 mm by a Euclidean distance transform inside the liver, minimal
margin from scipy EDTs); `score_plan` also traces the needle paths and checks must-spare structures.

Seed-implant exercises (``--seeds``): a liver tumour in the same phantom, the seed planner's plan as
the expert, trainee plans = that plan with 0-2 needles (and their seeds) removed; `score_plan`
against D90 / V100 / V150 computed with numpy on the full grid (target = tumour + margin by a scipy
EDT inside the body, organ-at-risk voxels out; the TG-43 dose engine is the seeds package's, shared).

    python benchmarks/training_bench.py [--spacing 2.5 1.5] [--seeds]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy import ndimage

from openir import phantom
from openir.core import body_mask_from_ct
from openir.plan import plan_ablation
from openir.training import TeachingCase, score_plan
from openir.training.models import LibraryEntry


def baseline(labels, plan, tumour: str) -> tuple[float, float, float]:
    """(tumour + 5 mm coverage %, tumour coverage %, minimal margin mm): plain numpy / scipy."""
    k, j, i = np.indices(labels.shape, dtype=np.float32)
    aff = labels.affine
    pts = np.stack([aff[r, 0] * i + aff[r, 1] * j + aff[r, 2] * k + aff[r, 3] for r in range(3)], axis=-1)
    zone = np.zeros(labels.shape, bool)
    for pr in plan.probes:
        z = plan.zones[pr.zone_index]
        d = np.asarray(pr.direction_lps)
        c = np.asarray(pr.tip_lps) - d * pr.tip_offset_mm
        rel = pts - c
        along = rel @ d
        perp2 = (rel**2).sum(-1) - along**2
        zone |= along**2 / z.semi_axes_mm[0] ** 2 + perp2 / z.semi_axes_mm[1] ** 2 <= 1.0
    sp = labels.grid.spacing[::-1]
    tm = labels.array == labels.value_of(tumour)
    target = tm | ((ndimage.distance_transform_edt(~tm, sampling=sp) <= 5.0 + 1e-6)
                   & (labels.array == labels.value_of("liver")))
    half = float(sp.min()) / 2
    if (tm & ~zone).any():
        margin = -float(ndimage.distance_transform_edt(~zone, sampling=sp)[tm].max()) + half
    else:
        margin = float(ndimage.distance_transform_edt(zone, sampling=sp)[tm].min()) - half
    return 100.0 * (zone & target).sum() / target.sum(), 100.0 * (zone & tm).sum() / tm.sum(), margin


def moved(plan, mm: float):
    p = plan.model_copy(deep=True)
    pr = p.probes[0]
    d = np.asarray(pr.direction_lps)
    u = np.cross(d, [0.0, 0.0, 1.0])
    u /= np.linalg.norm(u)
    pr.tip_lps = tuple(np.asarray(pr.tip_lps) - mm * u)
    pr.entry_lps = tuple(np.asarray(pr.entry_lps) - mm * u)
    return p


def run(spacing: float) -> None:
    p = phantom.make_abdomen(seed=11, tumours=(phantom.TumourSpec(diameter_mm=22.0),),
                             spacing_mm=(spacing,) * 3, fov_mm=(360, 280, 160), fov_centre_lps=(-10, 0, 60))
    body = body_mask_from_ct(p.ct, p.labels)
    expert = plan_ablation(p.labels, ["tumour_1"], modality="microwave", n_directions=1000, body_mask=body)
    case = TeachingCase(LibraryEntry.model_construct(entry_id="bench", tumour="tumour_1", expert_time_min=None),
                        p.labels, expert, p.ct, _body=body)
    score_plan(case, expert)  # warm (numba compile of the path tracer, catalogue reads)
    print(f"\nspacing {spacing} mm, grid {p.labels.shape} ({p.labels.array.size / 1e6:.1f} M voxels)")
    print(f"{'shift mm':>8} {'score s':>8} {'numpy s':>8} {'ratio':>6} | {'cov+5 openir':>12} {'numpy':>8} |"
          f" {'tumour openir':>13} {'numpy':>8} | {'margin openir':>13} {'numpy':>7} | total")
    worst = [0.0, 0.0, 0.0]
    for mm in (0.0, 2.0, 4.0, 6.0, 8.0):
        plan = moved(expert, mm)
        t0 = time.perf_counter()
        s = score_plan(case, plan)
        t_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        g, t, m = baseline(p.labels, plan, "tumour_1")
        t_b = time.perf_counter() - t0
        by = {c.id: c for c in s.criteria}
        got = (by["target_coverage"].measured, by["tumour_coverage"].measured, by["min_margin"].measured)
        for n, (a, b) in enumerate(zip(got, (g, t, m), strict=True)):
            worst[n] = max(worst[n], abs(a - b))
        print(f"{mm:8.1f} {t_s:8.2f} {t_b:8.2f} {t_s / t_b:6.2f} | {got[0]:12.3f} {g:8.3f} | {got[1]:13.3f} {t:8.3f} |"
              f" {got[2]:13.2f} {m:7.2f} | {s.total:g}")
    print(f"largest |openir - numpy|: coverage {worst[0]:.4f} %, tumour {worst[1]:.4f} %, margin {worst[2]:.3f} mm")


def seed_baseline(labels, plan, body) -> tuple[float, float, float]:
    """(D90 Gy, V100 %, V150 %) of a seed plan on the full grid: numpy / scipy, TG-43 engine shared."""
    from openir.seeds import get_site, total_dose_gy

    sp = labels.grid.spacing[::-1]
    tm = labels.array == labels.value_of(plan.tumour)
    target = (ndimage.distance_transform_edt(~tm, sampling=sp) <= plan.margin_mm + 1e-6) & body
    for o in get_site(plan.site).organs_at_risk:
        target &= ~np.isin(labels.array, o.values_in(labels))
    t = total_dose_gy(plan.seeds, plan.seed_model, labels.grid)[target]
    rx = plan.prescription_gy
    n = t.size
    d90 = float(np.sort(t)[int(np.floor(0.1 * (n - 1)))])
    return d90, 100.0 * (t >= rx).sum() / n, 100.0 * (t >= 1.5 * rx).sum() / n


def run_seeds(spacing: float) -> None:
    from openir.seeds.planner import SeedPlanOptions, plan_seeds

    p = phantom.make_abdomen(seed=11, tumours=(phantom.TumourSpec(diameter_mm=25.0),),
                             spacing_mm=(spacing,) * 3, fov_mm=(360, 280, 160), fov_centre_lps=(-10, 0, 60))
    body = body_mask_from_ct(p.ct, p.labels)
    expert = plan_seeds(p.ct, p.labels, SeedPlanOptions(tumour="tumour_1", site="liver")).plan
    case = TeachingCase(LibraryEntry.model_construct(entry_id="bench", tumour="tumour_1", expert_time_min=None),
                        p.labels, expert, p.ct, _body=body)
    score_plan(case, expert)  # warm
    print(f"\nseeds, spacing {spacing} mm, grid {p.labels.shape}; expert {len(expert.needles)} needles, "
          f"{len(expert.seeds)} seeds")
    print(f"{'removed':>7} {'score s':>8} {'numpy s':>8} | {'D90 openir':>10} {'numpy':>7} | {'V100 openir':>11} "
          f"{'numpy':>7} | {'V150 openir':>11} {'numpy':>7} | total")
    worst = [0.0, 0.0, 0.0]
    for k in (0, 1, 2):
        gone = {n.index for n in expert.needles[:k]}
        plan = expert.model_copy(update={"needles": expert.needles[k:],
                                         "seeds": [x for x in expert.seeds if x.needle not in gone]})
        t0 = time.perf_counter()
        s = score_plan(case, plan)
        t_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = seed_baseline(p.labels, plan, body)
        t_b = time.perf_counter() - t0
        by = {c.id: c.measured for c in s.criteria}
        got = (by["d90"], by["v100"], by["v150"])
        for n, (a, b) in enumerate(zip(got, ref, strict=True)):
            worst[n] = max(worst[n], abs(a - b))
        print(f"{k:7d} {t_s:8.2f} {t_b:8.2f} | {got[0]:10.2f} {ref[0]:7.2f} | {got[1]:11.3f} {ref[1]:7.3f} |"
              f" {got[2]:11.3f} {ref[2]:7.3f} | {s.total:g}")
    print(f"largest |openir - numpy|: D90 {worst[0]:.3f} Gy, V100 {worst[1]:.4f} %, V150 {worst[2]:.4f} %")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--spacing", type=float, nargs="+", default=[2.5, 1.5])
    ap.add_argument("--seeds", action="store_true", help="seed-implant exercises instead of ablation")
    a = ap.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    for sp in a.spacing:
        (run_seeds if a.seeds else run)(sp)


if __name__ == "__main__":
    main()
