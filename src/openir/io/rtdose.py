"""DICOM RT Dose (multi-frame dose grid) written on the frame of reference of a CT series.

The dose volume keeps its own grid (usually a box around the target); the RT Dose carries the CT's
Study and Frame of Reference UIDs (from the CT Volume's ``meta`` when it was read from DICOM), so
a treatment-planning system or 3D Slicer overlays it on that CT. Doses are stored as uint32 with
DoseGridScaling (Gy per unit), frames equally spaced along k (GridFrameOffsetVector).

>>> import tempfile, numpy as np, pydicom
>>> from openir.core.volume import Volume, make_affine
>>> dose = Volume(np.linspace(0, 150, 24, dtype=np.float32).reshape(2, 3, 4), make_affine((2.0, 2.0, 3.0)))
>>> p = write_rt_dose(dose, tempfile.mkdtemp() + "/rtdose.dcm", ct_meta={"study_instance_uid": "1.2.3"})
>>> ds = pydicom.dcmread(p)
>>> ds.Modality, ds.DoseUnits, ds.StudyInstanceUID, round(float(ds.pixel_array.max() * ds.DoseGridScaling), 3)
('RTDOSE', 'GY', '1.2.3', 150.0)
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from openir.core.errors import InputError
from openir.core.volume import Volume

RT_DOSE_STORAGE = "1.2.840.10008.5.1.4.1.1.481.2"


def _ds(v: float) -> str:
    s = f"{v:.10g}"
    return s if len(s) <= 16 else f"{v:.6e}"


def write_rt_dose(dose_gy: Volume, path: str | Path, *, ct_meta: dict[str, Any] | None = None,
                  summation: str = "PLAN", comment: str = "OpenIR TG-43U1 permanent-implant total dose") -> Path:
    """Write ``dose_gy`` (Gy) as one RT Dose file; ``ct_meta`` is the CT Volume's meta (UIDs).

    Written to a temporary name and renamed: a crash leaves no half-written file.
    """
    arr = np.asarray(dose_gy.array, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputError("cannot write RT Dose: the dose holds NaN or infinite values")
    if arr.min() < 0:
        raise InputError("cannot write RT Dose: negative dose")
    d = dose_gy.direction
    if abs(float(d[:, 0] @ d[:, 1])) > 1e-4 or abs(float(np.cross(d[:, 0], d[:, 1]) @ d[:, 2])) < 1e-3:
        raise InputError("cannot write RT Dose: the dose grid axes are not orthogonal")
    meta_in = ct_meta or {}
    vmax = float(arr.max())
    scale = vmax / (2**32 - 1) if vmax > 0 else 1.0
    stored = np.rint(arr / scale).astype(np.uint32)
    now = _dt.datetime.now()
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = RT_DOSE_STORAGE
    sop = generate_uid()
    fm.MediaStorageSOPInstanceUID = sop
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = fm
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = RT_DOSE_STORAGE, sop
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
    ds.Modality = "RTDOSE"
    ds.Manufacturer = "OpenIR"
    ds.ReferringPhysicianName = ""
    ds.AccessionNumber = ""
    ds.SeriesDescription = "OpenIR seed dose"
    ds.PatientName = str(meta_in.get("patient_name", "ANON^"))
    ds.PatientID = str(meta_in.get("patient_id", "ANON"))
    ds.PatientBirthDate, ds.PatientSex = "", ""
    ds.StudyInstanceUID = str(meta_in.get("study_instance_uid") or generate_uid())
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 900, 1
    ds.FrameOfReferenceUID = str(meta_in.get("frame_of_reference_uid") or generate_uid())
    ds.PositionReferenceIndicator = ""
    sp = dose_gy.spacing
    ds.ImagePositionPatient = [_ds(float(v)) for v in dose_gy.index_to_world([0, 0, 0])]
    ds.ImageOrientationPatient = [_ds(float(v)) for v in np.concatenate([d[:, 0], d[:, 1]])]
    ds.PixelSpacing = [_ds(float(sp[1])), _ds(float(sp[0]))]
    ds.SliceThickness = _ds(float(sp[2]))
    nk = arr.shape[0]
    ds.NumberOfFrames = nk
    ds.FrameIncrementPointer = pydicom.tag.Tag(0x3004, 0x000C)
    ds.GridFrameOffsetVector = [_ds(float(k * sp[2])) for k in range(nk)]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns = arr.shape[1], arr.shape[2]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 32, 32, 31, 0
    ds.DoseUnits, ds.DoseType, ds.DoseSummationType = "GY", "PHYSICAL", summation
    ds.DoseGridScaling = _ds(scale)
    ds.DoseComment = comment[:64]
    series = meta_in.get("series_instance_uid")
    if series:
        ref = Dataset()
        ref.SeriesInstanceUID = str(series)
        ds.ReferencedSeriesSequence = [ref]
    ds.PixelData = np.ascontiguousarray(stored).tobytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
    tmp.replace(path)
    return path
