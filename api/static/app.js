// Shared by the sflowpipe web UI pages: fetch helpers, number formatting with units, the nav bar,
// charts with bounded legends and measured axes, sortable tables, links to the drill-down pages.
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
  // A number with an SI prefix and its unit, a space between: "14.6 Mbit/s", "99.3 %", "12 /s".
  fmt(v, unit) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (unit === "%") return `${v.toFixed(Math.abs(v) >= 10 ? 1 : 2)} %`;
    const prefixes = ["", "k", "M", "G", "T", "P"];
    let i = 0, x = Math.abs(v);
    while (x >= 1000 && i < prefixes.length - 1) { x /= 1000; i++; }
    const s = (v < 0 ? -x : x).toFixed(x >= 100 || i === 0 && Number.isInteger(v) ? 0 : 1);
    if (!unit) return `${s}${prefixes[i]}`;
    return unit.startsWith("/") && !prefixes[i] ? `${s} ${unit}` : `${s} ${prefixes[i]}${unit}`;
  },
  // A flow definition's value and the unit of its rate (processors/flows.py: values are per second).
  flowUnit(value) {
    return { bytes: "B/s", bps: "bit/s", frames: "frames/s", fps: "frames/s", requests: "requests/s" }[value] || "/s";
  },
  // A counter metric's unit (sflowpipe's counter metrics are rates per second, utilisations in %).
  metricUnit(name) {
    if (/utilization$/.test(name)) return "%";
    if (/octets$/.test(name)) return "B/s";
    if (name === "ifspeed") return "bit/s";
    return "/s";
  },
  // A local date and time a reader can place: "2026-12-02 03:25:10".
  time(ms) {
    const d = new Date(ms), p = n => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  },
  // host:pid:index[:random] (sflowpipe/status.py, ingest/service.py) -> "host, pid 123, #0": the raw id goes in a tooltip.
  instanceLabel(id) {
    const parts = String(id).split(":");
    if (parts.length >= 3 && /^\d+$/.test(parts[1])) {
      return `${parts[0]}, pid ${parts[1]}` + (parts.length >= 4 || /^\d+$/.test(parts[2]) ? `, #${parts[2]}` : `, ${parts.slice(2).join(":")}`);
    }
    if (parts.length >= 2) return `${parts[0]}, ${parts.slice(1).join(":")}`;
    return String(id);
  },
  instance(id) { return `<span class="id" title="${sp.esc(id)}">${sp.esc(sp.instanceLabel(id))}</span>`; },
  esc(s) {
    return String(s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  },
  param(name) { return new URLSearchParams(location.search).get(name); },
  // Links to the drill-down pages.
  // Links to the drill-down pages; a history range shown (sp.rangeSuffix, "&range=1h") goes along.
  rangeSuffix: "",
  agentLink(agent) { return `<a class="drill" href="agent.html?agent=${encodeURIComponent(agent)}${sp.rangeSuffix}">${sp.esc(agent)}</a>`; },
  ifLink(agent, ds, text) {
    return `<a class="drill" href="interface.html?agent=${encodeURIComponent(agent)}&ifindex=${encodeURIComponent(ds)}${sp.rangeSuffix}">${sp.esc(text ?? ds)}</a>`;
  },
  isAddress(s) { return /^\d{1,3}(\.\d{1,3}){3}$/.test(s) || /^[0-9a-f]*:[0-9a-f:]+$/i.test(s) && s.includes("::") || /^([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}$/i.test(s); },
  // A flow key with each address in it a link to its host page.
  keyLinks(key, fs = ",") {
    return String(key).split(fs).map(p => sp.isAddress(p)
      ? `<a class="drill" href="host.html?ip=${encodeURIComponent(p)}${sp.rangeSuffix}">${sp.esc(p)}</a>` : sp.esc(p)).join(sp.esc(fs));
  },
  nav(active) {
    const pages = [["index.html", "Status"], ["flows.html", "Flows"], ["events.html", "Events"],
                   ["counters.html", "Counters"], ["explore.html", "Explore"], ["api.html", "API"]];
    document.querySelector("header").innerHTML = "<b>sflowpipe</b>" + pages.map(([href, name]) =>
      `<a href="${href}" class="${href === active ? "active" : ""}">${name}</a>`).join("");
  },
  // A table whose rows are sorted by the column whose header was clicked (again: the other way).
  // columns: [{label, num, value(row) -> sort value, html(row) -> cell}]
  table(el, columns, sortBy = 0, descending = false) {
    const state = { sortBy, descending, rows: [] };
    el.querySelector("thead").innerHTML = "<tr>" + columns.map((c, i) =>
      `<th class="${c.num ? "num " : ""}sortable" data-col="${i}" title="sort by ${sp.esc(c.label)}">${sp.esc(c.label)}</th>`).join("") + "</tr>";
    const mark = () => el.querySelectorAll("thead th").forEach((th, i) => {
      th.setAttribute("aria-sort", i === state.sortBy ? (state.descending ? "descending" : "ascending") : "none");
    });
    el.querySelector("thead").addEventListener("click", e => {
      const th = e.target.closest("th");
      if (!th) return;
      const i = Number(th.dataset.col);
      state.descending = i === state.sortBy ? !state.descending : !!columns[i].num;
      state.sortBy = i;
      state.render(state.rows);
    });
    state.render = rows => {
      state.rows = rows;
      const key = columns[state.sortBy].value, dir = state.descending ? -1 : 1;
      const sorted = rows.slice().sort((a, b) => {
        const x = key(a), y = key(b);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true })) * dir;
      });
      el.querySelector("tbody").innerHTML = sorted.map(r => "<tr>" + columns.map(c =>
        `<td${c.num ? ' class="num"' : ""}>${c.html(r)}</td>`).join("") + "</tr>").join("");
      mark();
    };
    mark();
    return state;
  },
  // A time-series chart of the last `points` samples of at most `opts.maxSeries` named series (the
  // largest at the last push; the rest summed as "other"). Both axes are sized to their labels,
  // measured with the canvas's own font; the y axis names the unit; x labels carry time and date.
  chart(el, title, unit, points = 120, span = 240, opts = {}) {
    const maxSeries = opts.maxSeries || 0, height = opts.height || 260;
    const state = { names: [], data: [[]], plot: null, points, unit, title, history: {}, span };
    const width = () => Math.max(300, el.clientWidth - 20);
    const build = () => {
      if (state.plot) state.plot.destroy();
      const unit = state.unit;
      const series = [{ value: (u, v) => v === null ? "–" : sp.time(v * 1000) }].concat(state.names.map((n, i) => ({
        label: n, stroke: n === "other" ? "#8a96a3" : sp.colors[i % sp.colors.length], width: 2,
        dash: n === "other" ? [6, 4] : undefined, value: (u, v) => sp.fmt(v, unit) })));
      // right padding: half a time label, so the last one is not cut at the canvas's edge
      state.plot = new uPlot({ title: state.title, width: width(), height, series, padding: [12, 44, 0, 0],
                               scales: { x: { time: true, range: (u, min, max) => {
                                 if (state.xrange) return state.xrange;  // history: the range asked for
                                 if (max === null || !Number.isFinite(max)) { max = Date.now() / 1000; min = max - (state.span || 240); }
                                 return state.span ? [max - state.span, max] : [min, max]; } } },
                               axes: [sp.timeAxis(), sp.valueAxis(unit)] },
                             state.data, el);
      state.plot.sp = { unit };
    };
    state.push = (t, values) => {  // values: {name: number}
      if (maxSeries) values = sp.topN(values, maxSeries);
      for (const [n, v] of Object.entries(values)) (state.history[n] = state.history[n] || new Map()).set(t, v);
      state.data[0].push(t);
      if (state.data[0].length > state.points) state.data[0].shift();
      const oldest = state.data[0][0];
      for (const h of Object.values(state.history)) for (const k of h.keys()) if (k < oldest) h.delete(k);
      const names = maxSeries ? Object.keys(values) : state.names.concat(Object.keys(values).filter(n => !state.names.includes(n)));
      const changed = names.join("\n") !== state.names.join("\n");
      state.names = names;
      state.data = [state.data[0]].concat(names.map(n => state.data[0].map(x => state.history[n]?.get(x) ?? null)));
      if (changed || !state.plot) build(); else state.plot.setData(state.data);
    };
    // A whole series at once (history): times in epoch s, series {name: [values]}; xrange: the
    // x axis's [from, to] (the range asked for), none: back to live (the last `span` s).
    state.setData = (times, series, xrange) => {
      state.xrange = xrange || null;
      state.history = {};
      state.names = Object.keys(series);
      for (const n of state.names) state.history[n] = new Map(times.map((t, i) => [t, series[n][i]]));
      state.data = [times.slice()].concat(state.names.map(n => series[n].slice()));
      build();
    };
    state.reset = () => { state.names = []; state.data = [[]]; state.history = {}; state.xrange = null; build(); };
    state.setUnit = (u, t) => { state.unit = u; if (t) state.title = t; state.reset(); };
    window.addEventListener("resize", () => state.plot && state.plot.setSize({ width: width(), height }));
    sp.charts.push(state);
    return state;
  },
  charts: [],
  // The largest `n` values by name, the rest summed as "other".
  topN(values, n) {
    const entries = Object.entries(values).filter(([, v]) => v !== null && v !== undefined).sort((a, b) => b[1] - a[1]);
    const out = Object.fromEntries(entries.slice(0, n));
    if (entries.length > n) out.other = entries.slice(n).reduce((s, [, v]) => s + v, 0);
    return out;
  },
  font: "12px system-ui, sans-serif",
  // Width in CSS px of each label line as the axis draws it (its own canvas font).
  measure(u, axis, labels) {
    const ctx = u.ctx;
    ctx.save();
    ctx.font = axis.font ? axis.font[0] : sp.font;
    const w = labels.map(l => Math.max(...String(l).split("\n").map(line => ctx.measureText(line).width)) / devicePixelRatio);
    ctx.restore();
    return w;
  },
  timeLabels(splits) {
    const p = n => String(n).padStart(2, "0");
    const seconds = splits.some(s => s % 60 !== 0);
    return splits.map(s => {
      const d = new Date(s * 1000);
      return `${p(d.getHours())}:${p(d.getMinutes())}` + (seconds ? `:${p(d.getSeconds())}` : "") +
             `\n${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
    });
  },
  timeAxis() {
    // two lines (time, date); the splits at least one label's width (plus a gap) apart
    return { font: sp.font, values: (u, splits) => sp.timeLabels(splits), space: 90, size: 58 };
  },
  valueAxis(unit) {
    return { font: sp.font, label: unit || "", labelSize: 20, labelFont: sp.font, gap: 6,
             values: (u, vals) => vals.map(v => sp.fmt(v, unit === "%" ? "%" : unit)),
             size(u, values, i, cycle) {  // the widest label, the tick and the gap
               const axis = u.axes[i];
               if (cycle > 1 && axis._size) return axis._size;
               const w = values && values.length ? Math.max(...sp.measure(u, axis, values)) : 40;
               return Math.ceil(w) + axis.ticks.size + axis.gap + 4;
             } };
  },
  // Each axis's drawn labels as boxes in CSS px within the plot's canvas, measured with the
  // canvas font (uPlot draws them on the canvas, there are no label elements to ask): for the
  // browser tests and for anyone checking that nothing is clipped or overlaps.
  axisReport(u) {
    const out = [];
    u.axes.forEach((axis, i) => {
      if (!axis.show || !axis._values) return;
      const labels = axis._values.map(String), widths = sp.measure(u, axis, labels);
      const scale = u.series[0].scale === axis.scale ? "x" : axis.scale;
      const boxes = labels.map((l, j) => {
        const pos = u.valToPos(axis._splits[j], scale);  // CSS px within the plotting area
        if (axis.side % 2 === 0) {  // bottom/top: centred under the tick
          const x = u.bbox.left / devicePixelRatio + pos;
          return { label: l, left: x - widths[j] / 2, right: x + widths[j] / 2, width: widths[j] };
        }
        return { label: l, width: widths[j], top: u.bbox.top / devicePixelRatio + pos };
      });
      out.push({ index: i, side: axis.side, size: axis._size, tick: axis.ticks.size, gap: axis.gap,
                 label: axis.label || null, boxes, canvasWidth: u.width, plotLeft: u.bbox.left / devicePixelRatio,
                 plotWidth: u.bbox.width / devicePixelRatio });
    });
    return out;
  },
  colors: ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#4e342e"],
  every(ms, fn) { const tick = async () => { try { await fn(); } catch (e) { sp.error(e); } }; tick(); return setInterval(tick, ms); },
  error(e) { const el = document.getElementById("error"); if (el) el.textContent = e ? String(e.message || e) : ""; },
};
if (typeof module !== "undefined") module.exports = sp;  // for tests under node
// Every interface's counters, one object per (agent, data source): {agent, ds, ifName, ifinoctets, ...}.
sp.interfaces = async function (agent = "ALL", names = null) {
  const wanted = names || ["ifinoctets", "ifoutoctets", "ifinutilization", "ifoututilization", "ifinerrors", "ifouterrors",
                           "ifindiscards", "ifoutdiscards", "ifspeed", "ifname"];
  const rows = await sp.get(`/dump/${encodeURIComponent(agent)}/${wanted.join(",")}/json`);
  const by = new Map();
  for (const r of rows) {
    const k = `${r.agent} ${r.dataSource}`;
    if (!by.has(k)) by.set(k, { agent: r.agent, ds: r.dataSource, ifName: "" });
    const o = by.get(k);
    if (r.metricName === "ifname") o.ifName = r.metricValue; else o[r.metricName] = r.metricValue;
    if (r.ifName) o.ifName = r.ifName;
  }
  return [...by.values()].filter(o => "ifinoctets" in o || "ifinutilization" in o).map(o => Object.assign(o, {
    util: Math.max(o.ifinutilization ?? 0, o.ifoututilization ?? 0),
    errors: (o.ifinerrors ?? 0) + (o.ifouterrors ?? 0), discards: (o.ifindiscards ?? 0) + (o.ifoutdiscards ?? 0) }));
};
// The interface table's columns (counters and agent pages), for sp.table.
sp.interfaceColumns = function () {
  const n = v => v ?? null;
  return [
    { label: "data source", value: r => Number(r.ds), html: r => sp.ifLink(r.agent, r.ds) },
    { label: "ifName", value: r => r.ifName, html: r => sp.esc(r.ifName) },
    { label: "in", num: true, value: r => n(r.ifinoctets), html: r => sp.fmt(r.ifinoctets * 8, "bit/s") },
    { label: "out", num: true, value: r => n(r.ifoutoctets), html: r => sp.fmt(r.ifoutoctets * 8, "bit/s") },
    { label: "in util", num: true, value: r => n(r.ifinutilization), html: r => sp.fmt(r.ifinutilization, "%") },
    { label: "out util", num: true, value: r => n(r.ifoututilization), html: r => sp.fmt(r.ifoututilization, "%") },
    { label: "peak util", num: true, value: r => r.util,
      html: r => `<span class="${r.util >= 80 ? "bad" : ""}">${sp.fmt(r.util, "%")}</span>` },
    { label: "errors", num: true, value: r => r.errors, html: r => sp.fmt(r.errors, "/s") },
    { label: "discards", num: true, value: r => r.discards, html: r => sp.fmt(r.discards, "/s") },
    { label: "speed", num: true, value: r => n(r.ifspeed), html: r => sp.fmt(r.ifspeed, "bit/s") },
  ];
};
// The events of an agent (and data source, or whose flow key holds an address), newest first, as table rows.
sp.eventRows = function (events, flowDefs) {
  return events.map(e => {
    const d = flowDefs[e.metric];
    const u = v => d && d.value === "bytes" ? `${sp.fmt(v * 8, "bit/s")}` : sp.fmt(v, d ? sp.flowUnit(d.value) : sp.metricUnit(e.metric || ""));
    return `<tr><td>${sp.time(e.timestamp)}</td><td>${sp.esc(e.thresholdID)}</td><td>${sp.agentLink(e.agent)}</td>
      <td>${e.dataSource ? sp.ifLink(e.agent, e.dataSource) : ""}</td>
      <td>${e.flowKey ? sp.keyLinks(e.flowKey, (d || {}).fs || ",") : sp.esc(e.metric)}</td>
      <td class="num">${u(e.value)}</td><td class="num">${u(e.threshold)}</td></tr>`;
  }).join("");
};
sp.EVENT_HEAD = `<tr><th>time</th><th>threshold</th><th>agent</th><th>data source</th><th>flow key / metric</th>
  <th class="num">value</th><th class="num">threshold</th></tr>`;
