"""Teaching library (issue 22): a registry case becomes a de-identified entry (no name, ID, birth
year or exact date in any exported file), searchable by organ, technique and difficulty; the CLI
adds, lists, shows, exports and scores, and bad input exits 2 with one message."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from typer.testing import CliRunner

from openir import phantom
from openir.cli import app
from openir.core import body_mask_from_ct
from openir.io import write_nifti
from openir.io.nifti import ras_to_lps
from openir.plan import plan_ablation
from openir.plan.models import CaseRef
from openir.registry import (
    find_case,
    init_db,
    merge_procedure_links,
    record_procedure,
    session_scope,
)
from openir.registry.schemas import AdverseEventIn, HospitalIn, OperatorIn, OutcomeIn, ProcedureIn
from openir.registry.store import add_hospital, add_operator
from openir.training import add_case, case_from_registry, export_case, list_entries, read_entry

NAME = "Zhang San"
SECRETS = ["pk-zhangsan-110101196103140011", "UID-98765-XYZ", "HSECRET", "OP-LISI", NAME, "2025-03-14", "20250314",
           "110101196103140011"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("reg")
    p = phantom.make_abdomen(seed=11, tumours=(phantom.TumourSpec(diameter_mm=22.0),), spacing_mm=(2.5, 2.5, 2.5),
                             fov_mm=(360, 280, 160), fov_centre_lps=(-10, 0, 60))
    body = body_mask_from_ct(p.ct, p.labels)
    plan = plan_ablation(p.labels, ["tumour_1"], modality="microwave", n_directions=600, body_mask=body,
                         case=CaseRef(case_id=f"{NAME} UID-98765-XYZ", ct=f"/data/HSECRET/{NAME}/ct.nii.gz"))
    plan.provenance.created = "2025-03-14T09:30:00"
    storage = root / "storage"
    folder = storage / "cases" / "HSECRET"
    folder.mkdir(parents=True)
    # a source image whose header names the patient (NIfTI descrip / db_name / aux_file)
    img = nib.Nifti1Image(np.ascontiguousarray(p.ct.array).T, ras_to_lps(p.ct.affine))
    img.header["descrip"] = f"{NAME} 110101196103140011".encode()
    img.header["db_name"] = b"HSECRET"
    img.header["aux_file"] = b"20250314"
    nib.save(img, folder / "UID-98765-XYZ.nii.gz")
    write_nifti(p.labels, folder / "UID-98765-XYZ.labels.nii.gz")
    engine = init_db(f"sqlite:///{root / 'r.db'}")
    with session_scope(engine, "test") as s:
        add_hospital(s, HospitalIn(code="HSECRET", name="Secret Hospital", level="tertiary", region="east"))
        add_operator(s, OperatorIn(code="OP-LISI", hospital_code="HSECRET", credential="senior"))
        res = record_procedure(s, ProcedureIn(
            uid="UID-98765-XYZ", patient_key="pk-zhangsan-110101196103140011", hospital_code="HSECRET",
            operator_code="OP-LISI", date=dt.date(2025, 3, 14), technique="liver_mwa", target_organ="liver",
            birth_year=1961, duration_min=45.0, outcome=OutcomeIn(technical_success=True, min_margin_mm=5.5),
            adverse_events=[AdverseEventIn(what="subcapsular haematoma", therapy="none")]))
        merge_procedure_links(s, res.procedure_id, {
            "image": "cases/HSECRET/UID-98765-XYZ.nii.gz", "labels": "cases/HSECRET/UID-98765-XYZ.labels.nii.gz",
            "label_names": {str(k): v for k, v in p.labels.labels.items()},
            "plan": json.loads(plan.model_dump_json())})
    return engine, storage, res.procedure_id, plan


def _texts(folder: Path) -> dict[str, bytes]:
    out = {}
    for f in folder.rglob("*"):
        if f.is_file():
            b = f.read_bytes()
            out[f.name] = gzip.decompress(b) if f.name.endswith(".gz") else b
    return out


def test_registry_case_exports_without_identifiers(registry, tmp_path):
    engine, storage, pid, _ = registry
    with session_scope(engine, "test") as s:
        args = case_from_registry(s, pid, storage)
    lib = tmp_path / "lib"
    entry = add_case(lib, **args)
    assert entry.year == 2025 and entry.expert_time_min == 45.0 and entry.technique == "liver_mwa"
    assert entry.outcome.min_margin_mm == 5.5 and entry.outcome.complications == ["subcapsular haematoma"]
    out = export_case(lib, entry.entry_id, tmp_path / "out", include_expert=True)
    files = {**_texts(lib), **_texts(out)}
    assert {"entry.json", "image.nii.gz", "labels.nii.gz", "expert_plan.json"} <= set(files)
    for name, data in files.items():
        low = data.lower()
        for secret in SECRETS:
            assert secret.lower().encode() not in low, f"{secret!r} in {name}"
        if not name.endswith(".nii.gz"):
            assert not re.search(rb"\b1961\b", data), f"birth year in {name}"
            assert b"2025-03" not in data and b"ct.nii.gz" not in data, name
    assert "expert_plan.json" not in {f.name for f in (tmp_path / "out2").glob("*")}
    trainee = export_case(lib, entry.entry_id, tmp_path / "out2")
    assert not (trainee / "expert_plan.json").exists() and (trainee / "image.nii.gz").exists()


def test_search_by_organ_technique_difficulty(registry, tmp_path):
    engine, storage, pid, plan = registry
    with session_scope(engine, "test") as s:
        args = case_from_registry(s, pid, storage)
    a = add_case(tmp_path, **args)
    b = add_case(tmp_path, args["ct"], args["labels"], plan, technique="liver_rfa", organ="liver")
    assert {e.entry_id for e in list_entries(tmp_path, organ="LIVER")} == {a.entry_id, b.entry_id}
    assert [e.entry_id for e in list_entries(tmp_path, technique="liver_rfa")] == [b.entry_id]
    level = a.difficulty.level
    assert {e.entry_id for e in list_entries(tmp_path, difficulty=level)} == {a.entry_id, b.entry_id}
    assert list_entries(tmp_path, organ="lung") == []
    # difficulty from the labels: the hepatic veins (> 3 mm) pass within 10 mm: heat sink met, with its source
    hs = {h.id: h for h in a.difficulty.criteria}["heat_sink"]
    assert hs.met and hs.value >= 3.0 and "Lu DS" in hs.source
    assert all(h.source for h in a.difficulty.criteria)


def test_cli_add_list_show_export_score(registry, tmp_path):
    engine, storage, pid, plan = registry
    lib = tmp_path / "lib"
    db = str(engine.url)
    r = CliRunner().invoke(app, ["training", "library", "add", "--case-id", str(pid), "--db", db, "--storage",
                                 str(storage), "--library", str(lib), "--title", "subcapsular HCC"])
    assert r.exit_code == 0, r.output
    entry_id = next(p.name for p in lib.iterdir() if not p.name.startswith("."))
    r = CliRunner().invoke(app, ["training", "library", "list", "--organ", "liver", "--json", "--library", str(lib)])
    assert r.exit_code == 0 and json.loads(r.output)[0]["entry_id"] == entry_id
    r = CliRunner().invoke(app, ["training", "library", "show", entry_id, "--library", str(lib)])
    assert r.exit_code == 0 and '"difficulty"' in r.output
    expert = tmp_path / "expert.json"
    expert.write_text(plan.model_dump_json())
    fig = tmp_path / "score.png"
    r = CliRunner().invoke(app, ["training", "score", entry_id, str(expert), "--json", "--figure", str(fig),
                                 "--library", str(lib)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["total"] == 100.0 and fig.stat().st_size > 10_000
    r = CliRunner().invoke(app, ["training", "library", "export", entry_id, "-o", str(tmp_path / "x"), "--library",
                                 str(lib)])
    assert r.exit_code == 0 and (tmp_path / "x" / entry_id / "labels.nii.gz").exists()
    # bad input: one message, exit 2, nothing written
    bad = tmp_path / "bad.json"
    bad.write_text('{"probes": [{"order": "x"}]}')
    r = CliRunner().invoke(app, ["training", "score", entry_id, str(bad), "--library", str(lib)])
    assert r.exit_code == 2 and "bad.json" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["training", "score", "tc-nope", str(expert), "--library", str(lib)])
    assert r.exit_code == 2 and "tc-nope" in r.output
    r = CliRunner().invoke(app, ["training", "library", "add", "--case-id", "999", "--db", db, "--storage",
                                 str(storage), "--library", str(lib)])
    assert r.exit_code == 2 and "999" in r.output
    assert len([p for p in lib.iterdir()]) == 1
    with session_scope(engine, "test") as s:
        assert find_case(s, pid) is not None
    assert read_entry(lib, entry_id).title == "subcapsular HCC"
