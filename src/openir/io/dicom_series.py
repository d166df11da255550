"""DICOM CT/MR image series <-> `Volume`.

Slices are ordered by their position along the slice normal (never by file name or instance
number), the slice step comes from the positions (SliceThickness is not spacing), and every file
is decoded exactly once, straight into the output array. Anything that would make the volume
wrong - mixed series, gaps, uneven spacing, several orientations or echoes - stops with an error
that says which files and what to do.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from openir.core.errors import InputError
from openir.core.volume import Grid, Volume

from .dicom_files import describe_kinds, is_image, read_folder

_POS_TOL_MM = 0.01  # positions and orientation cosines are stored with few decimals
_SPACING_REL_TOL = 0.01  # 1 % unevenness in the slice step is tolerated (rounding in headers)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


# ---- geometry of single slices --------------------------------------------------------------------
def _floats(ds: Dataset, keyword: str, n: int, path: Path) -> np.ndarray:
    value = ds.get(keyword)
    if value is None:
        raise InputError(f"missing {keyword}; cannot place the slice in the patient", source=path, field=keyword)
    try:
        arr = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{keyword} is not numeric: {value!r}", source=path, field=keyword) from exc
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise InputError(f"{keyword} must hold {n} numbers, got {value!r}", source=path, field=keyword)
    return arr


def slice_geometry(ds: Dataset, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row cosine, column cosine, position) of one slice; row cosine = direction of increasing i."""
    iop = _floats(ds, "ImageOrientationPatient", 6, path)
    ipp = _floats(ds, "ImagePositionPatient", 3, path)
    return iop[:3], iop[3:], ipp


def plane_affine(row: np.ndarray, col: np.ndarray, pixel_spacing: Sequence[float], origin: np.ndarray,
                 slice_vector: np.ndarray) -> np.ndarray:
    """Index (i, j, k) -> LPS affine of a stack of planes; PixelSpacing is (row step, column step)."""
    aff = np.eye(4)
    aff[:3, 0] = row * float(pixel_spacing[1])
    aff[:3, 1] = col * float(pixel_spacing[0])
    aff[:3, 2] = slice_vector
    aff[:3, 3] = origin
    return aff


def stack_positions(positions: np.ndarray, normal: np.ndarray, what: str, source: object) -> tuple[np.ndarray, np.ndarray]:
    """Sort slice positions along ``normal``; return (order, slice step vector) or raise on gaps.

    One slice gets a step along the normal of length 1 (the caller overrides it from the header).
    """
    d = positions @ normal
    order = np.argsort(d, kind="stable")
    ds_sorted = d[order]
    if len(d) == 1:
        return order, normal.copy()
    steps = np.diff(ds_sorted)
    if np.any(steps < _POS_TOL_MM):
        dup = ds_sorted[1:][steps < _POS_TOL_MM]
        raise InputError(
            f"{what}: {int(np.sum(steps < _POS_TOL_MM))} slice(s) share a position with another "
            f"(e.g. at {dup[0]:.2f} mm along the normal); the series probably holds several echoes, "
            "phases or acquisitions - split it before loading",
            source=source,
        )
    step = float(np.median(steps))
    uneven = np.abs(steps - step) > max(_POS_TOL_MM, _SPACING_REL_TOL * step)
    if np.any(uneven):
        bad = int(np.flatnonzero(uneven)[0])
        gap = steps[bad]
        ratio = gap / step
        kind = (
            f"missing slice(s): a gap of {gap:.3g} mm ({ratio:.1f} x the step of {step:.3g} mm)"
            if abs(ratio - round(ratio)) < 0.05 and ratio > 1.5
            else f"non-uniform slice spacing: {gap:.3g} mm where the step is {step:.3g} mm"
        )
        raise InputError(
            f"{what}: {kind} between positions {ds_sorted[bad]:.2f} and {ds_sorted[bad + 1]:.2f} mm",
            source=source,
        )
    p = positions[order]
    vec = (p[-1] - p[0]) / (len(p) - 1)
    # all positions must lie on the line origin + m * vec (no in-plane jumps)
    resid = p - (p[0] + np.outer(np.arange(len(p)), vec))
    if np.max(np.abs(resid)) > max(0.05, 0.05 * step):
        raise InputError(f"{what}: slice positions do not lie on one line (in-plane shifts)", source=source)
    return order, vec


