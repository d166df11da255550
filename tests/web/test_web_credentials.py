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
