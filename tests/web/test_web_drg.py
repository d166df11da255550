"""The DRG cost page: the centre sees every hospital, a hospital user their own against anonymised
others (table, API and funnel plot), in English and zh-CN."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import openir.web
from openir.registry import analyse_drg

I18N = Path(openir.web.__path__[0]) / "i18n"


def test_centre_sees_all_hospitals(client_for, web_app):
    c = client_for("centre")
    c.put("/api/me/lang", json={"lang": "en"})
    body = c.get("/api/drg?group=RD15").json()
    res = analyse_drg(web_app.state.ctx.engine).summary
    exp = res[res["drg_code"] == "RD15"].set_index("hospital_code")
    got = {r["hospital"]: r for r in body["rows"]}
    assert set(got) == set(exp.index) and body["payment"]["example"] is True
    for h, r in got.items():
        assert r["cases"] == exp.loc[h, "cases"] and r["cost_mean"] == pytest.approx(exp.loc[h, "cost_mean"])
    html = c.get("/drg?group=RD15").text
    assert 'id="drg-table"' in html and all(h in html for h in exp.index)
    png = c.get("/drg/funnel/RD15.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
    assert c.get("/drg/funnel/NOPE.png").status_code == 404


def test_hospital_user_sees_others_anonymised(client_for, web_app):
    c = client_for("op-h001")
    c.put("/api/me/lang", json={"lang": "en"})
    rows = c.get("/api/drg").json()["rows"]
    names = {r["hospital"] for r in rows}
    assert "H001" in names and not any(re.fullmatch(r"H\d{3}", n) for n in names - {"H001"})
    assert all(r["own"] == (r["hospital"] == "H001") for r in rows)
    html = c.get("/drg").text
    assert not re.search(r"H00[2-9]", html)
    assert c.get("/drg/funnel/RD15.png").status_code == 200
    assert client_for().get("/drg").status_code == 303  # not logged in: to the login page


def test_drg_page_in_zh_cn_has_no_english_message(client_for):
    en = json.loads((I18N / "drg.en.json").read_text(encoding="utf-8"))
    zh = json.loads((I18N / "drg.zh-CN.json").read_text(encoding="utf-8"))
    assert set(en) == set(zh)
    c = client_for("centre")
    c.put("/api/me/lang", json={"lang": "zh-CN"})
    html = c.get("/drg").text
    assert zh["drg_title"] in html
    assert not [v for v in en.values() if len(v) > 3 and v in html]
