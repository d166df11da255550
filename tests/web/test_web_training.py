"""Exercise pages (issue 22): any signed-in user lists the teaching library, downloads a case (no
expert plan in it), uploads a plan JSON and sees the score and the figure; posts need the CSRF
token; a malformed plan gets one message, not a traceback; zh-CN and English."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest

from openir import phantom
from openir.core import body_mask_from_ct
from openir.plan import plan_ablation
from openir.training import add_case


@pytest.fixture(scope="module")
def entry(web_app):
    p = phantom.make_abdomen(seed=11, tumours=(phantom.TumourSpec(diameter_mm=22.0),), spacing_mm=(2.5, 2.5, 2.5),
                             fov_mm=(360, 280, 160), fov_centre_lps=(-10, 0, 60))
    plan = plan_ablation(p.labels, ["tumour_1"], modality="microwave", n_directions=600,
                         body_mask=body_mask_from_ct(p.ct, p.labels))
    e = add_case(web_app.state.ctx.storage / "training", p.ct, p.labels, plan, title="right lobe HCC 22 mm")
    return e, plan


def test_library_download_upload_score(client_for, entry):
    e, plan = entry
    anon = client_for()
    assert anon.get("/training").status_code == 303  # to the login page
    c = client_for("op-h001")
    page = c.get("/training")
    assert page.status_code == 200 and e.entry_id in page.text and "right lobe HCC" in page.text
    assert e.entry_id not in c.get("/training?organ=lung").text
    assert c.get(f"/training/{e.entry_id}").status_code == 200
    assert c.get("/training/tc-missing").status_code == 404
    z = zipfile.ZipFile(io.BytesIO(c.get(f"/training/{e.entry_id}/download").content))
    names = {n.split("/")[-1] for n in z.namelist()}
    assert {"image.nii.gz", "labels.nii.gz", "entry.json"} <= names and "expert_plan.json" not in names
    files = {"plan": ("mine.json", plan.model_dump_json().encode(), "application/json")}
    csrf = c.headers["X-CSRF-Token"]
    del c.headers["X-CSRF-Token"]
    assert c.post(f"/training/{e.entry_id}/score", files=files).status_code == 403  # no CSRF token
    r = c.post(f"/training/{e.entry_id}/score", files=files, data={"csrf_token": csrf})
    assert r.status_code == 200, re.findall(r"training-error\">([^<]*)", r.text)
    assert 'id="training-figure"' in r.text and "100.0 / 100.0" in r.text
    pr = plan.probes[0]
    needles = {"tumour": "tumour_1", "probes": [{"device": pr.device, "power_w": pr.power_w, "time_s": pr.time_s,
                                                 "entry_lps": list(pr.entry_lps), "tip_lps": list(pr.tip_lps)}]}
    typed = c.post(f"/training/{e.entry_id}/score", data={"csrf_token": csrf, "needles": json.dumps(needles)})
    assert typed.status_code == 200 and "100.0 / 100.0" in typed.text
    bad = c.post(f"/training/{e.entry_id}/score", files={"plan": ("bad.json", b"{", "application/json")},
                 data={"csrf_token": csrf})
    assert bad.status_code == 422 and "bad.json" in bad.text and "Traceback" not in bad.text
    c.headers["X-CSRF-Token"] = csrf
    api = c.post(f"/api/training/cases/{e.entry_id}/score", json=json.loads(plan.model_dump_json()))
    assert api.status_code == 200 and api.json()["total"] == 100.0
    assert [x["entry_id"] for x in c.get("/api/training/cases?organ=liver").json()] == [e.entry_id]


def test_exercise_page_in_chinese(client_for, entry):
    e, _ = entry
    c = client_for("qo-h002")
    c.put("/api/me/lang", json={"lang": "zh-CN"})
    try:
        html = c.get(f"/training/{e.entry_id}").text
        assert "教学病例" in html and "难度" in html and "Teaching case" not in html
    finally:
        c.put("/api/me/lang", json={"lang": "en"})


def test_seed_plan_exercise(web_app, client_for):
    """A seed-implant case: the expert seed plan scores full marks on the page, with the seed criteria
    named in the user's language; a plan with one needle's seeds removed loses dose points."""
    from openir.seeds.planner import SeedPlanOptions, plan_seeds

    p = phantom.make_abdomen(seed=11, tumours=(phantom.TumourSpec(diameter_mm=20.0),), spacing_mm=(2.5, 2.5, 2.5),
                             fov_mm=(360, 280, 160), fov_centre_lps=(-10, 0, 60))
    plan = plan_seeds(p.ct, p.labels, SeedPlanOptions(tumour="tumour_1", site="liver")).plan
    e = add_case(web_app.state.ctx.storage / "training", p.ct, p.labels, plan, title="liver seed implant 20 mm")
    assert e.technique == "seed_implantation"
    c = client_for("op-h001")
    csrf = c.headers["X-CSRF-Token"]
    files = {"plan": ("seeds.json", plan.model_dump_json().encode(), "application/json")}
    r = c.post(f"/training/{e.entry_id}/score", files=files, data={"csrf_token": csrf})
    assert r.status_code == 200, re.findall(r"training-error\">([^<]*)", r.text)
    assert "100.0 / 100.0" in r.text and "Target D90" in r.text and 'id="training-figure"' in r.text
    drop = plan.needles[0].index
    worse = plan.model_copy(update={"needles": plan.needles[1:], "seeds": [s for s in plan.seeds if s.needle != drop]})
    api = c.post(f"/api/training/cases/{e.entry_id}/score", json=json.loads(worse.model_dump_json()))
    assert api.status_code == 200, api.text
    lost = {x["id"]: x["lost"] for x in api.json()["criteria"]}
    assert api.json()["kind"] == "seeds" and lost["d90"] + lost["v100"] > 0 and lost["needle_count"] == 0
