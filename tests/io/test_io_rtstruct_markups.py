"""RTSTRUCT rasterisation (pydicom's rtstruct.dcm, analytic counts) and Slicer markups JSON."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from openir.core import GeometryError, Grid, InputError, UnknownLabelError, make_affine
from openir.io import (
    LineMarkup,
    PointSet,
    read_labels,
    read_markups,
    read_rtstruct,
    roi_names,
    write_markups,
)
from openir.io.models import MARKUPS_SCHEMA

RTSTRUCT = get_testdata_file("rtstruct.dcm")


def _grid() -> Grid:
    # 5 mm voxels whose centres never sit on the +-200 / +-150 mm contour edges; slices at
    # z = -210, -200, ..., -170 (the contours lie at -200, -190, -180)
    return Grid((5, 81, 101), make_affine((5, 5, 10), (-252.5, -202.5, -210.0)))


def test_rtstruct_patient_contour_rasterised():
    assert roi_names(RTSTRUCT) == {1: "patient", 2: "Isocenter 1", 3: "Isocenter 2"}
    lm = read_rtstruct(RTSTRUCT, _grid())
    assert lm.labels == {1: "patient"}
    assert lm.meta["skipped_rois"] == ["Isocenter 1", "Isocenter 2"]  # POINT ROIs have no volume
    counts = [int(lm.mask("patient")[k].sum()) for k in range(5)]
    # x in [-200, 200] holds 80 centres (-197.5 .. 197.5), y in [-150, 150] holds 60
    assert counts == [0, 80 * 60, 80 * 60, 80 * 60, 0]
    m = lm.mask("patient")[1]
    ji = np.argwhere(m)
    c = lm.grid.index_to_world(np.c_[ji[:, 1], ji[:, 0], np.ones(len(ji))])
    assert c[:, 0].min() == pytest.approx(-197.5) and c[:, 1].max() == pytest.approx(147.5)


def test_rtstruct_names_and_errors(tmp_path):
    lm = read_rtstruct(RTSTRUCT, _grid(), names=["PATIENT"])
    assert lm.names == ["patient"]
    with pytest.raises(UnknownLabelError, match="available labels: patient"):
        read_rtstruct(RTSTRUCT, _grid(), names=["liver"])
    with pytest.raises(InputError, match="no closed planar contours"):
        read_rtstruct(RTSTRUCT, _grid(), names=["Isocenter 1"])
    with pytest.raises(InputError, match="RTSTRUCT holds contours"):
        read_labels(RTSTRUCT)
    with pytest.raises(InputError, match="not an RT Structure Set"):
        read_rtstruct(get_testdata_file("CT_small.dcm"), _grid())
    oblique = Grid((5, 81, 101), make_affine((5, 5, 10), (-252.5, -202.5, -210.0),
                                             [[1, 0, 0], [0, 0, 1], [0, 1, 0]]))
    with pytest.raises(GeometryError, match="not in a slice plane"):
        read_rtstruct(RTSTRUCT, oblique)


def test_rtstruct_hole_by_xor(tmp_path):
    ds = pydicom.dcmread(RTSTRUCT, force=True)
    outer = [-50, -50, -200, 50, -50, -200, 50, 50, -200, -50, 50, -200]
    inner = [-20, -20, -200, 20, -20, -200, 20, 20, -200, -20, 20, -200]
    items = []
    for pts in (outer, inner):
        c = Dataset()
        c.ContourGeometricType = "CLOSED_PLANAR"
        c.NumberOfContourPoints = 4
        c.ContourData = pts
        items.append(c)
    ds.ROIContourSequence[0].ContourSequence = Sequence(items)
    ds.save_as(tmp_path / "ring.dcm")
    lm = read_rtstruct(tmp_path / "ring.dcm", Grid((1, 30, 30), make_affine((5, 5, 10), (-72.5, -72.5, -200))))
    assert int(lm.mask("patient").sum()) == 20 * 20 - 8 * 8


def test_markups_round_trip_and_schema_shape(tmp_path):
    path = write_markups(
        tmp_path / "plan.mrk.json",
        points=[PointSet(name="targets", points={"T1": (1.5, -2.0, 30.0), "T2": (4.0, 5.0, 6.0)})],
        lines=[LineMarkup(name="needle 1", start=(0, 0, 0), end=(30, 40, 0))],
    )
    doc = json.loads(path.read_text())
    assert doc["@schema"] == MARKUPS_SCHEMA
    fid, line = doc["markups"]
    assert fid["type"] == "Fiducial" and line["type"] == "Line"
    for m in (fid, line):
        assert m["coordinateSystem"] == "LPS" and m["coordinateUnits"] == "mm"
        for cp in m["controlPoints"]:
            assert len(cp["position"]) == 3 and cp["positionStatus"] == "defined"
            assert len(cp["orientation"]) == 9
    assert line["measurements"][0]["value"] == pytest.approx(50.0)
    points, lines = read_markups(path)
    assert points[0].points == {"T1": (1.5, -2.0, 30.0), "T2": (4.0, 5.0, 6.0)}
    assert lines[0].start == (0, 0, 0) and lines[0].end == (30, 40, 0)


def test_markups_ras_file_is_converted_and_errors(tmp_path):
    doc = {"@schema": MARKUPS_SCHEMA, "markups": [{"type": "Fiducial", "coordinateSystem": "RAS",
            "controlPoints": [{"label": "a", "position": [1.0, 2.0, 3.0]}]}]}
    (tmp_path / "ras.mrk.json").write_text(json.dumps(doc))
    points, _ = read_markups(tmp_path / "ras.mrk.json")
    assert points[0].points["a"] == (-1.0, -2.0, 3.0)
    doc["markups"][0]["controlPoints"][0]["position"] = [1.0, 2.0]
    (tmp_path / "bad.mrk.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="bad.mrk.json"):
        read_markups(tmp_path / "bad.mrk.json")
    (tmp_path / "junk.mrk.json").write_text("{not json")
    with pytest.raises(InputError, match="not a valid Slicer markups"):
        read_markups(tmp_path / "junk.mrk.json")
    with pytest.raises(InputError, match="three finite"):
        write_markups(tmp_path / "x.mrk.json", points={"p": {"a": (0, np.nan, 0)}})