# ---- series discovery --------------------------------------------------------------------------------
def group_series(datasets: list[tuple[Path, Dataset]]) -> dict[str, list[tuple[Path, Dataset]]]:
    """Image data sets grouped by SeriesInstanceUID (insertion order kept)."""
    out: dict[str, list[tuple[Path, Dataset]]] = {}
    for p, ds in datasets:
        if is_image(ds):
            out.setdefault(str(ds.get("SeriesInstanceUID", "")), []).append((p, ds))
    return out


def series_summary(uid: str, items: list[tuple[Path, Dataset]]) -> str:
    ds = items[0][1]
    desc = str(ds.get("SeriesDescription", "")).strip()
    return f"{uid} ({ds.get('Modality', '?')}, {len(items)} files{', ' + repr(desc) if desc else ''})"


def _select_series(
    source: str | Path | Sequence[str | Path], series_uid: str | None
) -> tuple[str, list[tuple[Path, Dataset]]]:
    datasets, skipped = read_folder(source)
    src = source if isinstance(source, (str, Path)) else Path(list(source)[0]).parent
    groups = group_series(datasets)
    if not groups:
        if datasets:
            raise InputError(
                f"no image series here, only non-image DICOM objects: {describe_kinds(d for _, d in datasets)}",
                source=src,
            )
        example = f"; e.g. {skipped[0][0].name}: {skipped[0][1]}" if skipped else ""
        raise InputError(f"no DICOM files found ({len(skipped)} other files){example}", source=src)
    if series_uid is not None:
        if series_uid not in groups:
            listing = "; ".join(series_summary(u, g) for u, g in groups.items())
            raise InputError(f"series {series_uid} not found; series here: {listing}", source=src)
        return series_uid, groups[series_uid]
    if len(groups) > 1:
        listing = "; ".join(series_summary(u, g) for u, g in groups.items())
        raise InputError(
            f"mixed series: {len(groups)} image series found, pick one with series_uid: {listing}",
            source=src,
        )
    uid = next(iter(groups))
    return uid, groups[uid]


def _check_consistent(items: list[tuple[Path, Dataset]], src: object) -> None:
    first_p, first = items[0]
    if int(first.get("NumberOfFrames", 1) or 1) > 1:
        raise InputError(
            "multi-frame (enhanced) images are not supported yet; export as single-frame slices",
            source=first_p,
        )
    if int(first.get("SamplesPerPixel", 1)) != 1:
        raise InputError("colour images are not supported (SamplesPerPixel != 1)", source=first_p)
    for key in ("Rows", "Columns"):
        values = {int(ds.get(key, 0)) for _, ds in items}
        if len(values) > 1:
            raise InputError(f"slices differ in {key}: {sorted(values)}", source=src, field=key)
    iops = np.array([slice_geometry(ds, p)[0].tolist() + slice_geometry(ds, p)[1].tolist() for p, ds in items])
    if np.max(np.abs(iops - iops[0])) > 1e-3:
        raise InputError(
            "slices have different orientations (ImageOrientationPatient); the folder mixes "
            "several stacks (e.g. localiser and axial) - pick one",
            source=src,
            field="ImageOrientationPatient",
        )
    ps = np.array([[float(v) for v in ds.get("PixelSpacing", [0, 0])] for _, ds in items])
    if np.any(ps <= 0):
        raise InputError("missing or zero PixelSpacing", source=src, field="PixelSpacing")
    if np.max(np.abs(ps - ps[0])) > 1e-4:
        raise InputError("slices differ in PixelSpacing", source=src, field="PixelSpacing")


def _sorted_series(items: list[tuple[Path, Dataset]], src: object) -> tuple[list[tuple[Path, Dataset]], np.ndarray]:
    """Check a series and return its slices in order and the index->LPS affine."""
    _check_consistent(items, src)
    p0, ds0 = items[0]
    row, col, _ = slice_geometry(ds0, p0)
    normal = np.cross(row, col)
    positions = np.array([slice_geometry(ds, p)[2] for p, ds in items])
    order, vec = stack_positions(positions, normal, "series", src)
    ordered = [items[i] for i in order]
    if len(ordered) == 1:
        thick = ds0.get("SpacingBetweenSlices") or ds0.get("SliceThickness") or 1.0
        vec = normal * (float(thick) if float(thick) > 0 else 1.0)
    aff = plane_affine(row, col, ds0.PixelSpacing, positions[order[0]], vec)
    return ordered, aff


