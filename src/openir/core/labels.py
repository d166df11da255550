"""`LabelMap`: an integer volume whose values name structures.

One value per voxel (0 = background). Overlapping structures (as DICOM SEG allows) are kept as
separate binary masks by the readers that meet them; a label map is the common currency because
planners, verifiers and viewers all want "which structure is this voxel".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import GeometryError, UnknownLabelError
from .volume import Grid, Volume


def normalise_label_name(name: str) -> str:
    """Lower-case, spaces and hyphens to underscores, so 'Portal Vein' and 'portal-vein' match.

    >>> normalise_label_name("  Portal Vein "), normalise_label_name("Hepatic-Veins/Right")
    ('portal_vein', 'hepatic_veins_right')
    """
    return "_".join(name.strip().lower().replace("-", " ").replace("/", " ").split())


@dataclass
class LabelMap(Volume):
    """Integer label volume plus ``labels``: value -> name (names unique, normalised on lookup).

    >>> arr = np.zeros((2, 3, 4), np.uint8); arr[0, :, :2] = 5; arr[1, 1, 1] = 7
    >>> lm = LabelMap(arr, np.eye(4), labels={5: "Liver", 7: "portal vein"})
    >>> lm.value_of("Portal-Vein"), int(lm.mask("liver").sum()), lm.find("portal")
    (7, 6, ['portal vein'])
    """

    labels: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not np.issubdtype(self.array.dtype, np.integer) and self.array.dtype != bool:
            raise GeometryError(f"a label map needs an integer array, got {self.array.dtype}")
        self.labels = {int(v): str(n) for v, n in self.labels.items() if int(v) != 0}
        names = [normalise_label_name(n) for n in self.labels.values()]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise GeometryError(f"label names must be unique; repeated: {', '.join(dup)}")

    # ---- lookup -----------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [self.labels[v] for v in sorted(self.labels)]

    def value_of(self, name_or_value: str | int) -> int:
        """The integer value of a label given by name (case/space-insensitive) or by value."""
        if isinstance(name_or_value, (int, np.integer)):
            if int(name_or_value) in self.labels:
                return int(name_or_value)
            raise UnknownLabelError(int(name_or_value), self.names)
        wanted = normalise_label_name(str(name_or_value))
        if wanted.isdigit() and int(wanted) in self.labels:
            return int(wanted)
        for v, n in self.labels.items():
            if normalise_label_name(n) == wanted:
                return v
        raise UnknownLabelError(str(name_or_value), self.names)

    def has(self, name: str) -> bool:
        try:
            self.value_of(name)
        except UnknownLabelError:
            return False
        return True

    def mask(self, *names: str | int) -> np.ndarray:
        """Boolean mask of the union of the named labels."""
        values = [self.value_of(n) for n in names]
        return np.isin(self.array, values)

    def find(self, prefix: str) -> list[str]:
        """Names that start with ``prefix`` (normalised), e.g. all 'tumour' labels."""
        p = normalise_label_name(prefix)
        return [n for n in self.names if normalise_label_name(n).startswith(p)]

    def present(self) -> dict[str, int]:
        """Voxel count of each label that occurs in the array."""
        vals, counts = np.unique(self.array, return_counts=True)
        out = {}
        for v, c in zip(vals.tolist(), counts.tolist(), strict=True):
            if v != 0:
                out[self.labels.get(v, f"label_{v}")] = c
        return out

    def volumes_ml(self) -> dict[str, float]:
        vv = self.grid.voxel_volume_mm3 / 1000.0
        return {n: c * vv for n, c in self.present().items()}

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def from_masks(
        cls,
        masks: Mapping[str, np.ndarray],
        grid: Grid,
        meta: dict[str, Any] | None = None,
    ) -> LabelMap:
        """Build from named boolean masks; later masks overwrite earlier ones where they overlap."""
        arr = np.zeros(grid.shape, dtype=np.uint16 if len(masks) > 255 else np.uint8)
        labels: dict[int, str] = {}
        for value, (name, m) in enumerate(masks.items(), start=1):
            if m.shape != grid.shape:
                raise GeometryError(f"mask {name!r} has shape {m.shape}, grid is {grid.shape}")
            arr[m.astype(bool)] = value
            labels[value] = name
        return cls(arr, grid.affine.copy(), dict(meta or {}), labels)

    def with_array(self, array: np.ndarray, **meta: Any) -> LabelMap:  # type: ignore[override]
        if tuple(array.shape) != self.shape:
            raise GeometryError(f"array shape {array.shape} does not match grid shape {self.shape}")
        return LabelMap(array, self.affine.copy(), {**self.meta, **meta}, dict(self.labels))

    def subset(self, names: Iterable[str | int]) -> LabelMap:
        """Only the given labels, others set to background (values kept)."""
        keep = [self.value_of(n) for n in names]
        arr = np.where(np.isin(self.array, keep), self.array, 0).astype(self.array.dtype)
        return LabelMap(arr, self.affine.copy(), dict(self.meta), {v: self.labels[v] for v in keep})

    def __repr__(self) -> str:
        return f"LabelMap({self.grid.describe()}, {len(self.labels)} labels)"
