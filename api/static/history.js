// History from ClickHouse (/history/*/json), for any page: a time-range picker and a fetch
// helper whose errors carry the API's JSON refusal ({error, field, position, token}).
"use strict";
const spHistory = {
  RANGES: [["15m", "last 15 min"], ["1h", "last hour"], ["6h", "last 6 hours"], ["24h", "last 24 hours"],
           ["7d", "last 7 days"], ["30d", "last 30 days"], ["custom", "custom…"]],

  // GET a /history path with query parameters; throws an Error with .status and .detail.
  async get(path, params = {}) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
    const r = await fetch(`${path}?${q}`, { headers: { Accept: "application/json" } });
    const text = await r.text();
    let body = null;
    try { body = JSON.parse(text); } catch (e) { /* not JSON: a proxy's page, say */ }
    if (!r.ok) {
      const err = new Error(body && body.error ? body.error : `${path}: ${r.status} ${text}`);
      err.status = r.status;
      err.detail = body;
      throw err;
    }
    return body;
  },

  // The events of a range from ClickHouse (/history/events: newest first, as /events/json gives
  // them), narrowed by `filters` ({agent, dataSource, address, thresholdID}).
  async events(filters, params, max = 50) {
    return (await spHistory.get("/history/events/json", { ...filters, ...params, maxEvents: max })).events;
  },

  // A range picker in `el`: a <select> of the ranges plus from/to inputs shown for "custom".
  // picker.params(): {range} or {from, to} (epoch s) for spHistory.get; picker.set(params);
  // onChange() runs when the user picks another range. Inputs have ids prefix-range/-from/-to.
  // With `live`: a first choice "live" (the page's own samples), for which params() is null.
  rangePicker(el, onChange, prefix = "history", live = false) {
    const ranges = (live ? [["", "live"]] : []).concat(spHistory.RANGES);
    el.insertAdjacentHTML("beforeend",
      `<label>range <select id="${prefix}-range">${ranges.map(([v, t]) =>
        `<option value="${v}">${t}</option>`).join("")}</select></label>
       <label class="custom-range">from <input id="${prefix}-from" type="datetime-local" step="60"></label>
       <label class="custom-range">to <input id="${prefix}-to" type="datetime-local" step="60"></label>`);
    const sel = el.querySelector(`#${prefix}-range`);
    const from = el.querySelector(`#${prefix}-from`), to = el.querySelector(`#${prefix}-to`);
    const custom = () => el.querySelectorAll(".custom-range").forEach(l => { l.style.display = sel.value === "custom" ? "" : "none"; });
    const toLocal = s => { const d = new Date(s * 1000); d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
                           return d.toISOString().slice(0, 16); };
    sel.addEventListener("change", () => {
      if (sel.value === "custom" && !from.value) {
        const now = Math.floor(Date.now() / 1000);
        from.value = toLocal(now - 3600); to.value = toLocal(now);
      }
      custom();
      if (onChange) onChange();
    });
    custom();
    return {
      inputs: { range: sel, from, to },
      params() {
        if (live && !sel.value) return null;
        if (sel.value !== "custom") return { range: sel.value };
        const epoch = input => input.value ? String(Math.floor(new Date(input.value).getTime() / 1000)) : "";
        return { from: epoch(from), to: epoch(to) };
      },
      set(p) {
        if (p.from || p.to) {
          sel.value = "custom";
          if (p.from) from.value = Number.isFinite(+p.from) ? toLocal(+p.from) : "";  // not a time: left empty,
          if (p.to) to.value = Number.isFinite(+p.to) ? toLocal(+p.to) : "";        // the API names what is missing
        } else sel.value = spHistory.RANGES.some(([v]) => v === p.range) ? p.range : live ? "" : "15m";
        custom();
      },
    };
  },

  // The range the page's URL asks for (range=, or from= and to=, epoch s): {} when none.
  urlRange() {
    const q = new URLSearchParams(location.search), out = {};
    for (const k of ["range", "from", "to"]) if (q.get(k)) out[k] = q.get(k);
    return out;
  },

  // The query string that carries a range to another page: "" for live (null), else "&range=1h"
  // or "&from=..&to=..".
  rangeQuery(params) {
    if (!params) return "";
    return Object.entries(params).filter(([, v]) => v).map(([k, v]) => `&${k}=${encodeURIComponent(v)}`).join("");
  },

  // A live page chart's range picker in `el`: "live" (the page's own samples, the default) or a
  // history range from ClickHouse, first as the URL says (range=, from=/to=). load(params) runs on
  // each change (params null: live) and again every `refresh` s while a range back from now is
  // shown; it fetches and draws, and what it throws (a 400 naming range/from/to, a 503 when
  // ClickHouse is away) is shown beside the picker. The choice goes into the URL (a reload or a
  // copied link keeps it) and into sp.rangeSuffix, which the drill-down links carry.
  liveOrHistory(el, load, { prefix = "history", refresh = 30, live = true } = {}) {
    // without a live choice, a default range is shown but not carried on unless the URL or the user named one
    let timer = null, carry = live || Object.keys(spHistory.urlRange()).length > 0;
    const picker = spHistory.rangePicker(el, () => { carry = true; run(); }, prefix, live);
    el.insertAdjacentHTML("beforeend", `<span class="error history-message" id="${prefix}-message"></span>
      <pre class="field-error error" id="${prefix}-range-error"></pre><pre class="field-error error" id="${prefix}-from-error"></pre>
      <pre class="field-error error" id="${prefix}-to-error"></pre>`);
    const message = el.querySelector(`#${prefix}-message`);
    const run = async () => {
      const params = picker.params();
      const q = new URLSearchParams(location.search);
      for (const k of ["range", "from", "to"]) q.delete(k);
      for (const [k, v] of Object.entries(params || {})) if (v) q.set(k, v);
      if (carry) history.replaceState(null, "", location.pathname + (String(q) ? `?${q}` : "") + location.hash);
      sp.rangeSuffix = carry ? spHistory.rangeQuery(params) : "";
      clearTimeout(timer);
      if (params && "from" in params && !params.from) {  // a custom range with no start: said where it is missing
        message.textContent = "";
        sp.fieldError({ field: "from", error: "a custom range needs its start (from)" }, picker.inputs);
        return;
      }
      try {
        await load(params);
        sp.fieldError(null, picker.inputs);
        message.textContent = "";
      } catch (e) {
        if (!(e.detail && e.detail.field && sp.fieldError(e.detail, picker.inputs))) {
          sp.fieldError(null, picker.inputs);
          message.textContent = `history: ${e.message || e}`;
        }
      }
      if (params && params.range) timer = setTimeout(run, refresh * 1000);
    };
    picker.set(spHistory.urlRange());
    picker.run = run;
    picker.message = message;
    run();
    return picker;
  },

  // Time axis labels with the date: "HH:MM" ticks, the date under the first tick and under each
  // tick on a new day (ranges of days: "MM-DD HH:MM").
  timeValues(u, splits) {
    let lastDay = null;
    const pad = n => String(n).padStart(2, "0");
    return splits.map(t => {
      const d = new Date(t * 1000);
      const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
      const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
      const label = day !== lastDay ? `${hm}\n${day}` : hm;
      lastDay = day;
      return label;
    });
  },

  // Width an axis needs for its tick labels (canvas text measured in the axis' own font).
  axisSize(u, values, axisIdx) {
    const axis = u.axes[axisIdx];
    if (!values) return 50;
    const ctx = spHistory._ctx || (spHistory._ctx = document.createElement("canvas").getContext("2d"));
    ctx.font = axis.font ? axis.font[0] : "12px system-ui, sans-serif";
    const widest = Math.max(0, ...values.map(v => ctx.measureText(String(v)).width));
    return Math.ceil(widest + (axis.ticks && axis.ticks.show !== false ? axis.ticks.size : 0) + (axis.gap || 5) + 4);
  },

  // Every tick label's and axis title's box on the chart's canvas (CSS px, relative to the canvas),
  // from uPlot's own layout: for tests and a page's self-check that nothing is cut or overlaps.
  labelBoxes(u) {
    const ctx = spHistory._ctx || (spHistory._ctx = document.createElement("canvas").getContext("2d"));
    const pr = window.devicePixelRatio || 1;
    const plotLeft = u.bbox.left / pr, plotTop = u.bbox.top / pr;
    const boxes = [];
    u.axes.forEach((axis, i) => {
      if (!axis._show || !axis._values) return;
      ctx.font = axis.font[0];
      const lineHeight = axis.font[1] * axis.lineGap;
      const tick = axis.ticks.show ? axis.ticks.size : 0;
      const scale = axis.scale;
      axis._splits.forEach((split, k) => {
        const text = String(axis._values[k]);
        const lines = text.split("\n");
        const w = Math.max(...lines.map(l => ctx.measureText(l).width));
        const h = (lines.length - 1) * lineHeight + axis.font[1];  // uPlot: line j at y + j * lineHeight
        if (axis.side === 2) {  // bottom: centred under the tick, below the ticks
          const x = plotLeft + u.valToPos(split, scale), y = axis._pos + tick + axis.gap;
          boxes.push({ axis: i, text, left: x - w / 2, right: x + w / 2, top: y, bottom: y + h });
        } else if (axis.side === 3) {  // left: right-aligned before the ticks, centred on the tick
          const y = plotTop + u.valToPos(split, scale), x = axis._pos - tick - axis.gap;
          boxes.push({ axis: i, text, left: x - w, right: x, top: y - h / 2, bottom: y + h / 2 });
        }
      });
      if (axis.label && axis.side === 3) {  // the y axis title, turned a quarter left: glyphs left of x
        ctx.font = axis.labelFont[0];
        const w = ctx.measureText(axis.label).width, x = axis._lpos - axis.labelGap;
        const cy = plotTop + u.bbox.height / pr / 2;
        boxes.push({ axis: i, text: axis.label, title: true, left: x - axis.labelFont[1], right: x,
                     top: cy - w / 2, bottom: cy + w / 2 });
      }
    });
    return boxes;
  },
};
if (typeof module !== "undefined") module.exports = spHistory;
