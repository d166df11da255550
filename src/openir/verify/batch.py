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
naming those cases. A case that kills its worker (e.g. out of memory) is retried once on another
worker, then once more alone (so that a case lost only because another crashed its worker is
verified), then reported by its ``case_id`` as 'error'; the other cases complete.

Every path is made absolute on the client before a case leaves it, so workers must see the files
at the same absolute paths (a shared file system on a cluster). The results CSV is rewritten
atomically after every finished case, so an interrupt loses nothing that finished, and
``resume=True`` skips the cases already in it with a final status ('ok', 'no verdict', 'refused').
"""

from __future__ import annotations

import csv
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


FINAL_STATUSES = ("ok", "no verdict", "refused")
"""Statuses a rerun would not change; ``resume`` skips these cases and reruns the errors."""

Runner = Callable[[dict[str, str], Path, "Path | None", "Writer | None"], dict[str, Any]]


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs: where, how wide, and what to keep.

    ``processes`` (local runs only): worker processes, so a case that exhausts memory or crashes
    kills only its own worker; ``False`` runs threads in this process (faster start, no isolation).
    ``progress(done, total, row)`` is called after each finished case.
    """

    out_dir: Path | None = None
    write: Writer | None = None
    scheduler: str | None = None
    workers: int = 2
    processes: bool = True
    resume: bool = False
    progress: Callable[[int, int, dict[str, Any]], None] | None = None
    runner: Runner | None = None  # None: run_case (a replacement must be importable on the workers)


def _failed_row(cid: str, message: str) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(OUTPUT_COLUMNS, "")
    out.update(case_id=cid, status="error", message=message)
    return out


def _write_rows(path: Path, order: list[str], results: dict[str, dict[str, Any]]) -> None:
    """Rewrite the results CSV atomically (temporary file, fsync, rename): never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=OUTPUT_COLUMNS)
        w.writeheader()
        w.writerows(results[c] for c in order if c in results)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def _finished(path: Path, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Rows of an earlier run of this batch with a final status (cases not in the CSV are dropped)."""
    if not path.exists():
        return {}
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or "case_id" not in reader.fieldnames or "status" not in reader.fieldnames:
                raise InputError("not a results file of `openir verify batch` (no case_id/status columns)",
                                 source=path)
            rows = list(reader)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the results to resume ({exc})", source=path) from None
    return {r["case_id"]: {c: r.get(c, "") for c in OUTPUT_COLUMNS} for r in rows
            if r.get("case_id") in ids and r.get("status") in FINAL_STATUSES}


@contextmanager
def _client(opts: BatchOptions) -> Iterator[Any]:
    """A Dask client on the given scheduler, or on a local cluster of ``workers`` processes/threads."""
    import dask
    from distributed import Client, LocalCluster

    if opts.scheduler:
        with Client(opts.scheduler) as client:
            yield client
        return
    # a case that kills two workers is reported, not retried until the batch dies
    # workers hold no queued cases (saturation 1.0), so a crash takes no bystander with it
    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.scheduler.worker-saturation": 1.0}), LocalCluster(
        n_workers=max(1, opts.workers), threads_per_worker=1, processes=opts.processes,
        dashboard_address=None, silence_logs=logging.ERROR,
    ) as cluster, Client(cluster) as client:
        yield client


def run_batch(
    csv_path: Path, results_csv: Path, options: BatchOptions | None = None, **kwargs: Any,
) -> list[dict[str, Any]]:
    """Verify every case of ``csv_path`` into ``results_csv``; returns the rows in CSV order.

    Local by default (a Dask cluster of ``workers`` processes); with ``scheduler`` (e.g.
    'tcp://host:8786') the cases run on that cluster. ``out_dir`` keeps each case's report folder,
    written by ``write`` (``openir.report.write_verification``; verify itself draws nothing).
    ``kwargs`` are the fields of :class:`BatchOptions` when ``options`` is not given.
    """
    from distributed import as_completed

    opts = options or BatchOptions(**kwargs)
    csv_path = Path(csv_path).resolve()
    rows = read_cases(csv_path)
    base = csv_path.parent
    results_csv = Path(results_csv).resolve()
    out_dir = Path(opts.out_dir).resolve() if opts.out_dir is not None else None
    order = [r["case_id"] for r in rows]
    results = _finished(results_csv, set(order)) if opts.resume else {}
    todo = [r for r in rows if r["case_id"] not in results]
    if not todo:
        return [results[c] for c in order]
    with _client(opts) as client:
        run_id = uuid.uuid4().hex[:8]
        futures = {
            client.submit(opts.runner or run_case, row, base, out_dir, opts.write, key=f"verify-{row['case_id']}-{run_id}",
                          pure=False): row["case_id"]
            for row in todo
        }
        rows = {r["case_id"]: r for r in todo}
        killed: list[str] = []
        done = 0

        def finish(cid: str, res: dict[str, Any]) -> None:
            nonlocal done
            done += 1
            results[cid] = res
            _write_rows(results_csv, order, results)
            if opts.progress:
                opts.progress(done, len(todo), res)

        for fut in as_completed(futures):
            cid = futures[fut]
            try:
                finish(cid, fut.result())
            except Exception as exc:  # the case, not the batch: KilledWorker, lost worker, unpicklable result
                if exc.__class__.__name__ == "KilledWorker":
                    killed.append(cid)  # maybe only a bystander of another case's crash: try again alone
                else:
                    finish(cid, _failed_row(cid, f"{exc.__class__.__name__}: {exc}"))
        for cid in killed:  # one at a time, so a case that kills workers cannot take another one with it
            fut = client.submit(opts.runner or run_case, rows[cid], base, out_dir, opts.write,
                                key=f"verify-{cid}-{run_id}-alone", pure=False)
            try:
                finish(cid, fut.result())
            except Exception as exc:
                why = "its worker died each time it was verified (most often out of memory); " \
                    if exc.__class__.__name__ == "KilledWorker" else ""
                finish(cid, _failed_row(cid, f"{why}{exc.__class__.__name__}: {exc}"))
    return [results[c] for c in order if c in results]
