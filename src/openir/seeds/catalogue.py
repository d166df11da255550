"""The seed-model catalogue (``data/seed_models.yaml``): TG-43U1 consensus tables with sources.

>>> m = get_seed_model("6711")
>>> m.dose_rate_constant, m.active_length_cm, round(m.half_life_days, 1)
(0.965, 0.3, 59.4)
"""

from __future__ import annotations

from pathlib import Path

from openir.core.datafiles import load_packaged, load_yaml_model
from openir.core.errors import DataFileError, InputError

from .models import SeedCatalogue, SeedModel

_FILE = "data/seed_models.yaml"


def _complete(cat: SeedCatalogue, source: str | Path) -> SeedCatalogue:
    for m in cat.models:
        iso = cat.isotopes.get(m.isotope)
        if iso is None:
            raise DataFileError(f"{source} [models.{m.name}.isotope]: unknown isotope {m.isotope!r}")
        m.half_life_days = iso.half_life_days
        m.u_per_mci_apparent = iso.u_per_mci_apparent
    return cat


def load_seed_models(path: str | Path | None = None) -> SeedCatalogue:
    """The catalogue shipped with OpenIR, or an edited copy at ``path`` (validated, errors name the field)."""
    if path is None:
        return _complete(load_packaged(SeedCatalogue, "openir.seeds", _FILE), _FILE)
    return _complete(load_yaml_model(SeedCatalogue, path), path)


def seed_model_names(path: str | Path | None = None) -> list[str]:
    return [m.name for m in load_seed_models(path).models]


def get_seed_model(name: str, path: str | Path | None = None) -> SeedModel:
    """The model called ``name`` (or one of its aliases, case-insensitive); InputError if unknown."""
    key = str(name).strip().lower()
    cat = load_seed_models(path)
    for m in cat.models:
        if key == m.name.lower() or key in (a.lower() for a in m.aliases):
            return m
    known = ", ".join(m.name for m in cat.models)
    raise InputError(f"unknown seed model {name!r}; the catalogue has: {known}", field="seed_model")
