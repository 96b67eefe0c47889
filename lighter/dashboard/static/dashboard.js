// The dashboard page: fetches /api/runs and /api/epochs, draws one line per run (or mean ± std bands over
// seeds when grouped by a sweep axis), and keeps a sortable table of runs. State lives in `S` and the URL hash.
"use strict";

const NOT_METRICS = new Set(["epoch", "mode", "batch", "step", "time", "n_batches"]);
const MODES = ["train", "val", "test", "predict"];
const LIVE = new Set(["running", "pending"]);
const LOWER_IS_BETTER = /loss|err|mse|mae|rmse|nll|perplex|dist|hd95|time/i;
const CATEGORY = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b"];
const GREY = "#9aa0a6";
const FETCH_BATCH = 50; // runs per POST /api/epochs
const LEGEND_MAX = 20; // more lines than this, one per run: no legend
const LEAF = "leaf"; // group-by choice: the sweep leaf a trial belongs to

const S = {
  runs: new Map(), // id -> run from /api/runs
  epochs: new Map(), // id -> {version, rows} or {version, error}
  mode: null, metric: null, x: "epoch", group: "", best: null, logy: false, filter: "",
  highlight: null, sort: {key: "id", dir: 1}, renders: 0,
};
const $ = (id) => document.getElementById(id);
const plot = $("plot");

// ---------------------------------------------------------------------------------------------- data
async function getJSON(url) {
  const response = await fetch(url, {cache: "no-store"});
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

/** Fetch /api/runs, then the epochs of only the runs whose files changed. Returns how many changed. */
async function refresh() {
  const listing = await getJSON("api/runs");
  $("root").textContent = listing.root;
  const seen = new Set();
  const changed = [];
  for (const run of listing.runs) {
    seen.add(run.id);
    S.runs.set(run.id, run);
    const have = S.epochs.get(run.id);
    if (!have || have.version !== run.version) changed.push(run);
  }
  let removed = 0;
  for (const id of [...S.runs.keys()]) {
    if (!seen.has(id)) { S.runs.delete(id); S.epochs.delete(id); removed++; }
  }
  // Only the runs that changed, in a few requests of many runs each.
  for (let i = 0; i < changed.length; i += FETCH_BATCH) {
    const chunk = changed.slice(i, i + FETCH_BATCH);
    const response = await fetch("api/epochs", {
      method: "POST", cache: "no-store", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({runs: chunk.map((run) => run.id)}),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    for (const run of chunk) {
      const error = body.errors[run.id];
      S.epochs.set(run.id, {version: run.version, rows: error ? [] : body.epochs[run.id] || [], error});
    }
  }
  return changed.length + removed;
}

function rowsOf(id, mode) {
  const e = S.epochs.get(id);
  return e ? e.rows.filter((r) => r.mode === mode) : [];
}

function modesPresent() {
  const found = new Set();
  for (const e of S.epochs.values()) for (const r of e.rows) found.add(r.mode);
  return [...MODES.filter((m) => found.has(m)), ...[...found].filter((m) => !MODES.includes(m)).sort()];
}

function metricsOf(mode) {
  const found = [];
  const seen = new Set();
  for (const e of S.epochs.values()) {
    for (const r of e.rows) {
      if (r.mode !== mode) continue;
      for (const [k, v] of Object.entries(r)) {
        if (!seen.has(k) && !NOT_METRICS.has(k) && v !== null) { seen.add(k); found.push(k); }
      }
    }
  }
  return found;
}

/** The sweep axes of all runs, and `leaf` first when runs come from several leaves (experiments over seeds). */
function axisNames() {
  const names = new Set();
  for (const run of S.runs.values()) for (const k of Object.keys(run.axes || {})) names.add(k);
  const leaves = new Set([...S.runs.values()].map((r) => r.leaf).filter((l) => l !== undefined));
  return [...(leaves.size > 1 ? [LEAF] : []), ...[...names].sort()];
}

const isSeed = (axis) => axis.split("::").pop() === "seed";
const fmt = (v) => (v === null || v === undefined ? "—" : typeof v === "number" ? +v.toPrecision(4) + "" : String(v));
const axisValue = (run, axis) =>
  axis === LEAF ? run.leaf ?? undefined : run.axes && axis in run.axes ? run.axes[axis] : undefined;

function visibleRuns() {
  const f = S.filter.toLowerCase();
  return [...S.runs.values()].filter((r) => !f || r.id.toLowerCase().includes(f)).sort((a, b) => a.id.localeCompare(b.id));
}

/** x, y of one run for the current mode and metric; null values dropped. Cached until the next render. */
let seriesCache = new Map();
function series(id) {
  if (seriesCache.has(id)) return seriesCache.get(id);
  const xs = [], ys = [], epochs = [];
  for (const r of rowsOf(id, S.mode)) {
    const y = r[S.metric], x = r[S.x];
    if (y === null || y === undefined || x === null || x === undefined) continue;
    xs.push(x); ys.push(y); epochs.push(r.epoch);
  }
  const found = {xs, ys, epochs};
  seriesCache.set(id, found);
  return found;
}

// ---------------------------------------------------------------------------------------------- colours
function sortValues(values) {
  const numeric = values.every((v) => typeof v === "number");
  return {numeric, values: [...values].sort((a, b) => (numeric ? a - b : String(a).localeCompare(String(b))))};
}

function lerpColour(stops, t) {
  const pos = t * (stops.length - 1), i = Math.min(Math.floor(pos), stops.length - 2), f = pos - i;
  const a = parseInt(stops[i].slice(1), 16), b = parseInt(stops[i + 1].slice(1), 16);
  const ch = (s) => Math.round(((a >> s) & 255) * (1 - f) + ((b >> s) & 255) * f);
  return "#" + ((1 << 24) | (ch(16) << 16) | (ch(8) << 8) | ch(0)).toString(16).slice(1);
}

/** value key -> colour: ordered numbers on a sequential scale, anything else on a categorical palette. */
function palette(values) {
  const {numeric, values: ordered} = sortValues(values);
  const colours = new Map();
  ordered.forEach((v, i) => {
    const c = numeric && ordered.length > 1 ? lerpColour(VIRIDIS, i / (ordered.length - 1))
      : CATEGORY[i % CATEGORY.length];
    colours.set(JSON.stringify(v), c);
  });
  return {colours, ordered};
}

// ---------------------------------------------------------------------------------------------- plot
const escapeHTML = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})[c]);

