// The explore page: top N flows over time from ClickHouse (/history/flows/json), their totals and
// a source -> destination Sankey (/history/sankey/json). The URL's query string holds the whole
// state, so a drill-down link, the back button and a bookmark show the same view.
"use strict";
const DIMENSIONS = [["agent", "agent"], ["in_if", "input interface"], ["out_if", "output interface"],
  ["src_ip", "source address"], ["dst_ip", "destination address"], ["protocol", "IP protocol"],
  ["src_port", "source port"], ["dst_port", "destination port"], ["src_country", "source country"],
  ["dst_country", "destination country"], ["src_asn", "source AS"], ["dst_asn", "destination AS"],
  ["src_as_name", "source AS name"], ["dst_as_name", "destination AS name"], ["vlan", "VLAN"],
  ["src_mac", "source MAC"], ["dst_mac", "destination MAC"], ["tos", "ToS"], ["icmp_type", "ICMP type"],
  ["next_hop", "next hop"], ["exporter", "exporter"]];
const OTHER_COLOR = "#9aa5b1";
// distinct colours for up to 16 series (the legend's top N), then again
const PALETTE = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#4e342e",
  "#5c6bc0", "#9e9d24", "#26a69a", "#f9a825", "#8d6e63", "#d81b60", "#3949ab", "#7cb342"];
const el = id => document.getElementById(id);
const form = el("explore"), dimSel = el("dimensions"), filterIn = el("filter"), valueSel = el("value"),
      nIn = el("n"), modeSel = el("mode");
dimSel.innerHTML = DIMENSIONS.map(([v, t]) => `<option value="${v}">${t} (${v})</option>`).join("");
const picker = spHistory.rangePicker(el("range-picker"), null);
const inputs = { dimensions: dimSel, filter: filterIn, n: nIn, ...picker.inputs };
let plot = null, last = null, lastSankey = null, sortBy = { key: "total", dir: -1 };

function stateFromForm() {
  const dims = [...dimSel.selectedOptions].map(o => o.value);
  return { dimensions: dims.join(","), filter: filterIn.value.trim(), value: valueSel.value, n: nIn.value,
           mode: modeSel.value, ...picker.params() };
}
function stateFromUrl() {
  const q = new URLSearchParams(location.search);
  return { dimensions: q.get("dimensions") ?? "src_ip,dst_ip", filter: q.get("filter") || "",
           value: q.get("value") || "bits", n: q.get("n") || "10", mode: q.get("mode") || "stacked",
           range: q.get("range") || (q.get("from") ? "" : "15m"), from: q.get("from") || "", to: q.get("to") || "" };
}
function toForm(s) {
  const dims = s.dimensions.split(",").filter(Boolean);
  for (const o of dimSel.options) o.selected = dims.includes(o.value);
  filterIn.value = s.filter; valueSel.value = s.value; nIn.value = s.n; modeSel.value = s.mode;
  picker.set(s);
}
function url(s) {
  const q = new URLSearchParams();
  for (const k of ["dimensions", "filter", "value", "n", "mode", "range", "from", "to"]) if (s[k]) q.set(k, s[k]);
  return `explore.html?${q}`;
}

// ------------------------------------------------------------------ chart

// a value with no neighbour draws no line: a dot instead (a series' first minutes, a sparse key)
function isolated(u, si, show) {
  if (show) return null;
  const d = u.data[si], out = [];
  for (let k = 0; k < d.length; k++) if (d[k] != null && d[k - 1] == null && d[k + 1] == null) out.push(k);
  return out.length ? out : null;
}

