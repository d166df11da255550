"""The credentials page and API: quality officers see their own hospital's operators only, the
centre sees every hospital, operators have no access; zh-CN and English."""

from __future__ import annotations

import sqlalchemy as sa

from openir.registry.models import Hospital, Operator


def _operators(web_app) -> dict[str, set[str]]:
    with web_app.state.ctx.engine.connect() as c:
        rows = c.execute(sa.select(Operator.code, Hospital.code).join(Hospital, Hospital.id == Operator.hospital_id)).all()
    out: dict[str, set[str]] = {}
    for op, h in rows:
        out.setdefault(h, set()).add(op)
    return out


def test_quality_officer_sees_own_hospital_only(web_app, client_for):
    ops = _operators(web_app)
    c = client_for("qo-h001")
    r = c.get("/api/credentials")
    assert r.status_code == 200
    assert {x["operator"] for x in r.json()} == ops["H001"]
    assert {x["hospital"] for x in r.json()} == {"H001"}
    page = c.get("/credentials")
    assert page.status_code == 200 and 'id="credentials"' in page.text
    others = set().union(*(v for k, v in ops.items() if k != "H001"))
    assert not [o for o in others if f">{o}<" in page.text]
    assert c.get("/api/credentials?hospital=H002").status_code == 403
    assert c.get("/credentials?hospital=H002").status_code == 403
    due = c.get("/api/credentials?due=true").json()
    assert all(x["due"] for x in due) and {x["operator"] for x in due} <= ops["H001"]


def test_operator_role_has_no_access_and_login_is_required(web_app, client_for):
    c = client_for("op-h001")
    assert c.get("/api/credentials").status_code == 403
    assert c.get("/credentials").status_code == 403
    anon = client_for()
    assert anon.get("/api/credentials").status_code == 401
    assert anon.get("/credentials").status_code in (303, 307)


def test_centre_sees_every_hospital_in_chinese(web_app, client_for):
    ops = _operators(web_app)
    c = client_for("centre")  # the seeded centre user reads Chinese
    rows = c.get("/api/credentials").json()
    assert {x["operator"] for x in rows} == set().union(*ops.values())
    assert {x["operator"] for x in c.get("/api/credentials?hospital=H002").json()} == ops["H002"]
    page = c.get("/credentials")
    assert page.status_code == 200 and "术者资质" in page.text and "Operator credentials" not in page.text
    en = client_for("admin").get("/credentials")
    assert en.status_code == 200 and "Operator credentials: who is due for what" in en.text


def test_training_upload_own_hospital_only_all_or_nothing(web_app, client_for):
    ops = _operators(web_app)
    mine, theirs = sorted(ops["H001"])[0], sorted(ops["H002"])[0]
    c = client_for("qo-h001")
    csrf = c.headers["X-CSRF-Token"]
    head = "operator,date,course,hours,provider,certificate_id\n"
    bad = head + f"{mine},2025-03-01,Refresher,8,QC centre,\n{theirs},2025-03-01,Refresher,8,QC centre,\n"
    r = c.post("/credentials/training", data={"csrf_token": csrf}, files={"file": ("train.csv", bad, "text/csv")})
    assert r.status_code == 422 and f"train.csv [operator]: unknown operator code(s) of hospital H001 {theirs} (rows 3)" in r.text
    before = {x["operator"]: x["last_training"] for x in c.get("/api/credentials").json()}
    assert before[mine] is None or before[mine] != "2025-03-01"  # nothing stored
    good = head + f"{mine},2025-03-01,Refresher,8,QC centre,C-9\n"
    r = c.post("/credentials/training", data={"csrf_token": csrf}, files={"file": ("train.csv", good, "text/csv")})
    assert r.status_code == 200 and 'id="upload-ok"' in r.text
    after = {x["operator"]: x for x in c.get("/api/credentials").json()}
    assert after[mine]["last_training"] == "2025-03-01" and after[mine]["training_hours"] >= 8
    no_csrf = client_for("qo-h001")
    no_csrf.headers.pop("X-CSRF-Token")
    r = no_csrf.post("/credentials/training", files={"file": ("train.csv", good, "text/csv")})
    assert r.status_code == 403
    assert client_for("op-h001").post("/credentials/training", data={"csrf_token": ""},
                                      files={"file": ("t.csv", good, "text/csv")}).status_code == 403