function runLine(run, {colour, width = 1.6, opacity = 1, legend, showlegend = true, name}) {
  const {xs, ys} = series(run.id);
  const axes = Object.entries(run.axes || {}).map(([k, v]) => `${escapeHTML(k)} = ${escapeHTML(fmt(v))}`).join("<br>");
  return {
    type: "scatter", mode: xs.length < 30 ? "lines+markers" : "lines", x: xs, y: ys,
    name: name ?? run.id, legendgroup: legend ?? run.id, showlegend,
    line: {width, color: colour}, marker: {size: 4}, opacity,
    meta: {run: run.id, kind: "run", width, opacity},
    hovertemplate: `<b>${escapeHTML(run.id)}</b><br>${axes}${axes ? "<br>" : ""}${S.x} %{x}<br>${escapeHTML(S.metric)} %{y:.4g}<extra></extra>`,
  };
}

/** Mean and sample std per epoch across runs (x is the mean x of the epoch, so time axes work too). */
function meanStd(runs) {
  const byEpoch = new Map();
  for (const run of runs) {
    const {xs, ys, epochs} = series(run.id);
    epochs.forEach((e, i) => {
      if (!byEpoch.has(e)) byEpoch.set(e, {x: [], y: []});
      byEpoch.get(e).x.push(xs[i]); byEpoch.get(e).y.push(ys[i]);
    });
  }
  const out = {x: [], mean: [], lo: [], hi: [], n: []};
  for (const e of [...byEpoch.keys()].sort((a, b) => a - b)) {
    const {x, y} = byEpoch.get(e);
    const m = y.reduce((a, b) => a + b, 0) / y.length;
    const sd = y.length > 1 ? Math.sqrt(y.reduce((a, b) => a + (b - m) ** 2, 0) / (y.length - 1)) : 0;
    out.x.push(x.reduce((a, b) => a + b, 0) / x.length);
    out.mean.push(m); out.lo.push(m - sd); out.hi.push(m + sd); out.n.push(y.length);
  }
  return out;
}

