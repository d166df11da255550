"""Hospital isolation, route by route: a user of hospital A can neither read, list nor change
anything identifiable of hospital B through any page or API route. The test fails when a route
is added without an entry here."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi.routing import APIRoute
from starlette.routing import Route

from openir.registry.models import Hospital, Patient, Procedure
from openir.web.models import ApiToken, Consultation, DoseAck, User


def _b_secrets(web_app, client_for):
    """Identifiers of hospital H002 that H001 must never see, and ids to aim requests at."""
    eng = web_app.state.ctx.engine
    with eng.connect() as c:
        rows = c.execute(sa.select(Procedure.id, Procedure.uid, Patient.pseudo_key, Hospital.code, Procedure.links)
                         .join(Patient, Patient.id == Procedure.patient_id)
                         .join(Hospital, Hospital.id == Procedure.hospital_id)).all()
    keys_a = {r[2] for r in rows if r[3] == "H001"}
    b = [r for r in rows if r[3] == "H002"]
    b_case = next(r for r in b if r[4] and r[4].get("image"))
    secrets = {r[1] for r in b} | {r[2] for r in b if r[2] not in keys_a}
    qb = client_for("qo-h002")
    alerts = qb.get("/api/dose/alerts?only_open=true").json()
    assert alerts, "seed gives H002 open dose alerts"
    b_patient = next(a["patient_id"] for a in alerts if a["patient_id"] not in keys_a)
    cid = qb.post("/api/consultations", json={"procedure_id": b_case[0], "to_hospital": "H003",
                                               "question": "margin?"}).json()["id"]
    nid = client_for("qo-h003").get("/api/notifications").json()[0]["id"]
    qb.post("/api/tokens", json={"name": "b-machine"})
    with eng.connect() as c:
        tid = c.scalar(sa.select(sa.func.max(ApiToken.id)))
    return {"pid": b_case[0], "aid": alerts[0]["id"], "patient_id": b_patient, "cid": cid, "nid": nid,
            "code": "major_ae", "secrets": secrets, "tid": tid, "username": "qo-h002"}


def _requests(b):
    """(method, path template, json body or form) per route; B's ids substituted."""
    proc = {"uid": "X-NEW-1", "patient_key": "PK-NEW-1", "hospital_code": "H002", "operator_code": "H002-OP01",
            "date": "2024-01-02", "technique": "tace"}
    f = {"csrf_token": ""}
    return {
        ("POST", "/api/login"): {"json": {"username": "qo-h002", "password": "nope"}},
        ("POST", "/api/logout"): {},
        ("GET", "/api/me"): {}, ("PUT", "/api/me/lang"): {"json": {"lang": "en"}},
        ("POST", "/api/tokens"): {"json": {"name": "t"}},
        ("POST", "/api/users"): {"json": {"username": "evil", "password": "0123456789ab", "role": "quality_officer", "hospital_code": "H002"}},
        ("GET", "/api/catalogue"): {},
        ("POST", "/api/procedures/check"): {"json": {"technique": "tace", "operator_code": "H002-OP01"}},
        ("GET", "/api/procedures"): {}, ("POST", "/api/procedures"): {"json": proc},
        ("GET", "/api/procedures/{pid}"): {}, ("PUT", "/api/procedures/{pid}"): {"json": {"age_years": 99}},
        ("POST", "/api/procedures/{pid}/lock"): {},
        ("POST", "/cases/{pid}/edit"): {"data": {**f, "age_years": "99"}}, ("POST", "/cases/{pid}/lock"): {"data": f},
        ("GET", "/api/cases/{pid}"): {}, ("GET", "/api/cases/{pid}/slice.png"): {}, ("GET", "/api/cases/{pid}/points3d"): {},
        ("GET", "/api/dose/alerts"): {}, ("POST", "/api/dose/alerts/{aid}/ack"): {"json": {}},
        ("GET", "/api/dose/patients/{patient_id}/cumulative"): {},
        ("GET", "/api/dose/drl"): {}, ("GET", "/api/dose/drl.png"): {},
        ("GET", "/api/quality/indicators"): {}, ("GET", "/api/quality/ratings"): {}, ("GET", "/api/quality/curves"): {},
        ("GET", "/api/quality/funnel/{code}.svg"): {}, ("GET", "/api/quality/funnel/{code}.png"): {},
        ("GET", "/api/quality/cusum.svg"): {},
        ("GET", "/api/consultations"): {},
        ("POST", "/api/consultations"): {"json": {"procedure_id": b["pid"], "to_hospital": "H003", "question": "q"}},
        ("GET", "/api/consultations/{cid}"): {},
        ("POST", "/api/consultations/{cid}/messages"): {"json": {"body": "hi", "plan": {"x": 1}}},
        ("POST", "/api/consultations/{cid}/transition"): {"json": {"state": "closed"}},
        ("GET", "/api/notifications"): {}, ("POST", "/api/notifications/{nid}/read"): {},
        ("GET", "/"): {}, ("GET", "/login"): {}, ("POST", "/login"): {"data": {"username": "qo-h002", "password": "nope"}},
        ("POST", "/logout"): {"data": f}, ("POST", "/lang"): {"data": {**f, "lang": "en"}},
        ("GET", "/procedures"): {}, ("GET", "/procedures/new"): {}, ("GET", "/cases/{pid}"): {},
        ("GET", "/dose"): {}, ("POST", "/dose/alerts/{aid}/ack"): {"data": f},
        ("GET", "/quality"): {}, ("GET", "/consultations"): {},
        ("GET", "/credentials"): {}, ("GET", "/api/credentials"): {},
        ("POST", "/credentials/training"): {"data": f},
        ("POST", "/api/sop/check"): {"json": {"technique": "tace", "values": {}}},
        ("GET", "/api/training/cases"): {}, ("GET", "/training"): {},
        ("POST", "/api/training/cases/{entry_id}/score"): {"json": {}},
        ("GET", "/training/{entry_id}/download"): {}, ("GET", "/training/{entry_id}"): {},
        ("POST", "/training/{entry_id}/score"): {"data": f},
        ("GET", "/drg"): {}, ("GET", "/api/drg"): {}, ("GET", "/drg/funnel/{group}.png"): {},
        ("POST", "/consultations"): {"data": {**f, "procedure_id": b["pid"], "to_hospital": "H003", "question": "q"}},
        ("GET", "/consultations/{cid}"): {},
        ("POST", "/consultations/{cid}/messages"): {"data": {**f, "body": "x"}},
        ("POST", "/consultations/{cid}/transition"): {"data": {**f, "state": "closed"}},
        ("GET", "/healthz"): {},
        ("GET", "/account"): {}, ("POST", "/account/tokens"): {"data": {**f, "name": "mine"}},
        ("POST", "/account/tokens/{tid}/revoke"): {"data": f},
        ("GET", "/admin/users"): {},
        ("POST", "/admin/users"): {"data": {**f, "username": "evil2", "password": "0123456789ab", "role": "quality_officer",
                                            "hospital_code": "H002"}},
        ("POST", "/admin/users/{username}/active"): {"data": {**f, "active": "0"}},
    }


