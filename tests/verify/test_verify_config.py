"""Packaged YAML: every value sourced, classes ordered, bad files named in the error."""

from __future__ import annotations

import pytest

from openir.core import DataFileError
from openir.verify import classify, load_config, load_terminology, margin_class


def test_packaged_files_load_with_sources():
    cfg = load_config()
    assert cfg.registration.min_organ_dice.value == 0.8
    assert all(c.source for c in load_terminology().margin_classes)


@pytest.mark.parametrize(("m", "cls"), [(-0.1, "negative (residual tumour)"), (0.0, "0-5 mm"),
                                        (4.99, "0-5 mm"), (5.0, ">=5 mm")])
def test_margin_classes(m, cls):
    assert margin_class(m) == cls


def test_verdict_terms():
    assert classify(2.0).complete and classify(2.0).term.startswith("technical success")
    bad = classify(-1.0, residual_ml=0.2)
    assert not bad.complete and bad.term == "incomplete ablation" and "0.20 ml" in bad.explanation


def test_bad_terminology_file_names_field(tmp_path):
    p = tmp_path / "t.yaml"
    p.write_text("version: 1\nterms: {}\nmargin_classes:\n  - {name: a, upper_mm: 1.0, source: x}\n")
    with pytest.raises(DataFileError, match=r"t.yaml \[margin_classes\]"):
        load_terminology(p)
