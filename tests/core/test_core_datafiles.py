"""`load_packaged`: one cached loader for the YAML tables shipped inside a package."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict, Field

import openir.phantom
from openir.core import DataFileError, clear_packaged_cache, load_packaged


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hu: float = Field(ge=-1024, le=3071)


class Table(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int
    items: dict[str, Item]


class Loose(BaseModel):
    version: int


@pytest.fixture
def pkg(tmp_path, monkeypatch):
    """A throw-away package ``fake_tables`` with a ``data/`` folder, importable for this test only."""
    root = tmp_path / "fake_tables"
    (root / "data").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    clear_packaged_cache()
    yield root
    clear_packaged_cache()
    sys.modules.pop("fake_tables", None)


def test_reads_validates_and_caches(pkg):
    (pkg / "data" / "t.yaml").write_text("version: 2\nitems:\n  liver: {hu: 100}\n")
    first = load_packaged(Table, "fake_tables", "data/t.yaml")
    assert first.items["liver"].hu == 100.0 and first.version == 2
    assert load_packaged(Table, "fake_tables", "data/t.yaml") is first  # cache hit: the same object
    other = load_packaged(Loose, "fake_tables", "data/t.yaml")  # cached per model
    assert isinstance(other, Loose) and other is not first
    (pkg / "data" / "t.yaml").write_text("version: 3\nitems: {}\n")
    assert load_packaged(Table, "fake_tables", "data/t.yaml") is first  # still the cached table
    clear_packaged_cache()
    again = load_packaged(Table, "fake_tables", "data/t.yaml")
    assert again is not first and again.version == 3


def test_bad_field_names_file_and_field(pkg):
    (pkg / "data" / "bad.yaml").write_text("version: 1\nitems:\n  liver: {hu: 5000}\n")
    with pytest.raises(DataFileError) as err:
        load_packaged(Table, "fake_tables", "data/bad.yaml")
    msg = str(err.value)
    assert "bad.yaml" in msg and "[items.liver.hu]" in msg


@pytest.mark.parametrize(("text", "expect"), [("version: [1\n", "not valid YAML"), (None, "cannot read")])
def test_malformed_or_missing_file_names_it(pkg, text, expect):
    if text is not None:
        (pkg / "data" / "broken.yaml").write_text(text)
    with pytest.raises(DataFileError, match=expect) as err:
        load_packaged(Table, "fake_tables", "data/broken.yaml")
    assert "broken.yaml" in str(err.value)


def test_phantom_tissue_table_goes_through_the_loader():
    from openir.phantom.tissues import CtNumberTable, hu, load_tissues

    clear_packaged_cache()
    table = load_packaged(CtNumberTable, "openir.phantom", "data/tissues.yaml")
    assert load_tissues() is table.tissues
    raw = yaml.safe_load((Path(openir.phantom.__file__).parent / "data" / "tissues.yaml").read_text("utf-8"))
    assert {k: v["hu"] for k, v in raw["tissues"].items()} == {k: hu(k) for k in raw["tissues"]}