def _all_routes(routes):
    """(path, methods) of every route, including those of included routers (FastAPI wraps them)."""
    for r in routes:
        if isinstance(r, (APIRoute, Route)):
            yield r.path, set(r.methods or ())
        elif hasattr(r, "original_router"):
            yield from _all_routes(r.original_router.routes)


# routes that take an id of B: must refuse (4xx); the others must answer without B's identifiers
TARGETED = {"{pid}", "{aid}", "{cid}", "{nid}", "{patient_id}", "{tid}", "{username}"}


def test_every_route_isolates_hospitals(web_app, client_for):
    b = _b_secrets(web_app, client_for)
    table = _requests(b)
    routes = {(m, path) for path, methods in _all_routes(web_app.routes) if not path.startswith(("/docs", "/redoc", "/openapi"))
              for m in methods - {"HEAD"}}
    assert routes == set(table), f"untested routes: {routes - set(table)}; stale: {set(table) - routes}"
    for user in ("qo-h001", "op-h001"):
        a = client_for(user)
        csrf = a.headers["X-CSRF-Token"]
        for (method, path), kw in table.items():
            if path in ("/api/logout", "/logout"):
                continue  # would end this user's session; covered by test_web_auth
            url = path.format(group="RD1", entry_id="no-such-entry", **{k: b[k] for k in ("pid", "aid", "cid", "nid", "patient_id", "code", "tid", "username")})
            kw = {k: ({**v, "csrf_token": csrf} if k == "data" and "csrf_token" in v else v) for k, v in kw.items()}
            r = a.request(method, url, **kw)
            text = r.text
            leaked = [s for s in b["secrets"] if s in text]
            assert not leaked, f"{user} {method} {path} leaks {leaked[:3]}"
            if any(t in path for t in TARGETED) or path in ("/api/procedures", "/api/consultations", "/consultations",
                                                            "/admin/users") and method == "POST":
                assert 400 <= r.status_code < 500, f"{user} {method} {path} -> {r.status_code}"
    # nothing of B changed
    with web_app.state.ctx.engine.connect() as c:
        assert c.scalar(sa.select(Consultation.state).where(Consultation.id == b["cid"])) == "requested"
        assert c.scalar(sa.select(sa.func.count()).select_from(DoseAck).where(DoseAck.alert_id == b["aid"])) == 0
        assert c.scalar(sa.select(sa.func.count()).select_from(Procedure).where(Procedure.uid == "X-NEW-1")) == 0
        assert c.scalar(sa.select(ApiToken.revoked).where(ApiToken.id == b["tid"])) is False
        assert c.scalar(sa.select(User.active).where(User.username == "qo-h002")) is True
        assert c.scalar(sa.select(sa.func.count()).select_from(User).where(User.username == "evil2")) == 0
        assert c.scalar(sa.select(Procedure.age_years).where(Procedure.id == b["pid"])) != 99


def test_centre_sees_all_deidentified(web_app, client_for):
    b = _b_secrets(web_app, client_for)
    c = client_for("centre")
    page = c.get("/api/procedures?limit=500")
    assert page.status_code == 200 and page.json()["total"] >= 300
    assert all(i["deidentified"] for i in page.json()["items"])
    case = c.get(f"/api/cases/{b['pid']}")
    assert case.status_code == 200
    for r in (page, case, c.get("/api/dose/alerts"), c.get(f"/cases/{b['pid']}"), c.get("/dose")):
        assert not [s for s in b["secrets"] if s in r.text]
    assert c.post("/api/procedures/check", json={"technique": "tace"}).json()["errors"]["hospital_code"]
