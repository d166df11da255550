"""RT Structure Set contours -> `LabelMap` on a given grid.

Each closed planar contour is rasterised on the grid slice it lies in (voxel centres inside the
polygon, `skimage.draw.polygon`); several contours of one ROI on one slice are combined by XOR,
which is how structure sets encode holes. ROIs with only points or open contours have no volume
and are skipped (listed in ``meta["skipped_rois"]``), unless asked for by name, which is an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from skimage.draw import polygon as draw_polygon

from openir.core.errors import GeometryError, InputError, UnknownLabelError
from openir.core.labels import LabelMap, normalise_label_name
from openir.core.volume import Grid, Volume

from .dicom_files import read_dataset

_PLANE_TOL = 0.1  # contour points may deviate this many slice steps from their plane


def roi_names(path: str | Path) -> dict[int, str]:
    """ROI number -> name of a structure set."""
    p = Path(path)
    ds = read_dataset(p)
    return _rois(ds, p)


def _rois(ds, p: Path) -> dict[int, str]:
    if str(ds.get("Modality", "")) != "RTSTRUCT" or "StructureSetROISequence" not in ds:
        raise InputError(f"not an RT Structure Set (Modality {ds.get('Modality', '?')!r})", source=p, field="Modality")
    return {int(r.ROINumber): str(r.get("ROIName", f"roi_{r.ROINumber}")) for r in ds.StructureSetROISequence}


def _rasterise(contours: list[np.ndarray], grid: Grid, name: str, p: Path) -> np.ndarray:
    mask = np.zeros(grid.shape, dtype=bool)
    nk, nj, ni = grid.shape
    for pts in contours:
        idx = grid.world_to_index(pts)  # (n, 3) in i, j, k
        k_all = idx[:, 2]
        k = int(np.rint(np.mean(k_all)))
        if np.ptp(k_all) > 2 * _PLANE_TOL + 1e-9:
            raise GeometryError(f"{p}: a contour of ROI {name!r} is not in a slice plane of the grid")
        if k < 0 or k >= nk:
            continue
        rr, cc = draw_polygon(idx[:, 1], idx[:, 0], shape=(nj, ni))
        plane = np.zeros((nj, ni), dtype=bool)
        plane[rr, cc] = True
        mask[k] ^= plane
    return mask


def read_rtstruct(
    path: str | Path,
    reference: Volume | Grid,
    names: Sequence[str] | None = None,
) -> LabelMap:
    """Rasterise the ROIs of an RTSTRUCT onto the ``reference`` grid, one label per ROI.

    ``names`` picks ROIs (case/space-insensitive); an unknown name raises `UnknownLabelError`.
    Overlapping ROIs: the later ROI (higher number) takes the voxel; ``meta["overlaps"]`` lists them.
    """
    from .dicom_seg import overlapping_pairs

    p = Path(path)
    grid = reference.grid if isinstance(reference, Volume) else reference
    ds = read_dataset(p)
    rois = _rois(ds, p)
    by_norm = {normalise_label_name(n): num for num, n in rois.items()}
    if names is not None:
        wanted = []
        for n in names:
            key = normalise_label_name(n)
            if key not in by_norm:
                raise UnknownLabelError(n, list(rois.values()))
            wanted.append(by_norm[key])
    else:
        wanted = sorted(rois)
    contours: dict[int, list[np.ndarray]] = {num: [] for num in rois}
    for rc in ds.get("ROIContourSequence", []):
        num = int(rc.ReferencedROINumber)
        for c in rc.get("ContourSequence", []):
            if str(c.get("ContourGeometricType", "")) != "CLOSED_PLANAR":
                continue
            data = np.asarray([float(v) for v in c.get("ContourData", [])], dtype=float)
            if data.size < 9 or data.size % 3:
                raise InputError(f"ROI {rois.get(num, num)!r}: ContourData is not a list of >= 3 points", source=p, field="ContourData")
            contours.setdefault(num, []).append(data.reshape(-1, 3))
    masks: dict[str, np.ndarray] = {}
    values: dict[str, int] = {}
    skipped = []
    for num in wanted:
        name = rois[num]
        if not contours.get(num):
            if names is not None:
                raise InputError(f"ROI {name!r} has no closed planar contours (points or lines only)", source=p)
            skipped.append(name)
            continue
        masks[name] = _rasterise(contours[num], grid, name, p)
        values[name] = num
    dtype = np.uint8 if max(values.values(), default=0) < 256 else np.uint16
    arr = np.zeros(grid.shape, dtype=dtype)
    for name in sorted(masks, key=lambda n: values[n]):
        arr[masks[name]] = values[name]
    meta = {
        "source": str(p),
        "modality": "RTSTRUCT",
        "skipped_rois": skipped,
        "overlaps": [list(t) for t in overlapping_pairs(masks)],
        "frame_of_reference_uid": str(ds.ReferencedFrameOfReferenceSequence[0].FrameOfReferenceUID)
        if "ReferencedFrameOfReferenceSequence" in ds else "",
    }
    return LabelMap(arr, grid.affine.copy(), meta, {v: n for n, v in values.items()})
