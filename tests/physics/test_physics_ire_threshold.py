"""IRE lethal field against the pulse train: E = E_ref (n tau / (n_ref tau_ref))^-alpha, alpha from
the two liver thresholds in data/arrays.yaml; on voxels too coarse to resolve the electrode E_ref is
the grid's calibrated value. Truth: the formula evaluated here from the YAML values read with the
yaml library (not through the model classes)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

import openir.physics as phys
from openir.physics import IREOptions, ire_array_zone, lethal_field_v_cm, load_array_data

YAML = Path(phys.__file__).with_name("data") / "arrays.yaml"


def _expected(n: float, tau_us: float, voxel_mm: float | None = None) -> float:
    raw = yaml.safe_load(YAML.read_text(encoding="utf-8"))["ire"]
    liver, pr = raw["tissues"]["liver"], raw["lethal_field_protocol"]
    e_ref, e_irr = liver["lethal_field_v_cm"]["value"], liver["irreversible_field_v_cm"]["value"]
    ref = pr["reference_pulses"]["value"] * pr["reference_pulse_length_us"]["value"]
    anchor = pr["anchor_pulses"]["value"] * pr["anchor_pulse_length_us"]["value"]
    alpha = math.log(e_irr / e_ref) / math.log(ref / anchor)
    grid = liver["grid_lethal_field_v_cm"]
    if voxel_mm is not None and voxel_mm > grid["resolved_voxel_mm"]:
        e_ref = grid["values"][voxel_mm]
    return e_ref * (n * tau_us / ref) ** -alpha


@pytest.mark.parametrize(("n", "tau"), [(90, 100.0), (8, 100.0), (70, 70.0), (50, 50.0), (100, 100.0), (1, 100.0)])
def test_lethal_field_follows_the_formula_with_the_yaml_constants(n, tau):
    liver = load_array_data().ire.tissue("liver")
    assert lethal_field_v_cm(liver, n, tau) == pytest.approx(_expected(n, tau), rel=1e-12)


def test_anchors_and_monotone_in_pulse_number():
    liver = load_array_data().ire.tissue("liver")
    assert lethal_field_v_cm(liver, 90, 100.0) == pytest.approx(liver.lethal_field_v_cm.value, rel=1e-12)
    assert lethal_field_v_cm(liver, 8, 100.0) == pytest.approx(liver.irreversible_field_v_cm.value, rel=1e-12)
    fields = [lethal_field_v_cm(liver, n, 100.0) for n in (10, 30, 50, 70, 90)]
    assert all(a > b for a, b in zip(fields, fields[1:], strict=False))  # more pulses kill at a lower field
    assert lethal_field_v_cm(liver, 70, 70.0) == pytest.approx(lethal_field_v_cm(liver, 49, 100.0), rel=1e-12)


def test_bad_pulse_train_is_refused():
    from openir.core.errors import InputError

    with pytest.raises(InputError):
        lethal_field_v_cm(load_array_data().ire.tissue("liver"), 0, 100.0)


def test_array_zone_uses_the_train_threshold():
    opts = IREOptions(spacing_mm=2.0, margin_mm=15.0, heating=False, nonlinear=False, pulses=70, pulse_length_us=70.0)
    z = ire_array_zone([(-5.0, 0, 0), (5.0, 0, 0)], [(0, 0, 1)], exposure_mm=6.0, voltage_v=1500.0, options=opts)
    assert z.threshold == pytest.approx(_expected(70, 70.0, voxel_mm=2.0), rel=1e-12)
    assert "70 x 70 us" in z.threshold_source and "2 mm voxels" in z.threshold_source


@pytest.mark.parametrize("voxel", [0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
def test_each_calibrated_voxel_size_takes_its_own_reference(voxel):
    liver = load_array_data().ire.tissue("liver")
    assert lethal_field_v_cm(liver, 90, 100.0, voxel_mm=voxel) == pytest.approx(
        _expected(90, 100.0, voxel_mm=voxel if voxel > 0.5 else None), rel=1e-12)


def test_uncalibrated_voxel_size_and_anisotropic_grid_are_refused():
    """A threshold borrowed from another grid errs by up to 50 % in zone depth: refused, with the sizes."""
    from openir.core.errors import InputError
    from openir.core.volume import Grid, make_affine

    liver = load_array_data().ire.tissue("liver")
    with pytest.raises(InputError, match=r"calibrated for voxels <= 0.5 mm .* not 0.6 mm"):
        lethal_field_v_cm(liver, 90, 100.0, voxel_mm=0.6)
    grid = Grid((20, 30, 40), make_affine([1.0, 1.0, 2.0], (-20.0, -15.0, -20.0)))
    with pytest.raises(InputError, match="cubic voxels"):
        ire_array_zone([(-5.0, 0, 0), (5.0, 0, 0)], [(0, 0, 1)], grid=grid, exposure_mm=6.0, voltage_v=1500.0,
                       options=IREOptions(heating=False, nonlinear=False))


def test_zone_depth_does_not_depend_on_the_voxel_size():
    """Ben-David's 1.5 cm / 2250 V pair: 17 mm deep on resolved (0.5 mm) and coarse (1, 2 mm) voxels alike
    (before the grid calibration a 0.5 mm simulation with the 1 mm threshold made it 26.5 mm deep)."""
    depths = {}
    for h in (0.5, 1.0, 2.0):
        z = ire_array_zone([(-7.5, 0, 0), (7.5, 0, 0)], [(0, 0, 1)], exposure_mm=20.0, voltage_v=2250.0,
                           options=IREOptions(spacing_mm=h, margin_mm=20.0, heating=False, electrode_radius_mm=0.635))
        depths[h] = z.dims.across2_mm
    assert all(abs(d - 17.0) <= 2.0 for d in depths.values()), depths


def test_diverging_pair_voltage_is_set_from_its_widest_spacing():
    t = math.radians(8.0)
    dirs = [(math.sin(t), 0.0, math.cos(t)), (-math.sin(t), 0.0, math.cos(t))]  # backs move apart
    opts = IREOptions(spacing_mm=2.0, margin_mm=15.0, heating=False, nonlinear=False)
    z = ire_array_zone([(-7.5, 0, 0), (7.5, 0, 0)], dirs, exposure_mm=10.0, field_v_per_cm=1500.0, options=opts)
    back = 15.0 + 2 * 10.0 * math.sin(t)  # 17.78 mm
    assert z.pairs[0][2] == pytest.approx(150.0 * back, rel=1e-9)
