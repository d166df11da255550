"""Demo stage: navigate the plan's first needle. A simulated tracker is registered to the CT with
skin fiducials (FRE, expected TRE), a synthetic insertion with hand tremor drifts toward the nearest
vessel, and every pose is guided against the plan and logged; the page shows the needle over the
slices, the guidance timeline with its alerts, and the entry and tip errors the registry records."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .runner import DemoContext


def run(ctx: DemoContext) -> None:
    from openir.navigate import (
        Fiducials,
        Guide,
        InsertionSpec,
        NavigationLog,
        NavigationSession,
        label_surface,
        needle_pose,
        planned_path,
        register_paired_points,
        robot_target,
        simulated_poses,
        simulated_setup,
    )
    from openir.plan import load_policy, needle_diameter_mm
    from openir.report.navigate_view import (
        navigation_fragment,
        snapshot_png,
        timeline_png,
        write_navigation_html,
    )

    patient = ctx.results["patient"]
    plan = ctx.results.get("plan")
    if plan is None or not plan.probes:
        ctx.add_section("Navigation", "<p>No planned needle to navigate (the plan stage did not run).</p>")
        return
    labels, ct = patient.labels, patient.ct
    path = planned_path(plan)
    policy = load_policy()
    guide = Guide(path, labels, policy=policy, needle_radius_mm=needle_diameter_mm(policy.needle_gauge) / 2,
                  exclude=(path.tumour,))
    near = [s for s in guide.structures if s.dist_mm is not None and s.name in
            ("portal_vein", "hepatic_veins", "ivc", "aorta", "vessels_other")]
    spec = InsertionSpec(seed=ctx.seed, duration_s=30.0)
    if near:
        f0 = guide.frame(0, 0.0, needle_pose(path.tip_lps, path.direction_lps))
        vessel = min(near, key=lambda s: f0.clearance_mm[s.name])
        pts = labels.grid.index_to_world(np.argwhere(np.isin(labels.array, vessel.values))[:, ::-1])
        e, u = np.asarray(path.entry_lps), np.asarray(path.direction_lps)
        rel = pts - e
        lat = np.linalg.norm(rel - np.clip(rel @ u, 0, path.length_mm)[:, None] * u, axis=1)
        spec.drift_toward_lps = pts[int(np.argmin(lat))]
        spec.drift_mm = float(lat.min()) + 2.0
    skin = label_surface(labels, [n for n in labels.names if n.lower() == "skin"] or labels.names[:1])[0]
    setup = simulated_setup(spec, skin, path.entry_lps)
    reg = register_paired_points(Fiducials(setup.fiducials_image_lps, setup.fiducials_tracker), path.tip_lps)
    folder = ctx.out / "navigate"
    folder.mkdir(parents=True, exist_ok=True)
    pid = f"DEMO-NAV-{ctx.seed}"
    with NavigationLog(folder / "navigation.jsonl", pid) as log:
        log.write("start", plan=str((ctx.out / "plan" / "plan.json").resolve()), probe=path.probe_order,
                  labels=str((ctx.out / "patient" / "labels.nii.gz").resolve()),
                  config_version=guide.cfg.version, simulate=True, seed=ctx.seed)
        session = NavigationSession(guide, reg, pid, log=log, case_id=plan.case.case_id)
        for seq, t, pose in simulated_poses(path, spec, setup.tracker_from_image):
            session.on_pose(seq, t, pose, "NeedleToTracker")
    summary = session.summary(notes=["simulated tracker and insertion (tremor, drift toward the nearest vessel)"])
    (folder / "summary.json").write_text(summary.model_dump_json(indent=2))
    robot = robot_target(path, setup.tracker_from_image)  # the tracker stands in for a robot's frame here
    (folder / "robot_target.json").write_text(robot.model_dump_json(indent=2))
    guided = [f for f in session.frames if f.state == "guiding"]
    pick = min(guided, key=lambda f: min(f.clearance_mm.values(), default=np.inf)) if guided else session.frames[-1]
    names = [labels.labels[v] for s in guide.structures for v in s.values]
    snap = snapshot_png(labels, path, pick, ct, names)
    tl = timeline_png(session.frames, path)
    write_navigation_html(folder / "navigation.html", summary, snap, tl)
    ctx.results["navigate"] = summary
    ctx.add_section(
        "Navigation (OpenIGTLink, live needle guidance)",
        f"<p>Probe P{path.probe_order} of {html.escape(path.tumour)}: simulated tracker registered with "
        f"{reg.n_fiducials} skin fiducials (FRE {reg.fre_mm:.2f} mm, expected TRE at the target "
        f"{reg.expected_tre_mm:.2f} mm, {'accepted' if reg.accepted else 'refused'}); {summary.n_poses} poses at "
        "50 Hz guided against the plan. Files: <code>navigate/navigation.jsonl</code> (replay: <code>openir "
        "navigate replay navigate/navigation.jsonl</code>), "
        "<code>navigate/summary.json</code>, <code>navigate/robot_target.json</code>, "
        f"<code>navigate/navigation.html</code>. Live: <code>openir navigate plan/plan.json --port 18944 --labels "
        f"patient/labels.nii.gz --fiducials FIDUCIALS.json</code>.</p>"
        + navigation_fragment(summary, snap, tl),
    )
