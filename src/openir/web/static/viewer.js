// Slice viewer: axial/coronal/sagittal PNGs rendered by the server; wheel/slider scrolls,
// right-drag changes window/level; a small canvas 3D view of label surfaces and trajectories.
(function () {
  const root = document.getElementById("viewer");
  if (!root) return;
  const pid = root.dataset.pid, shape = root.dataset.shape.split(",").map(Number);
  const img = document.getElementById("slice-img"), slider = document.getElementById("slice");
  const wc = document.getElementById("wc"), ww = document.getElementById("ww"), ov = document.getElementById("overlay");
  const no = document.getElementById("slice-no"), mm = document.getElementById("margin-map");
  const dim = {axial: 0, coronal: 1, sagittal: 2};
  let axis = "axial", index = Math.floor(shape[0] / 2);
  function draw() {
    no.textContent = (index + 1) + " / " + shape[dim[axis]];
    img.dataset.index = index; img.dataset.axis = axis;
    img.src = "/api/cases/" + pid + "/slice.png?axis=" + axis + "&index=" + index + "&centre=" + wc.value +
      "&width=" + Math.max(1, Number(ww.value)) + "&overlay=" + ov.checked + "&margin=" + (mm ? mm.checked : false);
  }
  let setAxis = function (a) {
    axis = a; slider.max = shape[dim[a]] - 1; index = Math.floor(shape[dim[a]] / 2); slider.value = index;
    root.querySelectorAll("button[data-axis]").forEach((b) => b.classList.toggle("on", b.dataset.axis === a)); draw();
  }
  root.querySelectorAll("button[data-axis]").forEach((b) => b.addEventListener("click", () => setAxis(b.dataset.axis)));
  slider.addEventListener("input", () => { index = Number(slider.value); draw(); });
  [wc, ww, ov].concat(mm ? [mm] : []).forEach((e) => e.addEventListener("change", draw));
  img.addEventListener("wheel", (ev) => { ev.preventDefault();
    index = Math.min(shape[dim[axis]] - 1, Math.max(0, index + (ev.deltaY > 0 ? 1 : -1))); slider.value = index; draw(); }, {passive: false});
  let drag = null;
  img.addEventListener("contextmenu", (ev) => ev.preventDefault());
  img.addEventListener("mousedown", (ev) => { if (ev.button === 2) drag = {x: ev.clientX, y: ev.clientY, c: Number(wc.value), w: Number(ww.value)}; });
  window.addEventListener("mouseup", () => { if (drag) { drag = null; draw(); } });
  window.addEventListener("mousemove", (ev) => { if (!drag) return;
    ww.value = Math.max(1, Math.round(drag.w + (ev.clientX - drag.x) * 2)); wc.value = Math.round(drag.c + (ev.clientY - drag.y) * 2); });
  // orientation letters of the current view; window presets; zoom and pan; distance in mm
  const sp = (root.dataset.spacing || "1,1,1").split(",").map(Number);  // (k, j, i) mm
  const colMm = {axial: sp[2], coronal: sp[2], sagittal: sp[1]};  // displayed pixels are square
  const box = document.getElementById("slice-box"), layer = document.getElementById("measure-layer");
  const out = document.getElementById("distance");
  let zoom = 1, pan = [0, 0], measuring = false, pts = [];
  function place() { img.style.transform = "translate(" + pan[0] + "px," + pan[1] + "px) scale(" + zoom + ")"; }
  function letters() { root.querySelectorAll("[data-letters]").forEach((e) => { e.hidden = e.dataset.letters !== axis; }); }
  const baseSetAxis = setAxis;
  setAxis = function (a) { baseSetAxis(a); letters(); pts = []; layer.innerHTML = ""; out.textContent = ""; };
  root.querySelectorAll("button[data-preset]").forEach((b) => b.addEventListener("click", () => {
    const cw = b.dataset.preset.split(",").map(Number); wc.value = cw[0]; ww.value = cw[1]; draw(); }));
  document.getElementById("zoom-in").addEventListener("click", () => { zoom = Math.min(8, zoom * 1.25); place(); });
  document.getElementById("zoom-out").addEventListener("click", () => { zoom = Math.max(1, zoom / 1.25); place(); });
  document.getElementById("zoom-reset").addEventListener("click", () => { zoom = 1; pan = [0, 0]; place(); });
  document.getElementById("measure").addEventListener("click", (ev) => {
    measuring = !measuring; ev.target.classList.toggle("on", measuring); pts = []; layer.innerHTML = ""; });
  let panFrom = null;
  img.addEventListener("mousedown", (ev) => {
    if (ev.button !== 0) return;
    ev.preventDefault();
    const r = img.getBoundingClientRect();
    if (measuring) {  // image pixel under the pointer (natural size), then its screen point for the line
      const px = [(ev.clientX - r.left) / r.width * img.naturalWidth, (ev.clientY - r.top) / r.height * img.naturalHeight];
      pts.push({px: px, scr: [ev.clientX - box.getBoundingClientRect().left, ev.clientY - box.getBoundingClientRect().top]});
      if (pts.length === 2) {
        const d = Math.hypot(pts[1].px[0] - pts[0].px[0], pts[1].px[1] - pts[0].px[1]) * colMm[axis];
        out.textContent = d.toFixed(1) + " mm"; out.dataset.mm = d.toFixed(2);
        layer.innerHTML = '<line x1="' + pts[0].scr[0] + '" y1="' + pts[0].scr[1] + '" x2="' + pts[1].scr[0] + '" y2="' + pts[1].scr[1] + '"/>';
        pts = [];
      }
    } else if (zoom > 1) { panFrom = [ev.clientX - pan[0], ev.clientY - pan[1]]; }
  });
  window.addEventListener("mousemove", (ev) => { if (panFrom) { pan = [ev.clientX - panFrom[0], ev.clientY - panFrom[1]]; place(); } });
  window.addEventListener("mouseup", () => { panFrom = null; });
  setAxis("axial");
  // 3D: orthographic projection of surface points, rotated by dragging
  const cv = document.getElementById("view3d"), g = cv.getContext("2d");
  let data = null, yaw = 0.6, pitch = 0.4;
  function render3d() {
    if (!data) return;
    g.fillStyle = "#111"; g.fillRect(0, 0, cv.width, cv.height);
    const e = data.extent_mm, c = [e[0] / 2, e[1] / 2, e[2] / 2], s = 0.8 * Math.min(cv.width, cv.height) / Math.max(e[0], e[1], e[2]);
    const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
    const proj = (p) => { const x = p[0] - c[0], y = p[1] - c[1], z = -(p[2] - c[2]);
      const x1 = cy * x + sy * y, y1 = -sy * x + cy * y; const z2 = cp * z - sp * y1;
      return [cv.width / 2 + s * x1, cv.height / 2 - s * z2]; };
    data.labels.forEach((l) => { g.fillStyle = "rgb(" + l.colour.join(",") + ")";
      l.points.forEach((p) => { const q = proj(p); g.fillRect(q[0], q[1], 1.5, 1.5); }); });
    g.strokeStyle = "#ff0"; g.lineWidth = 2;
    data.lines.forEach((ln) => { const a = proj(ln.from), b = proj(ln.to); g.beginPath(); g.moveTo(a[0], a[1]); g.lineTo(b[0], b[1]); g.stroke(); });
  }
  let rot = null;
  cv.addEventListener("mousedown", (ev) => { rot = {x: ev.clientX, y: ev.clientY, yaw: yaw, pitch: pitch}; });
  window.addEventListener("mouseup", () => { rot = null; });
  cv.addEventListener("mousemove", (ev) => { if (!rot) return; yaw = rot.yaw + (ev.clientX - rot.x) / 100; pitch = rot.pitch + (ev.clientY - rot.y) / 100; render3d(); });
  fetch("/api/cases/" + pid + "/points3d", {credentials: "same-origin"}).then((r) => r.json()).then((d) => { data = d; render3d(); });
})();
