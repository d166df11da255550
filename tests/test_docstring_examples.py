"""The examples in the docstrings of the main entry points run, and say what they return.

Add a module to ``MODULES`` when you give its entry points an example; each listed module must
hold at least one example, so a module cannot stay listed after its examples are deleted.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "openir.core.body",
    "openir.core.crop",
    "openir.core.datafiles",
    "openir.core.labels",
    "openir.core.resample",
    "openir.core.units",
    "openir.core.volume",
    "openir.io.dispatch",
    "openir.io.info",
    "openir.io.nifti",
    "openir.phantom.abdomen",
    "openir.phantom.chest",
    "openir.phantom.dose_reports",
    "openir.phantom.implant",
    "openir.phantom.post_implant",
    "openir.phantom.tissues",
    "openir.registry.codes",
    "openir.registry.dates",
    "openir.navigate.config",
    "openir.navigate.frames",
    "openir.navigate.guidance",
    "openir.navigate.navlog",
    "openir.navigate.registration",
    "openir.navigate.robot",
    "openir.navigate.surfaces",
    "openir.seeds.detect",
    "openir.seeds.postimplant",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} is listed but has no docstring example"
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed (see the output above)"


def test_a_wrong_example_is_caught() -> None:
    """The runner above really compares outputs: a module whose example lies fails."""
    import sys
    import types

    module = types.ModuleType("openir_wrong_example")
    exec('def add(a, b):\n    """>>> add(1, 2)\n    4\n    """\n    return a + b\n', module.__dict__)
    sys.modules[module.__name__] = module
    try:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                 report=False)
    finally:
        del sys.modules[module.__name__]
    assert (result.attempted, result.failed) == (1, 1)
