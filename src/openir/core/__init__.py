"""Value types shared by every OpenIR package: volumes, label maps, geometry, units, errors."""

from .body import body_mask_from_ct
from .crop import Box, bounding_box, crop, crop_to_mask, pad_box, paste, world_box
from .errors import DataFileError, GeometryError, InputError, OpenIRError, UnknownLabelError
from .labels import LabelMap, normalise_label_name
from .resample import isotropic_grid, resample
from .settings import Settings, get_settings
from .units import to_canonical
from .volume import Grid, Volume, make_affine

__all__ = [
    "Box",
    "DataFileError",
    "GeometryError",
    "Grid",
    "InputError",
    "LabelMap",
    "OpenIRError",
    "Settings",
    "UnknownLabelError",
    "Volume",
    "body_mask_from_ct",
    "bounding_box",
    "crop",
    "crop_to_mask",
    "get_settings",
    "isotropic_grid",
    "make_affine",
    "normalise_label_name",
    "pad_box",
    "paste",
    "resample",
    "to_canonical",
    "world_box",
]
