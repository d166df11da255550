"""Vendor phase scaling and MR header fields for thermometry (TE, field strength, M/P, echo).

Scanners store phase as integers in vendor-specific ranges; PRF thermometry needs radians, the echo
time and the field strength of every image. The vendor rules live in ``data/thermometry.yaml`` with
their sources (Siemens checked on real data; GE and Philips marked unverified there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydicom.dataset import Dataset

from openir.core.errors import InputError
from openir.core.volume import Volume

from .config import ThermometryTable, load_thermometry

Kind = Literal["M", "P", "R", "I"]
_GE_KIND = {0: "M", 1: "P", 2: "R", 3: "I"}  # private Image Type (0043,102F), dcm2niix GE notes


def vendor_of(ds: Dataset) -> str:
    """'siemens', 'ge', 'philips' or 'other' from the Manufacturer element."""
    m = str(ds.get("Manufacturer", "")).lower()
    if "siemens" in m:
        return "siemens"
    if m.startswith("ge") or "general electric" in m:
        return "ge"
    if "philips" in m:
        return "philips"
    return "other"


def image_kind(ds: Dataset) -> Kind:
    """Magnitude, phase, real or imaginary: ComplexImageComponent, ImageType, or GE's private flag."""
    cic = str(ds.get("ComplexImageComponent", "")).upper()
    if cic in ("MAGNITUDE", "PHASE", "REAL", "IMAGINARY"):
        return cic[0]  # type: ignore[return-value]
    it = [str(v).upper() for v in (ds.get("ImageType") or [])]
    for token, kind in (("P", "P"), ("PHASE", "P"), ("M", "M"), ("MAGNITUDE", "M"), ("R", "R"), ("REAL", "R"),
                        ("I", "I"), ("IMAGINARY", "I")):
        if token in it[2:]:
            return kind  # type: ignore[return-value]
    ge = ds.get((0x0043, 0x102F))
    if ge is not None:
        try:
            return _GE_KIND[int(ge.value if not isinstance(ge.value, bytes) else int.from_bytes(ge.value[:2], "little", signed=True))]  # type: ignore[return-value]
        except (KeyError, TypeError, ValueError):
            pass
    return "M"


@dataclass(frozen=True)
class MRHeader:
    """The thermometry-relevant header fields of one MR image."""

    vendor: str
    kind: Kind
    te_ms: float
    b0_t: float
    echo: int
    series_uid: str
    temporal_key: str
    acquisition_time_s: float | None


def _number(ds: Dataset, keyword: str, path: Path | None) -> float:
    v = ds.get(keyword)
    try:
        out = float(v)
    except (TypeError, ValueError):
        out = math.nan
    if not math.isfinite(out) or out <= 0:
        raise InputError(f"missing or invalid {keyword} ({v!r}); PRF thermometry needs it", source=path, field=keyword)
    return out


def _dicom_time_s(value: object) -> float | None:
    s = str(value or "").strip()
    if len(s) < 6:
        return None
    try:
        return int(s[0:2]) * 3600 + int(s[2:4]) * 60 + float(s[4:])
    except ValueError:
        return None


def read_header(ds: Dataset, path: Path | None = None) -> MRHeader:
    """TE (0018,0081) in ms, field strength (0018,0087) in T, image kind, echo and timing."""
    te = _number(ds, "EchoTime", path)
    b0 = _number(ds, "MagneticFieldStrength", path)
    if b0 > 20:  # some old files give the field in gauss / 10^4? no: reject nonsense loudly
        raise InputError(f"MagneticFieldStrength {b0} T is implausible", source=path, field="MagneticFieldStrength")
    echo = int(ds.get("EchoNumbers", 1) or 1)
    tpi = ds.get("TemporalPositionIdentifier")
    acq = ds.get("AcquisitionNumber")
    atime = _dicom_time_s(ds.get("AcquisitionTime"))
    key = f"t{int(tpi)}" if tpi not in (None, "") else (f"a{int(acq)}" if acq not in (None, "") else "a0")
    return MRHeader(vendor_of(ds), image_kind(ds), te, b0, echo, str(ds.get("SeriesInstanceUID", "")), key, atime)