def read_dicom_datasets(
    folder: str | Path | Sequence[str | Path], series_uid: str | None = None
) -> list[Dataset]:
    """The data sets of one image series, sorted by slice position (pixels not decoded).

    Handy as the source images of a DICOM SEG; the same checks as `read_dicom_series` apply.
    """
    uid, items = _select_series(folder, series_uid)
    ordered, _ = _sorted_series(items, folder if isinstance(folder, (str, Path)) else uid)
    return [ds for _, ds in ordered]


def _rescaled(ds: Dataset, path: Path) -> tuple[np.ndarray, float, float]:
    try:
        arr = ds.pixel_array
    except Exception as exc:
        ts = ds.file_meta.get("TransferSyntaxUID", "?") if hasattr(ds, "file_meta") else "?"
        name = getattr(ts, "name", str(ts))
        raise InputError(
            f"cannot decode pixel data (transfer syntax {name}): {exc.__class__.__name__}: {exc}",
            source=path,
        ) from exc
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return arr, slope, intercept


def _units(ds: Dataset) -> str:
    rt = str(ds.get("RescaleType", "") or "")
    return "" if rt.upper() == "US" else rt  # 'US' means unspecified


def read_dicom_series(folder: str | Path | Sequence[str | Path], series_uid: str | None = None) -> Volume:
    """Read one CT/MR series (folder, single file, or list of files) into a `Volume`.

    Values are rescaled (HU for CT); the array is int16 when the rescaled values are integers that
    fit, float32 otherwise. ``meta`` holds modality, UIDs, units, source, the file list and the
    ``sop_instance_uids`` in slice order. Several series in the folder: pass ``series_uid``.
    """
    src = folder if isinstance(folder, (str, Path)) else None
    uid, items = _select_series(folder, series_uid)
    ordered, aff = _sorted_series(items, src or uid)
    ds0 = ordered[0][1]
    rows, cols = int(ds0.Rows), int(ds0.Columns)
    params = [
        (float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)) for _, ds in ordered
    ]
    integral = all(s == round(s) and i == round(i) for s, i in params)
    # optimistic int16 (CT HU always fits); switch to float32 once if a slice does not fit
    out = np.empty((len(ordered), rows, cols), dtype=np.int16 if integral else np.float32)
    for k, (p, ds) in enumerate(ordered):
        arr, slope, intercept = _rescaled(ds, p)
        if arr.shape != (rows, cols):
            raise InputError(f"pixel data has shape {arr.shape}, expected ({rows}, {cols})", source=p)
        if out.dtype == np.int16:
            if slope == 1.0 and intercept == 0.0 and arr.dtype in (np.int16, np.uint8, np.int8):
                out[k] = arr
            else:
                val = arr.astype(np.int32)
                if slope != 1.0:
                    val *= int(slope)
                if intercept != 0.0:
                    val += int(intercept)
                if val.size and (val.min() < -32768 or val.max() > 32767):
                    out = out.astype(np.float32)
                    out[k] = val
                else:
                    out[k] = val
        else:
            out[k] = arr.astype(np.float32) * np.float32(slope) + np.float32(intercept)
        # release encoded bytes and pydicom's cached decode: each slice is held once, in ``out``
        del ds.PixelData
        ds._pixel_array = None
        del arr
    modality = str(ds0.get("Modality", ""))
    meta = {
        "modality": modality,
        "series_instance_uid": uid,
        "study_instance_uid": str(ds0.get("StudyInstanceUID", "")),
        "frame_of_reference_uid": str(ds0.get("FrameOfReferenceUID", "")),
        "series_description": str(ds0.get("SeriesDescription", "")),
        "transfer_syntax": str(ds0.file_meta.get("TransferSyntaxUID", "")),
        "units": "HU" if modality == "CT" else _units(ds0),
        "source": str(src if src is not None else ordered[0][0].parent),
        "files": [str(p) for p, _ in ordered],
        "sop_instance_uids": [str(ds.SOPInstanceUID) for _, ds in ordered],
    }
    return Volume(out, aff, meta)


# ---- writing --------------------------------------------------------------------------------------------
def _ds_str(v: float) -> str:
    """A DICOM decimal string (max 16 characters)."""
    s = f"{v:.10g}"
    return s if len(s) <= 16 else f"{v:.6e}"


