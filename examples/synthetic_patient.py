"""Generate a synthetic abdomen CT with one liver tumour and save it for 3D Slicer or ITK-SNAP.

    python examples/synthetic_patient.py [OUT_FOLDER]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from openir.io import write_nifti
from openir.phantom import TumourSpec, make_abdomen


def main(out: Path) -> None:
    # 2 mm voxels over a 24 cm field keep this to a few seconds; the default is 0.8 x 0.8 x 1 mm
    patient = make_abdomen(seed=3, tumours=(TumourSpec(diameter_mm=25.0),), spacing_mm=(2.0, 2.0, 2.0),
                           fov_mm=(240.0, 240.0, 160.0))
    out.mkdir(parents=True, exist_ok=True)
    write_nifti(patient.ct, out / "ct.nii.gz")
    write_nifti(patient.labels, out / "labels.nii.gz")
    for t in patient.tumours:
        print(f"{t.name}: {t.volume_ml:.1f} mL at LPS {tuple(round(c, 1) for c in t.centre_lps)} mm")
    print(f"labels: {', '.join(sorted(patient.labels.labels.values()))}")
    print(f"written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp()))
