"""Issue 2 benchmark: generate a 512x512x300 patient, read it back from NIfTI, crop + resample a 120 mm ROI.

Run: .venv/bin/python benchmarks/io_bench.py [--quick]
Each figure is printed with the ratio to a baseline measured in the same run:
- NIfTI read: openir.io.read_nifti vs nibabel's default get_fdata() (float64) + manual RAS->LPS flip;
- ROI: crop-then-resample (what OpenIR does) vs resample-whole-volume-then-crop.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from openir.core import Grid, Volume, crop, make_affine, resample, world_box
from openir.io import read_nifti, write_nifti
from openir.phantom import TumourSpec, make_abdomen


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="2 mm grid instead of the full 512x512x300")
    args = ap.parse_args()
    spacing = (2.0, 2.0, 2.0) if args.quick else (0.8, 0.8, 1.0)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")

    t_gen, patient = timed(lambda: make_abdomen(seed=1, tumours=(TumourSpec(30.0),), spacing_mm=spacing), repeat=2)
    print(f"generate patient {patient.ct.shape[::-1]} (i,j,k): {t_gen:.2f} s (bar: < 10 s)")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ct.nii"
        write_nifti(patient.ct, path)
        t_read, ct = timed(lambda: read_nifti(path), repeat=3)

        def baseline_read():
            img = nib.load(str(path))
            data = img.get_fdata()  # float64, the default most scripts use
            aff = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine
            return Volume(np.ascontiguousarray(data.transpose(2, 1, 0)), aff)

        t_base, _ = timed(baseline_read, repeat=3)
        mb = path.stat().st_size / 1e6
        print(f"read NIfTI {mb:.0f} MB: {t_read:.3f} s (baseline nibabel get_fdata: {t_base:.3f} s, ratio {t_base / t_read:.1f}x)")

    centre = patient.tumours[0].centre_lps
    target_spacing = 0.5

    def roi_grid(vol: Volume) -> Grid:
        n = int(round(120.0 / target_spacing))
        origin = np.asarray(centre) - 60.0 + target_spacing / 2
        return Grid((n, n, n), make_affine((target_spacing,) * 3, origin))

    def fast():
        box = world_box(ct.grid, centre, 120.0 + 4.0)  # small slack for interpolation at the edge
        sub = crop(ct, box)
        return resample(sub, roi_grid(ct)), resample(crop(patient.labels, box), roi_grid(ct))

    def baseline():
        # resample the whole field of view at 0.5 mm, then cut the ROI out
        full = Grid(
            tuple(int(v) for v in np.round(np.array(ct.shape) * ct.spacing[::-1] / target_spacing)),
            make_affine((target_spacing,) * 3, ct.origin),
        )
        big = resample(ct, full)
        box = world_box(big.grid, centre, 120.0)
        return crop(big, box)

    t_fast, (roi_ct, roi_lab) = timed(fast, repeat=3)
    print(f"crop + resample 120 mm ROI to 0.5 mm ({roi_ct.shape[::-1]} i,j,k; CT linear + labels nearest): {t_fast:.3f} s")
    if args.quick:
        t_base_roi, _ = timed(baseline)
        print(f"  baseline (resample whole volume, then crop; CT only): {t_base_roi:.2f} s, ratio {t_base_roi / t_fast:.1f}x")
    else:
        # the whole-volume baseline at 0.5 mm is 819x819x600 float32 (1.6 GB): time one run
        t_base_roi, _ = timed(baseline)
        print(f"  baseline (resample whole volume, then crop; CT only): {t_base_roi:.2f} s, ratio {t_base_roi / t_fast:.1f}x")


if __name__ == "__main__":
    main()