def phase_to_radians(values: np.ndarray, vendor: str, *, stored_unsigned_4096: bool = False,
                     table: ThermometryTable | None = None) -> np.ndarray:
    """Rescaled phase pixels (slope/intercept applied) to radians in -pi..pi.

    ``stored_unsigned_4096``: Siemens data without a rescale (0..4095, centre 2048) is centred and
    doubled first so that it maps like the modern -4096..4094 form.
    """
    t = table or load_thermometry()
    v = np.asarray(values, dtype=np.float32)
    if vendor not in t.vendors:
        raise InputError(f"no phase convention for vendor {vendor!r}; known: {', '.join(sorted(t.vendors))}",
                         field="Manufacturer")
    if stored_unsigned_4096:
        v = (v - 2048.0) * 2.0
    return (v * np.float32(math.pi / t.vendors[vendor].full_scale)).astype(np.float32)


def _needs_centring(ds: Dataset, vendor: str) -> bool:
    slope = float(ds.get("RescaleSlope", 1) or 1)
    inter = float(ds.get("RescaleIntercept", 0) or 0)
    return vendor == "siemens" and slope == 1.0 and inter == 0.0 and int(ds.get("PixelRepresentation", 0)) == 0


def read_mr_volume(files: Sequence[str | Path], *, vendor: str | None = None,
                   table: ThermometryTable | None = None) -> Volume:
    """One stack of MR images (same kind and echo) as a `Volume`; phase in radians.

    ``meta`` gains ``kind`` ('M'/'P'), ``te_ms``, ``b0_t``, ``echo``, ``vendor`` and ``acquisition_time_s``.
    """
    from openir.io import read_dicom_datasets, read_dicom_series

    if not files:
        raise InputError("no MR image files given")
    dss = read_dicom_datasets(list(files))
    first = Path(str(getattr(dss[0], "filename", files[0])))
    hdrs = [read_header(ds, Path(str(getattr(ds, "filename", "")))) for ds in dss]
    for field, values in (("ImageType", {h.kind for h in hdrs}), ("EchoTime", {h.te_ms for h in hdrs}),
                          ("EchoNumbers", {h.echo for h in hdrs})):
        if len(values) > 1:
            raise InputError(f"stack mixes several values of {field}: {sorted(values)}; split it first",
                             source=first.parent, field=field)
    h = hdrs[0]
    vol = read_dicom_series(list(files))
    arr = vol.array
    ven = vendor or h.vendor
    if h.kind == "P":
        arr = phase_to_radians(arr, ven if ven != "other" else "siemens", stored_unsigned_4096=_needs_centring(dss[0], ven),
                               table=table)
    else:
        arr = arr.astype(np.float32)
    times = [x.acquisition_time_s for x in hdrs if x.acquisition_time_s is not None]
    meta = {**vol.meta, "kind": h.kind, "te_ms": h.te_ms, "b0_t": h.b0_t, "echo": h.echo, "vendor": ven,
            "acquisition_time_s": min(times) if times else None, "temporal_key": h.temporal_key}
    return Volume(arr, vol.affine, meta)


def group_mr_files(paths: Sequence[str | Path]) -> dict[tuple[str, str, str, int], list[Path]]:
    """Files grouped by (series UID, temporal key, kind, echo), in path order.

    Each group is one stack: a magnitude or phase volume of one echo at one time point.
    """
    from openir.io.dicom_files import read_dataset

    out: dict[tuple[str, str, str, int], list[Path]] = {}
    for p in paths:
        p = Path(p)
        ds = read_dataset(p, stop_before_pixels=True)
        h = read_header(ds, p)
        out.setdefault((h.series_uid, h.temporal_key, h.kind, h.echo), []).append(p)
    return out
