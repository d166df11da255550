"""`read_image` / `read_labels`: pick the reader from what a path holds, not only its name."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from openir.core.errors import InputError
from openir.core.labels import LabelMap
from openir.core.volume import Grid, Volume

from .dicom_files import has_dicom_prefix, read_dataset
from .label_names import LabelNames, sidecar_for

Kind = Literal["nifti", "nrrd", "dicom-folder", "dicom", "markups"]


def detect(path: str | Path) -> Kind:
    """What kind of file or folder ``path`` is; raises `InputError` when unknown or missing."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", source=p)
    if p.is_dir():
        return "dicom-folder"
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith((".nrrd", ".nhdr")):
        return "nrrd"
    if name.endswith(".json"):
        return "markups"
    if has_dicom_prefix(p) or name.endswith((".dcm", ".dicom", ".ima")) or "." not in name:
        return "dicom"
    raise InputError(
        "unknown file type; expected DICOM, .nii/.nii.gz, .nrrd/.seg.nrrd, .mrk.json or a DICOM folder",
        source=p,
    )


def read_image(path: str | Path, series_uid: str | None = None) -> Volume:
    """Read an image volume: DICOM folder or file, NIfTI or NRRD (LPS, [k, j, i]).

    >>> import tempfile
    >>> import numpy as np
    >>> from openir.core import Volume, make_affine
    >>> from openir.io import write_nrrd
    >>> ct = Volume(np.full((3, 4, 5), -1000, np.int16), make_affine((0.8, 0.8, 2.0)))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     img = read_image(write_nrrd(ct, Path(d) / "ct.nrrd"))
    >>> img.shape, img.spacing.tolist()
    ((3, 4, 5), [0.8, 0.8, 2.0])
    """
    from .dicom_series import read_dicom_series
    from .nifti import read_nifti
    from .nrrd_io import read_nrrd

    kind = detect(path)
    if kind == "nifti":
        return read_nifti(path)
    if kind == "nrrd":
        return read_nrrd(path)
    if kind == "dicom-folder":
        return read_dicom_series(path, series_uid)
    if kind == "dicom":
        ds = read_dataset(path, stop_before_pixels=True)
        modality = str(ds.get("Modality", ""))
        if modality in ("SEG", "RTSTRUCT"):
            raise InputError(f"a {modality} holds labels, not an image: use read_labels", source=path)
        return read_dicom_series(path)
    raise InputError("a markups file holds points, not an image", source=path)


def read_labels(
    path: str | Path,
    names: str | Path | LabelNames | None = None,
    *,
    reference: Volume | Grid | str | Path | None = None,
) -> LabelMap:
    """Read a label map: NIfTI/NRRD (names from ``names``, a sidecar JSON or the header), DICOM SEG
    (on ``reference``'s grid when given), or RTSTRUCT (needs ``reference``).

    >>> import json, tempfile
    >>> import numpy as np
    >>> from openir.core import Volume, make_affine
    >>> from openir.io import write_nifti
    >>> seg = np.zeros((3, 4, 5), np.uint8); seg[1, 1:3, 1:4] = 1; seg[1, 2, 2] = 2
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = write_nifti(Volume(seg, make_affine((1.0, 1.0, 2.0))), Path(d) / "seg.nii.gz")
    ...     _ = (Path(d) / "seg.labels.json").write_text(json.dumps({"labels": {"1": "liver", "2": "tumour_1"}}))
    ...     labels = read_labels(path)  # names from the sidecar next to the image
    >>> labels.labels, int(labels.mask("liver").sum())
    ({1: 'liver', 2: 'tumour_1'}, 5)
    """
    from .dicom_seg import read_dicom_seg
    from .nifti import read_nifti_labels
    from .nrrd_io import read_nrrd_labels
    from .rtstruct import read_rtstruct

    p = Path(path)
    kind = detect(p)
    if kind in ("nifti", "nrrd"):
        if names is None and (car := sidecar_for(p)) is not None:
            names = car
        return read_nifti_labels(p, names) if kind == "nifti" else read_nrrd_labels(p, names)
    if kind == "dicom":
        ds = read_dataset(p, stop_before_pixels=True)
        modality = str(ds.get("Modality", ""))
        if modality == "SEG":
            return read_dicom_seg(p, reference)
        if modality == "RTSTRUCT":
            if reference is None:
                raise InputError("an RTSTRUCT holds contours: give the image (reference) to rasterise them on", source=p)
            grid = reference
            if isinstance(reference, (str, Path)):
                grid = read_image(reference)
            return read_rtstruct(p, grid)  # type: ignore[arg-type]
        raise InputError(f"not a label object (Modality {modality!r}); expected SEG or RTSTRUCT", source=p)
    raise InputError(f"cannot read labels from a {kind}", source=p)
