"""Tumour, zone and organ masks from any label layout a segmentation tool exports.

Layouts met in practice: separate files (tumour on the pre scan, zone on the post scan), one label
map holding both (one label per voxel: the tumour label hides the zone behind it), and DICOM SEG
or RTSTRUCT whose segments overlap (the zone drawn over the tumour). `Structures` keeps every
structure as its own boolean mask, so overlapping segments survive; `zone_behind_tumour` restores
the zone that a one-label-per-voxel map hides under the tumour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from openir.core.errors import InputError
from openir.core.labels import LabelMap, normalise_label_name
from openir.core.volume import Grid, Volume


@dataclass
class Structures:
    """Named boolean masks on one grid; ``exclusive`` when they come from a one-label-per-voxel map."""

    masks: dict[str, np.ndarray]
    grid: Grid
    exclusive: bool
    source: str | None = None
    meta: dict = field(default_factory=dict)

    @classmethod
    def from_labelmap(cls, labels: LabelMap) -> Structures:
        masks = {n: labels.array == v for v, n in labels.labels.items()}
        return cls(masks, labels.grid, True, labels.meta.get("source"), dict(labels.meta))

    @property
    def names(self) -> list[str]:
        return list(self.masks)

    def find(self, name: str, role: str, *, required: bool = True) -> str | None:
        """The structure called ``name``, or the first whose name starts with it ('tumour' -> 'tumour_1').

        A missing required structure, or a missing optional one that was asked for by name, is an
        `InputError` listing what the file holds.
        """
        want = normalise_label_name(name)
        exact = [n for n in self.masks if normalise_label_name(n) == want]
        hits = exact or [n for n in self.masks if normalise_label_name(n).startswith(want)]
        if hits:
            return hits[0]
        if not required:
            return None
        raise InputError(f"no {role} label '{name}' (available: {', '.join(self.names) or 'none'})",
                         source=self.source, field=role)

    def mask(self, name: str) -> np.ndarray:
        return self.masks[name]

    def as_labelmap(self) -> LabelMap:
        """One label per voxel (later structures win where they overlap): for warping."""
        return LabelMap.from_masks(self.masks, self.grid, {"source": self.source})


def as_structures(labels: LabelMap | Structures) -> Structures:
    return labels if isinstance(labels, Structures) else Structures.from_labelmap(labels)


def read_structures(path: str | Path, reference: Volume | Grid | str | Path | None = None) -> Structures:
    """Read labels keeping overlapping segments apart: NIfTI/NRRD label maps, DICOM SEG, RTSTRUCT.

    RTSTRUCT needs ``reference`` (the image its contours are drawn on); SEG uses it when given.
    """
    import pydicom

    from openir.io import detect, read_dicom_seg_masks, read_labels, read_rtstruct, roi_names

    p = Path(path)
    if detect(p) == "dicom":
        try:
            modality = str(pydicom.dcmread(p, stop_before_pixels=True, force=True).get("Modality", ""))
        except Exception:  # noqa: BLE001 - read_labels below names the file and the problem
            modality = ""
        if modality == "SEG":
            masks, grid, meta = read_dicom_seg_masks(p, reference)
            return Structures(masks, grid, False, str(p), meta)
        if modality == "RTSTRUCT":
            if reference is None:
                raise InputError("an RTSTRUCT holds contours: give the image they were drawn on", source=p)
            from openir.io import read_image

            ref = read_image(reference) if isinstance(reference, (str, Path)) else reference
            masks = {}
            for name in roi_names(p).values():
                try:
                    lm = read_rtstruct(p, ref, names=[name])
                except InputError:  # points or open contours only: no volume
                    continue
                masks[name] = lm.array > 0
            grid = ref.grid if isinstance(ref, Volume) else ref
            return Structures(masks, grid, False, str(p), {"modality": "RTSTRUCT"})
    return Structures.from_labelmap(read_labels(p, reference=reference))


def zone_behind_tumour(tumour: np.ndarray, zone: np.ndarray, spacing_kji: np.ndarray) -> tuple[np.ndarray, bool]:
    """The zone with the part hidden under the tumour label restored; and whether any was restored.

    In a one-label-per-voxel map the tumour label overwrites the zone. Each tumour voxel takes the
    structure of its nearest non-tumour voxel: a tumour inside the zone is wholly zone (exact), and
    where the tumour reaches outside the zone the hidden zone boundary is placed half-way, which is
    reported as an estimate.
    """
    if not tumour.any() or (tumour & zone).any() or not zone.any():
        return zone, False
    _, idx = ndimage.distance_transform_edt(tumour, sampling=spacing_kji, return_indices=True)
    nearest_is_zone = zone[tuple(idx)]
    restored = zone | (tumour & nearest_is_zone)
    return restored, bool((restored & tumour).any())


__all__ = ["Structures", "as_structures", "read_structures", "zone_behind_tumour"]
