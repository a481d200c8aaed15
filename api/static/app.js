// Shared by the sflowpipe web UI pages: fetch helpers, number formatting, the nav bar, charts.
"use strict";
const sp = {
  async get(path) {
    const r = await fetch(path, { headers: { Accept: "application/json" } });
    if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
    return r.json();
  },
  async put(path, body) {
    const r = await fetch(path, { method: "PUT", body: JSON.stringify(body),
                                  headers: { "Content-Type": "application/json" } });
    if (!r.ok) {
      const text = await r.text();
      let detail = null;
      try { detail = JSON.parse(text); } catch (e) { /* a plain-text refusal */ }
      const err = new Error(detail && detail.error ? detail.error : text);
      err.detail = detail;  // a refused definition: {error, kind, name, field, token, position}
      throw err;
    }
  },
  // Show a refused definition's message next to the input it names (detail.field: the key of
  // `inputs`; the message goes to the element with id `${input.id}-error`), with the offending
  // token selected in the input and a caret under its position. False: no such input.
  fieldError(detail, inputs) {
    for (const input of Object.values(inputs)) {
      input.removeAttribute("aria-invalid");
      const out = document.getElementById(`${input.id}-error`);
      if (out) out.textContent = "";
    }
    const input = detail && inputs[detail.field];
    const out = input && document.getElementById(`${input.id}-error`);
    if (!out) return false;
    input.setAttribute("aria-invalid", "true");
    let text = detail.error;
    if (Number.isInteger(detail.position)) {
      const pos = detail.position;
      text += `\n${input.value}\n${" ".repeat(pos)}^`;
      input.focus();
      if (input.setSelectionRange) {
        input.setSelectionRange(pos, Math.min(pos + (detail.token ? detail.token.length : 1), input.value.length));
      }
    }
    out.textContent = text;
    return true;
  },
  fmt(v, unit) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    const prefixes = ["", "k", "M", "G", "T", "P"];
    let i = 0, x = Math.abs(v);
    while (x >= 1000 && i < prefixes.length - 1) { x /= 1000; i++; }
    const s = (v < 0 ? -x : x).toFixed(x >= 100 || i === 0 && Number.isInteger(v) ? 0 : 1);
    return `${s}${prefixes[i]}${unit || ""}`;
  },
  esc(s) {
    return String(s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  },
  nav(active) {
    const pages = [["index.html", "Status"], ["flows.html", "Flows"], ["events.html", "Events"],
                   ["counters.html", "Counters"], ["explore.html", "Explore"], ["api.html", "API"]];
    document.querySelector("header").innerHTML = "<b>sflowpipe</b>" + pages.map(([href, name]) =>
      `<a href="${href}" class="${href === active ? "active" : ""}">${name}</a>`).join("");
  },
  // A time-series chart holding the last `points` samples of each named series.
  chart(el, title, unit, points = 120, span = 240) {
    const state = { names: [], data: [[]], plot: null, points };
    const width = () => Math.max(300, el.clientWidth - 20);
    const build = () => {
      if (state.plot) state.plot.destroy();
      const series = [{}].concat(state.names.map((n, i) => ({ label: n, stroke: sp.colors[i % sp.colors.length],
                                                              width: 2, value: (u, v) => sp.fmt(v, unit) })));
      state.plot = new uPlot({ title, width: width(), height: 260, series,
                               scales: { x: { time: true, range: (u, min, max) => [max - span, max] } },
                               axes: [{}, { values: (u, vals) => vals.map(v => sp.fmt(v, unit)), size: 70 }] },
                             state.data, el);
    };
    state.push = (t, values) => {  // values: {name: number}
      let changed = false;
      for (const n of Object.keys(values)) if (!state.names.includes(n)) {
        state.names.push(n); state.data.push(state.data[0].map(() => null)); changed = true;
      }
      state.data[0].push(t);
      state.names.forEach((n, i) => state.data[i + 1].push(n in values ? values[n] : null));
      if (state.data[0].length > state.points) state.data.forEach(s => s.shift());
      if (changed || !state.plot) build(); else state.plot.setData(state.data);
    };
    state.reset = () => { state.names = []; state.data = [[]]; build(); };
    window.addEventListener("resize", () => state.plot && state.plot.setSize({ width: width(), height: 260 }));
    return state;
  },
  colors: ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#4e342e"],
  every(ms, fn) { const tick = async () => { try { await fn(); } catch (e) { sp.error(e); } }; tick(); return setInterval(tick, ms); },
  error(e) { const el = document.getElementById("error"); if (el) el.textContent = e ? String(e.message || e) : ""; },
};
if (typeof module !== "undefined") module.exports = sp;  // for tests under node
