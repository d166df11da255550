"""``openir simulate``: temperature and thermal-dose maps over time for a set of probes.

PLAN.json (the ``probes`` list is what the plan schema will carry)::

    {"probes": [{"device": "emprint", "power_w": 100, "time_s": 600,
                 "tip_lps": [x, y, z], "direction_lps": [dx, dy, dz],   # unit, entry -> tip
                 "source_scale": null, "kind": null, "schedule": null}],
     "labels": "labels.nii.gz", "label_names": {"1": "liver", "2": "portal_vein"},   # optional
     "spacing_mm": 1.0, "box_mm": 120, "output_times_s": [60, 300, 600],            # optional
     "criterion": "cem43", "cooldown_s": 0, "calibration": "my_calibration.yaml"}   # optional

Without ``labels`` the probes sit in homogeneous liver. Relative paths are read from PLAN.json's folder.
A plan written by ``openir plan`` works as it is: its probes carry ``modality``, ``group`` and
``array_position``; probes of one group and position are switched on together, later groups and
pull-back positions one after another (thermal, cryo) or each alone with the zones united (IRE), as
the result's ``activations`` and notes say. Cryoprobes without a ``schedule`` get the sourced
default freeze-thaw-freeze protocol. ``--voxel`` / ``--box`` override the numerics, e.g.::

    openir simulate plan/plan.json --voxel 2 --box 80 -o sim
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from openir.core.errors import InputError
from openir.core.labels import LabelMap
from openir.physics.calibrate import CalibrationFit, calibrate_microwave
from openir.physics.models import SimulationRequest
from openir.physics.presets import (
    CALIBRATION_YAML,
    CalibratedSetting,
    TargetAxes,
    find_device,
    load_presets,
    write_setting,
)
from openir.physics.simulate import SimulationFields
from openir.physics.simulate import simulate as run_simulation
from openir.report.physics_figures import plot_zone_growth


def read_labels(path: Path, names: dict[int, str] | None) -> LabelMap:
    """The request's label map through OpenIR's readers (NIfTI/NRRD/SEG; names from the request or a sidecar)."""
    from openir.io import read_labels as io_read_labels

    if not path.exists():
        raise InputError("label map not found", source=path)
    return io_read_labels(path, names=names)


def write_maps(fields: SimulationFields, out: Path, times_s: list[float] | None = None) -> dict[str, str]:
    """4-D NIfTI (x, y, z, time) of temperature, CEM43 and damage, plus peak temperature."""
    from openir.core.volume import Volume
    from openir.io import write_nifti, write_nifti_series

    sol = fields.solution
    files = {}
    for name, arr in fields.extra.items():  # IRE: field, zone and heating maps
        p = write_nifti(Volume(np.asarray(arr, np.float32), fields.grid.affine), out / f"{name}.nii.gz")
        files[name] = p.name
    if sol is None:
        return files
    dt = float(np.diff(times_s).mean()) if times_s is not None and len(times_s) > 1 else 1.0
    series = {"temperature_c": sol.temperature_c, "cem43_min": sol.cem43_min, "damage": sol.damage}
    for name, arrs in series.items():
        p = write_nifti_series(list(arrs), fields.grid, out / f"{name}.nii.gz", dt_s=dt)
        files[name] = p.name
    p = write_nifti(Volume(sol.max_temperature_c.astype(np.float32), fields.grid.affine), out / "max_temperature_c.nii.gz")
    files["max_temperature_c"] = p.name
    return files


def simulate(
    plan: Path = typer.Argument(None, help="PLAN.json with a 'probes' list (see `openir simulate --help`)"),
    out: Path = typer.Option(Path("openir-simulation"), "--out", "-o", help="output folder"),
    calibrate: str = typer.Option("", "--calibrate", help="calibrate this device instead of simulating"),
    power_w: float = typer.Option(100.0, "--power", help="calibration: power setting (W)"),
    time_s: float = typer.Option(600.0, "--time", help="calibration: ablation time (s)"),
    along_mm: float = typer.Option(0.0, "--along", help="calibration: target semi-axis along the shaft (mm)"),
    across_mm: float = typer.Option(0.0, "--across", help="calibration: target semi-axis across the shaft (mm)"),
    target_source: str = typer.Option("", "--target-source", help="calibration: where the target axes come from"),
    table: Path = typer.Option(CALIBRATION_YAML, "--table", help="calibration YAML to update"),
    voxel_mm: float = typer.Option(None, "--voxel", help="voxel size (mm), overrides the plan's spacing_mm (default 1)"),
    box_mm: float = typer.Option(None, "--box", help="edge of the simulated cube (mm), overrides the plan's box_mm"),
) -> None:
    """Simulate heating/freezing of PLAN.json's probes: temperature and dose maps, zone growth plot.

    PLAN.json: {"probes": [{"device", "power_w", "time_s", "tip_lps", "direction_lps" (entry -> tip)}],
    optional "labels" + "label_names", "spacing_mm", "box_mm", "output_times_s", "criterion"}.
    Writes temperature/CEM43/damage NIfTI over time, zone_growth.png and simulation.json.

    With --calibrate DEVICE, fit the device's source so its zone in homogeneous liver matches
    --along/--across (semi-axes, mm) at --power/--time, and store it in the calibration YAML.
    """
    console = Console()
    if calibrate:
        _calibrate(console, calibrate, power_w, time_s, along_mm, across_mm, target_source, table)
        return
    if plan is None:
        raise InputError("give PLAN.json (or --calibrate DEVICE)")
    try:
        request = SimulationRequest.model_validate_json(plan.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read plan: {exc.strerror}", source=plan) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(err["msg"], source=plan, field=".".join(str(p) for p in err["loc"])) from None
    request = _override_numerics(request, voxel_mm, box_mm, plan)
    _check_devices(request, plan)
    base = plan.parent
    if request.labels is None:
        # a plan written by `openir plan` names the label map it was made on: use its tissues and vessels
        case = json.loads(plan.read_text(encoding="utf-8")).get("case") or {}
        if isinstance(case, dict) and case.get("labels"):
            request.labels = str(case["labels"])
    if request.calibration:
        request.calibration = str(base / request.calibration)
    labels = None
    if request.labels:
        labels = read_labels(base / request.labels, request.label_names)
    with Progress(TextColumn("[bold]simulating"), BarColumn(), TextColumn("{task.fields[t]}"), TimeElapsedColumn(),
                  console=console, transient=True) as prog:
        task = prog.add_task("sim", total=1.0, t="")

        def cb(done: float, total: float) -> None:
            prog.update(task, completed=done / total, t=f"{done:.0f}/{total:.0f} s")

        result, fields = run_simulation(request, labels, progress=cb)
    out.mkdir(parents=True, exist_ok=True)  # only once there is something to write
    files = write_maps(fields, out, list(fields.solution.times_s) if fields.solution else None)
    plot_zone_growth(result, out / "zone_growth.png")
    files["zone_growth"] = "zone_growth.png"
    result.files = files
    (out / "simulation.json").write_text(result.model_dump_json(indent=2), encoding="utf-8")
    console.print(
        f"[green]{result.modality} zone ({result.criterion}):[/green] {result.final_length_mm:.1f} x {result.final_width_mm:.1f} mm, "
        f"{result.final_volume_ml:.1f} ml  ({result.n_steps} {result.method} steps, {result.runtime_s:.1f} s)"
    )
    if result.array_zone is not None and len(result.probe_models) > 1:
        a = result.array_zone
        console.print(f"  all {len(result.probe_models)} probes together: {a.along_mm:.1f} x {a.across1_mm:.1f} x "
                      f"{a.across2_mm:.1f} mm, {a.volume_ml:.1f} ml")
    for m in result.probe_models:
        if not m.calibrated:
            console.print(f"  [yellow]probe {m.probe} ({m.device}): generic {m.modality} model ({m.model}), "
                          "no calibration data for this device[/yellow]", highlight=False)
    for n in result.notes:
        console.print(f"  note: {n}", highlight=False)
    console.print(f"written to {out}")


def _override_numerics(request: SimulationRequest, voxel_mm: float | None, box_mm: float | None,
                       plan: Path) -> SimulationRequest:
    upd = {k: v for k, v in (("spacing_mm", voxel_mm), ("box_mm", box_mm)) if v is not None}
    if not upd:
        return request
    try:
        return SimulationRequest.model_validate({**request.model_dump(), **upd})
    except ValidationError as exc:
        err = exc.errors()[0]
        flag = {"spacing_mm": "--voxel", "box_mm": "--box"}.get(str(err["loc"][0]), str(err["loc"][0]))
        raise InputError(f"{flag}: {err['msg']}", source=plan, field=str(err["loc"][0])) from None


def _check_devices(request: SimulationRequest, plan: Path) -> None:
    """Every probe's device is in the physics presets or the plan catalogue (then: generic model)."""
    from openir.plan import load_catalogue

    presets = load_presets()
    catalogue = set(load_catalogue().ids)
    for n, p in enumerate(request.probes):
        try:
            find_device(p.device, presets)
        except InputError:
            if p.device not in catalogue and p.kind is None:
                raise InputError(f"probe {n + 1}: unknown device {p.device!r} (neither in the device catalogue nor "
                                 "in the physics presets)", source=plan, field=f"probes.{n}.device") from None


