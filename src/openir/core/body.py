"""The patient's body on a CT grid: where a needle may enter from the skin."""

from __future__ import annotations

import numpy as np

from .labels import LabelMap
from .volume import Volume

#: HU above which a voxel is tissue rather than air (fat is about -100, lung about -850).
BODY_HU_THRESHOLD = -500.0


def body_mask_from_ct(ct: Volume, labels: LabelMap | None = None) -> np.ndarray:
    """Body voxels of ``ct``: tissue above -500 HU or labelled, with air pockets filled per slice.

    Bowel gas and lungs are inside the body, so each axial slice's holes are filled; a needle that
    crosses them is judged by the structure rules, not by leaving the body.

    >>> import numpy as np
    >>> from openir.core import Volume
    >>> hu = np.full((3, 8, 8), -1000.0); hu[:, 1:7, 1:7] = 40.0; hu[:, 3:5, 3:5] = -900.0
    >>> int(body_mask_from_ct(Volume(hu, np.eye(4))).sum())  # the gas pocket counts as body
    108
    """
    return body_mask_from_arrays(ct.array, None if labels is None else labels.array)


def body_mask_from_arrays(ct_hu: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """`body_mask_from_ct` on bare ``[k, j, i]`` arrays of one grid."""
    from scipy import ndimage  # imported on use: `openir --help` must not load scipy

    body = np.asarray(ct_hu) > BODY_HU_THRESHOLD
    if labels is not None:
        body |= np.asarray(labels) > 0
    for k in range(body.shape[0]):
        body[k] = ndimage.binary_fill_holes(body[k])
    return body
