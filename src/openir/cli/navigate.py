"""``openir navigate``: the plan over OpenIGTLink, live needle guidance against it, and replay.

    openir navigate plan/plan.json --port 18944 --fiducials fiducials.json -o nav/   # live, from a tracker
    openir navigate plan/plan.json --simulate -o nav/                               # synthetic insertion
    openir navigate plan/plan.json --simulate --drift-toward portal_vein -o nav/    # ... drifting to a vessel
    openir navigate replay nav/navigation.jsonl                                     # recompute a procedure

``fiducials.json``: ``{"image_lps": [[x, y, z], ...], "tracker": [[x, y, z], ...], "fle_mm": 0.5}``
(the same landmarks, in the image and as touched with the tracked pointer; ``fle_mm`` optional).
``--tracker-frame ras|lps``: the client already sends poses in the image frame (e.g. 3D Slicer, RAS).
``--surface-points pts.json`` (``[[x, y, z], ...]``, tracker frame): skin points that refine the fiducial
registration by ICP. ``--robot robot_from_image.json`` (4x4): the target and approach poses in the
robot's frame go to ``robot_target.json`` and, with ``--port``, as TRANSFORMs ``RobotTarget``/``RobotApproach``.
Writes ``navigation.jsonl`` (every pose, guidance frame, alert and registration), ``summary.json``
(entry and tip errors, the registry's record), ``snapshot.png``, ``timeline.png``, ``navigation.html``.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import numpy as np
import typer
from pydantic import ValidationError
from rich.console import Console

from openir.core.errors import InputError

err = Console(stderr=True)
out_console = Console()


def _load_plan(path: Path):
    from openir.plan import Plan

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the plan: {exc.strerror}", source=path) from None
    try:
        return Plan.model_validate_json(text)
    except ValidationError as exc:
        e = exc.errors()[0]
        raise InputError(f"not an OpenIR plan: {e['msg']}", source=path,
                         field=".".join(str(x) for x in e["loc"])) from None


def _case_file(plan_path: Path, named: str | None, given: Path | None, what: str, option: str) -> Path | None:
    if given is not None:
        if not given.exists():
            raise InputError(f"{what} not found", source=given, field=option)
        return given
    if not named:
        return None
    p = Path(named)
    for cand in ([p] if p.is_absolute() else [plan_path.parent / p, plan_path.parent / p.name, p]):
        if cand.exists():
            return cand
    return None


def _read_fiducials(path: Path):
    from openir.navigate import Fiducials

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return Fiducials(doc["image_lps"], doc["tracker"], doc.get("fle_mm"))
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=path) from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"expected {{'image_lps': [[x,y,z],...], 'tracker': [[x,y,z],...]}} ({exc})", source=path,
                         field="fiducials") from None


def navigate(
    plan_or_replay: str = typer.Argument(..., metavar="PLAN.json | replay", help="the plan, or 'replay'"),
    log_path: Path | None = typer.Argument(None, metavar="[LOG]", help="with 'replay': the navigation.jsonl"),
    port: int | None = typer.Option(None, "--port", help="serve the plan and receive poses over OpenIGTLink (18944 is usual)"),
    simulate: bool = typer.Option(False, "--simulate", help="play a synthetic insertion (tremor, drift)"),
    probe: int | None = typer.Option(None, "--probe", help="probe (insertion order) to guide; default the first"),
    labels: Path | None = typer.Option(None, "--labels", help="the plan's label map (default: the plan's case.labels)"),
    ct: Path | None = typer.Option(None, "--ct", help="the planning CT (default: the plan's case.ct)"),
    fiducials: Path | None = typer.Option(None, "--fiducials", help="paired fiducials JSON (live registration)"),
    tracker_frame: str | None = typer.Option(None, "--tracker-frame", help="ras or lps: poses already in the image frame"),
    surface_points: Path | None = typer.Option(
        None, "--surface-points", help="JSON list of x, y, z skin points touched in the tracker frame (ICP refinement)"),
    robot: Path | None = typer.Option(None, "--robot", help="JSON 4x4 robot_from_image: write and send the robot's poses"),
    plan_override: Path | None = typer.Option(None, "--plan", help="with 'replay': the plan (default: the one logged)"),
    out: Path | None = typer.Option(None, "--out", "-o", help="output folder (default: navigation/ beside the plan)"),
    seed: int = typer.Option(0, help="simulation seed"),
    duration_s: float = typer.Option(60.0, "--duration-s", help="simulated insertion length"),
    drift_mm: float = typer.Option(2.0, "--drift-mm", help="simulated lateral drift at full depth"),
    drift_toward: str | None = typer.Option(None, "--drift-toward", help="simulated drift toward this structure"),
    realtime: bool = typer.Option(False, "--realtime", help="play the simulation at its rate (default: as fast as possible)"),
    max_seconds: float | None = typer.Option(None, "--max-seconds", help="live: stop after this long (default: Ctrl-C)"),
    procedure_id: str | None = typer.Option(None, "--procedure-id", help="default: a new random id"),
) -> None:
    """Serve a plan over OpenIGTLink and guide a tracked needle against it (or replay a log)."""
    if plan_or_replay == "replay":
        if log_path is None:
            raise InputError("give the log: openir navigate replay LOG", field="LOG")
        _replay(log_path, plan_override, labels, out)
        return
    if log_path is not None:
        raise InputError(f"unexpected argument {log_path} (only 'replay' takes a log)")
    if not simulate and port is None:
        raise InputError("give --port (live, over OpenIGTLink) or --simulate", field="--port")
    if tracker_frame not in (None, "ras", "lps"):
        raise InputError(f"--tracker-frame must be ras or lps, got {tracker_frame!r}", field="--tracker-frame")
    if port is not None and not 0 <= port <= 65535:
        raise InputError(f"--port {port} is not a TCP port", field="--port")
    _run(Path(plan_or_replay), port=port, simulate=simulate, probe=probe, labels=labels, ct=ct, fiducials=fiducials,
         tracker_frame=tracker_frame, surface_points=surface_points, robot=robot, out=out, seed=seed, duration_s=duration_s, drift_mm=drift_mm,
         drift_toward=drift_toward, realtime=realtime, max_seconds=max_seconds, procedure_id=procedure_id)


def _prepare(plan_path: Path, probe: int | None, labels_opt: Path | None, ct_opt: Path | None):
    from openir.io import read_image, read_labels
    from openir.navigate import Guide, load_navigation_config, planned_path
    from openir.plan import load_policy, needle_diameter_mm

    plan = _load_plan(plan_path)
    lab_path = _case_file(plan_path, plan.case.labels, labels_opt, "label map", "--labels")
    if lab_path is None:
        raise InputError("the plan's label map was not found: give it with --labels", source=plan_path,
                         field="case.labels")
    lab = read_labels(lab_path)
    ct_path = _case_file(plan_path, plan.case.ct, ct_opt, "planning CT", "--ct")
    ct_vol = read_image(ct_path) if ct_path is not None else None
    path = planned_path(plan, probe)
    policy = load_policy()
    guide = Guide(path, lab, load_navigation_config(), policy,
                  needle_radius_mm=needle_diameter_mm(policy.needle_gauge) / 2.0,
                  exclude=(path.tumour,))
    return plan, lab, lab_path, ct_vol, ct_path, path, guide


def _read_json_array(path: Path, shape_tail: tuple[int, ...], what: str) -> np.ndarray:
    try:
        a = np.asarray(json.loads(path.read_text(encoding="utf-8")), float)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", source=path) from None
    except (json.JSONDecodeError, TypeError, ValueError):
        raise InputError(f"expected {what} as JSON numbers", source=path) from None
    ok_shape = a.shape == shape_tail if shape_tail == (4, 4) else (a.ndim == 2 and a.shape[1:] == shape_tail)
    if not ok_shape or not np.isfinite(a).all():
        raise InputError(f"expected {what}, got shape {a.shape}", source=path)
    return a


def _run(plan_path: Path, *, port, simulate, probe, labels, ct, fiducials, tracker_frame, surface_points, robot,
         out, seed, duration_s,
         drift_mm, drift_toward, realtime, max_seconds, procedure_id) -> None:
    from openir.navigate import (
        RAS_FROM_LPS,
        InsertionSpec,
        NavigationLog,
        NavigationSession,
        given_registration,
        label_surface,
        register_paired_points,
        simulated_poses,
        simulated_setup,
    )

    plan, lab, lab_path, ct_vol, ct_path, path, guide = _prepare(plan_path, probe, labels, ct)
    drift_point = None
    if drift_toward is not None:
        if not lab.has(drift_toward):
            raise InputError(f"no structure {drift_toward!r}; labels: {', '.join(lab.names)}", field="--drift-toward")
        pts = lab.grid.index_to_world(np.argwhere(lab.mask(drift_toward))[:, ::-1])
        e, u = np.asarray(path.entry_lps), np.asarray(path.direction_lps)
        rel = pts - e
        along = np.clip(rel @ u, 0, path.length_mm)
        near = pts[np.argmin(np.linalg.norm(rel - along[:, None] * u, axis=1))]  # the point nearest the path
        drift_point = near
        lateral = np.linalg.norm((near - e) - ((near - e) @ u) * u)
        drift_mm = max(drift_mm, float(lateral) + 3.0)
    spec = InsertionSpec(seed=seed, duration_s=duration_s, drift_mm=drift_mm, drift_toward_lps=drift_point)
    pid = procedure_id or f"NAV-{uuid.uuid4().hex[:10]}"
    folder = out or plan_path.parent / "navigation"
    folder.mkdir(parents=True, exist_ok=True)
    tracker_from_image = None
    if simulate:
        skin = label_surface(lab, [n for n in lab.names if n.lower() in ("skin", "body")] or lab.names)[0]
        setup = simulated_setup(spec, skin, path.entry_lps)
        tracker_from_image = setup.tracker_from_image
        from openir.navigate import Fiducials

        reg = register_paired_points(Fiducials(setup.fiducials_image_lps, setup.fiducials_tracker), path.tip_lps)
    elif fiducials is not None:
        fid = _read_fiducials(fiducials)
        reg = register_paired_points(fid, path.tip_lps)
        if surface_points is not None:
            from openir.navigate import refine_with_surface

            skin = label_surface(lab, [n for n in lab.names if n.lower() in ("skin", "body")] or lab.names)[0]
            reg = refine_with_surface(reg, _read_json_array(surface_points, (3,), "[[x, y, z], ...]"), skin, fid=fid,
                                      target_lps=path.tip_lps)
    elif tracker_frame is not None:
        reg = given_registration(RAS_FROM_LPS if tracker_frame == "ras" else np.eye(4),
                                 note=f"poses sent in the image frame ({tracker_frame.upper()}); errors not measured")
    else:
        raise InputError("live guidance needs a registration: --fiducials FILE or --tracker-frame ras|lps",
                         field="--fiducials")
    robot_m = _read_json_array(robot, (4, 4), "a 4x4 robot_from_image matrix") if robot is not None else None
    if robot_m is not None:
        from openir.navigate import robot_target

        rt = robot_target(path, robot_m, guide.cfg)
        (folder / "robot_target.json").write_text(rt.model_dump_json(indent=2), encoding="utf-8")
    log_file = folder / "navigation.jsonl"
    bridge = None
    with NavigationLog(log_file, pid) as log:
        log.write("start", plan=str(plan_path.resolve()), labels=str(Path(lab_path).resolve()),
                  ct=str(Path(ct_path).resolve()) if ct_path else None, probe=path.probe_order,
                  config_version=guide.cfg.version, simulate=simulate, seed=seed, path=path.model_dump(mode="json"))
        session = NavigationSession(guide, reg, pid, log=log, case_id=plan.case.case_id)
        if not reg.accepted:
            err.print("[bold red]guidance refused:[/bold red] " + "; ".join(reg.reasons), markup=True)
        try:
            if port is not None:
                bridge = _start_bridge(port, plan, path, ct_vol, lab, guide, robot_m)
            if simulate:
                t0 = time.perf_counter()
                for seq, t, pose in simulated_poses(path, spec, tracker_from_image):
                    if realtime:
                        time.sleep(max(0.0, t - (time.perf_counter() - t0)))
                    f = session.on_pose(seq, t, pose, "NeedleToTracker")
                    if bridge is not None:
                        bridge.poll()
                        if bridge.server.is_connected():
                            bridge.send_guidance(f)
            else:
                _live(session, bridge, max_seconds)
        except KeyboardInterrupt:
            err.print("stopped")
        finally:
            if bridge is not None:
                bridge.close()
        summary = session.summary()
        log.write("end", n_poses=session.n_poses)
    _write_outputs(folder, summary, session.frames, lab, ct_vol, path, guide)
    _print_summary(summary, folder)
    if not reg.accepted:
        raise typer.Exit(1)


def _start_bridge(port, plan, path, ct_vol, lab, guide, robot_m=None):
    from openir.navigate import (
        Bridge,
        PlanContent,
        label_surface,
        plan_messages,
        planned_path,
        robot_target,
    )
    from openir.plan import zone_surfaces

    paths = [planned_path(plan, p.order) for p in sorted(plan.probes, key=lambda p: p.order)]
    surfaces = {path.tumour: label_surface(lab, path.tumour)} if lab.has(path.tumour) else {}
    surfaces.update(zone_surfaces(plan))
    for s in guide.structures:
        if s.dist_mm is not None:  # near the path
            surfaces[s.name] = label_surface(lab, [lab.labels[v] for v in s.values])
    targets = {}
    for t in dict.fromkeys(p.tumour for p in plan.probes):
        if lab.has(t):
            targets[t] = tuple(float(v) for v in lab.grid.index_to_world(np.argwhere(lab.mask(t))[:, ::-1]).mean(axis=0))
    extra = {}
    if robot_m is not None:
        rt = robot_target(path, robot_m, guide.cfg)
        extra = {"RobotTarget": np.asarray(rt.target_pose), "RobotApproach": np.asarray(rt.approach_pose)}
    try:
        bridge = Bridge(port=port)
    except OSError as exc:
        raise InputError(f"cannot listen on port {port}: {exc.strerror}", field="--port") from None
    bridge.offer(plan_messages(PlanContent(paths=paths, ct=ct_vol, surfaces=surfaces, targets=targets,
                                           extra_transforms=extra)))
    out_console.print(f"OpenIGTLink server on 127.0.0.1:{bridge.port} (plan sent in RAS when a client connects)")
    return bridge


def _live(session, bridge, max_seconds) -> None:
    t_start = time.monotonic()
    seq = 0
    while max_seconds is None or time.monotonic() - t_start < max_seconds:
        bridge.poll()
        poses = bridge.take()
        for p in poses:
            f = session.on_pose(seq, time.monotonic() - t_start, p.matrix, p.device)
            bridge.send_guidance(f)
            seq += 1
        for st in bridge.statuses:
            session.log.write("status", device=st.device_name, code=st.code, subcode=st.subcode,
                              error_name=st.error_name, status=st.status)
        bridge.statuses.clear()
        if not poses:
            time.sleep(0.002)


def _write_outputs(folder: Path, summary, frames, lab, ct_vol, path, guide) -> None:
    from openir.report.navigate_view import snapshot_png, timeline_png, write_navigation_html

    (folder / "summary.json").write_text(summary.model_dump_json(indent=2), encoding="utf-8")
    guided = [f for f in frames if f.state == "guiding"]
    if guided:
        worst = min(guided, key=lambda f: min(f.clearance_mm.values(), default=np.inf))
        last = guided[-1]
        pick = worst if min(worst.clearance_mm.values(), default=np.inf) < min(last.clearance_mm.values(), default=np.inf) \
            else last
        snap = snapshot_png(lab, path, pick, ct_vol, [lab.labels[v] for s in guide.structures for v in s.values])
        (folder / "snapshot.png").write_bytes(snap)
        tl = timeline_png(frames, path)
        (folder / "timeline.png").write_bytes(tl)
        write_navigation_html(folder / "navigation.html", summary, snap, tl)


def _print_summary(summary, folder: Path) -> None:
    def mm(v):
        return "-" if v is None else f"{v:.2f} mm"

    out_console.print(f"[bold]{summary.procedure_id}[/bold]: {summary.n_poses} poses, {summary.n_guided} guided; "
                      f"entry error {mm(summary.entry_error_mm)}, tip error {mm(summary.tip_error_mm)}")
    if summary.alerts_by_kind:
        out_console.print("alerts: " + ", ".join(f"{k} {v}" for k, v in sorted(summary.alerts_by_kind.items())))
    out_console.print(f"written: {folder}")


def _replay(log_path: Path, plan_override: Path | None, labels: Path | None, out: Path | None) -> None:
    from openir.navigate import read_log, replay

    content = read_log(log_path)
    start = next(content.of("start"), None)
    if start is None and plan_override is None:
        raise InputError("the log has no start record naming its plan: give --plan", source=log_path)
    plan_path = plan_override or Path(start["plan"])
    if not plan_path.exists():
        raise InputError("the logged plan is not there any more: give --plan", source=plan_path, field="--plan")
    lab_opt = labels or (Path(start["labels"]) if start and start.get("labels") and Path(start["labels"]).exists() else None)
    _, lab, _, ct_vol, _, path, guide = _prepare(plan_path, start.get("probe") if start else None, lab_opt, None)
    res = replay(content, guide)
    folder = out or log_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "replay_summary.json").write_text(res.summary.model_dump_json(indent=2), encoding="utf-8")
    _print_summary(res.summary, folder)
    out_console.print(f"replayed {len(res.frames)} poses; largest tip difference from the log "
                      f"{res.max_tip_difference_mm:.4f} mm; poses with other alerts: {res.alerts_differ}")
    for n in res.notes:
        err.print(f"note: {n}", markup=False)
