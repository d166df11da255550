"""Stored-file links: only the server creates them, every read checks them against the record that
holds them, and the consulted expert sees the images of the case they were asked about, while the
consultation is open."""

from __future__ import annotations

import sqlalchemy as sa

from openir.registry import merge_procedure_links, session_scope
from openir.registry.models import AuditLog, Hospital, Procedure


def _cases(web_app, code):
    with web_app.state.ctx.engine.connect() as c:
        return c.execute(sa.select(Procedure.id, Procedure.links).join(Hospital, Hospital.id == Procedure.hospital_id)
                         .where(Hospital.code == code)).all()


def _with_image(web_app, code):
    return next((pid, links) for pid, links in _cases(web_app, code) if links and links.get("image"))


def test_a_client_cannot_name_a_stored_file(client_for, web_app):
    _, b_links = _with_image(web_app, "H002")
    c = client_for("op-h001")
    for key in ("image", "labels"):
        proc = {"uid": f"LEAK-{key}", "patient_key": "PK-LEAK", "hospital_code": "H001", "operator_code": "H001-OP01",
                "date": "2024-01-02", "technique": "liver_mwa", "links": {key: b_links["image"]}}
        r = c.post("/api/procedures", json=proc)
        assert r.status_code == 422 and f"links.{key}" in r.text


def test_a_link_to_another_hospitals_file_is_never_served(client_for, web_app):
    """However a foreign path got into a record (an import, an old database), reads refuse it."""
    _, b_links = _with_image(web_app, "H002")
    a_pid, a_links = next((pid, links) for pid, links in _cases(web_app, "H001") if not (links or {}).get("image"))
    own_pid, own_links = _with_image(web_app, "H001")
    c = client_for("op-h001")
    for tampered in ({"image": b_links["image"]}, {"image": own_links["image"].replace(".npz", "x.npz")},
                     {"image": "../" + b_links["image"]}, {"image": own_links["image"], "labels": b_links["image"]}):
        with session_scope(web_app.state.ctx.engine, "test") as s:
            merge_procedure_links(s, a_pid, {"labels": None, **tampered})
        assert c.get(f"/api/cases/{a_pid}/slice.png").status_code == 404, tampered
        assert c.get(f"/api/cases/{a_pid}").json()["has_images"] is False
    assert c.get(f"/api/cases/{own_pid}/slice.png").status_code == 200  # its own file still works
    with session_scope(web_app.state.ctx.engine, "test") as s:
        merge_procedure_links(s, a_pid, {"image": None, "labels": None})


def test_the_consulted_expert_sees_the_images_while_the_consultation_is_open(client_for, web_app):
    b_pid, _ = _with_image(web_app, "H002")
    asker, expert = client_for("qo-h002"), client_for("qo-h004")
    assert expert.get(f"/api/cases/{b_pid}/slice.png").status_code == 404  # not asked yet
    cid = asker.post("/api/consultations", json={"procedure_id": b_pid, "to_hospital": "H004",
                                                 "question": "is the margin enough?"}).json()["id"]
    r = expert.get(f"/api/cases/{b_pid}/slice.png?axis=coronal&index=10")
    assert r.status_code == 200 and r.content.startswith(b"\x89PNG")
    with web_app.state.ctx.engine.connect() as conn:
        row = conn.execute(sa.select(AuditLog.after).where(AuditLog.actor == "qo-h004", AuditLog.table_name == "case_images")
                           .order_by(AuditLog.id.desc())).first()
    assert row is not None and row[0] == {"consultation": cid}
    assert client_for("qo-h003").get(f"/api/cases/{b_pid}/slice.png").status_code == 404  # not asked
    asker.post(f"/api/consultations/{cid}/transition", json={"state": "closed"})
    assert expert.get(f"/api/cases/{b_pid}/slice.png").status_code == 404  # closed: access ends


def test_browsers_get_html_error_pages_and_patient_data_is_never_cached(client_for):
    c = client_for("op-h001")
    html = {"Accept": "text/html,application/xhtml+xml"}
    r = c.get("/cases/99999999", headers=html)
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
    assert "Not found" in r.text and "Back to the start page" in r.text
    c.put("/api/me/lang", json={"lang": "zh-CN"})
    r = c.get("/cases/99999999", headers=html)
    assert r.status_code == 404 and "未找到" in r.text
    c.put("/api/me/lang", json={"lang": "en"})
    r = c.get("/api/cases/99999999", headers=html)  # the API keeps answering JSON
    assert r.status_code == 404 and r.json()["detail"] == "not found"
    pid = c.get("/api/procedures?limit=1").json()["items"][0]["id"]
    for path in (f"/api/cases/{pid}", f"/cases/{pid}", "/procedures", "/api/procedures"):
        assert c.get(path).headers["cache-control"] == "no-store", path
    assert "no-store" not in c.get("/static/app.css").headers.get("cache-control", "")


