"""`openir info PATH`: what a file or folder holds, as a `FileInfo` and a Rich table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from openir.core.errors import InputError
from openir.core.labels import LabelMap
from openir.core.volume import Grid, Volume

from .dicom_files import describe_kinds, read_dataset, read_folder
from .dispatch import detect
from .models import FileInfo, LabelInfo, SeriesInfo


def _grid_fields(grid: Grid) -> dict:
    return {
        "shape_ijk": grid.shape_ijk,
        "spacing_mm": tuple(round(float(v), 6) for v in grid.spacing),
        "origin_lps_mm": tuple(round(float(v), 4) for v in grid.origin),
        "direction": np.round(grid.direction, 6).tolist(),
        "grid": grid.describe(),
    }


def _volume_fields(vol: Volume) -> dict:
    arr = vol.array
    out = _grid_fields(vol.grid) | {"dtype": str(arr.dtype)}
    if arr.size:
        out["value_range"] = (float(arr.min()), float(arr.max()))
    return out


def _label_infos(lm: LabelMap) -> list[LabelInfo]:
    counts = np.bincount(lm.array.ravel().astype(np.int64)) if lm.array.size and lm.array.min() >= 0 else None
    vv = lm.grid.voxel_volume_mm3 / 1000.0
    out = []
    values = sorted(set(lm.labels) | ({int(v) for v in np.flatnonzero(counts)} - {0} if counts is not None else set()))
    for v in values:
        n = int(counts[v]) if counts is not None and v < len(counts) else int(np.count_nonzero(lm.array == v))
        out.append(LabelInfo(value=v, name=lm.labels.get(v, f"label_{v}"), voxels=n, volume_ml=round(n * vv, 3)))
    return out


def _looks_like_labels(vol: Volume) -> bool:
    a = vol.array
    if not np.issubdtype(a.dtype, np.integer) or a.size == 0 or a.min() < 0:
        return False
    return int(a.max()) < 1000 and len(np.unique(a[:: max(1, a.shape[0] // 8)])) <= 256


def describe(path: str | Path) -> FileInfo:
    """Describe an image, label map, DICOM object or folder, or markups file.

    >>> import tempfile
    >>> from openir.core import make_affine
    >>> from openir.io import write_nifti
    >>> ct = Volume(np.full((2, 3, 4), -1000, np.int16), make_affine((0.7, 0.7, 2.5)))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     info = describe(write_nifti(ct, Path(d) / "ct.nii.gz"))
    >>> info.kind, info.shape_ijk, info.spacing_mm, info.value_range
    ('nifti', (4, 3, 2), (0.7, 0.7, 2.5), (-1000.0, -1000.0))
    """
    from .dicom_series import group_series, read_dicom_series
    from .markups import read_markups
    from .nifti import read_nifti
    from .nrrd_io import read_nrrd

    p = Path(path)
    kind = detect(p)
    if kind in ("nifti", "nrrd"):
        vol = read_nifti(p) if kind == "nifti" else read_nrrd(p)
        info = FileInfo(path=str(p), kind=kind, **_volume_fields(vol))
        if _looks_like_labels(vol):
            from .dispatch import read_labels

            lm = read_labels(p)
            info.labels = _label_infos(lm)
            info.notes.append("integer image with few values: shown as a label map")
        return info
    if kind == "markups":
        points, lines = read_markups(p)
        return FileInfo(
            path=str(p), kind="markups",
            markups=[f"point list {ps.name!r}: {len(ps.points)} points" for ps in points]
            + [f"line {ln.name!r}: {np.linalg.norm(np.subtract(ln.end, ln.start)):.1f} mm" for ln in lines],
        )
    if kind == "dicom-folder":
        datasets, skipped = read_folder(p)
        groups = group_series(datasets)
        series = [
            SeriesInfo(series_instance_uid=u, modality=str(g[0][1].get("Modality", "")), files=len(g),
                       description=str(g[0][1].get("SeriesDescription", "")))
            for u, g in groups.items()
        ]
        notes = [f"{len(skipped)} non-DICOM file(s) skipped"] if skipped else []
        others = [d for _, d in datasets if all(d is not x for g in groups.values() for _, x in g)]
        if others:
            notes.append(f"non-image objects: {describe_kinds(others)}")
        if len(groups) == 1:
            vol = read_dicom_series(p)
            return FileInfo(path=str(p), kind="dicom-series", modality=vol.meta["modality"],
                            transfer_syntax=_ts_name(vol.meta["transfer_syntax"]), units=vol.meta["units"],
                            series=series, notes=notes, **_volume_fields(vol))
        if not groups and not datasets:
            raise InputError("no DICOM files found", source=p)
        return FileInfo(path=str(p), kind="dicom-folder", series=series, notes=notes)
    # a single DICOM file
    ds = read_dataset(p, stop_before_pixels=True)
    modality = str(ds.get("Modality", ""))
    ts = _ts_name(str(ds.file_meta.get("TransferSyntaxUID", ""))) if hasattr(ds, "file_meta") else ""
    if modality == "SEG":
        from .dicom_seg import read_dicom_seg_masks

        masks, grid, meta = read_dicom_seg_masks(p)
        vv = grid.voxel_volume_mm3 / 1000.0
        labels = [LabelInfo(value=meta["segment_numbers"][n], name=n, voxels=int(m.sum()),
                            volume_ml=round(float(m.sum()) * vv, 3)) for n, m in masks.items()]
        return FileInfo(path=str(p), kind="dicom-seg", modality="SEG", transfer_syntax=ts, labels=labels,
                        notes=[f"segmentation type {meta['segmentation_type']}; grid spanned by its frames"],
                        **_grid_fields(grid))
    if modality == "RTSTRUCT":
        from .rtstruct import roi_names

        return FileInfo(path=str(p), kind="rtstruct", modality=modality, transfer_syntax=ts,
                        rois=list(roi_names(p).values()),
                        notes=["contours: rasterise with read_rtstruct(path, reference)"])
    from .dicom_files import _NON_IMAGE_MODALITIES

    if modality not in _NON_IMAGE_MODALITIES and "Rows" in ds and "ImagePositionPatient" in ds:
        vol = read_dicom_series(p)
        return FileInfo(path=str(p), kind="dicom-series", modality=modality, transfer_syntax=ts,
                        units=vol.meta["units"], **_volume_fields(vol))
    return FileInfo(path=str(p), kind="dicom-other", modality=modality, transfer_syntax=ts,
                    notes=[f"SOP class {getattr(ds.get('SOPClassUID'), 'name', ds.get('SOPClassUID', '?'))}"])


def _ts_name(uid: str) -> str:
    from pydicom.uid import UID

    return f"{UID(uid).name}" if uid else ""


def render_info(info: FileInfo, console: Console) -> None:
    """Print a `FileInfo` as Rich tables."""
    t = Table(title=str(info.path), show_header=False, title_justify="left")
    t.add_column("field", style="bold")
    t.add_column("value")
    t.add_row("kind", info.kind)
    for key, label in (("modality", "modality"), ("transfer_syntax", "transfer syntax"), ("grid", "grid"),
                       ("dtype", "data type"), ("units", "units")):
        if getattr(info, key):
            t.add_row(label, str(getattr(info, key)))
    if info.value_range:
        t.add_row("value range", f"{info.value_range[0]:g} .. {info.value_range[1]:g}")
    if info.direction is not None and not np.allclose(info.direction, np.eye(3)):
        t.add_row("direction", str(info.direction))
    for m in info.markups:
        t.add_row("markup", m)
    for r in info.rois:
        t.add_row("ROI", r)
    for n in info.notes:
        t.add_row("note", n)
    console.print(t)
    if info.series:
        st = Table(title="series")
        for c in ("series instance UID", "modality", "files", "description"):
            st.add_column(c)
        for s in info.series:
            st.add_row(s.series_instance_uid, s.modality, str(s.files), s.description)
        console.print(st)
    if info.labels:
        lt = Table(title="labels")
        for c in ("value", "name", "voxels", "volume (ml)"):
            lt.add_column(c, justify="right" if c != "name" else "left")
        for lab in info.labels:
            lt.add_row(str(lab.value), lab.name, str(lab.voxels), f"{lab.volume_ml:.2f}")
        console.print(lt)
