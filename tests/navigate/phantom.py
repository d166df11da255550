"""A small analytic patient for the navigation tests: a body cylinder with skin, a liver, a tumour,
a portal vein running cranio-caudally 12 mm to the patient's left of the planned path, an aorta,
and a plan (one probe, entry anterior, straight back to the tumour centre)."""

from __future__ import annotations

import numpy as np

from openir.core import LabelMap, Volume, make_affine
from openir.plan.models import CaseRef, Plan, PlannedProbe, Provenance

SPACING = 2.0
ORIGIN = (-80.0, -80.0, -60.0)
SHAPE = (60, 80, 80)  # k, j, i
TUMOUR_C = np.array([0.0, 10.0, 0.0])
ENTRY = np.array([0.0, -64.0, 0.0])
VESSEL_X = 12.0  # portal vein axis at x = 12 mm (patient's left), y = 10 mm, along z, radius 3 mm


def phantom() -> tuple[Volume, LabelMap]:
    aff = make_affine((SPACING,) * 3, ORIGIN)
    k, j, i = np.indices(SHAPE)
    x = ORIGIN[0] + i * SPACING
    y = ORIGIN[1] + j * SPACING
    z = ORIGIN[2] + k * SPACING
    r_body = np.hypot(x, y)
    lab = np.zeros(SHAPE, np.uint8)
    body = r_body <= 66
    lab[body] = 2  # fat
    lab[body & (r_body > 63)] = 1  # skin
    liver = ((x - 5) ** 2 / 50 ** 2 + (y - 5) ** 2 / 40 ** 2 + z ** 2 / 45 ** 2) <= 1
    lab[liver] = 3
    lab[np.hypot(x - VESSEL_X, y - 10.0) <= 3.0] = 4
    lab[np.hypot(x + 30, y - 35) <= 7.0] = 5  # aorta
    lab[((x - TUMOUR_C[0]) ** 2 + (y - TUMOUR_C[1]) ** 2 + (z - TUMOUR_C[2]) ** 2) <= 8 ** 2] = 6
    labels = LabelMap(lab, aff, labels={1: "skin", 2: "fat", 3: "liver", 4: "portal_vein", 5: "aorta", 6: "tumour_1"})
    hu = np.array([-1000, 20, -100, 60, 180, 200, 40], np.int16)
    ct = Volume(hu[lab] + (np.arange(lab.size).reshape(SHAPE) % 7).astype(np.int16), aff)
    return ct, labels


def plan(ct_path: str = "", labels_path: str = "") -> Plan:
    u = (TUMOUR_C - ENTRY) / np.linalg.norm(TUMOUR_C - ENTRY)
    probe = PlannedProbe(order=1, group=1, tumour="tumour_1", device="test_needle", modality="mwa", setting="test",
                         entry_lps=tuple(ENTRY), tip_lps=tuple(TUMOUR_C), direction_lps=tuple(u),
                         zone_centre_lps=tuple(TUMOUR_C - 5 * u), zone_index=0, track=1,
                         path_length_mm=float(np.linalg.norm(TUMOUR_C - ENTRY)), tip_offset_mm=5.0,
                         tip_offset_source="test")
    return Plan(case=CaseRef(case_id="nav-test", ct=ct_path or None, labels=labels_path or None), probes=[probe],
                provenance=Provenance(catalogue_version="t", rules_version="t", margins_version="t",
                                      policy_version="t"))
