"""DICOM Segmentation (SEG) <-> `LabelMap` / named masks, via highdicom.

Reading places every frame by its ImagePositionPatient on a grid: the reference image's grid when
one is given (frames must land on its voxels), otherwise the regular stack the frames themselves
span (slices without frames are empty). FRACTIONAL segments are thresholded at 0.5.

Overlap policy: a `LabelMap` holds one label per voxel, so `read_dicom_seg` raises `InputError` when
segments overlap (naming them) unless ``overlap="later_wins"``; `read_dicom_seg_masks` keeps every
segment as its own mask and never loses a voxel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydicom.dataset import Dataset

from openir.core.errors import GeometryError, InputError
from openir.core.labels import LabelMap
from openir.core.volume import Grid, Volume

from .dicom_files import read_dataset
from .dicom_series import plane_affine, read_dicom_datasets, series_grid, stack_positions

if TYPE_CHECKING:  # highdicom is imported on use: it is slow to import and most callers never need it
    import highdicom as hd

_MAX_FILLED_SLICES = 4096  # a stack spanned by sparse frames larger than this is refused


def _frame_positions(ds: Dataset, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row cosine, column cosine, pixel spacing, positions (n, 3)) of every frame of a SEG."""
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else Dataset()
    frames = ds.get("PerFrameFunctionalGroupsSequence", [])
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if len(frames) != n:
        raise InputError(f"{len(frames)} per-frame items for {n} frames", source=path, field="PerFrameFunctionalGroupsSequence")

    def item(fg: Dataset, seq: str, attr: str):
        for src in (fg, shared):
            if seq in src and attr in src[seq].value[0]:
                return src[seq].value[0].get(attr)
        return None

    iop = item(frames[0], "PlaneOrientationSequence", "ImageOrientationPatient")
    spacing = item(frames[0], "PixelMeasuresSequence", "PixelSpacing")
    if iop is None or spacing is None:
        raise InputError("frames lack orientation or pixel spacing; cannot place them in the patient", source=path)
    pos = []
    for i, fg in enumerate(frames):
        ipp = item(fg, "PlanePositionSequence", "ImagePositionPatient")
        if ipp is None:
            raise InputError(f"frame {i + 1} has no ImagePositionPatient", source=path, field="PlanePositionSequence")
        pos.append([float(v) for v in ipp])
    iop_f = np.array([float(v) for v in iop])
    return iop_f[:3], iop_f[3:], np.array([float(v) for v in spacing]), np.array(pos)


def _load_seg(path: str | Path) -> tuple[Path, hd.seg.Segmentation]:
    import highdicom as hd

    p = Path(path)
    ds = read_dataset(p)
    if str(ds.get("Modality", "")) != "SEG":
        raise InputError(f"not a DICOM SEG (Modality {ds.get('Modality', '?')!r})", source=p, field="Modality")
    try:
        seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
    except Exception as exc:
        raise InputError(f"invalid DICOM SEG ({exc.__class__.__name__}: {exc})", source=p) from exc
    return p, seg


def _own_grid(p: Path, ds: Dataset, row: np.ndarray, col: np.ndarray, spacing: np.ndarray, pos: np.ndarray) -> Grid:
    """The regular stack spanned by the frames' distinct positions (gaps filled with empty slices)."""
    normal = np.cross(row, col)
    d = pos @ normal
    uniq_d, first = np.unique(np.round(d, 3), return_index=True)
    upos = pos[first]
    if len(uniq_d) == 1:
        thick = None
        shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else Dataset()
        if "PixelMeasuresSequence" in shared:
            pm = shared.PixelMeasuresSequence[0]
            thick = pm.get("SpacingBetweenSlices") or pm.get("SliceThickness")
        vec = normal * (float(thick) if thick else 1.0)
        return Grid((1, int(ds.Rows), int(ds.Columns)), plane_affine(row, col, spacing, upos[0], vec))
    steps = np.diff(uniq_d)
    step = float(steps.min())
    multiples = steps / step
    if np.max(np.abs(multiples - np.round(multiples))) > 0.02:
        raise InputError(
            "frames are not on a regular stack (uneven slice gaps); pass the source image as reference",
            source=p,
        )
    nk = int(round((uniq_d[-1] - uniq_d[0]) / step)) + 1
    if nk > _MAX_FILLED_SLICES:
        raise InputError(f"frames span {nk} slices of {step:.3g} mm; pass the source image as reference", source=p)
    if nk == len(uniq_d):
        _, vec = stack_positions(upos, normal, "SEG frames", p)
    else:
        vec = (upos[-1] - upos[0]) / (nk - 1)
    return Grid((nk, int(ds.Rows), int(ds.Columns)), plane_affine(row, col, spacing, upos[0], vec))


def _reference_grid(reference: Volume | Grid | str | Path | Sequence[Dataset]) -> Grid:
    if isinstance(reference, Grid):
        return reference
    if isinstance(reference, Volume):
        return reference.grid
    if isinstance(reference, (str, Path)):
        from .dispatch import read_image

        return read_image(reference).grid
    return series_grid(list(reference))


