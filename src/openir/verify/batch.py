"""Verify many cases from a CSV of paths, in parallel with Dask; one output row per case.

Input CSV columns (header required; paths relative to the CSV's folder):

=============  ========  =====================================================================
column         required  meaning
=============  ========  =====================================================================
case_id        yes       unique case name (also the sub-folder of the per-case reports)
pre_labels     yes       label map with the tumour (and organ); alone = tumour + zone in one frame
post_labels    no        label map with the ablation zone (post study)
pre_image      no        pre image (needed for registration)
post_image     no        post image (needed for registration)
tumour         no        tumour label name or prefix (default 'tumour')
zone           no        ablation-zone label name (default 'ablation_zone')
organ          no        organ label on both scans, e.g. 'liver' (quality gate, capsule rule; empty = none)
stages         no        registration stages joined by '+', e.g. 'rigid+bspline' (default 'rigid')
capsule_rule   no        1/true: no margin required beyond the organ capsule
same_frame     no        1/true: pre and post labels share one frame (no registration check)
=============  ========  =====================================================================

A failing case writes a row with ``status`` 'refused', 'error' or 'no verdict' (alignment not
measured) and the message; it never stops the batch, and `openir verify batch` exits non-zero
naming those cases.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

from openir.core.errors import InputError, OpenIRError

from .registration import RegistrationRefused

Writer = Callable[[Any, Path], object]  # (Verification, folder): writes one case's report files

REQUIRED = ("case_id", "pre_labels")
OUTPUT_COLUMNS = [
    "case_id", "status", "message", "min_margin_mm", "margin_resolved", "min_margin_estimate_mm",
    "min_margin_conservative_mm", "min_margin_voxel_mm", "margin_class", "complete",
    "verdict", "pct_below_0", "pct_0_5", "pct_5_up", "tumour_covered_pct", "tumour_plus_shell_covered_pct",
    "residual_ml", "residual_direction", "registration", "organ_dice", "organ_msd_mm", "report_dir",
]


def read_cases(csv_path: Path) -> list[dict[str, str]]:
    csv_path = Path(csv_path)
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", source=csv_path) from None
    if not rows:
        raise InputError("no cases (empty CSV or header only)", source=csv_path)
    missing = [c for c in REQUIRED if c not in rows[0]]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", source=csv_path, field=missing[0])
    ids = [r["case_id"] for r in rows]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise InputError(f"repeated case_id {', '.join(dup)}", source=csv_path, field="case_id")
    return rows


def _path(base: Path, value: str | None) -> Path | None:
    if value is None or not value.strip():
        return None
    p = Path(value.strip())
    return p if p.is_absolute() else base / p


def run_case(row: dict[str, str], base: Path, out_dir: Path | None, write: Writer | None = None) -> dict[str, Any]:
    """Verify one CSV row (``write`` keeps its report under ``out_dir``); errors become a row with a status."""
    from openir.io import read_image

    from .pipeline import VerifyOptions, verify
    from .structures import read_structures

    cid = row.get("case_id", "").strip() or "case"
    out: dict[str, Any] = dict.fromkeys(OUTPUT_COLUMNS, "")
    out["case_id"] = cid
    try:
        pre_ip, post_ip = _path(base, row.get("pre_image")), _path(base, row.get("post_image"))
        pre_img = read_image(pre_ip) if pre_ip else None
        post_img = read_image(post_ip) if post_ip else None
        pre_l = read_structures(_path(base, row["pre_labels"]), pre_img)  # type: ignore[arg-type]
        post_p = _path(base, row.get("post_labels"))
        post_l = read_structures(post_p, post_img) if post_p else None
        stages = tuple(s for s in (row.get("stages") or "rigid").split("+") if s.strip())
        yes = ("1", "true", "yes")
        opts = VerifyOptions(
            tumour=(row.get("tumour") or "tumour").strip(), zone=(row.get("zone") or "ablation_zone").strip(),
            organ=(row.get("organ") or "").strip() or None, stages=stages,
            same_frame=(row.get("same_frame") or "").strip().lower() in yes,
            capsule_rule=(row.get("capsule_rule") or "").strip().lower() in yes, case_id=cid,
        )
        v = verify(pre_l, post_l, pre_image=pre_img, post_image=post_img, options=opts)
        if out_dir is not None and write is not None:
            write(v, out_dir / cid)
        r = v.report
        pct = list(r.surface_pct_by_class.values())
        usable = r.registration is None or r.registration.usable_for_verdict
        out.update(
            status="ok" if usable else "no verdict", message="" if usable else r.verdict.explanation,
            min_margin_mm=r.min_margin_mm, margin_resolved=r.margin_resolved,
            min_margin_estimate_mm=r.min_margin_estimate_mm, min_margin_conservative_mm=r.min_margin_conservative_mm,
            min_margin_voxel_mm=r.min_margin_voxel_mm,
            margin_class=r.verdict.margin_class, complete=r.verdict.complete, verdict=r.verdict.term,
            pct_below_0=pct[0], pct_0_5=pct[1], pct_5_up=pct[2], tumour_covered_pct=r.tumour_covered_pct,
            tumour_plus_shell_covered_pct=r.tumour_plus_shell_covered_pct,
            residual_ml=r.residual.volume_ml, residual_direction=r.residual.direction or "",
            report_dir=str(out_dir / cid) if out_dir and write else "",
        )
        if r.registration is not None:
            out.update(registration=r.registration.method, organ_dice=r.registration.organ_dice,
                       organ_msd_mm=r.registration.organ_mean_surface_distance_mm)
    except RegistrationRefused as exc:
        out.update(status="refused", message=str(exc))
    except OpenIRError as exc:
        out.update(status="error", message=str(exc))
    except Exception as exc:  # a broken case must not stop the batch; keep its reason
        out.update(status="error", message=f"{exc.__class__.__name__}: {exc}")
    return out


def run_batch(
    csv_path: Path,
    results_csv: Path,
    *,
    out_dir: Path | None = None,
    write: Writer | None = None,
    scheduler: str | None = None,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """Verify every case of ``csv_path`` and write ``results_csv``; returns the rows.

    Local by default (Dask threads, ``workers``); with ``scheduler`` (e.g. 'tcp://host:8786') the
    cases run on that Dask cluster. ``out_dir`` keeps each case's report folder, written by ``write``
    (``openir.report.write_verification``; verify itself draws nothing).
    """
    import dask

    csv_path = Path(csv_path)
    rows = read_cases(csv_path)
    base = csv_path.parent
    tasks = [dask.delayed(run_case)(row, base, out_dir, write) for row in rows]
    if scheduler:
        from distributed import Client

        with Client(scheduler) as client:
            futures = client.compute(tasks)
            results = client.gather(futures)
    else:
        results = list(dask.compute(*tasks, scheduler="threads", num_workers=max(1, workers)))
    if progress:
        progress(len(results), len(rows))
    results_csv = Path(results_csv)
    results_csv.parent.mkdir(parents=True, exist_ok=True)
    tmp = results_csv.with_suffix(results_csv.suffix + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=OUTPUT_COLUMNS)
        w.writeheader()
        w.writerows(results)
    tmp.replace(results_csv)  # no half-written results file
    return results
