"""The whole chain on a synthetic heating series against the physics solver's true temperatures."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from openir.monitor import MonitorSession, MonitorStructures, OrganLimit, SessionOptions, add_margin
from openir.monitor.synthetic_series import HeatingSeriesSpec, make_heating_series
from openir.physics import cem43


@pytest.fixture(scope="module")
def series():
    return make_heating_series(HeatingSeriesSpec(seed=3))


def _structures(s, oar_limit=45.0, far_mm=30.0):
    sp = s.grid.spacing
    skji = (sp[2], sp[1], sp[0])
    tgt = add_margin(s.mask("tumour"), s.target_margin_mm, skji)
    far = ndimage.distance_transform_edt(~s.mask("tumour"), sampling=skji) > far_mm
    return MonitorStructures(target=tgt, organs=[OrganLimit("organ_at_risk", s.mask("organ_at_risk"), oar_limit, "test")],
                             reference=s.mask("liver") & far, fat=s.mask("fat"))


def _run(s, far_mm=30.0, **kw):
    sess = MonitorSession(s.grid, te_ms=s.te_ms, b0_t=s.b0_t, structures=_structures(s, far_mm=far_mm),
                          options=SessionOptions(points={"tip": s.tip_lps}, **kw))
    for f in range(s.n_baselines):
        sess.add_baseline(s.magnitude[f], s.phase[f], s.times_s[f])
    sq, n, results = 0.0, 0, []
    for i, f in enumerate(range(s.n_baselines, len(s.times_s))):
        r = sess.process(s.magnitude[f], s.phase[f], s.times_s[f])
        heated = (s.true_temperature_c[i] > 40.0) & r.valid
        sq += float(np.sum((r.temperature_c[heated] - s.true_temperature_c[i][heated]) ** 2))
        n += int(heated.sum())
        results.append(r)
    return sess, results, (sq / n) ** 0.5


def test_temperature_rmse_and_lethal_zone(series):
    s = series
    assert s.meta["peak_temperature_c"] > 70  # heating wraps the phase (one cycle is ~12 °C here)
    sess, results, rmse = _run(s)
    assert rmse < 1.0
    hist = np.concatenate([np.full((1, *s.grid.shape), 37.0), s.true_temperature_c])
    true_lethal = cem43(hist, s.meta["frame_period_s"]) >= 240.0
    est = results[-1].lethal
    assert true_lethal.sum() > 50
    # within one voxel: each zone lies inside the other grown by one voxel
    assert not (est & ~ndimage.binary_dilation(true_lethal)).any()
    assert not (true_lethal & ~ndimage.binary_dilation(est)).any()
    # measured uncertainty matches the noise model (sqrt(2)/(SNR k) with SNR 30 in liver)
    assert 0.3 < results[-1].summary.median_sigma_c < 0.8


def test_alerts_and_time_to_stop(series):
    sess, results, _ = _run(series)
    kinds = [e.kind for e in sess.events]
    assert "target_covered" in kinds and kinds.count("target_covered") == 1
    covered = next(e for e in sess.events if e.kind == "target_covered")
    assert results[covered.frame].summary.target_coverage >= 1.0
    assert results[covered.frame - 1].summary.target_coverage < 1.0
    assert "limit_exceeded" in kinds  # the organ at risk 11 mm from the tumour passes 45 °C
    curve = sess.curves["tip"]
    assert max(curve.temperature_c) > 70 and curve.cem43_min[-1] > 240


def test_without_drift_correction_error_grows():
    s = make_heating_series(HeatingSeriesSpec(shape=(4, 40, 40), drift_hz_per_min=20.0, breathing_amplitude_mm=0.0,
                                              heat_s=40, cool_s=0, seed=1))
    _, _, rmse_corrected = _run(s, far_mm=18.0, drift_order=1)
    _, _, rmse_raw = _run(s, far_mm=18.0, drift_order=None)
    assert rmse_corrected < 1.0
    assert rmse_raw > 3.0  # 20 Hz/min of drift over ~50 s is several °C of false heating


def test_no_drift_correction_on_a_drift_free_series_is_accurate():
    """drift_order=None must not read drift tables at all (regression: out-of-bounds reads gave garbage)."""
    s = make_heating_series(HeatingSeriesSpec(shape=(4, 40, 40), drift_hz_per_min=0.0, breathing_amplitude_mm=0.0,
                                              heat_s=40, cool_s=0, seed=2))
    _, results, rmse = _run(s, far_mm=18.0, drift_order=None)
    assert all(np.isfinite(r.temperature_c[r.valid]).all() for r in results)
    assert rmse < 1.0