def test_dashboards_lead_to_the_cases_behind_them(client_for):
    centre = client_for("centre")
    html = centre.get("/quality?indicator=" + centre.get("/api/quality/indicators").json()[0]["indicator"]).text
    import re

    link = re.search(r'href="(/procedures\?indicator=[^"&]+&(?:amp;)?hospital=[^"&]+)">(\d+)</a>', html)
    assert link, "funnel table rows link to their cases"
    url, n = link.group(1).replace("&amp;", "&"), int(link.group(2))
    page = centre.get(url.replace("/procedures", "/api/procedures") + "&limit=500").json()
    assert page["total"] == n  # exactly the point's cases
    assert all(i["deidentified"] for i in page["items"])
    # a hospital searches its own records; the centre cannot search identifiers at all
    op = client_for("op-h001")
    mine = op.get("/api/procedures?limit=1").json()["items"][0]
    assert op.get(f"/api/procedures?q={mine['patient_key']}").json()["total"] >= 1
    assert centre.get(f"/api/procedures?q={mine['patient_key']}").json()["total"] > 1  # ignored, not a probe
    r = op.get("/procedures?technique=liver_mwa&date_from=2020-01-01")
    assert r.status_code == 200 and 'name="technique"' in r.text


def test_account_and_user_pages(client_for):
    import re

    op = client_for("op-h002")
    csrf = op.headers["X-CSRF-Token"]
    r = op.post("/account/tokens", data={"csrf_token": csrf, "name": "modality-1"})
    token = re.search(r'id="new-token">([^<]+)<', r.text).group(1)
    assert client_for().get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    tid = max(int(x) for x in re.findall(r'/account/tokens/(\d+)/revoke', r.text))
    assert op.post(f"/account/tokens/{tid}/revoke", data={"csrf_token": csrf}).status_code == 303
    assert client_for().get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert token not in op.get("/account").text  # shown once only
    assert op.get("/admin/users").status_code == 403
    adm = client_for("admin")
    a = adm.headers["X-CSRF-Token"]
    r = adm.post("/admin/users", data={"csrf_token": a, "username": "new-qo", "password": "short", "role": "centre"})
    assert r.status_code == 422 and "10 characters" in r.text
    r = adm.post("/admin/users", data={"csrf_token": a, "username": "new-qo", "password": "long-enough-pw",
                                       "role": "quality_officer", "hospital_code": "H002"})
    assert r.status_code == 200 and "new-qo" in r.text, re.search(r"role=\"alert\">([^<]*)<", r.text)
    assert adm.post("/admin/users/new-qo/active", data={"csrf_token": a, "active": "0"}).status_code == 303
    c = client_for()
    assert c.post("/api/login", json={"username": "new-qo", "password": "long-enough-pw"}).status_code == 401
    assert adm.post("/admin/users/admin/active", data={"csrf_token": a, "active": "0"}).status_code == 409


def test_edit_then_lock_a_record_with_audit(client_for, web_app):
    op, qo = client_for("op-h003"), client_for("qo-h003")
    pid = op.get("/api/procedures?limit=1").json()["items"][0]["id"]
    r = op.put(f"/api/procedures/{pid}", json={"age_years": 71, "asa_class": 3})
    assert r.status_code == 200 and set(r.json()["changed"]) <= {"age_years", "asa_class"}
    assert op.put(f"/api/procedures/{pid}", json={"technique": "tace"}).status_code == 422  # not editable
    with web_app.state.ctx.engine.connect() as conn:
        row = conn.execute(sa.select(AuditLog.before, AuditLog.after).where(
            AuditLog.actor == "op-h003", AuditLog.table_name == "procedures", AuditLog.action == "update",
            AuditLog.row_key == str(pid)).order_by(AuditLog.id.desc())).first()
    assert row is not None and row[1].get("age_years") == 71
    assert op.post(f"/api/procedures/{pid}/lock").status_code == 403  # the quality officer signs off
    assert qo.post(f"/api/procedures/{pid}/lock").status_code == 200
    assert op.put(f"/api/procedures/{pid}", json={"age_years": 72}).status_code == 409
    page = op.get(f"/cases/{pid}").text
    assert 'id="locked"' in page and 'id="edit-form"' not in page