def _calibrate(console: Console, device: str, power_w: float, time_s: float, along: float, across: float,
               source: str, table_path: Path) -> None:
    if along <= 0 or across <= 0 or not source.strip():
        raise InputError("--calibrate needs --along, --across (semi-axes, mm) and --target-source")
    presets = load_presets(table_path)
    key, dev = find_device(device, presets)
    if dev.kind != "microwave":
        raise InputError(f"calibration is implemented for microwave devices; {key} is {dev.kind}")
    p = {k: v.value for k, v in dev.parameters.items()}
    with console.status(f"calibrating {key} {power_w:g} W / {time_s:g} s"):
        res = calibrate_microwave(along, across, device=key, power_w=power_w, time_s=time_s,
                                  feed_offset_mm=p["feed_offset_mm"], sigma_radial_mm=p["sigma_radial_mm"],
                                  target_source=source,
                                  fit=CalibrationFit(initial=(p["absorbed_fraction"], p["sigma_axial_mm"])))
    setting = CalibratedSetting(
        power_w=power_w, time_s=time_s, target_semi_axes_mm=TargetAxes(along=along, across=across, source=source),
        fitted=res.fitted, achieved_semi_axes_mm=tuple(round(v, 3) for v in res.achieved_semi_axes_mm),  # type: ignore[arg-type]
        spacing_mm=res.spacing_mm, criterion=res.criterion,
    )
    write_setting(table_path, key, setting)
    console.print(json.dumps(res.model_dump(mode="json"), indent=1))
    console.print(f"[green]stored in[/green] {table_path}")
