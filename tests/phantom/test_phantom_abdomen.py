"""Synthetic abdomen: labels, anatomy in LPS, HU, tumour placement rules, vessel sizes, determinism."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from scipy import ndimage

from openir.core import InputError
from openir.phantom import BONE_LABELS, VESSEL_LABELS, TumourSpec, make_abdomen

CANONICAL = ("skin", "fat", "muscle", "liver", "spleen", "ribs", "spine", "aorta", "ivc", "portal_vein",
             "hepatic_veins", "gallbladder", "kidney_left", "kidney_right", "stomach", "bowel", "lung", "diaphragm")
SPECS = (TumourSpec(30, "sphere", "central"), TumourSpec(25, "lobulated", "subcapsular"),
         TumourSpec(20, "ellipsoid", "perivascular"))


@pytest.fixture(scope="module")
def ph():
    return make_abdomen(seed=3, tumours=SPECS, spacing_mm=(2, 2, 2))


def centroid(ph, *names):
    m = ph.labels.mask(*names)
    kji = np.argwhere(m).mean(axis=0)
    return ph.ct.index_to_world(kji[::-1])


def _hash(p) -> str:
    return hashlib.sha256(p.ct.array.tobytes() + p.labels.array.tobytes()).hexdigest()


def test_grid_meta_and_labels(ph):
    assert ph.ct.shape == (150, 205, 205)
    assert ph.ct.array.dtype == np.int16
    assert ph.labels.grid.same_as(ph.ct.grid)
    assert ph.ct.meta["synthetic"] is True and ph.ct.meta["seed"] == 3 and ph.ct.meta["units"] == "HU"
    present = ph.labels.present()
    for name in (*CANONICAL, "tumour_1", "tumour_2", "tumour_3"):
        assert present.get(name, 0) > 0, name
    assert set(VESSEL_LABELS) <= set(present) and set(BONE_LABELS) <= set(present)
    # every voxel inside the body outline is labelled; outside is air
    body = ph.labels.array > 0
    assert not (ndimage.binary_fill_holes(body) & ~body).any()
    assert np.median(ph.ct.array[~body]) < -950


def test_anatomy_lps(ph):
    liver, spleen = centroid(ph, "liver"), centroid(ph, "spleen")
    aorta, ivc, spine = centroid(ph, "aorta"), centroid(ph, "ivc"), centroid(ph, "spine")
    assert liver[0] < -20 and spleen[0] > 40  # liver on the patient's right (x < 0 in LPS)
    assert aorta[0] > ivc[0]  # IVC right of aorta
    assert aorta[0] > spine[0] and aorta[1] < spine[1]  # aorta left-anterior of the spine
    assert spine[1] > 20  # spine posterior
    for side, s in (("kidney_left", 1), ("kidney_right", -1)):
        k = centroid(ph, side)
        assert s * k[0] > 40 and k[1] > spine[1] - 40
    assert centroid(ph, "lung")[2] > liver[2] and centroid(ph, "bowel")[2] < liver[2]
    gb = centroid(ph, "gallbladder")
    assert gb[0] < 0 and gb[2] < liver[2]


@pytest.mark.parametrize(("name", "lo", "hi"), [("fat", -120, -80), ("liver", 85, 115), ("aorta", 150, 210),
                                                ("portal_vein", 150, 210), ("lung", -900, -700),
                                                ("kidney_left", 130, 190), ("gallbladder", -5, 30),
                                                ("muscle", 35, 65)])
def test_median_hu(ph, name, lo, hi):
    assert lo <= np.median(ph.ct.array[ph.labels.mask(name)]) <= hi


def test_bone_hu(ph):
    assert np.mean(ph.ct.array[ph.labels.mask("spine")]) > 250
    assert np.percentile(ph.ct.array[ph.labels.mask("ribs")], 90) > 600


def _liverish(ph):
    return ph.labels.mask("liver", "portal_vein", "hepatic_veins", *ph.labels.find("tumour"))


def test_tumour_sizes_and_no_vessel_overlap(ph):
    vv = ph.labels.grid.voxel_volume_mm3
    for info, spec in zip(ph.tumours, SPECS, strict=True):
        m = ph.labels.array == info.label
        d_eq = (6 * m.sum() * vv / np.pi) ** (1 / 3)
        assert abs(d_eq - spec.diameter_mm) <= 0.1 * spec.diameter_mm, (info.name, d_eq)
        assert info.volume_ml == pytest.approx(m.sum() * vv / 1000)
        # inside the liver: its surroundings are liver (a subcapsular one touches the capsule)
        shell = ndimage.binary_dilation(m, iterations=2) & ~m
        assert _liverish(ph)[shell].mean() > (0.5 if spec.location == "subcapsular" else 0.85), info.name
        assert np.median(ph.ct.array[m]) < 70  # hypodense
    masks = [ph.labels.array == t.label for t in ph.tumours]
    for a in range(len(masks)):
        for b in range(a + 1, len(masks)):
            assert not (ndimage.binary_dilation(masks[a]) & masks[b]).any()


def test_tumour_locations(ph):
    sp = ph.ct.spacing[::-1]
    depth = ndimage.distance_transform_edt(np.pad(_liverish(ph), 1), sampling=sp)[1:-1, 1:-1, 1:-1]
    central, subcap, periv = (ph.labels.array == t.label for t in ph.tumours)
    assert depth[central].min() >= 15 - 2 * sp.max()  # >= ~15 mm from the capsule
    assert depth[subcap].min() <= 5 + sp.max()  # touching / within 5 mm of the capsule
    vessels = ph.labels.mask("portal_vein", "hepatic_veins")
    to_vessel = ndimage.distance_transform_edt(~vessels, sampling=sp)
    assert to_vessel[periv].min() <= 1.5 * sp.max()
    # the touched vessel is >= 5 mm in diameter: nearest centreline segment to the tumour surface
    segs = np.vstack([ph.vessel_segments["portal_vein"], ph.vessel_segments["hepatic_veins"]])
    pts = ph.ct.index_to_world(np.argwhere(periv)[:, ::-1])
    a, d = segs[:, 0:3], segs[:, 3:6] - segs[:, 0:3]
    t = np.clip(np.einsum("pni,ni->pn", pts[:, None, :] - a[None], d) / (d * d).sum(1), 0, 1)
    gap = np.linalg.norm(pts[:, None, :] - (a + t[..., None] * d), axis=2) - (segs[:, 6] + t * (segs[:, 7] - segs[:, 6]))
    nearest = np.unravel_index(np.argmin(gap), gap.shape)[1]
    assert segs[nearest, 6] >= 2.5 - 1e-6


def test_vessel_diameters_on_1mm_grid():
    """Diameters 3-20 mm as built, and as measured by a distance transform on a 1 mm grid."""
    p = make_abdomen(seed=5, tumours=(), spacing_mm=(1, 1, 1), fov_mm=(170, 170, 150), fov_centre_lps=(-45, 0, 55),
                     noise_hu=0)
    for name in ("portal_vein", "hepatic_veins"):
        segs = p.vessel_segments[name]
        assert len(segs) > 20
        assert segs[:, 6:8].min() >= 1.5 - 1e-9 and 2 * segs[:, 6:8].max() <= 20
        m = p.labels.mask(name)
        edt = ndimage.grey_dilation(ndimage.distance_transform_edt(m), size=3)
        mids = (segs[:, 0:3] + segs[:, 3:6]) / 2
        idx = np.rint(p.ct.world_to_index(mids)).astype(int)
        ok = np.all((idx >= 0) & (idx < np.array(p.ct.grid.shape_ijk)), axis=1)
        idx, r = idx[ok], ((segs[:, 6] + segs[:, 7]) / 2)[ok]
        on = m[idx[:, 2], idx[:, 1], idx[:, 0]]
        measured = edt[idx[on, 2], idx[on, 1], idx[on, 0]]
        assert on.mean() > 0.8
        diam = 2 * measured
        assert np.percentile(diam, 5) >= 3 - 1.0 and diam.max() <= 20 + 2
        assert np.median(np.abs(measured - r[on])) <= 1.0


def test_determinism_and_variation():
    a = make_abdomen(seed=11, tumours=(TumourSpec(20),), spacing_mm=(4, 4, 4))
    b = make_abdomen(seed=11, tumours=(TumourSpec(20),), spacing_mm=(4, 4, 4))
    c = make_abdomen(seed=12, tumours=(TumourSpec(20),), spacing_mm=(4, 4, 4))
    assert _hash(a) == _hash(b)
    assert _hash(a) != _hash(c)
    for p in (a, c):
        vol = p.labels.volumes_ml()
        assert 1000 < vol["liver"] < 2600 and 80 < vol["spleen"] < 500


@pytest.mark.parametrize("kwargs", [{"diameter_mm": 5}, {"diameter_mm": 61}, {"shape": "cube"},
                                    {"location": "nowhere"}, {"location": (1, 2)}])
def test_bad_specs(kwargs):
    with pytest.raises(InputError):
        TumourSpec(**kwargs)


def test_bad_grid():
    with pytest.raises(InputError):
        make_abdomen(spacing_mm=(0, 1, 1))
    with pytest.raises(InputError):
        make_abdomen(tumours=(TumourSpec(20, organ="spleen"),), spacing_mm=(4, 4, 4))


def test_point_location():
    p = make_abdomen(seed=1, tumours=(TumourSpec(20, location=(-70.0, 0.0, 60.0)),), spacing_mm=(3, 3, 3))
    assert np.allclose(p.tumours[0].centre_lps, (-70, 0, 60))