function chartOptions(data, s) {
  const width = Math.max(320, el("chart").clientWidth - 20);
  const unit = data.unit;
  const names = data.series.map(x => x.label).concat(data.other.some(v => v) ? ["other"] : []);
  const colors = names.map((n, i) => n === "other" && i === names.length - 1 ? OTHER_COLOR : PALETTE[i % PALETTE.length]);
  const stacked = s.mode === "stacked";
  const raw = data.series.map(x => x.values).concat(names.length > data.series.length ? [data.other] : []);
  const series = [{ value: (u, t) => t == null ? "–" : new Date(t * 1000).toLocaleString([], { hour12: false }) }].concat(names.map((n, i) => ({
    label: n, stroke: colors[i], width: stacked ? 1 : 2,
    fill: stacked ? colors[i] + "cc" : undefined,
    value: (u, v, si, idx) => idx == null ? "–" : sp.fmt(raw[si - 1][idx], " " + unit),
    points: { show: false, size: 6, fill: colors[i], filter: isolated },
  })));
  const bands = stacked ? names.slice(1).map((n, i) => ({ series: [i + 2, i + 1], fill: colors[i + 1] + "cc" })) : [];
  if (stacked) series.forEach((x, i) => { if (i > 1) x.fill = undefined; });
  return {
    title: `Top ${data.series.length} by ${data.dimensions.join(", ")} (${unit})`,
    width, height: 320, series, bands,
    scales: { x: { time: true, range: () => [data.from, data.to] }, y: { range: (u, min, max) => [0, max > 0 ? max * 1.05 : 1] } },
    axes: [
      { values: spHistory.timeValues, space: 90, size: 50 },
      { label: unit, values: (u, vals) => vals.map(v => sp.fmt(v, "")), size: spHistory.axisSize, labelSize: 24 },
    ],
    legend: { live: true },
  };
}

function chartData(data, s) {
  const rows = data.series.map(x => x.values).concat(data.other.some(v => v) ? [data.other] : []);
  if (s.mode !== "stacked") return [data.times, ...rows];
  const out = [], acc = data.times.map(() => 0);
  for (const r of rows) {
    r.forEach((v, k) => { acc[k] += v || 0; });
    out.push(acc.map((v, k) => data.other[k] === null && rows.every(x => x[k] === null) ? null : v));
  }
  return [data.times, ...out];
}

function draw(data, s) {
  if (plot) plot.destroy();
  plot = new uPlot(chartOptions(data, s), chartData(data, s), el("chart"));
  window.exploreChart = plot;
}

// ------------------------------------------------------------------ totals table (sortable, drill-down)

function drillFilter(s, totalsRow, dims) {
  const clause = dims.map((d, i) => {
    const v = totalsRow.key[i];
    return typeof v === "number" ? `${d} = ${v}` : `${d} = "${String(v).replace(/["\\]/g, c => "\\" + c)}"`;
  }).join(" and ");
  return s.filter ? `(${s.filter}) and ${clause}` : clause;
}

// a row's links to the pages of its agent, interfaces and addresses, with the range shown
function pageLinks(s, dims, key) {
  const range = spHistory.rangeQuery(s.from || s.to ? { from: s.from, to: s.to } : { range: s.range });
  const at = d => dims.indexOf(d) >= 0 ? String(key[dims.indexOf(d)]) : null;
  const m = /(?:^|\(|\band\s+)agent\s*=\s*"([^"]+)"/.exec(s.filter || "");
  const agent = at("agent") ?? (m ? m[1] : null);
  const links = [];
  const a = (href, text, title) => links.push(`<a class="drill" href="${sp.esc(href + range)}" title="${sp.esc(title)}">${sp.esc(text)}</a>`);
  if (at("agent") !== null) a(`agent.html?agent=${encodeURIComponent(agent)}`, "agent", `agent ${agent}`);
  for (const [d, name] of [["in_if", "in"], ["out_if", "out"]]) {
    if (at(d) !== null && agent) a(`interface.html?agent=${encodeURIComponent(agent)}&ifindex=${encodeURIComponent(at(d))}`,
                                   `${name} #${at(d)}`, `interface ${at(d)} of agent ${agent}`);
  }
  for (const [d, name] of [["src_ip", "source"], ["dst_ip", "destination"]]) {
    if (at(d) !== null) a(`host.html?ip=${encodeURIComponent(at(d))}`, name, `host ${at(d)}`);
  }
  return links.join(" ");
}

