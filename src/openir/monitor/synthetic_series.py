"""Synthetic MR thermometry series of an ablation, with the true temperatures they imply.

The physics package (Pennes solver) heats a small synthetic patient: a body of liver with a tumour,
a subcutaneous fat layer, an organ at risk near the tumour, in air. From the true temperature of
every frame the generator builds the gradient-echo images an MR scanner would give: magnitude,
and phase = background field + PRF shift (not in fat) + linear field drift + a breathing-induced
field, then the anatomy moved by breathing, plus complex Gaussian noise at a chosen SNR. The first
frames are unheated baselines over whole breathing cycles (the multi-baseline library).

It lives in ``monitor`` rather than ``phantom`` because it needs the bioheat solver: ``phantom`` may
import only core and io, ``monitor`` may import physics.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from openir.core.errors import InputError
from openir.core.labels import LabelMap
from openir.core.volume import Grid, make_affine

GAMMA_MHZ_T = 42.577  # proton gamma/2pi (CODATA 2018)
ALPHA_PPM_C = -0.01  # PRF coefficient, Rieke & Butts Pauly JMRI 2008
LABELS = {1: "liver", 2: "tumour", 3: "fat", 4: "organ_at_risk"}
_SIGNAL = {0: 0.0, 1: 1.0, 2: 0.85, 3: 1.4, 4: 0.9}  # relative GRE magnitudes (illustrative, not measured)


@dataclass
class HeatingSeries:
    """A synthetic thermometry series and its truth (arrays ``[frame, k, j, i]`` or ``[k, j, i]``).

    ``magnitude``/``phase`` (radians) hold the baselines first (``n_baselines`` frames, times < 0),
    then the heated frames. ``true_temperature_c`` has one map per heated frame in the anatomy's
    rest position (the reference frame of the first baseline). ``displacement_kji`` is the breathing
    shift of each acquired frame, in voxels.
    """

    grid: Grid
    labels: LabelMap
    magnitude: np.ndarray
    phase: np.ndarray
    times_s: np.ndarray
    n_baselines: int
    true_temperature_c: np.ndarray
    te_ms: float
    b0_t: float
    snr: float
    noise_sigma: float
    displacement_kji: np.ndarray
    tip_lps: tuple[float, float, float]
    target_margin_mm: float
    meta: dict = field(default_factory=dict)

    @property
    def heated_times_s(self) -> np.ndarray:
        return self.times_s[self.n_baselines:]

    def mask(self, name: str) -> np.ndarray:
        return self.labels.array == self.labels.value_of(name)


def _smooth_field(shape: tuple[int, int, int], rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A random smooth (quadratic) phase pattern over the grid, radians."""
    z, y, x = (np.linspace(-1, 1, n) if n > 1 else np.zeros(1) for n in shape)
    c = rng.normal(0, amplitude, 6)
    return (c[0] + c[1] * x[None, None, :] + c[2] * y[None, :, None] + c[3] * z[:, None, None]
            + c[4] * x[None, None, :] ** 2 + c[5] * x[None, None, :] * y[None, :, None])


