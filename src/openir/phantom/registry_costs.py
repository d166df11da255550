"""Synthetic cost data (settlement lists) for the synthetic multi-centre registry.

For each procedure of :func:`openir.phantom.registry_data.generate_registry`: a DRG code, a length
of stay and cost items (consumables with domestic or imported origin, a device now and then, drugs,
imaging, bed days). Each hospital has its own share of domestic consumables; with ``outliers`` one
hospital uses imported consumables only and one is planted as a cost outlier (costs x 1.35), and
both are returned in ``truth``. Every price, stay and share here is a synthetic setting for
exercising the analysis, not a real tariff. Deterministic for a seed, vectorised (a million
procedures and ~5 million items in seconds).

Technique -> DRG mirrors ``openir/registry/data/drg.yaml`` ``technique_drg`` (a registry test keeps
them in step); this package may not import the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# technique -> default DRG (drg.yaml technique_drg); RD15 cases are split into RD11/RD13/RD15 below
TECHNIQUE_DRG: dict[str, str] = {
    "liver_mwa": "RD15", "liver_rfa": "RD15", "lung_ablation": "RD15", "tace": "RD15", "pvtt_treatment": "RD15",
    "seed_implantation": "RD15", "ct_biopsy": "IR-BIOPSY", "abscess_drainage": "IR-DRAIN",
    "biliary_stenting": "IR-DRAIN", "diagnostic_angiography": "IR-VASC", "dialysis_access": "IR-VASC",
    "lower_limb_pta": "IR-VASC", "uae": "IR-EMBO", "haemorrhage_embolisation": "IR-EMBO", "tips": "IR-TIPS",
    "ica_aneurysm_coiling": "IR-NEURO", "carotid_stenting": "IR-NEURO",
}
# synthetic profiles: mean stay (days), three consumables (name, domestic unit price CNY), drug and
# imaging mean (CNY); invented round numbers, not tariffs
PROFILE: dict[str, tuple[float, list[tuple[str, float]], float, float]] = {
    "liver_mwa": (6, [("微波消融针 microwave antenna", 6000), ("同轴引导针 coaxial introducer", 400), ("一次性无菌包 sterile pack", 150)], 2500, 1500),
    "liver_rfa": (6, [("射频消融电极 RF electrode", 7000), ("同轴引导针 coaxial introducer", 400), ("负极板 grounding pad", 300)], 2500, 1500),
    "lung_ablation": (6, [("微波消融针 microwave antenna", 6000), ("同轴引导针 coaxial introducer", 400), ("胸腔闭式引流包 chest drain kit", 500)], 2000, 1800),
    "tace": (7, [("微导管 microcatheter", 3000), ("载药微球 drug-eluting beads", 7000), ("导丝 guidewire", 500)], 4000, 1200),
    "pvtt_treatment": (9, [("门静脉支架 portal vein stent", 9000), ("微导管 microcatheter", 3000), ("导丝 guidewire", 500)], 5000, 1800),
    "seed_implantation": (7, [("碘-125粒子 I-125 seeds", 4000), ("植入针 implant needles", 1500), ("模板 template", 1000)], 2000, 2000),
    "ct_biopsy": (3, [("活检针 biopsy needle", 800), ("同轴引导针 coaxial introducer", 400), ("一次性无菌包 sterile pack", 150)], 500, 800),
    "abscess_drainage": (8, [("引流导管 drainage catheter", 900), ("穿刺针 puncture needle", 200), ("引流袋 drainage bag", 50)], 3000, 800),
    "biliary_stenting": (9, [("胆道支架 biliary stent", 8000), ("导丝 guidewire", 500), ("引流导管 drainage catheter", 900)], 3500, 1200),
    "diagnostic_angiography": (3, [("造影导管 angiographic catheter", 600), ("血管鞘 vascular sheath", 300), ("导丝 guidewire", 500)], 800, 600),
    "dialysis_access": (3, [("球囊导管 balloon catheter", 3500), ("血管鞘 vascular sheath", 300), ("导丝 guidewire", 500)], 800, 600),
    "lower_limb_pta": (5, [("球囊导管 balloon catheter", 3500), ("外周支架 peripheral stent", 8000), ("导丝 guidewire", 500)], 1500, 800),
    "uae": (4, [("栓塞微球 embolic microspheres", 2500), ("微导管 microcatheter", 3000), ("导丝 guidewire", 500)], 1200, 800),
    "haemorrhage_embolisation": (8, [("弹簧圈 coils", 5000), ("微导管 microcatheter", 3000), ("导丝 guidewire", 500)], 4000, 1500),
    "tips": (10, [("覆膜支架 covered stent", 16000), ("穿刺套件 TIPS set", 6000), ("球囊导管 balloon catheter", 3500)], 5000, 2000),
    "ica_aneurysm_coiling": (10, [("弹簧圈 coils", 20000), ("微导管 microcatheter", 5000), ("微导丝 microwire", 2000)], 6000, 3000),
    "carotid_stenting": (7, [("颈动脉支架 carotid stent", 12000), ("脑保护装置 embolic protection", 8000), ("球囊导管 balloon catheter", 3500)], 4000, 2500),
}
IMPORT_PRICE_FACTOR = 1.8  # synthetic: an imported item costs this much more than its domestic counterpart
BED_DAY_CNY = 120.0  # synthetic bed-day price
DEVICE_CNY = 1500.0  # synthetic device charge (e.g. generator use), on 30% of cases


@dataclass
class CostDataset:
    """Frames ready for ``openir.registry.store_costs``: one header per procedure and its items."""

    headers: pd.DataFrame  # procedure_uid, drg_code, drg_version, length_of_stay_days, total_cost_cny, payment_cny
    items: pd.DataFrame  # procedure_uid, category, name, origin, nhsa_code, quantity, amount_cny
    truth: dict[str, list[str]] = field(default_factory=dict)


def generate_costs(procedures: pd.DataFrame, *, seed: int = 0, outliers: bool = True) -> CostDataset:
    """Cost data for ``procedures`` (a frame with ``uid``, ``hospital_code``, ``technique``, ``died``).

    ``truth``: ``cost_outlier`` (hospital with costs x 1.35) and ``no_domestic`` (hospital using
    imported consumables only), chosen among the three hospitals with most procedures.
    """
    rng = np.random.default_rng(seed)
    n = len(procedures)
    uid = procedures["uid"].to_numpy()
    hosp_codes, h = np.unique(procedures["hospital_code"].to_numpy().astype(str), return_inverse=True)
    techs = list(PROFILE)
    t_of = {t: i for i, t in enumerate(techs)}
    unknown = set(procedures["technique"].unique()) - set(t_of)
    if unknown:
        raise ValueError(f"no synthetic cost profile for technique(s) {sorted(unknown)}")
    t = procedures["technique"].map(t_of).to_numpy()
    # ---- hospital effects ------------------------------------------------------------------------
    dom_share = rng.beta(4.0, 3.0, hosp_codes.size)
    cost_factor = rng.normal(1.0, 0.04, hosp_codes.size)
    truth: dict[str, list[str]] = {}
    if outliers and hosp_codes.size >= 3:
        big = np.argsort(-np.bincount(h, minlength=hosp_codes.size), kind="stable")
        cost_factor[big[0]] = 1.35
        dom_share[big[1]] = 0.0
        truth = {"cost_outlier": [str(hosp_codes[big[0]])], "no_domestic": [str(hosp_codes[big[1]])]}
    # ---- header: DRG, stay -----------------------------------------------------------------------
    drg = np.array([TECHNIQUE_DRG[x] for x in techs], dtype=object)[t]
    rd = drg == "RD15"
    died = procedures["died"].fillna(False).to_numpy(dtype=bool) if "died" in procedures else np.zeros(n, bool)
    split = rng.random(n)
    drg = np.where(rd & died, "RD11", np.where(rd & (split < 0.25), "RD13", drg))
    mean_los = np.array([PROFILE[x][0] for x in techs])[t]
    los = np.maximum(1.0, np.round(rng.gamma(4.0, mean_los / 4.0)))
    # ---- consumables: 1-3 per case, the first k of the technique's list --------------------------
    k = rng.integers(1, 4, n)
    case = np.repeat(np.arange(n), k)
    slot = np.arange(case.size) - np.repeat(np.cumsum(k) - k, k)
    names = np.array([[c[0] for c in PROFILE[x][1]] for x in techs], dtype=object)
    prices = np.array([[c[1] for c in PROFILE[x][1]] for x in techs])
    imported = rng.random(case.size) >= dom_share[h[case]]
    qty = np.where(rng.random(case.size) < 0.2, 2.0, 1.0)
    price = prices[t[case], slot] * np.where(imported, IMPORT_PRICE_FACTOR, 1.0) * rng.uniform(0.9, 1.1, case.size)
    amount = np.round(price * qty * cost_factor[h[case]], 2)
    amount[rng.random(case.size) < 0.01] = 0.0  # donated / free-of-charge items
    cons = pd.DataFrame({"case": case, "category": "consumable", "name": names[t[case], slot],
                         "origin": np.where(imported, "imported", "domestic"), "quantity": qty, "amount_cny": amount})
    # ---- device (30%), drug, imaging, bed days ---------------------------------------------------
    dev = np.flatnonzero(rng.random(n) < 0.3)
    dev_imp = rng.random(dev.size) >= dom_share[h[dev]]
    device = pd.DataFrame({"case": dev, "category": "device", "name": "设备使用 device use",
                           "origin": np.where(dev_imp, "imported", "domestic"), "quantity": 1.0,
                           "amount_cny": np.round(DEVICE_CNY * cost_factor[h[dev]] * rng.uniform(0.8, 1.2, dev.size), 2)})
    drug_mean = np.array([PROFILE[x][2] for x in techs])[t]
    img_mean = np.array([PROFILE[x][3] for x in techs])[t]
    base = np.arange(n)
    drug = pd.DataFrame({"case": base, "category": "drug", "name": "药品 drugs", "origin": None, "quantity": 1.0,
                         "amount_cny": np.round(rng.gamma(4.0, drug_mean / 4.0) * cost_factor[h], 2)})
    img = pd.DataFrame({"case": base, "category": "imaging", "name": "影像 imaging", "origin": None, "quantity": 1.0,
                        "amount_cny": np.round(rng.gamma(8.0, img_mean / 8.0) * cost_factor[h], 2)})
    bed = pd.DataFrame({"case": base, "category": "bed", "name": "床位 bed days", "origin": None, "quantity": los,
                        "amount_cny": np.round(los * BED_DAY_CNY * cost_factor[h], 2)})
    items = pd.concat([cons, device, drug, img, bed], ignore_index=True)
    items = items.sort_values("case", kind="stable", ignore_index=True)
    total = np.bincount(items["case"].to_numpy(), weights=items["amount_cny"].to_numpy(), minlength=n)
    items.insert(0, "procedure_uid", uid[items.pop("case").to_numpy()])
    items["nhsa_code"] = None
    for c in ("category", "name", "origin"):
        items[c] = items[c].astype("category")
    headers = pd.DataFrame({"procedure_uid": uid, "drg_code": drg.astype(str), "drg_version": "1.1",
                            "length_of_stay_days": los, "total_cost_cny": np.round(total, 2), "payment_cny": np.nan})
    return CostDataset(headers, items, truth)