def read_dicom_seg_masks(
    path: str | Path, reference: Volume | Grid | str | Path | None = None
) -> tuple[dict[str, np.ndarray], Grid, dict]:
    """Every segment of a SEG as a boolean mask ``[k, j, i]`` on one grid.

    Returns ``(masks by segment label, grid, meta)``. ``reference`` (Volume, Grid, or image path)
    fixes the grid; without it the grid is the stack the frames span.
    """
    p, seg = _load_seg(path)
    row, col, spacing, pos = _frame_positions(seg, p)
    grid = _reference_grid(reference) if reference is not None else _own_grid(p, seg, row, col, spacing, pos)
    # in-plane axes of the frames must be those of the grid
    d = grid.direction
    if abs(float(d[:, 0] @ row)) < 0.999 or abs(float(d[:, 1] @ col)) < 0.999 or float(d[:, 0] @ row) < 0 or float(d[:, 1] @ col) < 0:
        raise GeometryError(f"{p}: SEG frame orientation differs from the reference grid")
    if not np.allclose(grid.spacing[:2], [spacing[1], spacing[0]], rtol=1e-3):
        raise GeometryError(
            f"{p}: SEG pixel spacing {spacing.tolist()} differs from the reference grid {grid.spacing[:2].round(4).tolist()}"
        )
    ijk = grid.world_to_index(pos)
    rounded = np.rint(ijk)
    if np.max(np.abs(ijk - rounded)) > 0.05:
        raise GeometryError(f"{p}: SEG frames do not fall on voxels of the reference grid")
    ijk = rounded.astype(int)
    rows, cols = int(seg.Rows), int(seg.Columns)
    nk, nj, ni = grid.shape
    if (ijk[:, 2].min() < 0 or ijk[:, 2].max() >= nk or ijk[:, 0].min() < 0 or ijk[:, 1].min() < 0
            or ijk[:, 0].max() + cols > ni or ijk[:, 1].max() + rows > nj):
        raise GeometryError(f"{p}: SEG frames lie outside the reference grid {grid.describe()}")
    seg_type = str(seg.SegmentationType)
    try:
        pixels = seg.pixel_array
    except Exception as exc:
        raise InputError(f"cannot decode SEG pixel data ({exc.__class__.__name__}: {exc})", source=p) from exc
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    if seg_type == "FRACTIONAL":
        maxv = float(seg.get("MaximumFractionalValue", 255))
        frames = pixels >= 0.5 * maxv
    elif seg_type == "LABELMAP":
        frames = None
    else:
        frames = pixels.astype(bool, copy=False)
    names = {int(s.SegmentNumber): str(s.SegmentLabel) for s in seg.SegmentSequence}
    used = [n for n in names.values()]
    if len({n.lower() for n in used}) != len(used):
        names = {k: f"{v}_{k}" for k, v in names.items()}
    masks = {names[n]: np.zeros(grid.shape, dtype=bool) for n in sorted(names)}
    per_frame = seg.PerFrameFunctionalGroupsSequence
    for f, (i0, j0, k) in enumerate(ijk):
        window = (k, slice(j0, j0 + rows), slice(i0, i0 + cols))
        if frames is None:  # LABELMAP SEG: pixel values are segment numbers
            for number, name in names.items():
                masks[name][window] |= pixels[f] == number
            continue
        number = int(per_frame[f].SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        if number not in names:
            raise InputError(f"frame {f + 1} refers to segment {number}, which is not described", source=p)
        masks[names[number]][window] |= frames[f]
    meta = {
        "source": str(p),
        "modality": "SEG",
        "segmentation_type": seg_type,
        "series_instance_uid": str(seg.SeriesInstanceUID),
        "frame_of_reference_uid": str(seg.get("FrameOfReferenceUID", "")),
        "segment_numbers": {v: k for k, v in names.items()},
        "grid_from": "reference" if reference is not None else "seg frames",
    }
    return masks, grid, meta


def overlapping_pairs(masks: dict[str, np.ndarray]) -> list[tuple[str, str, int]]:
    """(name a, name b, shared voxels) for every overlapping pair of masks."""
    names = list(masks)
    out = []
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            n = int(np.count_nonzero(masks[names[a]] & masks[names[b]]))
            if n:
                out.append((names[a], names[b], n))
    return out


def read_dicom_seg(
    path: str | Path,
    reference: Volume | Grid | str | Path | None = None,
    *,
    overlap: Literal["error", "later_wins"] = "error",
) -> LabelMap:
    """A SEG as a `LabelMap` (label value = segment number, name = segment label).

    Overlapping segments raise `InputError` (use `read_dicom_seg_masks`), or with
    ``overlap="later_wins"`` the higher segment number takes the voxel; the pairs are recorded in
    ``meta["overlaps"]`` either way.
    """
    masks, grid, meta = read_dicom_seg_masks(path, reference)
    pairs = overlapping_pairs(masks) if len(masks) > 1 else []
    if pairs and overlap == "error":
        shown = ", ".join(f"{a!r}/{b!r} ({n} voxels)" for a, b, n in pairs[:5])
        raise InputError(
            f"segments overlap: {shown}; a label map holds one label per voxel - use "
            "read_dicom_seg_masks() or overlap='later_wins'",
            source=path,
        )
    numbers = meta["segment_numbers"]
    dtype = np.uint8 if max(numbers.values(), default=0) < 256 else np.uint16
    arr = np.zeros(grid.shape, dtype=dtype)
    for name in sorted(masks, key=lambda n: numbers[n]):
        arr[masks[name]] = numbers[name]
    meta["overlaps"] = [list(p) for p in pairs]
    return LabelMap(arr, grid.affine.copy(), meta, {v: k for k, v in numbers.items()})


# ---- writing ---------------------------------------------------------------------------------------------
def _property(name: str) -> tuple[hd.sr.CodedConcept, hd.sr.CodedConcept]:
    """Coarse (category, type) codes; the precise meaning is in the segment label."""
    from pydicom.sr.codedict import codes

    lowered = name.lower()
    if lowered.startswith("target") or any(w in lowered for w in ("margin", "ptv", "ctv")):
        return codes.SCT.SpatialAndRelationalConcept, codes.SCT.PlanningTargetVolume
    if any(w in lowered for w in ("ablation", "zone")):
        return codes.SCT.SpatialAndRelationalConcept, codes.SCT.Volume
    if any(w in lowered for w in ("tumour", "tumor", "lesion", "metasta", "gtv")):
        return codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Neoplasm
    return codes.SCT.AnatomicalStructure, codes.SCT.Organ


def write_dicom_seg(
    labels: LabelMap,
    source: str | Path | Sequence[Dataset],
    path: str | Path,
    *,
    series_description: str = "OpenIR segmentation",
    series_number: int = 100,
    manufacturer: str = "OpenIR",
    algorithm_name: str | None = None,
) -> Path:
    """Write a binary DICOM SEG of ``labels`` referencing the source image series.

    ``source`` is the series folder or its data sets; the label map must be on that series' grid
    (resample first otherwise). One segment per label present in ``labels.labels``.
    """
    values = sorted(labels.labels)
    if not values:
        raise InputError("the label map has no named labels to write")
    masks = {labels.labels[v]: labels.array == v for v in values}
    return write_dicom_seg_masks(masks, labels.grid, source, path, series_description=series_description,
                                 series_number=series_number, manufacturer=manufacturer,
                                 algorithm_name=algorithm_name)


def write_dicom_seg_masks(
    masks: dict[str, np.ndarray],
    grid: Grid,
    source: str | Path | Sequence[Dataset],
    path: str | Path,
    *,
    series_description: str = "OpenIR segmentation",
    series_number: int = 100,
    manufacturer: str = "OpenIR",
    algorithm_name: str | None = None,
) -> Path:
    """Write named, possibly overlapping masks (on the source series' grid) as a binary DICOM SEG;
    `read_dicom_seg_masks` reads them back unchanged."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    datasets = read_dicom_datasets(source) if isinstance(source, (str, Path)) else list(source)
    if not datasets:
        raise InputError("no source images given for the SEG")
    if not masks:
        raise InputError("no segments to write")
    src_grid = series_grid(datasets)
    if not src_grid.same_as(grid, tol_mm=1e-2):
        raise GeometryError(
            f"label map grid ({grid.describe()}) differs from the source series "
            f"({src_grid.describe()}); resample the labels onto the source image first"
        )
    # source images sorted by position; the mask array's k follows the same order
    items = sorted(datasets, key=lambda ds: float(np.dot([float(v) for v in ds.ImagePositionPatient], src_grid.direction[:, 2])))
    names = list(masks)
    pixel = np.stack([np.asarray(masks[n], bool) for n in names], axis=-1)
    if len(names) == 1:
        pixel = pixel[..., 0]
    algo_type = hd.seg.SegmentAlgorithmTypeValues.MANUAL
    algo = None
    if algorithm_name:
        algo_type = hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC
        algo = hd.AlgorithmIdentificationSequence(name=algorithm_name, version="1", family=codes.cid7162.ArtificialIntelligence)
    descriptions = []
    for n, name in enumerate(names, start=1):
        category, kind = _property(name)
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=n,
                segment_label=name[:64],
                segmented_property_category=category,
                segmented_property_type=kind,
                algorithm_type=algo_type,
                algorithm_identification=algo,
            )
        )
    try:
        seg = hd.seg.Segmentation(
            source_images=items,
            pixel_array=pixel,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=manufacturer,
            manufacturer_model_name="OpenIR",
            software_versions="openir",
            device_serial_number="0",
            series_description=series_description[:64],
            omit_empty_frames=False,
        )
    except Exception as exc:
        raise InputError(f"cannot build DICOM SEG ({exc.__class__.__name__}: {exc})") from exc
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out)
    return out
