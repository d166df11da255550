"""Ablation verification: pre/post registration, minimal ablative margin, technical-success verdict.

Names are imported on first use, so `openir --help` does not pay for SimpleITK and numba.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "BatchOptions": "batch",
    "run_batch": "batch",
    "load_config": "config",
    "load_terminology": "config",
    "MarginAnalysis": "margins",
    "MarginOptions": "margins",
    "margin_analysis": "margins",
    "signed_voxel_margin": "margins",
    "MarginHistogram": "models",
    "MarginReport": "models",
    "RegistrationQuality": "models",
    "ResidualTumour": "models",
    "Verdict": "models",
    "Verification": "pipeline",
    "VerifyOptions": "pipeline",
    "verify": "pipeline",
    "Registration": "registration",
    "RegistrationOptions": "registration",
    "RegistrationRefused": "registration",
    "register": "registration",
    "warp_labels": "registration",
    "Structures": "structures",
    "read_structures": "structures",
    "zone_behind_tumour": "structures",
    "classify": "verdict",
    "no_verdict": "verdict",
    "margin_class": "verdict",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