function table(data, s) {
  // the shares are of all traffic in the range: the top N and the rest (other: a rate per step)
  const grand = data.totals.reduce((a, t) => a + t.total, 0) + data.other.reduce((a, v) => a + (v || 0), 0) * data.step;
  const rows = data.totals.map((t, i) => ({ ...t, rank: i + 1, share: grand ? t.total / grand * 100 : 0,
                                            color: PALETTE[i % PALETTE.length] }));
  const k = sortBy.key;
  rows.sort((a, b) => (typeof a[k] === "string" ? (a[k] < b[k] ? -1 : a[k] > b[k] ? 1 : 0) : a[k] - b[k]) * sortBy.dir);
  const totalUnit = data.unit.replace("/s", "");
  el("totals").querySelector("tbody").innerHTML = rows.map(r => {
    const href = url({ ...s, filter: drillFilter(s, r, data.dimensions) });
    return `<tr data-href="${sp.esc(href)}"><td>${r.rank}</td>
      <td><span class="swatch" style="background:${r.color}"></span><a href="${sp.esc(href)}">${sp.esc(r.label)}</a></td>
      <td class="num">${sp.fmt(r.total, " " + totalUnit)}</td><td class="num">${sp.fmt(r.avg_rate, " " + data.unit)}</td>
      <td class="num">${r.share.toFixed(1)} %</td><td class="open">${pageLinks(s, data.dimensions, r.key)}</td></tr>`;
  }).join("");
  el("totals").querySelectorAll("th[data-sort]").forEach(th => {
    th.classList.toggle("sorted-asc", th.dataset.sort === k && sortBy.dir > 0);
    th.classList.toggle("sorted-desc", th.dataset.sort === k && sortBy.dir < 0);
  });
}

// ------------------------------------------------------------------ Sankey (plain SVG)

function sankey(data) {
  lastSankey = data;
  const box = el("sankey");
  if (!data || !data.links.length) { box.innerHTML = `<p class="muted">${data ? "no flows in this range" :
    "pick at least two dimensions for a source → destination view"}</p>`; return; }
  const width = Math.max(320, box.clientWidth - 20), height = Math.max(200, Math.min(600, 40 * data.nodes.length));
  const columns = data.dimensions.length, nodeW = 12, pad = 8, labelRoom = 160;
  const inflow = data.nodes.map(() => 0), outflow = data.nodes.map(() => 0);
  for (const l of data.links) { outflow[l.source] += l.value; inflow[l.target] += l.value; }
  const size = data.nodes.map((n, i) => Math.max(inflow[i], outflow[i]));
  const byCol = Array.from({ length: columns }, (_, c) => data.nodes.map((n, i) => i).filter(i =>
    data.nodes[i].dimension === data.dimensions[c]));
  const scale = Math.min(...byCol.map(ids => (height - pad * (ids.length - 1)) / (ids.reduce((a, i) => a + size[i], 0) || 1)));
  const pos = [];
  byCol.forEach((ids, c) => {
    let y = 0;
    const x = labelRoom + (width - 2 * labelRoom - nodeW) * (columns > 1 ? c / (columns - 1) : 0);
    ids.sort((a, b) => size[b] - size[a]).forEach(i => { pos[i] = { x, y, h: Math.max(1, size[i] * scale) }; y += pos[i].h + pad; });
  });
  const outY = pos.map(p => p.y), inY = pos.map(p => p.y);
  let svg = "";
  data.links.forEach((l, k) => {
    const a = pos[l.source], b = pos[l.target], w = Math.max(1, l.value * scale);
    const y0 = outY[l.source] + w / 2, y1 = inY[l.target] + w / 2;
    outY[l.source] += w; inY[l.target] += w;
    const x0 = a.x + nodeW, x1 = b.x, mx = (x0 + x1) / 2;
    svg += `<path d="M${x0},${y0} C${mx},${y0} ${mx},${y1} ${x1},${y1}" stroke="${PALETTE[l.source % PALETTE.length]}"
      stroke-width="${w}"><title>${sp.esc(data.nodes[l.source].name)} → ${sp.esc(data.nodes[l.target].name)}: ${
      sp.fmt(l.value, " " + data.value)}</title></path>`;
  });
  data.nodes.forEach((n, i) => {
    const p = pos[i], c = data.dimensions.indexOf(n.dimension), left = c < columns - 1 || columns === 1;
    svg += `<rect x="${p.x}" y="${p.y}" width="${nodeW}" height="${p.h}" fill="#334e68"><title>${sp.esc(n.dimension)} ${
      sp.esc(n.name)}: ${sp.fmt(size[i], " " + data.value)}</title></rect>
      <text x="${left && c === 0 ? p.x - 6 : p.x + nodeW + 6}" y="${p.y + p.h / 2}" dominant-baseline="middle"
        text-anchor="${left && c === 0 ? "end" : "start"}">${sp.esc(n.name)}</text>`;
  });
  box.innerHTML = `<svg viewBox="0 0 ${width} ${height}" height="${height}" role="img"
    aria-label="source to destination">${svg}</svg>`;
}

