// OpenIR: shared helpers (no framework, no build step). CSRF token comes from <body data-csrf>.
window.openir = {
  csrf: function () { return document.body.dataset.csrf || ""; },
  api: async function (method, url, body) {
    const r = await fetch(url, {method: method, credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": openir.csrf()},
      body: body === undefined ? undefined : JSON.stringify(body)});
    let data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    return {status: r.status, data: data};
  }
};