function withAlpha(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

function traces(runs) {
  if (!S.group) {
    return runs.map((run, i) => runLine(run, {colour: CATEGORY[i % CATEGORY.length]}));
  }
  const axis = S.group;
  const values = [...new Map(runs.filter((r) => axisValue(r, axis) !== undefined)
    .map((r) => [JSON.stringify(axisValue(r, axis)), axisValue(r, axis)])).values()];
  const {colours, ordered} = palette(values);
  // Runs alike in everything but their seed form one band.
  const bands = new Map();
  for (const run of runs) {
    const v = axisValue(run, axis);
    const rest = Object.entries(run.axes || {}).filter(([k]) => !isSeed(k)).sort();
    // Coloured by seed, every run is its own line; so is a run outside any sweep (it has no leaf to share).
    const alone = isSeed(axis) || run.leaf === undefined;
    const key = JSON.stringify(alone ? ["run", run.id] : [run.leaf, rest, v === undefined]);
    if (!bands.has(key)) bands.set(key, {value: v, runs: []});
    bands.get(key).runs.push(run);
  }
  const rank = (v) => (v === undefined ? ordered.length : ordered.findIndex((o) => JSON.stringify(o) === JSON.stringify(v)));
  const ordering = [...bands.values()].sort((a, b) => rank(a.value) - rank(b.value));
  const out = [], legendShown = new Set();
  for (const band of ordering) {
    const label = band.value === undefined ? `no ${axis}` : `${axis} = ${fmt(band.value)}`;
    const colour = band.value === undefined ? GREY : colours.get(JSON.stringify(band.value));
    const first = !legendShown.has(label);
    legendShown.add(label);
    if (band.runs.length < 2) {
      out.push(runLine(band.runs[0], {colour, legend: label, showlegend: first, name: label}));
      continue;
    }
    const st = meanStd(band.runs);
    const common = {type: "scatter", legendgroup: label, showlegend: false, hoverinfo: "skip", x: st.x};
    const ids = band.runs.map((r) => r.id);
    out.push({...common, y: st.lo, mode: "lines", line: {width: 0, color: colour}, meta: {kind: "band-low", runs: ids}});
    out.push({...common, y: st.hi, mode: "lines", line: {width: 0, color: colour}, fill: "tonexty",
      fillcolor: withAlpha(colour, 0.22), meta: {kind: "band", runs: ids}});
    for (const run of band.runs) {
      out.push(runLine(run, {colour, width: 0.8, opacity: 0.45, legend: label, showlegend: false, name: run.id}));
    }
    out.push({
      type: "scatter", mode: "lines", x: st.x, y: st.mean, name: label, legendgroup: label, showlegend: first,
      line: {width: 2.4, color: colour}, meta: {kind: "mean", runs: ids, width: 2.4, opacity: 1},
      customdata: st.n.map((n, i) => [n, st.hi[i] - st.mean[i]]),
      hovertemplate: `<b>${escapeHTML(label)}</b> (mean ± std over seeds)<br>${S.x} %{x:.4g}<br>${escapeHTML(S.metric)} %{y:.4g} ± %{customdata[1]:.2g} (n=%{customdata[0]})<extra></extra>`,
    });
  }
  return out;
}

function layout() {
  return {
    margin: {l: 60, r: 20, t: 10, b: 45},
    xaxis: {title: {text: S.x === "time" ? "time (s)" : "epoch"}, zeroline: false},
    yaxis: {title: {text: `${S.mode} ${S.metric}`}, type: S.logy ? "log" : "linear", zeroline: false},
    hovermode: "closest", showlegend: true, legend: {font: {size: 11}},
    uirevision: `${S.mode}|${S.metric}|${S.x}|${S.logy}`, // keep the user's zoom across refreshes
  };
}

/** Does this trace belong to the highlighted run (its own line, or the band and mean its seeds make)? */
function isHighlighted(meta) {
  return S.highlight !== null && (meta.run === S.highlight || (meta.runs || []).includes(S.highlight));
}

/**
 * Emphasise the highlighted run with CSS classes on the SVG plotly drew (see index.html): a click must not make
 * plotly redraw a hundred lines. Plotly redraws on zoom or refresh; `plotly_afterplot` calls this again.
 */
function applyHighlight() {
  plot.classList.toggle("dimmed", S.highlight !== null);
  for (const g of plot.querySelectorAll(".scatterlayer .trace")) {
    const cd = g.__data__ && g.__data__[0];
    const trace = cd && cd.trace && plot.data[cd.trace.index];
    const meta = (trace && trace.meta) || {};
    const mine = isHighlighted(meta);
    g.classList.toggle("highlighted", mine);
    g.classList.toggle("thick", mine && meta.kind === "run");
    if (mine) g.parentNode.appendChild(g); // drawn last, so on top
  }
  for (const tr of document.querySelectorAll("#runs-table tbody tr")) {
    tr.classList.toggle("selected", tr.dataset.run === S.highlight);
  }
}

// ---------------------------------------------------------------------------------------------- table
function summary(id) {
  const {ys} = series(id);
  if (!ys.length) return {final: null, best: null, epochs: 0};
  const best = S.best === "min" ? Math.min(...ys) : Math.max(...ys);
  return {final: ys[ys.length - 1], best, epochs: ys.length};
}

function renderTable(runs) {
  const colourOf = S.colourOf || new Map();
  const axes = axisNames();
  const cols = [
    {key: "id", label: "run"}, {key: "status", label: "status"},
    ...axes.map((a) => ({key: "axis:" + a, label: a, num: true})),
    {key: "final", label: `final ${S.metric ?? ""}`, num: true},
    {key: "best", label: `best ${S.metric ?? ""} ${S.best === "min" ? "\u2193" : "\u2191"}`, num: true},
    {key: "epochs", label: "epochs", num: true},
  ];
  const rows = runs.map((run) => {
    const e = S.epochs.get(run.id);
    const status = e && e.error ? "unreadable" : run.status ?? "";
    const values = {id: run.id, status, ...summary(run.id)};
    for (const a of axes) values["axis:" + a] = axisValue(run, a);
    return {run, values, error: e && e.error};
  });
  const {key, dir} = S.sort;
  const cmp = (a, b) => {
    const x = a.values[key], y = b.values[key];
    if (x === undefined || x === null) return y === undefined || y === null ? 0 : 1;
    if (y === undefined || y === null) return -1;
    return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), undefined, {numeric: true})) * dir;
  };
  rows.sort(cmp);
  const head = document.createElement("tr");
  for (const c of cols) {
    const th = document.createElement("th");
    th.textContent = c.label;
    th.dataset.key = c.key;
    if (c.key === key) { th.classList.add("sorted"); th.dataset.dir = dir; }
    th.addEventListener("click", () => {
      S.sort = {key: c.key, dir: S.sort.key === c.key ? -S.sort.dir : c.key === "best" && S.best === "max" ? -1 : 1};
      renderTable(visibleRuns());
      S.renders++;
      document.body.dataset.renders = S.renders;
    });
    head.appendChild(th);
  }
  const thead = $("runs-table").tHead;
  thead.replaceChildren(head);
  const body = document.createElement("tbody");
  for (const {run, values, error} of rows) {
    const tr = document.createElement("tr");
    tr.dataset.run = run.id;
    if (run.id === S.highlight) tr.classList.add("selected");
    if (error || run.problem) tr.title = error || run.problem;
    for (const c of cols) {
      const td = document.createElement("td");
      const v = values[c.key];
      if (c.key === "id") {
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.background = colourOf.get(run.id) || "transparent";
        td.append(sw, run.id);
      } else if (c.key === "status") {
        const badges = [v, run.in_sweep === false ? "out of sweep" : ""].filter(Boolean);
        for (const text of badges) {
          const badge = document.createElement("span");
          badge.className = "status " + text.replace(/ /g, "-");
          badge.textContent = text;
          td.append(badge, " ");
        }
      } else {
        td.textContent = fmt(v);
        if (typeof v === "number") td.className = "num";
      }
      tr.appendChild(td);
    }
    tr.addEventListener("click", () => { S.highlight = S.highlight === run.id ? null : run.id; applyHighlight(); });
    body.appendChild(tr);
  }
  $("runs-table").tBodies[0].replaceWith(body);
}