// ------------------------------------------------------------------ loading

function showError(e) {
  if (e && e.detail && e.detail.field && sp.fieldError(e.detail, inputs)) { sp.error(null); return; }
  sp.fieldError(null, inputs);
  sp.error(e);
}

async function load(s) {
  const params = { dimensions: s.dimensions, filter: s.filter, value: s.value, n: s.n,
                   range: s.range, from: s.from, to: s.to };
  if (s.from || s.to) delete params.range;
  let data;
  try {
    data = await spHistory.get("/history/flows/json", params);
  } catch (e) {
    showError(e);
    return;
  }
  sp.fieldError(null, inputs); sp.error(null);
  last = { data, s };
  draw(data, s);
  table(data, s);
  const fmt = t => new Date(t * 1000).toLocaleString([], { hour12: false });
  el("which").textContent = `${fmt(data.from)} – ${fmt(data.to)}, one point every ${data.step} s, from ${data.table_used}`;
  const dims = s.dimensions.split(",").filter(Boolean);
  if (dims.length >= 2) {
    spHistory.get("/history/sankey/json", { ...params, value: "bytes" }).then(sankey).catch(e => sp.error(e));
  } else sankey(null);
}

form.addEventListener("submit", ev => {
  ev.preventDefault();
  const s = stateFromForm();
  history.pushState(s, "", url(s));
  load(s);
});
modeSel.addEventListener("change", () => { if (last) { last.s.mode = modeSel.value; draw(last.data, last.s);
  history.replaceState(last.s, "", url(last.s)); } });
el("totals").addEventListener("click", ev => {
  const th = ev.target.closest("th[data-sort]");
  if (th) {
    sortBy = { key: th.dataset.sort, dir: sortBy.key === th.dataset.sort ? -sortBy.dir : (th.dataset.sort === "label" ? 1 : -1) };
    if (last) table(last.data, last.s);
    return;
  }
  const tr = ev.target.closest("tr[data-href]");
  if (!tr || ev.target.closest("a.drill") || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button) return;  // a new tab: let the link go
  ev.preventDefault();
  history.pushState(null, "", tr.dataset.href);
  const s = stateFromUrl(); toForm(s); load(s);
});
window.addEventListener("popstate", () => { const s = stateFromUrl(); toForm(s); load(s); });
window.addEventListener("resize", () => { if (last) { draw(last.data, last.s); sankey(lastSankey); } });
sp.nav("explore.html");
const initial = stateFromUrl();
toForm(initial);
load(initial);
