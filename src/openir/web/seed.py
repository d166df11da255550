"""Demo content for the web application: a synthetic registry, one user per role and hospital,
dose reports (some above alert thresholds) and small synthetic case volumes to view."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import sqlalchemy as sa
from scipy import ndimage

from openir.registry import (
    list_hospitals,
    list_procedures,
    load_catalogue,
    load_dataset,
    merge_procedure_links,
    session_scope,
)
from openir.verify import signed_voxel_margin

from .context import Ctx
from .models import User
from .security import hash_password


def add_user(ctx: Ctx, username: str, password: str, role: str, hospital_code: str | None = None,
             operator_code: str | None = None, lang: str = "en") -> None:
    """Create an account unless the user name exists (seeding is re-runnable)."""
    with session_scope(ctx.engine, "seed") as s:
        if s.scalar(sa.select(User.id).where(User.username == username)) is None:
            s.add(User(username=username, password_hash=hash_password(password), role=role,
                       hospital_code=hospital_code, operator_code=operator_code, lang=lang))


def _modality_of(technique: str) -> str:
    """The ablation modality a technique code names (the demo plan must match its procedure)."""
    for key, modality in (("rfa", "radiofrequency"), ("cryo", "cryo"), ("ire", "ire"), ("laser", "laser")):
        if key in technique:
            return modality
    return "microwave"


def case_volume(seed: int, shape: tuple[int, int, int] = (40, 96, 96)) -> dict[str, np.ndarray]:
    """A small synthetic abdomen-like volume (HU) with a tumour (1) and an ablation zone (2)."""
    rng = np.random.default_rng(seed)
    k, j, i = np.indices(shape, dtype=np.float32)
    c = np.array(shape, np.float32) / 2
    body = ((j - c[1]) / (0.45 * shape[1])) ** 2 + ((i - c[2]) / (0.48 * shape[2])) ** 2 < 1
    img = np.where(body, 40.0, -1000.0).astype(np.float32) + rng.normal(0, 12, shape).astype(np.float32)
    t = c + rng.uniform(-6, 6, 3)
    z = t + rng.uniform(-1.6, 1.6, 3) * np.array([0.4, 1.0, 1.0])  # the zone a little off-centre, as it is
    d = np.sqrt(((k - t[0]) * 2.5) ** 2 + (j - t[1]) ** 2 + (i - t[2]) ** 2)  # mm, 2.5 mm slices
    dz = np.sqrt(((k - z[0]) * 2.5) ** 2 + (j - z[1]) ** 2 + (i - z[2]) ** 2)
    img[d < 10] += 25
    lab = np.zeros(shape, np.int16)
    lab[dz < 15] = 2
    lab[d < 10] = 1
    spacing = np.array([2.5, 1.0, 1.0])
    tumour = d < 10
    surf = tumour & ~ndimage.binary_erosion(tumour, border_value=1)
    margin = np.full(shape, np.nan, np.float32)  # signed minimal margin at the tumour surface, mm
    margin[surf] = signed_voxel_margin(tumour, dz < 15, spacing)
    return {"image": img, "labels": lab, "spacing": spacing, "margin_mm": margin}


def seed_demo(ctx: Ctx, *, procedures: int = 400, hospitals: int = 4, seed: int = 0, password: str = "openir-demo-pass",
              cases: int = 3, dose_reports: int = 24) -> dict[str, Any]:
    """Fill an empty application database; returns the user names (all share ``password``)."""
    from pydicom import dcmwrite

    from openir.phantom import XrayRdsrSpec, synthetic_xray_rdsr
    from openir.phantom.registry_data import generate_registry

    ds = generate_registry(procedures, hospitals, seed=seed)
    load_dataset(ctx.engine, ds)
    from openir.phantom.registry_costs import generate_costs
    from openir.registry import store_cost_dataset

    costs = generate_costs(ds.procedures, seed=seed)  # settlement lists for the DRG page
    store_cost_dataset(ctx.engine, costs.headers, costs.items)
    users: dict[str, str] = {"admin": "admin", "centre": "centre"}
    add_user(ctx, "admin", password, "admin")
    add_user(ctx, "centre", password, "centre", lang="zh-CN")
    for code in ds.hospitals["code"]:
        op = ds.operators.loc[ds.operators["hospital_code"] == code, "code"]
        add_user(ctx, f"qo-{code.lower()}", password, "quality_officer", code)
        add_user(ctx, f"op-{code.lower()}", password, "operator", code, str(op.iloc[0]) if len(op) else None)
    from .cases import case_file

    ablation = {t.code for t in load_catalogue().techniques.values() if t.category == "ablation"}
    with session_scope(ctx.engine, "seed") as s:
        hosp = sorted(list_hospitals(s), key=lambda h: h.id)  # registry order, as loaded
        for h in hosp[:hospitals]:
            (ctx.storage / "cases" / h.code).mkdir(parents=True, exist_ok=True)
            # an ablation plan and margin verdict belong to ablations only
            abl = [q for q in list_procedures(s, hospitals=[h.code], limit=None, order="entry") if q.technique in ablation]
            for proc in abl[:cases]:
                name = case_file(h.code, proc.uid)
                vol = case_volume(seed * 1000 + proc.id)
                np.savez_compressed(ctx.storage / name, **vol)
                low = float(np.nanmin(vol["margin_mm"]))
                merge_procedure_links(s, proc.id, {
                    "image": name,
                    "plan": {"modality": _modality_of(proc.technique), "device": "demo", "trajectories": [
                        {"entry_mm": [10.0, 48.0, 50.0], "target_mm": [48.0, 48.0, 50.0]}], "n_probes": 1},
                    "verification": {"min_margin_mm": round(low, 1), "verdict": (  # from the case's margin map
                        "complete, margin >= 5 mm" if low >= 5 else "complete, margin 0-5 mm" if low >= 0
                        else "incomplete: tumour outside the zone")},
                    "thermometry": [{"t_s": t, "max_c": 37 + 2.5 * t / 10} for t in range(0, 60, 20)],
                    "follow_up": {"months": 3, "ltp": False}})
        # dose reports: each hospital's first patients, a few above the alert levels
        procs = list_procedures(s, limit=None, order="entry")
    per_h: dict[str, list[tuple[str, str]]] = {h.code: [] for h in hosp}
    for proc in procs:
        per_h[proc.hospital_code].append((proc.patient_key, proc.uid))
    per_h = {code: rows for code, rows in per_h.items() if rows}
    n = 0
    for code, rows in per_h.items():
        for m, (key, _uid) in enumerate(rows[: max(1, dose_reports // max(1, len(per_h)))]):
            site = XrayRdsrSpec(institution=code, station=f"{code}-ROOM-{1 + m % 2}",
                                procedure=["Hepatic chemoembolisation", "Liver ablation"][m % 2])
            ds_ = synthetic_xray_rdsr(n_events=6, seed=seed * 7919 + n, patient_id=key, spec=site,
                                     dose_scale=150.0 if m % 3 == 0 else 1.0, start=datetime(2024, 3, 4, 9) + timedelta(days=n))
            buf = io.BytesIO()
            dcmwrite(buf, ds_, enforce_file_format=True)
            ctx.dose.import_bytes(buf.getvalue(), name=f"seed-{n}.dcm")
            n += 1
    ctx.bump()
    return {"password": password, "users": sorted(users) + [f"{r}-{c.lower()}" for c in ds.hospitals["code"] for r in ("qo", "op")],
            "hospitals": list(ds.hospitals["code"]), "dose_reports": n}