// ---------------------------------------------------------------------------------------------- controls
function fillSelect(select, options, value) {
  const current = [...select.options].map((o) => o.value).join("\n");
  const wanted = options.map(([v]) => v).join("\n");
  if (current !== wanted) {
    select.replaceChildren(...options.map(([v, label]) => new Option(label, v)));
  }
  select.value = value;
}

function pickDefaults() {
  const modes = modesPresent();
  if (!modes.includes(S.mode)) S.mode = modes.includes("val") ? "val" : modes[0] ?? null;
  const metrics = S.mode ? metricsOf(S.mode) : [];
  if (!metrics.includes(S.metric)) {
    // The first metric proper (accuracy, dice, ...) before the loss; the loss when it is all there is.
    S.metric = metrics.find((m) => m !== "loss" && m !== "lr" && m !== "grad_norm") ?? metrics[0] ?? null;
    S.best = null;
  }
  if (S.best === null && S.metric) S.best = LOWER_IS_BETTER.test(S.metric) ? "min" : "max";
  const axes = axisNames();
  if (S.group && !axes.includes(S.group)) S.group = "";
  fillSelect($("mode"), modes.map((m) => [m, m]), S.mode ?? "");
  fillSelect($("metric"), metrics.map((m) => [m, m]), S.metric ?? "");
  fillSelect($("group"), [["", "— one line per run —"], ...axes.map((a) => [a, a])], S.group);
  $("x").value = S.x;
  $("best").value = S.best ?? "min";
  $("logy").checked = S.logy;
  $("filter").value = S.filter;
}

