"""SOP benchmark: pre-procedure checks of 100,000 patients, vectorised, against plain pandas.

Run: .venv/bin/python benchmarks/sop_bench.py [--n 100000] [--repeat 3] [--loop-n 2000]

* ours: ``openir.sop.check_table`` (numpy masks over compiled rules, every technique at once);
* baseline: a plain pandas implementation written here from the same thresholds: one boolean mask
  per threshold (INR and platelets by bleeding-risk class, arterial INR, eGFR before iodinated
  contrast, pregnancy, Child-Pugh C, coded contraindications, indications, antithrombotics, contrast
  allergy, anticoagulant holds), technique facts joined from the SOP files; its flags are checked equal to ours;
* for scale: ``check_patient`` called row by row (pydantic values and deviations), on ``--loop-n``
  rows, reported per row and extrapolated.
Times are best of ``--repeat`` runs in one process.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from _timing import best  # benchmarks/ is on sys.path when a script there runs
from openir.sop import PatientValues, check_patient, check_table, load_sop, technique_ids


def synthetic_patients(n: int, seed: int = 7) -> pd.DataFrame:
    """Random pre-procedure values with ~8 % of each lab missing (NaN/empty = not recorded)."""
    rng = np.random.default_rng(seed)
    techs = np.array(technique_ids())
    df = pd.DataFrame({"technique": rng.choice(techs, n)})
    df["inr"] = np.round(rng.lognormal(np.log(1.2), 0.3, n), 2)
    df["platelets"] = np.round(rng.lognormal(np.log(160), 0.6, n), 0)
    df["egfr"] = np.round(rng.uniform(5, 120, n), 0)
    for c in ("inr", "platelets", "egfr"):
        df.loc[rng.random(n) < 0.08, c] = np.nan
    df["sex"] = rng.choice(["M", "F", ""], n, p=[0.55, 0.4, 0.05])
    df["pregnancy"] = np.where(df["sex"] == "M", "", rng.choice(["not_pregnant", "pregnant", "not_applicable", ""], n,
                                                                  p=[0.6, 0.02, 0.3, 0.08]))
    df["on_dialysis"] = np.where(rng.random(n) < 0.05, "true", "")
    df["access_site"] = rng.choice(["", "femoral", "radial"], n, p=[0.5, 0.3, 0.2])
    df["child_pugh"] = rng.choice(["A", "B", "C", ""], n, p=[0.6, 0.2, 0.05, 0.15])
    df["diagnosis_code"] = rng.choice(["C22.0", "C34", "C25", "K75.0", "I65.2", "D25", "N18.5", "I70.2", "R91", ""], n)
    df["conditions"] = rng.choice(["none", "", "I10", "D65", "E11.9;I10"], n, p=[0.6, 0.1, 0.2, 0.02, 0.08])
    df["antithrombotics"] = rng.choice(
        ["none", "", "aspirin:antiplatelet", "clopidogrel:antiplatelet;aspirin:antiplatelet",
         "rivaroxaban:anticoagulant@2026-11-29T08:00", "apixaban:anticoagulant@2026-11-28T08:00", "warfarin:anticoagulant"],
        n, p=[0.62, 0.1, 0.15, 0.05, 0.03, 0.03, 0.02])
    df["procedure_at"] = rng.choice(["2026-12-01T08:00", "2026-12-02T08:00", ""], n, p=[0.5, 0.4, 0.1])
    df["allergies"] = rng.choice(["none", "", "iodinated_contrast"], n, p=[0.8, 0.15, 0.05])
    df["iodinated_contrast"] = rng.choice(["", "true"], n, p=[0.8, 0.2])
    return df


HOLD_DAYS = {"apixaban": 2, "rivaroxaban": 2, "edoxaban": 2, "dabigatran": 4, "warfarin": 5}  # _checks.yaml


def plain_pandas(df: pd.DataFrame) -> pd.DataFrame:
    """The same thresholds as plain pandas masks (SIR 2019, ACR-NKF 2020; see sop/data/_checks.yaml)."""
    facts = pd.DataFrame([{"technique": t, "risk": (s := load_sop(t)).bleeding_risk.class_,
                           "arterial": s.arterial_access.required, "agent": s.contrast.agent, "radiation": s.radiation.uses,
                           "cp_c": any(c.field == "child_pugh" for c in s.contraindications),
                           "ind": tuple(c.code.replace(".", "") for c in s.indications if c.code),
                           "contra": tuple(c.code.replace(".", "") for c in s.contraindications if c.code)}
                          for t in technique_ids()]).set_index("technique")
    f = facts.loc[df["technique"]].reset_index(drop=True)
    high, low = f["risk"].eq("high"), f["risk"].eq("low")
    art = f["arterial"].astype(bool)
    iodinated = f["agent"].eq("iodinated") | (f["agent"].eq("optional") & df["iodinated_contrast"].eq("true"))
    inr, plt, egfr = df["inr"], df["platelets"], df["egfr"]
    radial = df["access_site"].eq("radial")
    female_or_unknown = df["sex"].isin(["F", ""])
    out = pd.DataFrame(index=df.index)

    def sev(block, warn, missing, missing_sev, applies):
        s = pd.Series("", index=df.index, dtype=object)
        s[warn & ~missing] = "warn"
        s[block & ~missing] = "block"
        s[missing] = missing_sev
        return s.where(applies, "")

    out["inr_high_risk"] = sev(inr > 1.8, inr > 1.5, inr.isna(), "block", high)
    out["inr_low_risk"] = sev(inr > 3.0, inr > 2.0, inr.isna(), "warn", low & ~art)
    out["inr_arterial_femoral"] = sev(inr >= 1.8, inr != inr, inr.isna(), "warn", low & art & ~radial)
    out["inr_arterial_radial"] = sev(inr >= 2.2, inr != inr, inr.isna(), "warn", low & art & radial)
    out["platelets_high_risk"] = sev(plt < 50, plt != plt, plt.isna(), "block", high)
    out["platelets_low_risk"] = sev(plt < 20, plt != plt, plt.isna(), "warn", low)
    at = df["antithrombotics"]
    out["antithrombotic_high_risk"] = sev(at != at, ~at.isin(["", "none"]), at.eq(""), "warn", high)
    parts = at.str.split(";").explode()
    name = parts.str.split(":").str[0].str.strip().str.lower()
    last = pd.to_datetime(parts.str.split("@").str[1], errors="coerce")
    proc = pd.to_datetime(df["procedure_at"].replace("", None), errors="coerce").reindex(parts.index)
    need = name.map(HOLD_DAYS)
    short = need.notna() & last.notna() & proc.notna() & ((proc - last).dt.total_seconds() / 3600 < 24 * need + 12)
    unknown = need.notna() & (last.isna() | proc.isna())
    none = pd.Series(False, index=df.index)
    out["anticoagulant_withholding_high_risk"] = sev(short.groupby(level=0).any(), unknown.groupby(level=0).any(),
                                                     none, "", high)
    out["egfr_iodinated_contrast"] = sev(egfr != egfr, egfr < 30, egfr.isna(), "warn", iodinated & df["on_dialysis"].ne("true"))
    preg = df["pregnancy"]
    out["pregnancy"] = sev(preg.eq("pregnant"), preg != preg, preg.eq(""), "warn", f["radiation"].astype(bool) & female_or_unknown)
    al = df["allergies"]
    out["contrast_allergy"] = sev(al != al, al.str.split(";").map(lambda xs: "iodinated_contrast" in xs), al != al, "", iodinated)
    cp = df["child_pugh"]
    out["child_pugh_contraindication"] = sev(cp.eq("C"), cp != cp, cp.eq(""), "warn", f["cp_c"].astype(bool))
    cond = df["conditions"]
    contra = pd.Series([any(c.replace(".", "").startswith(st) for c in x.split(";") if c and c != "none")
                        for x, st in zip(cond, f["contra"], strict=True)], index=df.index)
    out["coded_contraindication"] = sev(contra, cond != cond, cond.eq(""), "warn", pd.Series(True, index=df.index))
    dx = df["diagnosis_code"].str.replace(".", "", regex=False)
    inside = pd.Series([d.startswith(st) for d, st in zip(dx, f["ind"], strict=True)], index=df.index)
    out["indication"] = sev(dx != dx, ~inside, dx.eq(""), "warn", pd.Series(True, index=df.index))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--loop-n", type=int, default=2000)
    a = ap.parse_args()
    df = synthetic_patients(a.n)
    t_ours, ours = best(lambda: check_table(df), a.repeat)
    t_pd, base = best(lambda: plain_pandas(df), a.repeat)
    base = base[ours.columns]  # type: ignore[index]
    diff = int((ours != base).to_numpy().sum())  # type: ignore[union-attr]
    sub = df.head(a.loop_n).astype(object)
    sub = sub.where(sub.notna(), "")  # a blank cell is "not recorded" (a NaN value is refused by PatientValues)
    t0 = time.perf_counter()
    loop = [check_patient(r["technique"], PatientValues.from_flat(r)) for r in sub.to_dict("records")]
    t_loop = (time.perf_counter() - t0) / len(sub)
    loop_flags = {(i, d.check, d.severity) for i, c in enumerate(loop) for d in c.deviations}
    ours_sub = ours.head(a.loop_n)  # type: ignore[union-attr]
    table_flags = {(i, c, s) for (i, c), s in ours_sub.stack().items() if s}
    n_flags = int((ours != "").to_numpy().sum())  # type: ignore[union-attr]
    print(f"{a.n} patients, {len(ours.columns)} checks, {n_flags} flags "  # type: ignore[union-attr]
          f"({int((ours == 'block').any(axis=1).sum())} patients with a block deviation)")  # type: ignore[union-attr]
    print(f"check_table (ours, vectorised):  {t_ours:.3f} s  ({a.n / t_ours:,.0f} patients/s)")
    print(f"plain pandas masks (baseline):   {t_pd:.3f} s  -> ratio baseline/ours {t_pd / t_ours:.2f}x; "
          f"cells differing: {diff}")
    print(f"check_patient row by row:        {t_loop * 1e3:.3f} ms/patient (x{a.n} = {t_loop * a.n:.1f} s, "
          f"{t_loop * a.n / t_ours:.0f}x ours); same flags as check_table on {len(sub)} rows: {loop_flags == table_flags}")
    if diff or loop_flags != table_flags:
        raise SystemExit("results differ")


if __name__ == "__main__":
    main()