def _anatomy(shape: tuple[int, int, int], spacing: tuple[float, float, float], tumour_radius_mm: float,
             oar_distance_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Label array and the tumour centre (index k, j, i)."""
    nk, nj, ni = shape
    si, sj, sk = spacing
    kk, jj, ii = np.meshgrid(*(np.arange(n, dtype=float) for n in shape), indexing="ij")
    cj, ci = (nj - 1) / 2, (ni - 1) / 2
    # body: ellipse filling ~85 % of the in-plane field of view, 3 mm of fat around it
    a, b = 0.42 * ni * si, 0.40 * nj * sj
    r_body = np.sqrt(((ii - ci) * si / a) ** 2 + ((jj - cj) * sj / b) ** 2)
    lab = np.zeros(shape, np.int16)
    lab[r_body <= 1.0] = 3
    inner = 1.0 - 3.0 * max(si, sj) / min(a, b)
    lab[r_body <= inner] = 1
    centre = np.array([(nk - 1) / 2, cj, ci])
    d_t = np.sqrt(((kk - centre[0]) * sk) ** 2 + ((jj - centre[1]) * sj) ** 2 + ((ii - centre[2]) * si) ** 2)
    lab[d_t <= tumour_radius_mm] = 2
    # organ at risk: a tube of 3 mm radius along k, its axis oar_distance_mm from the tumour centre
    d_oar = np.sqrt(((jj - centre[1]) * sj - oar_distance_mm) ** 2 + ((ii - centre[2]) * si) ** 2)
    lab[(d_oar <= 3.0) & (lab == 1)] = 4
    return lab, centre


@dataclass(frozen=True, kw_only=True)
class HeatingSeriesSpec:
    """What `make_heating_series` simulates: grid, heating, MR acquisition, drift, breathing, noise.

    ``shape`` is ``(nk, nj, ni)``, ``spacing_mm`` ``(si, sj, sk)``. ``snr`` is the liver magnitude
    over the noise sigma (3 T gradient echo, ~20-40 in liver thermometry; illustrative default).
    ``drift_hz_per_min``: uniform field drift; ``breathing_*``: in-plane (j) sinusoidal shift of the
    anatomy and a breathing field of that peak phase. Heating is a Gaussian source (``source_sigma_mm``)
    of ``power_w`` absorbed watts at the tumour centre for ``heat_s`` seconds, then ``cool_s`` of
    cooling. ``n_baselines`` (None: two breathing cycles, at least 4) unheated frames come first.
    ``tumour_radius_mm``/``oar_distance_mm`` shape the built-in patient; ``target_margin_mm`` is
    carried to the series for the target the monitor uses. ``seed`` makes the noise reproducible.

    >>> HeatingSeriesSpec(seed=3).shape
    (6, 48, 48)
    """

    shape: tuple[int, int, int] = (6, 48, 48)
    spacing_mm: tuple[float, float, float] = (2.0, 2.0, 3.0)
    frame_period_s: float = 2.0
    heat_s: float = 150.0
    cool_s: float = 30.0
    power_w: float = 4.0
    source_sigma_mm: float = 4.0
    tumour_radius_mm: float = 5.0
    oar_distance_mm: float = 11.0
    target_margin_mm: float = 2.0
    snr: float = 30.0
    te_ms: float = 10.0
    b0_t: float = 3.0
    drift_hz_per_min: float = 1.0
    breathing_period_s: float = 5.0
    breathing_amplitude_mm: float = 2.0
    breathing_field_rad: float = 0.3
    n_baselines: int | None = None
    seed: int = 0


def make_heating_series(
    spec: HeatingSeriesSpec | None = None,
    *,
    anatomy: LabelMap | None = None,
    source_lps: tuple[float, float, float] | list[tuple[float, float, float]] | None = None,
) -> HeatingSeries:
    """Heat a synthetic patient (physics.solve_pennes) and build the MR images of every frame.

    ``spec`` (default `HeatingSeriesSpec()`) sets the grid, heating, acquisition and noise.
    ``anatomy`` (a label map already on the MR grid, e.g. a patient's labels resampled there) replaces
    the built-in patient; the shape and spacing then come from it, the heat source sits at
    ``source_lps`` (e.g. a planned zone centre; several points share ``power_w``), fat-like labels get
    no PRF shift and unlabelled voxels no signal. Heating is still that of homogeneous liver (no vessel
    cooling): a demo, not a prediction.
    """
    sp = spec or HeatingSeriesSpec()
    shape, spacing_mm, frame_period_s, heat_s = sp.shape, sp.spacing_mm, sp.frame_period_s, sp.heat_s
    cool_s, power_w, source_sigma_mm, target_margin_mm = sp.cool_s, sp.power_w, sp.source_sigma_mm, sp.target_margin_mm
    snr, te_ms, b0_t, drift_hz_per_min = sp.snr, sp.te_ms, sp.b0_t, sp.drift_hz_per_min
    breathing_period_s, breathing_amplitude_mm = sp.breathing_period_s, sp.breathing_amplitude_mm
    breathing_field_rad, n_baselines, seed = sp.breathing_field_rad, sp.n_baselines, sp.seed
    from openir.physics import HeatSource, homogeneous_medium, solve_pennes

    if min(shape) < 3:
        raise InputError(f"heating series grid needs >= 3 voxels per axis, got {shape}")
    if snr <= 0 or te_ms <= 0 or b0_t <= 0 or frame_period_s <= 0:
        raise InputError("snr, te_ms, b0_t and frame_period_s must be > 0")
    rng = np.random.default_rng(seed)
    if anatomy is not None:
        if source_lps is None:
            raise InputError("a heat source position (source_lps) is needed with a given anatomy")
        grid, labels = anatomy.grid, anatomy
        shape = grid.shape
        spacing_mm = tuple(float(v) for v in grid.spacing)  # type: ignore[assignment]
        lab = anatomy.array
        pts = np.asarray(source_lps, float).reshape(-1, 3)
        centres = grid.world_to_index(pts)[:, ::-1]
        centre = centres[0]
        fat_like = {v for v, n in anatomy.labels.items() if "fat" in n.lower()}
        sig = np.where(lab > 0, 1.0, 0.0).astype(np.float32)
        sig[np.isin(lab, list(fat_like))] = _SIGNAL[3]
        aqueous = (lab > 0) & ~np.isin(lab, list(fat_like))
    else:
        affine = make_affine(spacing_mm, (-(shape[2] - 1) / 2 * spacing_mm[0], -(shape[1] - 1) / 2 * spacing_mm[1],
                                          -(shape[0] - 1) / 2 * spacing_mm[2]))
        grid = Grid(shape, affine)
        lab, centre = _anatomy(shape, spacing_mm, sp.tumour_radius_mm, sp.oar_distance_mm)
        centres = centre[None, :]
        labels = LabelMap(lab, affine, {"description": "synthetic thermometry patient"}, dict(LABELS))
        sig = np.vectorize(_SIGNAL.get)(lab).astype(np.float32)
        aqueous = (lab == 1) | (lab == 2) | (lab == 4)
    tip = grid.index_to_world(centre[::-1])

    # ---- truth: Pennes heating of homogeneous liver (air and fat treated as liver: the body is what heats)
    n_heated = int(round((heat_s + cool_s) / frame_period_s))
    times = frame_period_s * np.arange(1, n_heated + 1)
    # a given anatomy is a thin slab: solve on it extended by a few slices each side, so the solver's
    # fixed-temperature boundary does not cool the outer imaged slices
    pad = 3 if anatomy is not None else 0
    hshape = (shape[0] + 2 * pad, shape[1], shape[2])
    haff = grid.affine.copy()
    haff[:3, 3] = grid.index_to_world([0, 0, -pad])
    hgrid = Grid(hshape, haff)
    kk, jj, ii = np.meshgrid(*(np.arange(n, dtype=float) for n in hshape), indexing="ij")
    pattern = np.zeros(hshape)
    for c in centres:
        r2 = (((kk - c[0] - pad) * spacing_mm[2]) ** 2 + ((jj - c[1]) * spacing_mm[1]) ** 2
              + ((ii - c[2]) * spacing_mm[0]) ** 2)
        pattern += np.exp(-0.5 * r2 / source_sigma_mm**2)
    pattern *= 1.0 / (pattern.sum() * hgrid.voxel_volume_mm3 * 1e-9)  # W/m^3 per W absorbed
    medium = homogeneous_medium(hgrid, "liver")
    sol = solve_pennes(medium, float(times[-1]), sources=[HeatSource(pattern, [(0.0, heat_s, power_w)], name="tip")],
                       snapshot_times_s=[float(t) for t in times])
    true_t = np.stack(sol.temperature_c).astype(np.float32)[:, pad:pad + shape[0]]
    body_c = float(medium.initial_temperature_c) if np.ndim(medium.initial_temperature_c) == 0 else 37.0

    # ---- MR images
    nb = n_baselines if n_baselines is not None else max(4, int(math.ceil(2 * breathing_period_s / frame_period_s)))
    all_times = np.concatenate([frame_period_s * np.arange(-nb, 0), times])
    k_rad = 2 * math.pi * GAMMA_MHZ_T * ALPHA_PPM_C * b0_t * te_ms * 1e-3  # rad per °C
    background = _smooth_field(shape, rng, 1.0)
    breath_pattern = _smooth_field(shape, rng, 1.0)
    breath_pattern *= breathing_field_rad / max(float(np.abs(breath_pattern).max()), 1e-9)
    noise = float(_SIGNAL[1] / snr)
    n_all = len(all_times)
    mags = np.empty((n_all, *shape), np.float32)
    phases = np.empty((n_all, *shape), np.float32)
    disp = np.zeros((n_all, 3))
    for f, t in enumerate(all_times):
        temp = true_t[f - nb] if f >= nb else np.full(shape, body_c, np.float32)
        prf = np.where(aqueous, k_rad * (temp - body_c), 0.0)
        breath = math.sin(2 * math.pi * t / breathing_period_s)
        drift = 2 * math.pi * (drift_hz_per_min * (t - all_times[0]) / 60.0) * te_ms * 1e-3
        z = sig * np.exp(1j * (background + prf))
        shift_j = breathing_amplitude_mm * breath / spacing_mm[1]
        if abs(shift_j) > 1e-9:
            z = ndimage.shift(z.real, (0, shift_j, 0), order=1) + 1j * ndimage.shift(z.imag, (0, shift_j, 0), order=1)
        disp[f] = (0.0, shift_j, 0.0)
        z = z * np.exp(1j * (drift + breath * breath_pattern))
        z = z + rng.normal(0, noise, shape) + 1j * rng.normal(0, noise, shape)
        mags[f] = np.abs(z)
        phases[f] = np.angle(z)
    return HeatingSeries(grid=grid, labels=labels, magnitude=mags, phase=phases, times_s=all_times, n_baselines=nb,
                         true_temperature_c=true_t, te_ms=te_ms, b0_t=b0_t, snr=snr, noise_sigma=noise,
                         displacement_kji=disp, tip_lps=tuple(float(v) for v in tip),  # type: ignore[arg-type]
                         target_margin_mm=target_margin_mm,
                         meta={"power_w": power_w, "heat_s": heat_s, "frame_period_s": frame_period_s,
                               "solver": sol.method, "peak_temperature_c": float(true_t.max())})


def write_heating_dicom(series: HeatingSeries, folder: str | Path, *, frames: range | None = None) -> list[Path]:
    """Write frames as Siemens-style MR DICOM: magnitude and phase (stored 0..4095, slope 2, intercept -4096).

    One file per slice, kind and frame (``f0003_P_k02.dcm``), TemporalPositionIdentifier = frame + 1,
    EchoTime and MagneticFieldStrength set, so `openir thermo replay` / `watch` can read them back.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    g = series.grid
    study, for_uid = generate_uid(), generate_uid()
    series_uid = {"M": generate_uid(), "P": generate_uid()}
    d = g.direction
    sp = g.spacing
    mag_scale = 4000.0 / max(float(series.magnitude.max()), 1e-9)
    t0 = _dt.datetime(2024, 1, 1, 12, 0, 0)
    paths = []
    for f in frames if frames is not None else range(len(series.times_s)):
        atime = (t0 + _dt.timedelta(seconds=float(series.times_s[f] - series.times_s[0]))).strftime("%H%M%S.%f")
        for kind in ("M", "P"):
            if kind == "M":
                stored = np.clip(np.rint(series.magnitude[f] * mag_scale), 0, 4095).astype(np.uint16)
            else:
                stored = np.clip(np.rint((series.phase[f] * 4096 / math.pi + 4096) / 2), 0, 4095).astype(np.uint16)
            for k in range(g.shape[0]):
                meta = FileMetaDataset()
                meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
                meta.MediaStorageSOPInstanceUID = generate_uid()
                meta.TransferSyntaxUID = ExplicitVRLittleEndian
                ds = Dataset()
                ds.file_meta = meta
                ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
                ds.Modality, ds.Manufacturer = "MR", "SIEMENS"
                ds.ImageType = ["ORIGINAL", "PRIMARY", kind, "ND"]
                ds.PatientName, ds.PatientID = "SYNTHETIC^THERMO", "SYNTH"
                ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series_uid[kind], for_uid
                ds.SeriesNumber = 10 if kind == "M" else 11
                ds.SeriesDescription = f"synthetic thermometry {kind}"
                ds.InstanceNumber = f * g.shape[0] + k + 1
                ds.TemporalPositionIdentifier = f + 1
                ds.AcquisitionNumber = f + 1
                ds.AcquisitionTime = atime
                ds.EchoTime, ds.EchoNumbers, ds.MagneticFieldStrength = f"{series.te_ms:g}", 1, f"{series.b0_t:g}"
                ds.ImagePositionPatient = [f"{v:.6g}" for v in g.index_to_world([0, 0, k])]
                ds.ImageOrientationPatient = [f"{v:.6g}" for v in np.concatenate([d[:, 0], d[:, 1]])]
                ds.PixelSpacing = [f"{sp[1]:g}", f"{sp[0]:g}"]
                ds.SliceThickness = f"{sp[2]:g}"
                ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
                ds.Rows, ds.Columns = g.shape[1], g.shape[2]
                ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
                if kind == "P":
                    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "2", "-4096", "US"
                ds.PixelData = np.ascontiguousarray(stored[k]).tobytes()
                p = out / f"f{f:04d}_{kind}_k{k:02d}.dcm"
                pydicom.dcmwrite(p, ds, enforce_file_format=True)
                paths.append(p)
    return paths