function saveHash() {
  const p = new URLSearchParams();
  for (const k of ["mode", "metric", "x", "group", "best", "filter"]) if (S[k]) p.set(k, S[k]);
  if (S.logy) p.set("logy", "1");
  history.replaceState(null, "", "#" + p.toString());
}

function loadHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  for (const k of ["mode", "metric", "x", "group", "best", "filter"]) if (p.has(k)) S[k] = p.get(k);
  S.logy = p.get("logy") === "1";
}

function render() {
  pickDefaults();
  saveHash();
  seriesCache = new Map();
  const runs = visibleRuns();
  const data = S.metric ? traces(runs) : [];
  const colourOf = new Map();
  for (const t of data) {
    const ids = t.meta.run ? [t.meta.run] : t.meta.runs || [];
    for (const id of ids) if (!colourOf.has(id)) colourOf.set(id, t.line.color);
  }
  const shown = data.some((t) => t.x.length);
  $("empty").style.display = shown ? "none" : "block";
  const many = !S.group && data.length > LEGEND_MAX; // the table, with its colour swatches, is the legend then
  Plotly.react(plot, data, {...layout(), showlegend: !many}, {responsive: true, displaylogo: false});
  S.colourOf = colourOf;
  renderTable(runs);
  S.renders++;
  document.body.dataset.renders = S.renders;
}

function bind() {
  const on = (id, key, parse = (v) => v) => $(id).addEventListener("change", (ev) => {
    S[key] = parse(ev.target.type === "checkbox" ? ev.target.checked : ev.target.value);
    if (key === "mode" || key === "metric") S.best = null;
    render();
  });
  on("mode", "mode"); on("metric", "metric"); on("x", "x"); on("group", "group"); on("best", "best"); on("logy", "logy");
  $("filter").addEventListener("input", (ev) => { S.filter = ev.target.value; render(); });
  plot.on("plotly_afterplot", applyHighlight);
  plot.on("plotly_click", (ev) => {
    const m = ev.points[0] && ev.points[0].data.meta;
    if (!m || m.kind !== "run") return;
    S.highlight = S.highlight === m.run ? null : m.run;
    applyHighlight();
    const tr = document.querySelector(`#runs-table tbody tr[data-run="${CSS.escape(m.run)}"]`);
    if (tr) tr.scrollIntoView({block: "nearest"});
  });
}

// ---------------------------------------------------------------------------------------------- refresh loop
let timer = null;
async function tick() {
  clearTimeout(timer);
  try {
    const changed = await refresh();
    if (changed || !S.renders) render();
    const live = [...S.runs.values()].filter((r) => LIVE.has(r.status)).length;
    $("state").className = "";
    $("state").textContent = `${S.runs.size} runs${live ? `, ${live} running` : ""} · updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $("state").className = "error";
    $("state").textContent = `cannot reach the server (${err.message}); retrying`;
  }
  document.body.dataset.state = "ready";
  if ($("refresh").checked) {
    const live = [...S.runs.values()].some((r) => LIVE.has(r.status));
    timer = setTimeout(tick, live ? 3000 : 15000);
  }
}

loadHash();
Plotly.newPlot(plot, [], layout(), {responsive: true, displaylogo: false}).then(() => {
  bind();
  $("refresh").addEventListener("change", (ev) => { if (ev.target.checked) tick(); else clearTimeout(timer); });
  tick();
});
window.lighterDashboard = {state: S, render, refresh: tick};
