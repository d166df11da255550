"""Reading single DICOM files safely, and finding them in folders.

Every failure becomes an `InputError` naming the file: a truncated transfer, a text file with a
``.dcm`` name or a DICOM object of the wrong kind must stop an import with one clear line.
Old files without the 128-byte preamble (common in RT exports) are still accepted, but only if
they carry a SOP Class UID, so random bytes are never taken for DICOM.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from openir.core.errors import InputError

# SOP classes that hold a displayable image (single or multi-frame) rather than an object about one
_NON_IMAGE_MODALITIES = {"SEG", "RTSTRUCT", "RTPLAN", "RTDOSE", "SR", "PR", "KO", "REG", "RWV", "DOC"}


def has_dicom_prefix(path: Path) -> bool:
    """True when the file has the 128-byte preamble and 'DICM' marker (a Part 10 file)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


_DAMAGE_HINTS = ("end of file", "truncat", "delimiter")


def _raise_on_damage(caught: list[warnings.WarningMessage], p: Path) -> None:
    """pydicom only warns about a file cut short; for OpenIR that is an error, not a half image."""
    for w in caught:
        msg = str(w.message)
        if any(h in msg.lower() for h in _DAMAGE_HINTS):
            raise InputError(f"corrupt or truncated DICOM file: {msg.split(' in file ')[0]}", source=p)


def read_dataset(path: str | Path, *, stop_before_pixels: bool = False) -> Dataset:
    """Read one DICOM file or raise `InputError` naming it and what is wrong."""
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", source=p)
    if p.is_dir():
        raise InputError("is a folder, expected a DICOM file", source=p)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(p, stop_before_pixels=stop_before_pixels)
        _raise_on_damage(caught, p)
        meta = getattr(ds, "file_meta", None)
        if "SOPClassUID" not in ds and (meta is None or "MediaStorageSOPClassUID" not in meta):
            raise InputError("corrupt DICOM file: no SOP Class UID could be read", source=p)
        return ds
    except InvalidDicomError:
        pass  # maybe a file without preamble: tried below
    except InputError:
        raise
    except Exception as exc:  # truncated or malformed element data
        raise InputError(f"corrupt or truncated DICOM file ({exc.__class__.__name__}: {exc})", source=p) from exc
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(p, force=True, stop_before_pixels=stop_before_pixels)
        uid = ds.get((0x0008, 0x0016))
    except Exception as exc:
        raise InputError("not a DICOM file (no 'DICM' marker and not readable as raw DICOM)", source=p) from exc
    if uid is None or not str(uid.value).replace(".", "").isdigit():
        raise InputError("not a DICOM file (no 'DICM' marker and no SOP Class UID)", source=p)
    _raise_on_damage(caught, p)
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
        # raw data set without meta header: pydicom guessed the encoding while reading
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = (
            pydicom.uid.ImplicitVRLittleEndian if ds.is_implicit_VR else pydicom.uid.ExplicitVRLittleEndian
        )
    return ds


def candidate_files(folder: Path) -> list[Path]:
    """Files under ``folder`` (recursive) that may be DICOM: hidden files and DICOMDIR skipped."""
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.name.startswith(".") and p.name.upper() != "DICOMDIR":
            out.append(p)
    return out


def read_folder(
    folder: str | Path | Sequence[str | Path],
) -> tuple[list[tuple[Path, Dataset]], list[tuple[Path, str]]]:
    """Read every DICOM file in a folder (or a list of files).

    Returns ``(datasets, skipped)``: files that are plainly not DICOM are skipped with a reason;
    a file that claims to be DICOM (has the 'DICM' marker) but cannot be read raises `InputError`.
    """
    if isinstance(folder, (str, Path)):
        root = Path(folder)
        if not root.exists():
            raise InputError("folder not found", source=root)
        single = root.is_file()
        files = [root] if single else candidate_files(root)
        if not files:
            raise InputError("folder is empty", source=root)
    else:
        files = [Path(f) for f in folder]
        single = len(files) == 1
        if not files:
            raise InputError("no files given")
    found: list[tuple[Path, Dataset]] = []
    skipped: list[tuple[Path, str]] = []
    for f in files:
        try:
            found.append((f, read_dataset(f)))
        except InputError as err:
            if has_dicom_prefix(f) or single:
                raise
            skipped.append((f, err.problem))
    return found, skipped


def is_image(ds: Dataset) -> bool:
    """True for a data set with pixel data that is an image (not a SEG, RT object, report...)."""
    if str(ds.get("Modality", "")).upper() in _NON_IMAGE_MODALITIES:
        return False
    return "PixelData" in ds or "FloatPixelData" in ds or "DoubleFloatPixelData" in ds


def describe_kinds(datasets: Iterable[Dataset]) -> str:
    """'SR (1), RTSTRUCT (2)': what a set of data sets holds, for error messages."""
    counts: dict[str, int] = {}
    for ds in datasets:
        m = str(ds.get("Modality", "?")) or "?"
        counts[m] = counts.get(m, 0) + 1
    return ", ".join(f"{k} ({v})" for k, v in sorted(counts.items()))
