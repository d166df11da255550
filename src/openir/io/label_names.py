"""Label names for integer label images: from a JSON sidecar, a dict, or a file's own header.

Accepted sidecar shapes: ``{"labels": {"5": "liver", ...}}`` (as in the TotalSegmentator
example), a flat ``{"5": "liver"}``, or ``{"liver": 5}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from openir.core.errors import InputError

LabelNames = Mapping[int | str, str] | Mapping[str, int]


def _from_mapping(m: Mapping[Any, Any], source: object) -> dict[int, str]:
    out: dict[int, str] = {}
    for k, v in m.items():
        try:
            if isinstance(v, str):
                out[int(k)] = v
            elif isinstance(v, int) and not isinstance(v, bool):
                out[int(v)] = str(k)
            else:
                raise ValueError
        except (TypeError, ValueError) as exc:
            raise InputError(f"label entry {k!r}: {v!r} is not 'value: name'", source=source, field=str(k)) from exc
    out.pop(0, None)
    return out


def load_label_names(names: str | Path | LabelNames | None) -> dict[int, str] | None:
    """value -> name from a JSON file path or a mapping; None passes through."""
    if names is None:
        return None
    if isinstance(names, (str, Path)):
        p = Path(names)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError as exc:
            raise InputError("label names file not found", source=p) from exc
        except (OSError, ValueError) as exc:
            raise InputError(f"label names file is not valid JSON: {exc}", source=p) from exc
        if isinstance(data, dict) and isinstance(data.get("labels"), dict):
            data = data["labels"]
        if not isinstance(data, dict):
            raise InputError("expected a JSON object of value: name pairs", source=p)
        return _from_mapping(data, p)
    return _from_mapping(names, "label names")


def sidecar_for(path: Path) -> Path | None:
    """A labels JSON next to an image: ``<stem>.labels.json``, ``<stem>.json`` or ``labels.json``."""
    stem = path.name
    for suffix in (".nii.gz", ".seg.nrrd", ".nii", ".nrrd", ".nhdr"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    for cand in (path.with_name(f"{stem}.labels.json"), path.with_name(f"{stem}.json"), path.with_name("labels.json")):
        if cand.is_file():
            return cand
    return None