def write_dicom_series(
    volume: Volume,
    folder: str | Path,
    *,
    modality: str = "CT",
    patient_id: str = "ANON",
    patient_name: str = "ANON^",
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_description: str = "OpenIR",
    series_number: int = 1,
) -> list[Path]:
    """Write ``volume`` as a de-identified single-frame CT (or MR) series, one file per slice.

    Integer values that fit int16 are stored as is (slope 1, intercept 0); other values are
    quantised to uint16 with a rescale slope/intercept (lossy, at most half a step off). Files are
    named ``slice_0000.dcm`` ... in k order. Returns the paths.
    """
    modality = modality.upper()
    if modality not in ("CT", "MR"):
        raise InputError(f"can write CT or MR image series, not {modality!r}", field="modality")
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    d = volume.direction
    if abs(float(d[:, 0] @ d[:, 1])) > 1e-4:
        raise InputError("cannot write DICOM: the i and j axes of the volume are not perpendicular")
    if abs(float(np.cross(d[:, 0], d[:, 1]) @ d[:, 2])) < 1e-3:
        raise InputError("cannot write DICOM: the k axis lies in the slice plane")
    arr = volume.array
    finite = np.isfinite(arr) if np.issubdtype(arr.dtype, np.floating) else None
    if finite is not None and not finite.all():
        raise InputError("cannot write DICOM: the volume holds NaN or infinite values")
    vmin, vmax = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    integral = np.issubdtype(arr.dtype, np.integer) or bool(np.all(np.mod(arr, 1) == 0))
    if integral and vmin >= -32768 and vmax <= 32767:
        stored, slope, intercept, signed = arr.astype(np.int16, copy=False), 1.0, 0.0, True
    else:
        slope = (vmax - vmin) / 65535.0 if vmax > vmin else 1.0
        intercept = vmin
        stored = np.rint((arr - vmin) / slope).astype(np.uint16)
        signed = False
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    for_uid = frame_of_reference_uid or generate_uid()
    now = _dt.datetime.now()
    date, time = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    sop_class = CT_IMAGE_STORAGE if modality == "CT" else MR_IMAGE_STORAGE
    sp = volume.spacing
    iop = [_ds_str(float(v)) for v in np.concatenate([d[:, 0], d[:, 1]])]
    paths = []
    for k in range(volume.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop_class
        sop_uid = generate_uid()
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.SOPClassUID, ds.SOPInstanceUID = sop_class, sop_uid
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = date
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = time
        ds.AccessionNumber = ""
        ds.Modality = modality
        ds.Manufacturer = "OpenIR"
        ds.ReferringPhysicianName = ""
        ds.SeriesDescription = series_description
        ds.PatientName, ds.PatientID = patient_name, patient_id
        ds.PatientBirthDate, ds.PatientSex = "", ""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "OpenIR synthetic or de-identified export"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = "1", series_number, k + 1, 1
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = for_uid, ""
        ds.ImagePositionPatient = [_ds_str(float(v)) for v in volume.index_to_world([0, 0, k])]
        ds.ImageOrientationPatient = iop
        ds.PixelSpacing = [_ds_str(float(sp[1])), _ds_str(float(sp[0]))]
        ds.SliceThickness = _ds_str(float(sp[2]))
        ds.SpacingBetweenSlices = _ds_str(float(sp[2]))
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[2]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 1 if signed else 0
        ds.RescaleIntercept, ds.RescaleSlope = _ds_str(intercept), _ds_str(slope)
        if modality == "CT":
            ds.RescaleType = "HU"
            ds.KVP = ""
        else:
            ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "RM", "NONE", ""
            ds.MRAcquisitionType, ds.EchoTime, ds.RepetitionTime = "3D", "", ""
            ds.EchoTrainLength, ds.MagneticFieldStrength = "", ""
        ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
        path = out_dir / f"slice_{k:04d}.dcm"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        paths.append(path)
    return paths


def series_grid(datasets: Sequence[Dataset]) -> Grid:
    """The grid of a sorted single-frame series (e.g. from `read_dicom_datasets`)."""
    items = [(Path(str(getattr(ds, "filename", "") or "<dataset>")), ds) for ds in datasets]
    ordered, aff = _sorted_series(items, "source images")
    ds0 = ordered[0][1]
    return Grid((len(ordered), int(ds0.Rows), int(ds0.Columns)), aff)
