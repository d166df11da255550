"""Value types shared by every OpenIR package: volumes, label maps, geometry, units, errors."""

from .body import body_mask_from_ct
from .crop import Box, bounding_box, crop, crop_to_mask, pad_box, paste, world_box
from .datafiles import (
    Sourced,
    clear_packaged_cache,
    load_packaged,
    load_yaml_model,
    read_yaml,
    validate_data,
)
from .errors import DataFileError, GeometryError, InputError, OpenIRError, UnknownLabelError
from .labels import LabelMap, normalise_label_name
from .resample import isotropic_grid, resample
from .settings import Settings, get_settings, load_secret
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
    "Sourced",
    "UnknownLabelError",
    "Volume",
    "body_mask_from_ct",
    "bounding_box",
    "clear_packaged_cache",
    "crop",
    "crop_to_mask",
    "get_settings",
    "load_secret",
    "isotropic_grid",
    "load_packaged",
    "load_yaml_model",
    "make_affine",
    "normalise_label_name",
    "pad_box",
    "paste",
    "read_yaml",
    "resample",
    "to_canonical",
    "validate_data",
    "world_box",
]
