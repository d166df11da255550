"""NRRD <-> `Volume`, including 3D Slicer ``.seg.nrrd`` label maps with segment names.

pynrrd is asked for C-ordered ``[k, j, i]`` data, which is the file's memory order: no transpose.
Space "left-posterior-superior" is native; "right-anterior-superior" is flipped to LPS on read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nrrd
import numpy as np

from openir.core.errors import InputError
from openir.core.labels import LabelMap
from openir.core.volume import Volume

from .label_names import LabelNames, load_label_names

_LPS = {"left-posterior-superior", "lps"}
_RAS = {"right-anterior-superior", "ras"}
_SUFFIXES = (".nrrd", ".nhdr")

# a fixed palette so written segments get distinct colours in Slicer (RGB 0..1)
_PALETTE = [
    (0.50, 0.68, 0.50), (0.95, 0.84, 0.57), (0.69, 0.48, 0.39), (0.44, 0.72, 0.82),
    (0.85, 0.40, 0.33), (0.86, 0.96, 0.48), (0.56, 0.35, 0.56), (0.98, 0.61, 0.20),
]


def _check_suffix(p: Path) -> None:
    if not p.name.endswith(_SUFFIXES):
        raise InputError("expected a .nrrd or .nhdr file", source=p)


def _read(path: str | Path) -> tuple[Path, np.ndarray, dict[str, Any]]:
    p = Path(path)
    _check_suffix(p)
    if not p.is_file():
        raise InputError("file not found", source=p)
    try:
        data, header = nrrd.read(str(p), index_order="C")
    except Exception as exc:
        raise InputError(f"not a readable NRRD file ({exc.__class__.__name__}: {exc})", source=p) from exc
    if data.ndim == 4 and data.shape[0] == 1:
        data = data[0]
    if data.ndim != 3:
        raise InputError(
            f"expected a 3-D image, got {data.ndim}-D shape {data.shape} "
            "(multi-layer .seg.nrrd with overlapping segments is not supported)",
            source=p,
        )
    return p, data, header


def _affine(p: Path, header: dict[str, Any]) -> np.ndarray:
    space = str(header.get("space", "left-posterior-superior")).lower()
    dirs = header.get("space directions")
    if dirs is None:
        spacing = header.get("spacings")
        if spacing is None:
            raise InputError("no 'space directions' or 'spacings': voxel size unknown", source=p, field="space directions")
        dirs = np.diag(np.asarray(spacing, dtype=float))
    dirs = np.asarray(dirs, dtype=float)
    if dirs.shape == (4, 3):  # a leading 'list' axis (single-layer seg.nrrd) has a none direction
        dirs = dirs[1:]
    if dirs.shape != (3, 3) or not np.all(np.isfinite(dirs)):
        raise InputError(f"'space directions' must be three 3-vectors, got {dirs.tolist()}", source=p, field="space directions")
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    aff = np.eye(4)
    aff[:3, :3] = dirs.T  # rows in the header are axis vectors; columns in the affine
    aff[:3, 3] = origin
    if space in _RAS:
        aff = np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff
    elif space not in _LPS:
        raise InputError(f"unsupported space {space!r}; expected LPS or RAS", source=p, field="space")
    return aff


def _segment_names(header: dict[str, Any]) -> dict[int, str]:
    """Slicer ``SegmentN_Name`` / ``SegmentN_LabelValue`` pairs (layer 0 only)."""
    out: dict[int, str] = {}
    n = 0
    while f"Segment{n}_Name" in header:
        value = int(header.get(f"Segment{n}_LabelValue", n + 1))
        out[value] = str(header[f"Segment{n}_Name"])
        n += 1
    return out


def read_nrrd(path: str | Path) -> Volume:
    """Read a 3-D NRRD image into an LPS `Volume`."""
    p, data, header = _read(path)
    return Volume(data, _affine(p, header), {"source": str(p), "format": "nrrd"})


def read_nrrd_labels(path: str | Path, names: str | Path | LabelNames | None = None) -> LabelMap:
    """Read an integer NRRD (or Slicer .seg.nrrd) label map; segment names from the header or ``names``."""
    p, data, header = _read(path)
    if not np.issubdtype(data.dtype, np.integer):
        raise InputError(f"label image must be integer, got {data.dtype}", source=p)
    labels = load_label_names(names) or _segment_names(header)
    if len({n.lower() for n in labels.values()}) != len(labels):
        # repeated names in a header: keep them apart rather than fail
        labels = {v: f"{n}_{v}" for v, n in labels.items()}
    return LabelMap(data, _affine(p, header), {"source": str(p), "format": "nrrd"}, labels)


def write_nrrd(volume: Volume, path: str | Path, *, compress: bool = True) -> Path:
    """Write ``volume`` as NRRD in LPS; a `LabelMap` also gets Slicer segment fields (names, colours)."""
    p = Path(path)
    _check_suffix(p)
    arr = volume.array.astype(np.uint8) if volume.array.dtype == bool else volume.array
    header: dict[str, Any] = {
        "space": "left-posterior-superior",
        "space directions": volume.affine[:3, :3].T.copy(),
        "space origin": volume.affine[:3, 3].copy(),
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip" if compress else "raw",
    }
    if isinstance(volume, LabelMap):
        for n, (value, name) in enumerate(sorted(volume.labels.items())):
            m = volume.array == value
            if m.any():
                idx = [np.flatnonzero(m.any(axis=ax)) for ax in ((0, 1), (0, 2), (1, 2))]  # i, j, k
                extent = " ".join(f"{int(a[0])} {int(a[-1])}" for a in idx)
            else:
                extent = "0 -1 0 -1 0 -1"
            r, g, b = _PALETTE[n % len(_PALETTE)]
            header.update({
                f"Segment{n}_ID": f"Segment_{value}",
                f"Segment{n}_Name": name,
                f"Segment{n}_NameAutoGenerated": "0",
                f"Segment{n}_LabelValue": str(value),
                f"Segment{n}_Layer": "0",
                f"Segment{n}_Color": f"{r} {g} {b}",
                f"Segment{n}_ColorAutoGenerated": "0",
                f"Segment{n}_Extent": extent,
                f"Segment{n}_Tags": "|",
            })
        header["Segmentation_MasterRepresentation"] = "Binary labelmap"
        header["Segmentation_ContainedRepresentationNames"] = "Binary labelmap|"
        header["Segmentation_ReferenceImageExtentOffset"] = "0 0 0"
    p.parent.mkdir(parents=True, exist_ok=True)
    nrrd.write(str(p), np.ascontiguousarray(arr), header, index_order="C")
    return p
