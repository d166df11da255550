"""Thermal dose of a heating curve: CEM43 minutes and Arrhenius damage, per voxel.

    python examples/thermal_dose.py

A voxel held at 43 °C for 10 minutes receives 10 CEM43 minutes by definition; 240 CEM43 minutes is
the usual threshold for coagulation necrosis in liver (see physics/data/tissues.yaml for sources).
"""

from __future__ import annotations

import numpy as np

from openir.physics import arrhenius_damage, cem43


def main() -> None:
    dt_s = 1.0
    t = np.arange(0, 600 + dt_s, dt_s)
    curves = np.stack([
        np.full_like(t, 43.0),                          # 10 min at 43 °C: 10 CEM43 min
        37.0 + 18.0 * (1 - np.exp(-t / 60.0)),          # rises to about 55 °C
        37.0 + 5.0 * (1 - np.exp(-t / 60.0)),           # a warm organ at risk, about 42 °C
    ], axis=-1)                                         # time first, then voxels
    dose = cem43(curves, dt_s)
    damage = arrhenius_damage(curves, dt_s)
    for name, d, omega in zip(("43 °C plateau", "ablation", "organ at risk"), dose, damage, strict=True):
        verdict = "lethal" if d >= 240 else "below the lethal dose"
        print(f"{name:14s} CEM43 {d:10.1f} min  Arrhenius Ω {omega:8.3g}  ({verdict})")


if __name__ == "__main__":
    main()
