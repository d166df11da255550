// Procedure entry: live rule checks while typing, validation messages next to each field.
(function () {
  const form = document.getElementById("entry");
  if (!form) return;
  const out = document.getElementById("checks");
  const val = (n) => { const v = form.elements[n].value.trim(); return v === "" ? null : v; };
  const num = (n) => { const v = val(n); return v === null ? null : Number(v); };
  function clear() {
    form.querySelectorAll(".msg").forEach((m) => { m.textContent = ""; });
    form.querySelectorAll(".invalid").forEach((m) => m.classList.remove("invalid"));
  }
  function mark(field, text) {
    const m = form.querySelector('.msg[data-for="' + field + '"]');
    if (m) { m.textContent = text; }
    if (form.elements[field]) form.elements[field].classList.add("invalid");
  }
  function show(flags, head) {
    out.innerHTML = "";
    if (head) { const p = document.createElement("p"); p.textContent = head; out.appendChild(p); }
    if (!flags.length) { const p = document.createElement("p"); p.className = "ok"; p.textContent = out.dataset.ok; out.appendChild(p); return; }
    flags.forEach((f) => { const p = document.createElement("p"); p.className = "flag warn";
      p.textContent = out.dataset.warning + " [" + f.rule + "]: " + f.message; out.appendChild(p); });
  }
  // ---- pre-procedure values against the technique's SOP (openir.sop), every deviation with its source
  const sopOut = document.getElementById("sop");
  const list = (n) => { const v = val(n); if (v === null) return null;
    const xs = v.split(/[;；]/).map((x) => x.trim()).filter((x) => x);
    return (xs.length === 1 && ["none", "无"].includes(xs[0].toLowerCase())) ? [] : xs; };
  function sopValues() {
    const v = {sex: val("sex"), inr: num("sop_inr"), egfr: num("sop_egfr"), haemoglobin: num("sop_haemoglobin"),
      pregnancy: val("sop_pregnancy"), diagnosis_code: val("sop_diagnosis_code"), child_pugh: val("child_pugh"),
      age_years: num("age_years"), conditions: list("sop_conditions"), allergies: list("sop_allergies"),
      access_site: val("sop_access_site"), procedure_at: val("sop_procedure_at"), on_dialysis: form.elements.sop_on_dialysis.checked || null,
      iodinated_contrast: form.elements.sop_iodinated_contrast.checked || null};
    const plt = val("sop_platelets");
    v.platelets = plt === null ? null : {value: Number(plt), unit: form.elements.sop_platelets_unit.value};
    const at = list("sop_antithrombotics");
    v.antithrombotics = at === null ? null : at.map((x) => { const [name, rest] = x.split(":");
      const [kind, last] = (rest || "").split("@"); return {name: (name || "").trim(), kind: (kind || "").trim(), last_dose: last ? last.trim() : null}; });
    Object.keys(v).forEach((k) => { if (v[k] === null) delete v[k]; });
    return v;
  }
  function showSop(data) {
    sopOut.innerHTML = "";
    if (!data) { const p = document.createElement("p"); p.textContent = sopOut.dataset.pick; sopOut.appendChild(p); return; }
    if (!data.lines.length) { const p = document.createElement("p"); p.className = "ok"; p.textContent = sopOut.dataset.none; sopOut.appendChild(p); return; }
    data.lines.forEach((d) => {
      const p = document.createElement("p"); p.className = "flag " + (d.severity === "block" ? "sop-block" : "sop-warn");
      p.textContent = (d.severity === "block" ? sopOut.dataset.block : sopOut.dataset.warn) + ": " + d.message;
      const src = document.createElement("span"); src.className = "muted"; src.textContent = " — " + sopOut.dataset.source + ": " + d.source;
      p.appendChild(src); sopOut.appendChild(p); });
    if (data.blocked) { const p = document.createElement("p"); p.className = "warn"; p.textContent = sopOut.dataset.blocked; sopOut.appendChild(p); }
  }
  async function sopCheck() {
    if (!val("technique")) { showSop(null); return null; }
    const r = await openir.api("POST", "/api/sop/check", {technique: val("technique"), values: sopValues()});
    if (r.status !== 200) { (r.data && Array.isArray(r.data.detail) ? r.data.detail : []).forEach((e) => mark(String(e.loc[e.loc.length - 1]), e.msg)); return null; }
    showSop(r.data);
    return r.data;
  }
  let timer = null;
  let seq = 0;  // a check answered after a later check or a save must not wipe their messages
  async function check() {
    if (!val("technique")) return;
    const mine = ++seq;
    const lesion = num("lesion_mm");
    const r = await openir.api("POST", "/api/procedures/check", {technique: val("technique"), operator_code: val("operator_code"),
      disease: val("disease"), child_pugh: val("child_pugh"), asa_class: num("asa_class"), age_years: num("age_years"),
      max_lesion_mm: lesion, n_lesions: lesion ? 1 : null});
    if (mine !== seq) return;
    clear();
    if (r.status !== 200) { (r.data && r.data.detail || []).forEach && (r.data.detail || []).forEach((e) => mark(e.loc[e.loc.length - 1], e.msg)); return; }
    Object.entries(r.data.errors).forEach(([k, v]) => { if (k !== "operator_code" || val("operator_code")) mark(k, v); });
    show(r.data.flags);
    if (mine === seq) await sopCheck();
  }
  form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 250); });
  form.addEventListener("change", check);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearTimeout(timer);
    seq++;
    clear();
    const lesion = num("lesion_mm");
    const body = {uid: val("uid") || "", patient_key: val("patient_key") || "", hospital_code: form.dataset.hospital,
      operator_code: val("operator_code") || "", date: val("date"), technique: val("technique") || "", disease: val("disease"),
      child_pugh: val("child_pugh"), asa_class: num("asa_class"), age_years: num("age_years"),
      lesions: lesion ? [{size_mm: lesion}] : [], sex: val("sex"), sop_override_reason: val("sop_override_reason")};
    const sop = await sopCheck();  // the server checks the values again when it stores them
    if (sop) body.sop_check = sop.check;
    const r = await openir.api("POST", "/api/procedures", body);
    if (r.status === 201) { show(r.data.flags, out.dataset.recorded + ": #" + r.data.procedure_id);
      const a = document.createElement("a"); a.href = "/cases/" + r.data.procedure_id; a.textContent = "→ #" + r.data.procedure_id; out.appendChild(a); return; }
    const det = (r.data && r.data.detail) || [];
    out.textContent = out.dataset.invalid;
    (Array.isArray(det) ? det : [{loc: ["body", ""], msg: String(det)}]).forEach((e) => mark(String(e.loc[1] || ""), e.msg));
  });
})();
