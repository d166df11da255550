"""RT Dose on the CT series: same study and frame of reference, grid and doses round-trip."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from openir.core import Volume
from openir.core.errors import InputError
from openir.core.volume import make_affine
from openir.io import read_dicom_series, write_dicom_series, write_rt_dose


def test_rt_dose_references_the_ct_series(tmp_path):
    ct = Volume(np.zeros((6, 8, 10), np.int16), make_affine((0.8, 0.8, 2.0), origin=(-4.0, -3.2, 10.0)))
    write_dicom_series(ct, tmp_path / "ct")
    back = read_dicom_series(tmp_path / "ct")
    dose = Volume(np.random.default_rng(0).uniform(0, 300, (3, 4, 5)).astype(np.float32),
                  make_affine((0.8, 0.8, 2.0), origin=(-2.4, -1.6, 12.0)))
    p = write_rt_dose(dose, tmp_path / "rtdose.dcm", ct_meta=back.meta)
    ds = pydicom.dcmread(p)
    assert ds.FrameOfReferenceUID == back.meta["frame_of_reference_uid"]
    assert ds.StudyInstanceUID == back.meta["study_instance_uid"]
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == back.meta["series_instance_uid"]
    assert [float(v) for v in ds.GridFrameOffsetVector] == [0.0, 2.0, 4.0]
    np.testing.assert_allclose(ds.pixel_array * float(ds.DoseGridScaling), dose.array, rtol=1e-6, atol=1e-6)
    assert not (tmp_path / "rtdose.dcm.part").exists()
    with pytest.raises(InputError, match="NaN"):
        write_rt_dose(dose.with_array(np.full(dose.shape, np.nan, np.float32)), tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()
