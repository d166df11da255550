"""Vendor phase scaling and header reading on the real Siemens 3 T field-map phase images."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pydicom
import pytest

from openir.core.errors import InputError
from openir.monitor import (
    group_mr_files,
    phase_difference,
    phase_for_temperature,
    phase_to_radians,
    read_mr_volume,
    temperature_change,
)
from openir.testing import need


@pytest.fixture(scope="module")
def siemens(shared_data):
    root = shared_data / "siemens-phase"
    need((root / "3_gre_field_magph").is_dir(), f"{root} missing")
    return root


def test_siemens_phase_scaling_and_header(siemens):
    vol = read_mr_volume(sorted((siemens / "3_gre_field_magph").glob("*.dcm")))
    assert vol.meta["kind"] == "P" and vol.meta["vendor"] == "siemens"
    assert vol.shape[1:] == (64, 64)
    a = vol.array
    assert a.min() >= -math.pi - 1e-6 and a.max() <= math.pi + 1e-6
    assert a.min() < -3.0 and a.max() > 3.0  # the whole range is used: not left in raw units
    assert vol.meta["b0_t"] == pytest.approx(3.0)
    assert vol.meta["te_ms"] == pytest.approx(7.65)


def test_siemens_echo_times_from_magnitude(siemens):
    groups = group_mr_files(sorted((siemens / "2_gre_field_magph").glob("*.dcm")))
    tes = {}
    for (_, _, kind, echo), files in groups.items():
        vol = read_mr_volume(files)
        assert kind == "M" and vol.meta["b0_t"] == pytest.approx(3.0)
        tes[echo] = vol.meta["te_ms"]
    assert tes == {1: pytest.approx(5.19), 2: pytest.approx(7.65)}


def test_known_ramp_recovered_as_temperature(siemens, tmp_path):
    """Add the phase of a known temperature ramp to the real phase, store it the Siemens way, reload."""
    src = sorted((siemens / "3_gre_field_magph").glob("*.dcm"))[:6]
    base = read_mr_volume(src)
    te, b0 = base.meta["te_ms"], base.meta["b0_t"]
    ni = base.shape[2]
    d_t = np.broadcast_to(np.linspace(0.0, 30.0, ni, dtype=np.float32), base.shape)  # 0..30 °C along i
    heated = np.angle(np.exp(1j * (base.array + phase_for_temperature(d_t, b0, te))))
    out = []
    for k, ds_path in enumerate(base.meta["files"]):
        ds = pydicom.dcmread(ds_path)
        stored = np.clip(np.rint((heated[k] * 4096 / math.pi + 4096) / 2), 0, 4095).astype(np.uint16)
        ds.PixelData = stored.tobytes()
        dst = tmp_path / f"heated_{k:02d}.dcm"
        ds.save_as(dst)
        out.append(dst)
    hot = read_mr_volume(out)
    dphi = phase_difference(np.exp(1j * hot.array), np.exp(1j * base.array))
    est = temperature_change(dphi, b0, te)
    # quantisation of the stored phase is 2 pi / 4096 rad: ~0.03 °C here
    assert np.abs(est - d_t).max() < 0.1
    assert est[..., -1].mean() == pytest.approx(30.0, abs=0.05)


def test_vendor_conventions():
    assert phase_to_radians(np.array([-4096.0, 0.0, 4094.0]), "siemens") == pytest.approx([-math.pi, 0, math.pi * 4094 / 4096])
    # Siemens without a rescale: stored 0..4095 centred on 2048
    assert phase_to_radians(np.array([0.0, 2048.0]), "siemens", stored_unsigned_4096=True) == pytest.approx([-math.pi, 0])
    assert phase_to_radians(np.array([3142.0]), "ge")[0] == pytest.approx(math.pi, abs=1e-6)
    assert phase_to_radians(np.array([1.0]), "philips")[0] == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(InputError, match="vendor"):
        phase_to_radians(np.zeros(2), "acme")


def test_missing_echo_time_is_a_clear_error(siemens, tmp_path):
    f = sorted((siemens / "3_gre_field_magph").glob("*.dcm"))[0]
    dst = tmp_path / "x.dcm"
    shutil.copy(f, dst)
    ds = pydicom.dcmread(dst)
    del ds.EchoTime
    ds.save_as(dst)
    with pytest.raises(InputError, match="EchoTime"):
        read_mr_volume([dst])
