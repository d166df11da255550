"""Throughput of `openir verify batch` on a local 2-worker Dask cluster against a plain serial loop.

The baseline is what an engineer would write without Dask: ``for row in rows: run_case(row, ...)``
in one process. Both runs verify the same synthetic cases; the bench checks the rows are identical.

    python benchmarks/batch_bench.py [--cases 8] [--size 80]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from openir.core import Grid, LabelMap, make_affine
from openir.io import write_nifti
from openir.verify.batch import BatchOptions, read_cases, run_batch, run_case


def _ball(shape, spacing, centre, r):
    k, j, i = np.indices(shape)
    z, y, x = k * spacing[2], j * spacing[1], i * spacing[0]
    return (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= r * r


def make_cases(folder: Path, n: int, size_mm: float) -> Path:
    spacing = (1.0, 1.0, 1.0)
    shape = (int(size_mm),) * 3
    grid = Grid(shape, make_affine(spacing, (0.0, 0.0, 0.0)))
    c = np.array([size_mm / 2] * 3)
    lines = ["case_id,pre_labels,post_labels,same_frame"]
    rng = np.random.default_rng(0)
    for n_i in range(n):
        shift = rng.normal(0, 1.5, 3)
        organ = _ball(shape, spacing, c, size_mm * 0.45)
        pre = LabelMap.from_masks({"liver": organ, "tumour_1": _ball(shape, spacing, c, 10.0)}, grid)
        post = LabelMap.from_masks({"liver": organ, "ablation_zone": _ball(shape, spacing, c + shift, 15.0)}, grid)
        for name, lm in ((f"pre{n_i}", pre), (f"post{n_i}", post)):
            write_nifti(lm, folder / f"{name}.nii.gz")
            (folder / f"{name}.labels.json").write_text(json.dumps({str(k): v for k, v in lm.labels.items()}))
        lines.append(f"c{n_i},pre{n_i}.nii.gz,post{n_i}.nii.gz,1")
    (folder / "cases.csv").write_text("\n".join(lines) + "\n")
    return folder / "cases.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--size", type=float, default=120.0, help="cube edge in mm at 1 mm voxels")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        csv_path = make_cases(folder, args.cases, args.size)
        print(f"{args.cases} cases, {int(args.size)}^3 voxels each; load average {os.getloadavg()[0]:.1f}")
        rows = read_cases(csv_path)
        t0 = time.perf_counter()
        serial = [run_case(r, folder, None) for r in rows]
        t_serial = time.perf_counter() - t0
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()  # what starting the workers costs alone (processes, imports, JIT)
        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cl, Client(cl) as c:
            c.run(lambda: __import__("openir.verify.pipeline"))
        t_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        dask_rows = run_batch(csv_path, folder / "res.csv", BatchOptions(workers=2, processes=True))
        t_dask = time.perf_counter() - t0
        same = [str(a) for a in serial] == [str(b) for b in dask_rows]
        ok = sum(r["status"] == "ok" for r in dask_rows)
        print(f"serial loop (baseline):           {t_serial:6.1f} s  {args.cases / t_serial:.2f} cases/s")
        print(f"local cluster, 2 worker processes: {t_dask:6.1f} s  {args.cases / t_dask:.2f} cases/s "
              f"(incl. cluster start ~{t_start:.1f} s)  ratio {t_serial / t_dask:.2f}x; {ok}/{args.cases} ok; rows identical: {same}")


if __name__ == "__main__":
    main()
