"""NIfTI <-> `Volume`. The only place where RAS (NIfTI) meets LPS (OpenIR): the first two rows
of the affine change sign on the way in and out, and nowhere else.

NIfTI stores voxels x-fastest, i.e. a Fortran-ordered ``[i, j, k]`` array, which is the same memory
as a C-ordered ``[k, j, i]`` array: reading returns that view, never a transposed copy.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from openir.core.errors import InputError
from openir.core.labels import LabelMap
from openir.core.volume import Grid, Volume

from .label_names import LabelNames, load_label_names

_RAS_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def ras_to_lps(affine: np.ndarray) -> np.ndarray:
    """Flip the first two rows: a RAS affine becomes LPS (and back; the flip is its own inverse)."""
    return _RAS_LPS @ np.asarray(affine, dtype=float)


def _check_suffix(p: Path) -> None:
    if not (p.name.endswith(".nii") or p.name.endswith(".nii.gz")):
        raise InputError("expected a .nii or .nii.gz file", source=p)


def _load(path: str | Path) -> tuple[Path, nib.Nifti1Image]:
    p = Path(path)
    _check_suffix(p)
    if not p.is_file():
        raise InputError("file not found", source=p)
    try:
        img = nib.load(p)
    except Exception as exc:
        raise InputError(f"not a readable NIfTI file ({exc.__class__.__name__}: {exc})", source=p) from exc
    if len(img.shape) < 3 or any(s != 1 for s in img.shape[3:]):
        raise InputError(f"expected a 3-D image, got shape {img.shape}", source=p)
    return p, img  # type: ignore[return-value]


def _array(p: Path, img: nib.Nifti1Image, want_float: bool) -> np.ndarray:
    """The voxel array as [k, j, i] with scaling applied, without float64 or needless copies."""
    proxy = img.dataobj
    try:
        slope, inter = proxy.slope, proxy.inter  # type: ignore[attr-defined]
        scaled = not ((slope == 1.0 or np.isnan(slope)) and (inter == 0.0 or np.isnan(inter)))
        raw = np.asanyarray(proxy.get_unscaled()) if hasattr(proxy, "get_unscaled") else np.asanyarray(proxy)
    except Exception as exc:  # truncated gzip, short file
        raise InputError(f"cannot read NIfTI voxel data ({exc.__class__.__name__}: {exc})", source=p) from exc
    raw = raw.reshape(raw.shape[:3], order="F")
    if scaled:
        raw = raw.astype(np.float32) * np.float32(slope) + np.float32(inter)
    elif want_float and not np.issubdtype(raw.dtype, np.floating):
        raw = raw.astype(np.float32)
    return raw.T  # C-ordered [k, j, i] view of the Fortran [i, j, k] array


def read_nifti(path: str | Path) -> Volume:
    """Read a 3-D NIfTI image into an LPS `Volume` (header scaling applied, dtype kept if unscaled)."""
    p, img = _load(path)
    arr = _array(p, img, want_float=False)
    aff = ras_to_lps(img.affine)
    try:
        return Volume(arr, aff, {"source": str(p), "format": "nifti"})
    except Exception as exc:
        raise InputError(f"unusable geometry in header: {exc}", source=p) from exc


def read_nifti_labels(path: str | Path, names: str | Path | LabelNames | None = None) -> LabelMap:
    """Read an integer NIfTI label image; ``names`` (JSON path or mapping) names its values."""
    p, img = _load(path)
    arr = _array(p, img, want_float=False)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.mod(arr, 1) == 0):
            raise InputError(f"label image holds non-integer values (dtype {arr.dtype})", source=p)
        arr = arr.astype(np.int32 if arr.max(initial=0) > 65535 else np.uint16)
    labels = load_label_names(names) or {}
    return LabelMap(arr, ras_to_lps(img.affine), {"source": str(p), "format": "nifti"}, labels)


def write_nifti(volume: Volume, path: str | Path) -> Path:
    """Write ``volume`` as NIfTI-1 (RAS affine in both sform and qform; code 1 = scanner).

    >>> import tempfile
    >>> from openir.core import Volume, make_affine
    >>> ct = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), make_affine((0.7, 0.7, 2.5), (-10.0, 5.0, 0.0)))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     back = read_nifti(write_nifti(ct, Path(d) / "ct.nii.gz"))
    >>> back.grid.same_as(ct.grid), bool((back.array == ct.array).all())  # LPS in, LPS out
    (True, True)
    """
    p = Path(path)
    _check_suffix(p)
    arr = volume.array
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    # the [k, j, i] C array read as Fortran [i, j, k]: no copy for contiguous input
    data = np.ascontiguousarray(arr).T
    img = nib.Nifti1Image(data, ras_to_lps(volume.affine))
    img.set_sform(ras_to_lps(volume.affine), code=1)
    img.set_qform(ras_to_lps(volume.affine), code=1)
    img.header.set_xyzt_units("mm", "sec")
    p.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, p)
    return p


def write_nifti_series(frames: list[np.ndarray] | np.ndarray, grid: Grid, path: str | Path, dt_s: float = 1.0) -> Path:
    """Write frames ``[t][k, j, i]`` on ``grid`` as one 4-D NIfTI (x, y, z, t), e.g. temperature over time.

    ``dt_s`` goes into pixdim[4] so viewers show the time axis in seconds (irregular sampling: keep
    the times beside the file, e.g. in a JSON).
    """
    p = Path(path)
    _check_suffix(p)
    data = np.stack([np.asarray(f, dtype=np.float32).T for f in frames], axis=-1)
    if data.ndim != 4 or data.shape[:3] != grid.shape_ijk:
        raise InputError(f"frames of shape {data.shape[:3]} do not match the grid {grid.shape_ijk}", source=p)
    aff = ras_to_lps(grid.affine)
    img = nib.Nifti1Image(data, aff)
    img.set_sform(aff, code=1)
    img.set_qform(aff, code=1)
    img.header.set_xyzt_units("mm", "sec")
    zooms = list(img.header.get_zooms())
    img.header.set_zooms((*zooms[:3], float(dt_s)))
    p.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, p)
    return p
