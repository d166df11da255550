"""Register a tracker to the CT with six skin fiducials and read the errors a navigation system reports.

Six fiducials at +-60 mm on the three axes, touched with a pointer whose localisation error (FLE) is
1 mm RMS. At the fiducials' centroid the expected target registration error is FLE / sqrt(N)
= 1 / sqrt(6) = 0.41 mm (Fitzpatrick 1998), which a reader can check by hand; farther away it grows.
The registration is accepted or refused against openir/navigate/data/navigation.yaml.
"""

from __future__ import annotations

import numpy as np

from openir.navigate import Fiducials, expected_tre, random_rigid, register_paired_points
from openir.navigate.registration import apply

rng = np.random.default_rng(0)
fiducials = np.array([[60, 0, 0], [-60, 0, 0], [0, 60, 0], [0, -60, 0], [0, 0, 60], [0, 0, -60]], float)
tracker_from_image = random_rigid(rng)  # where the tracker happens to stand
touched = apply(tracker_from_image, fiducials + rng.normal(scale=1 / np.sqrt(3), size=fiducials.shape))

target = (0.0, 0.0, 0.0)
reg = register_paired_points(Fiducials(fiducials, touched, fle_mm=1.0), target)
print(f"expected TRE at the centroid for FLE 1 mm: {expected_tre(fiducials, target, 1.0):.2f} mm")
print(f"this registration: FRE {reg.fre_mm:.2f} mm, expected TRE at the target {reg.expected_tre_mm:.2f} mm, "
      f"{'accepted' if reg.accepted else 'refused: ' + '; '.join(reg.reasons)}")
for far in ((100, 0, 0), (0, 150, 100)):
    print(f"expected TRE at {far}: {expected_tre(fiducials, far, 1.0):.2f} mm")
