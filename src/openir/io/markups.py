"""3D Slicer markups JSON (``.mrk.json``, schema v1.0.3): point lists and lines, in LPS.

Slicer reads ``coordinateSystem: "LPS"`` files directly, so a plan's targets and needle paths open
where they belong on the patient's image. Files in RAS are converted to LPS when read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from pydantic import ValidationError

from openir.core.errors import InputError

from .models import ControlPoint, LineMarkup, Markup, MarkupsFile, PointSet


def _lps(m: Markup) -> Markup:
    if m.coordinateSystem == "LPS":
        return m
    pts = [cp.model_copy(update={"position": [-cp.position[0], -cp.position[1], cp.position[2]]}) for cp in m.controlPoints]
    return m.model_copy(update={"controlPoints": pts, "coordinateSystem": "LPS"})


def read_markups(path: str | Path) -> tuple[list[PointSet], list[LineMarkup]]:
    """Point lists and lines of a markups file, positions in LPS mm (other markup types ignored)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("file not found", source=p)
    try:
        data = json.loads(p.read_text())
        doc = MarkupsFile.model_validate(data)
    except ValueError as exc:
        problem = exc.errors()[0] if isinstance(exc, ValidationError) else None
        where = ".".join(str(x) for x in problem["loc"]) if problem else None
        msg = problem["msg"] if problem else str(exc)
        raise InputError(f"not a valid Slicer markups file: {msg}", source=p, field=where) from exc
    points, lines = [], []
    for n, m in enumerate(doc.markups):
        m = _lps(m)
        name = m.name or f"{m.type}_{n + 1}"
        if m.type == "Fiducial":
            pts = {}
            for i, cp in enumerate(m.controlPoints):
                label = cp.label or cp.id or str(i + 1)
                pts[label if label not in pts else f"{label}_{i + 1}"] = tuple(cp.position)
            points.append(PointSet(name=name, points=pts))
        elif m.type == "Line":
            if len(m.controlPoints) != 2:
                raise InputError(f"line {name!r} has {len(m.controlPoints)} control points, expected 2", source=p, field=f"markups.{n}")
            lines.append(LineMarkup(name=name, start=tuple(m.controlPoints[0].position), end=tuple(m.controlPoints[1].position)))
    return points, lines


def _display(color: tuple[float, float, float]) -> dict:
    return {"visibility": True, "opacity": 1.0, "color": list(color), "selectedColor": list(color),
            "propertiesLabelVisibility": True, "pointLabelsVisibility": True, "textScale": 3.0,
            "glyphType": "Sphere3D", "glyphScale": 3.0, "glyphSize": 5.0, "useGlyphScale": True,
            "lineThickness": 0.2}


def _cp(i: int, label: str, pos: Sequence[float]) -> ControlPoint:
    v = [float(x) for x in pos]
    if len(v) != 3 or not np.all(np.isfinite(v)):
        raise InputError(f"point {label!r} must be three finite LPS coordinates, got {list(pos)}")
    return ControlPoint(id=str(i + 1), label=label, position=v)


def markups_document(
    points: Iterable[PointSet] | Mapping[str, Mapping[str, Sequence[float]]] = (),
    lines: Iterable[LineMarkup] | Mapping[str, tuple[Sequence[float], Sequence[float]]] = (),
) -> MarkupsFile:
    """Build the markups document (LPS) from point sets and lines (models or plain mappings)."""
    if isinstance(points, Mapping):
        points = [PointSet(name=k, points={lab: tuple(p) for lab, p in v.items()}) for k, v in points.items()]
    if isinstance(lines, Mapping):
        lines = [LineMarkup(name=k, start=tuple(v[0]), end=tuple(v[1])) for k, v in lines.items()]
    out = []
    for ps in points:
        cps = [_cp(i, lab, pos) for i, (lab, pos) in enumerate(ps.points.items())]
        out.append(Markup(type="Fiducial", name=ps.name, controlPoints=cps, lastUsedControlPointNumber=len(cps),
                          display=_display((0.4, 1.0, 1.0))))
    for ln in lines:
        cps = [_cp(0, f"{ln.name}-entry", ln.start), _cp(1, f"{ln.name}-tip", ln.end)]
        length = float(np.linalg.norm(np.subtract(ln.end, ln.start)))
        out.append(Markup(type="Line", name=ln.name, controlPoints=cps, lastUsedControlPointNumber=2,
                          fixedNumberOfControlPoints=True,
                          measurements=[{"name": "length", "enabled": True, "value": length, "units": "mm",
                                         "printFormat": "%-#4.4g%s"}],
                          display=_display((1.0, 0.5, 0.0))))
    return MarkupsFile(markups=out)


def write_markups(
    path: str | Path,
    points: Iterable[PointSet] | Mapping[str, Mapping[str, Sequence[float]]] = (),
    lines: Iterable[LineMarkup] | Mapping[str, tuple[Sequence[float], Sequence[float]]] = (),
) -> Path:
    """Write point lists and lines to a Slicer ``.mrk.json`` (LPS). Returns the path."""
    p = Path(path)
    if not p.name.endswith(".json"):
        raise InputError("markups files end in .mrk.json (or .json)", source=p)
    doc = markups_document(points, lines)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(doc.model_dump_json(by_alias=True, indent=2, exclude_none=True))
    return p
