"""zh-CN is complete: no template holds interface text outside the message catalogues, and pages
rendered in zh-CN show no English catalogue message."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import openir.web

WEB = Path(openir.web.__file__).parent
# units, acronyms and proper names that are written the same in both languages
SAME_IN_BOTH = {"English", "mm", "mL", "JSON", "SR", "KAP Gy·cm²", "Ka,r Gy", "CIRSE", "SIR 2017", "DRL", "/DRL",
                "95% CI", "CUSUM", "SR, KAP", "Gy·cm², Ka,r", "Gy", "< 0 mm", "0-5 mm", "≥ 5 mm"}


def _template_texts(source: str) -> list[str]:
    s = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", " ", source, flags=re.S)
    s = re.sub(r"<script.*?</script>|<style.*?</style>", " ", s, flags=re.S)
    found: list[str] = []

    class Texts(HTMLParser):
        def handle_data(self, data: str) -> None:
            found.extend(x for x in (p.strip(" :,·") for p in re.split(r"\s{2,}", data.strip())) if re.search(r"[A-Za-z]{2,}", x))

        def handle_starttag(self, tag, attrs) -> None:
            found.extend(v for k, v in attrs if k in ("title", "placeholder", "alt", "aria-label") and v
                         and re.search(r"[A-Za-z]{2,}", v))

    Texts().feed(s)
    return [x for x in found if x not in SAME_IN_BOTH]


def test_templates_hold_no_untranslated_text():
    bad = {f.name: t for f in sorted((WEB / "templates").glob("*.html")) if (t := _template_texts(f.read_text("utf-8")))}
    assert not bad, bad


def test_the_check_finds_literal_text():
    assert _template_texts("<p>{{ t('x') }} Saved <b title='Open'>mm</b></p>") == ["Saved", "Open"]


def test_catalogues_have_the_same_keys():
    en = json.loads((WEB / "i18n" / "en.json").read_text("utf-8"))
    zh = json.loads((WEB / "i18n" / "zh-CN.json").read_text("utf-8"))
    assert set(en) == set(zh), set(en) ^ set(zh)


def test_pages_in_zh_cn_show_no_english_message(client_for):
    en = json.loads((WEB / "i18n" / "en.json").read_text("utf-8"))
    zh = json.loads((WEB / "i18n" / "zh-CN.json").read_text("utf-8"))
    english = {v for k, v in en.items() if zh.get(k) != v and len(v) > 3 and v not in SAME_IN_BOTH}
    for user, pages in (("op-h001", ["/procedures", "/procedures/new", "/consultations"]),
                        ("centre", ["/quality", "/dose"])):
        c = client_for(user)
        c.put("/api/me/lang", json={"lang": "zh-CN"})
        if user == "op-h001":
            pid = c.get("/api/procedures?limit=1").json()["items"][0]["id"]
            pages = [*pages, f"/cases/{pid}"]
        for page in pages:
            html = c.get(page).text
            body = re.sub(r"<script.*?</script>|<[^>]+>", "\n", html, flags=re.S)
            shown = {x.strip() for x in body.split("\n") if x.strip()}
            left = shown & english
            assert not left, (page, left)
        c.put("/api/me/lang", json={"lang": "en"})


def test_messages_built_from_data_follow_the_reader(client_for):
    from openir.web.i18n import translator
    from openir.web.messages import alert_text, note_payload, note_text, reason_text

    zh, en = translator("zh-CN"), translator("en")
    stored = note_payload("notify_message", cid=7, what="@plan_proposal", by="H002")
    assert note_text(en, stored) == "Consultation #7: new plan proposal from H002"
    assert note_text(zh, stored) == "会诊 #7：H002 发来新的方案建议"
    assert note_text(zh, "an old plain-text note") == "an old plain-text note"
    assert "超过高辐射剂量水平 5 Gy" in alert_text(zh, "dose_rp_gy", "procedure", 5.2, 5.0, "Gy")
    assert alert_text(en, "fluoro_time_s", "procedure", 3900, 3600, "s").startswith("Fluoroscopy time 65.0 min")
    assert reason_text(zh, "not A: 120 procedures/year < 200 required for a tertiary hospital") == \
        "未达 A 级：年手术量 120 例 < 三级医院要求的 200 例"
    assert reason_text(zh, "not B: funnel alarm (beyond 99.8% limit) on major_ae") == \
        "未达 B 级：漏斗图报警（超出 99.8% 控制限）：严重不良事件率（SIR 2003 C-F 级）"
    c = client_for("centre")
    c.put("/api/me/lang", json={"lang": "zh-CN"})
    page = c.get("/dose").text
    assert "exceeds the substantial" not in page
    quality = c.get("/quality").text
    assert "procedures/year" not in quality and "funnel alarm" not in quality and "meets every" not in quality
    svg = c.get("/api/quality/funnel/major_ae.svg").text
    assert "严重不良事件率" in svg and "病例数" in svg
    c.put("/api/me/lang", json={"lang": "en"})


def test_an_empty_learning_curve_box_says_why():
    from openir.report.registry_figures import cusum_svg

    assert "no operator has enough cases" in cusum_svg([])


def test_validation_messages_follow_the_reader(client_for):
    c = client_for("op-h001")
    bad = {"uid": "V-1", "patient_key": "PK-V-1", "hospital_code": "H001", "operator_code": "H001-OP01",
           "date": "2024-01-02", "technique": "liver_mwa", "lesions": [{"size_mm": -5}], "age_years": 300}
    msgs = {e["loc"][-1]: e["msg"] for e in c.post("/api/procedures", json=bad).json()["detail"]}
    assert msgs["age_years"] == "must be at most 120" and msgs["size_mm"] == "must be greater than 0"
    c.put("/api/me/lang", json={"lang": "zh-CN"})
    detail = c.post("/api/procedures", json=bad).json()["detail"]
    msgs = {e["loc"][-1]: e["msg"] for e in detail}
    assert msgs["age_years"] == "不能大于 120" and msgs["size_mm"] == "必须大于 0"
    assert all(e["type"] and e["loc"] for e in detail)  # the structure stays FastAPI's
    c.put("/api/me/lang", json={"lang": "en"})


def test_registry_refusals_follow_the_reader(client_for):
    c = client_for("op-h001")
    uid = c.get("/api/procedures?limit=1").json()["items"][0]["uid"]
    dup = {"uid": uid, "patient_key": "PK-DUP-1", "hospital_code": "H001", "operator_code": "H001-OP01",
           "date": "2024-01-02", "technique": "liver_mwa"}
    assert c.post("/api/procedures", json=dup).json()["detail"][0]["msg"] == f"procedure {uid} is already recorded"
    c.put("/api/me/lang", json={"lang": "zh-CN"})
    assert c.post("/api/procedures", json=dup).json()["detail"][0]["msg"] == f"手术 {uid} 已登记"
    c.put("/api/me/lang", json={"lang": "en"})
