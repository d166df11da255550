"""Import as hospitals have it: GB18030/BOM, Chinese headers and labels, slashed and Excel dates,
blanks, several adverse events and lesions per procedure, the template (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from openir.core.errors import InputError
from openir.phantom.registry_data import generate_registry
from openir.registry.bulk import load_sites
from openir.registry.codes import resolve_diagnosis
from openir.registry.columns import column_file, write_template
from openir.registry.dates import parse_date
from openir.registry.grading import AEFacts, grade_all
from openir.registry.importer import (
    ImportValidationError,
    decode_bytes,
    import_procedures,
    read_table,
)
from openir.registry.indicators import compute_indicators
from openir.registry.models import AdverseEvent, Procedure


# ---- dates ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["2025-05-01", "2025/05/01", "2025/5/1", "2025-5-1", "2025.5.1", "2025年5月1日",
                                  "20250501", "2025-05-01 00:00:00", "45778", "45778.0", "２０２５/５/１"])
def test_dates_as_hospitals_write_them(text):
    assert parse_date(text) == dt.date(2025, 5, 1)


@pytest.mark.parametrize("text", ["05/06/2025", "2025-02-30", "1/2/3", "99999", "yesterday"])
def test_ambiguous_or_impossible_dates_are_refused(text):
    with pytest.raises(ValueError):
        parse_date(text)


def test_unambiguous_day_first_date():
    assert parse_date("31/05/2025") == dt.date(2025, 5, 31) and parse_date("05/31/2025") == dt.date(2025, 5, 31)


# ---- encodings --------------------------------------------------------------------------------
def test_encodings_detected_and_forced():
    text = "uid,disease\nP1,肝细胞癌\n"
    assert decode_bytes(text.encode("gb18030")) == (text, "gb18030")
    assert decode_bytes(text.encode("gbk")) == (text, "gb18030")
    assert decode_bytes(b"\xef\xbb\xbf" + text.encode()) == (text, "utf-8-sig")
    assert decode_bytes(text.encode()) == (text, "utf-8")
    assert decode_bytes(text.encode("gbk"), "gbk")[0] == text
    with pytest.raises(InputError, match="not valid utf-8"):
        decode_bytes(text.encode("gb18030"), "utf-8")
    with pytest.raises(InputError, match="unknown encoding"):
        decode_bytes(b"x", "klingon")


# ---- a held-out multi-centre file as a Chinese hospital exports it -----------------------------
def _hospital_file(ds, path, rng):
    """The synthetic data written the way a Chinese Excel exports it: GB18030, Chinese headers and
    labels, slashed unpadded dates, blanks, Chinese diagnoses, second adverse events."""
    p = ds.procedures.copy()
    zh = {c.name: c.zh for c in column_file().columns}
    p["disease"] = [resolve_diagnosis(d).zh for d in p["disease"]]
    p.loc[rng.random(len(p)) < 0.15, "disease"] = None  # blank optional field
    p["date"] = [f"{d.year}/{d.month}/{d.day}" if i % 3 else f"{d.year}年{d.month}月{d.day}日" for i, d in enumerate(p["date"])]
    yes_no = {True: "是", False: "否"}
    for c in ("technical_success", "puncture_bleeding", "emergency", "dose_alert", "died"):
        p[c] = p[c].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else yes_no[bool(v)])
    p["lesion_sizes_mm"] = p.pop("max_lesion_mm")
    p = p.drop(columns=["n_lesions"])
    ae = ds.adverse_events.copy()
    extra = ae.drop_duplicates("procedure_uid").head(25).copy()  # a second, minor event for 25 procedures
    extra = extra.assign(what="穿刺点血肿", therapy="none", extra_stay_h=0.0, icu=False, life_threatening=False,
                         sequelae="none", death=False, resolved_in_session=True)
    ae = pd.concat([ae, extra], ignore_index=True)
    ae["_n"] = ae.groupby("procedure_uid").cumcount() + 1
    aecols = {c.name: c.zh for c in column_file().adverse_event_columns}
    for n, g in ae.groupby("_n"):
        part = g.set_index("procedure_uid")[[c for c in aecols if c in g]].copy()
        part["therapy"] = part["therapy"].map({"none": "无需处理", "nominal": "名义性处理", "additional": "额外治疗",
                                               "major": "重大治疗"})
        part.columns = [f"{aecols[c]}{n}" for c in part.columns]
        p = p.join(part, on="uid")
    p = p.rename(columns=zh)
    for c in p.columns:
        if p[c].dtype.kind == "f" and p[c].dropna().apply(float.is_integer).all():
            p[c] = p[c].astype("Int64")
    path.write_bytes(p.to_csv(index=False).encode("gb18030"))
    return ae.drop(columns="_n")


@pytest.fixture
def hospital_import(engine, tmp_path):
    ds = generate_registry(400, 10, seed=19, prefix="Z")
    with engine.begin() as conn:
        load_sites(conn, ds.hospitals, ds.rooms, ds.equipment, ds.operators)
    path = tmp_path / "导出.csv"
    ae = _hospital_file(ds, path, np.random.default_rng(0))
    return engine, ds, ae, path


def test_held_out_chinese_file_imports_completely_and_indicators_match(hospital_import):
    engine, ds, ae, path = hospital_import
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # really GB18030, as the issue describes
    rep = import_procedures(engine, path)
    assert rep.ok and rep.stored["procedures"] == 400 and rep.stored["adverse_events"] == len(ae)
    with engine.connect() as conn:
        stored = pd.DataFrame(conn.execute(sa.select(Procedure.uid, Procedure.disease, Procedure.diagnosis_code,
                                                     Procedure.date, Procedure.flags)).all(),
                              columns=["uid", "disease", "code", "date", "flags"]).set_index("uid")
        n_events = pd.Series(dict(conn.execute(sa.select(Procedure.uid, sa.func.count()).join(
            AdverseEvent, AdverseEvent.procedure_id == Procedure.id).group_by(Procedure.uid)).all()))
    src = ds.procedures.set_index("uid")
    assert (stored["date"] == src["date"].reindex(stored.index)).all()
    written = stored["disease"].notna()
    assert stored.loc[written, "code"].notna().all() and stored.loc[~written, "code"].isna().all()
    # Chinese diagnoses are matched to indications by code: none flagged as outside them
    rules = [f["rule"] for fl in stored["flags"].dropna() for f in fl]
    assert "indication" not in rules and "diagnosis_uncoded" not in rules
    assert (n_events == ae.groupby("procedure_uid").size().reindex(n_events.index)).all()
    # indicators equal an independent pandas computation from the source frames
    tab = compute_indicators(engine, by=("hospital",)).set_index(["indicator", "unit"])
    grades = [grade_all(AEFacts(r.resolved_in_session, r.therapy, r.extra_stay_h, r.icu, r.life_threatening,
                                r.sequelae, r.death))["major"] for r in ae.itertuples()]
    major_uids = set(ae.loc[np.array(grades, bool), "procedure_uid"])
    p = ds.procedures.assign(major=ds.procedures["uid"].isin(major_uids))
    for code, g in p.groupby("hospital_code"):
        assert tab.loc[("major_ae", code), ["n", "x"]].tolist() == [len(g), int(g["major"].sum())]
        ts = g["technical_success"].dropna().astype(bool)
        assert tab.loc[("technical_success", code), ["n", "x"]].tolist() == [len(ts), int(ts.sum())]
        b = g["puncture_bleeding"].astype(bool)
        assert tab.loc[("puncture_bleeding", code), ["n", "x"]].tolist() == [len(b), int(b.sum())]


def test_blank_disease_and_problems_named_by_column(engine, tmp_path):
    ds = generate_registry(30, 3, seed=4, prefix="B")
    with engine.begin() as conn:
        load_sites(conn, ds.hospitals, ds.rooms, ds.equipment, ds.operators)
    p = ds.procedures.head(3).drop(columns=["n_lesions", "max_lesion_mm"]).copy()
    p["disease"] = None
    p["lesion_sizes_mm"] = ["12;25", "8", "30，14"]  # full-width comma as Chinese Excel writes it
    p["lesion_locations"] = ["S7;S8", "S2;S3", "S6；S5"]  # row 3 (second record) lists two places for one lesion
    p["ae2_what"] = [None, "bleeding", None]
    p["ae2_therapy"] = [None, "lots", None]
    path = tmp_path / "p.csv"
    p.to_csv(path, index=False)
    with pytest.raises(ImportValidationError) as exc:
        import_procedures(engine, path)
    got = {(q.row, q.field) for q in exc.value.report.problems}
    assert got == {(3, "lesion_locations"), (3, "ae2_therapy")}
    p.loc[1, "lesion_locations"] = "S2"
    p.loc[1, "ae2_therapy"] = "额外治疗"
    p.to_csv(path, index=False)
    assert import_procedures(engine, path).stored["procedures"] == 3
    with engine.connect() as conn:
        lesions = conn.execute(sa.select(Procedure.lesions).where(Procedure.uid == p["uid"].iloc[2])).scalar_one()
        therapy = conn.execute(sa.select(AdverseEvent.therapy).where(AdverseEvent.what == "bleeding")).scalar_one()
    assert lesions == [{"size_mm": 30.0, "location": "S6"}, {"size_mm": 14.0, "location": "S5"}]
    assert therapy == "additional"


def test_excel_with_real_date_cells_and_blanks(engine, tmp_path):
    ds = generate_registry(20, 2, seed=8, prefix="X")
    with engine.begin() as conn:
        load_sites(conn, ds.hospitals, ds.rooms, ds.equipment, ds.operators)
    p = ds.procedures.drop(columns=["n_lesions", "max_lesion_mm"]).copy()
    p["date"] = pd.to_datetime(p["date"])  # stored by Excel as date cells
    p.loc[::2, "disease"] = None
    path = tmp_path / "p.xlsx"
    p.to_excel(path, index=False)
    assert import_procedures(engine, path).stored["procedures"] == 20
    with engine.connect() as conn:
        dates = {u: d for u, d in conn.execute(sa.select(Procedure.uid, Procedure.date))}
    assert all(dates[u] == d for u, d in zip(ds.procedures["uid"], ds.procedures["date"], strict=True))


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_template_has_every_column_and_imports_empty(engine, tmp_path, suffix):
    path = write_template(tmp_path / f"template{suffix}")
    df = read_table(path)
    names = {c.name for c in column_file().columns}
    assert names <= set(df.columns) and {"ae1_what", "ae2_therapy", "ae3_sequelae"} <= set(df.columns)
    assert len(df) == 0  # the label rows of the CSV are comments
    assert import_procedures(engine, path).rows == 0
    if suffix == ".xlsx":
        from openpyxl import load_workbook

        wb = load_workbook(path)
        doc = wb["columns 列说明"]
        rows = {r[0].value: r for r in doc.iter_rows(min_row=2)}
        assert rows["sex"][4].value == "M=男 | F=女 | O=其他" and "male" in rows["sex"][5].value
        assert "经动脉化疗栓塞术" in rows["technique"][4].value
        assert len(wb["procedures"].data_validations.dataValidation) >= 10
    else:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        assert lines[1].startswith("#手术唯一编号*") and "是/否" in lines[2 - 1] and lines[2].startswith("#procedure UID")


def test_bulk_load_with_nan_where_none_was_meant(engine):
    """pandas 3 keeps NaN in object columns; the bulk path must treat it as blank, not crash."""
    from openir.registry.bulk import load_dataset

    ds = generate_registry(60, 3, seed=6, prefix="N")
    ds.procedures["disease"] = ds.procedures["disease"].astype(object)
    ds.procedures.loc[::3, "disease"] = np.nan
    assert load_dataset(engine, ds)["procedures"] == 60
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Procedure.disease, Procedure.diagnosis_code, Procedure.n_flags)).all()
    assert sum(d is None for d, _, _ in rows) == 20 and all((d is None) == (c is None) for d, c, _ in rows)
