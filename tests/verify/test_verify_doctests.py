"""The runnable examples in the verify entry points' docstrings stay true."""

from __future__ import annotations

import doctest
import importlib

import pytest


@pytest.mark.parametrize("module", ["openir.verify.margins", "openir.verify.pipeline", "openir.verify.verdict",
                                    "openir.verify.registration", "openir.phantom.margin_shapes"])
def test_docstring_examples(module):
    res = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0
