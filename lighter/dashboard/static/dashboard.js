// The dashboard page: fetches /api/runs and /api/epochs, draws one line per run (or mean ± std bands over
// seeds when grouped by a sweep axis), and keeps a sortable table of runs. /api/compare gives each run's final and
// best value and the comparison of settings (table, plot of means, parallel coordinates per leaf). State lives in
// `S` and the URL hash.
"use strict";

const NOT_METRICS = new Set(["epoch", "mode", "batch", "step", "time", "n_batches"]);
const MODES = ["train", "val", "test", "predict"];
const LOWER_IS_BETTER = /loss|err|mse|mae|rmse|nll|perplex|dist|hd95|time/i;
const CATEGORY = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b"];
const GREY = "#9aa0a6";
const FETCH_BATCH = 50; // runs per POST /api/epochs
const LEGEND_MAX = 20; // more lines than this, one per run: no legend
const LEAF = "leaf"; // group-by choice: the sweep leaf a trial belongs to

const S = {
  runs: new Map(), // id -> run from /api/runs
  live: new Set(), // the statuses of a run still on its way (lighter.names.LIVE_STATUSES), from /api/runs
  epochs: new Map(), // id -> {version, rows} or {version, error}
  mode: null, metric: null, x: "epoch", group: null, best: null, logy: false, filter: "",
  highlight: null, sort: {key: "id", dir: 1}, renders: 0,
  value: "final", by: null, leaf: null, // the comparison: final or best, grouped by axes (or leaf), the parcoords leaf
  compare: null, compared: 0, // the latest /api/compare answer, and how many have been drawn
};
const LOGGED = "Lightning's epoch value"; // reduce.LOGGED: a run's own logged epoch value, weighted by batch size
const VALUE_HELP = {
  final: "final: the value at the run's last epoch; best: the lowest or highest over its epochs (\"best is\"). " +
    "Both are Lightning's logged epoch value (weighted by batch size, as `lighter sweep results` and run.yaml show " +
    "it) where the run logged one to metrics.csv, else the plain mean of the epoch's batches (the curve).",
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
  S.live = new Set(listing.live);
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

/** The first axis a sweep leaf varies (not its seed), else the leaf when there are trials, else nothing. */
function defaultGroup() {
  const runs = [...S.runs.values()].sort((a, b) => a.id.localeCompare(b.id));
  const swept = runs.filter((r) => r.leaf_mode !== "experiment");
  for (const run of [...swept, ...runs]) {
    const axis = Object.keys(run.axes || {}).find((k) => !isSeed(k));
    if (axis) return axis;
  }
  return runs.some((r) => r.leaf !== undefined) ? LEAF : "";
}

const isSeed = (axis) => axis.split("::").pop() === "seed";
const shortAxis = (axis) => axis.split("::").pop();
const fmt = (v) => (v === null || v === undefined ? "—" : typeof v === "number" ? +v.toPrecision(4) + "" : String(v));
/** A run's value of an axis: its own, or (an experiment repeating a sweep setting) the one its config holds. */
const axisValue = (run, axis) => {
  if (axis === LEAF) return run.leaf ?? undefined;
  if (run.axes && axis in run.axes) return run.axes[axis];
  const v = run.values ? run.values[axis] : undefined;
  return v === null ? undefined : v;
};

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

/** One run per seed: a sweep's seed-0 run and the experiment's seed-0 run of its setting measure the same thing. */
function distinctSeeds(runs) {
  const seen = new Map();
  for (const run of [...runs].sort((a, b) => (a.leaf_mode === "experiment" ? 0 : 1) - (b.leaf_mode === "experiment" ? 0 : 1))) {
    const key = run.values && Object.keys(run.values).length ? JSON.stringify(Object.entries(run.values).sort()) : run.id;
    if (!seen.has(key)) seen.set(key, run);
  }
  return [...seen.values()];
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
    // Alike in every sweep axis but the seed (an experiment joins the sweep setting it repeats); by leaf, per leaf.
    const own = Object.keys(run.values || {}).length ? run.values : run.axes || {};
    const rest = Object.entries(own).filter(([k]) => !isSeed(k)).sort();
    // Coloured by seed, every run is its own line; so is a run outside any sweep (it has no leaf to share).
    const alone = isSeed(axis) || run.leaf === undefined;
    const key = JSON.stringify(alone ? ["run", run.id] : [axis === LEAF || !run.values ? run.leaf : null, rest, v === undefined]);
    if (!bands.has(key)) bands.set(key, {value: v, runs: []});
    bands.get(key).runs.push(run);
  }
  const rank = (v) => (v === undefined ? ordered.length : ordered.findIndex((o) => JSON.stringify(o) === JSON.stringify(v)));
  const ordering = [...bands.values()].sort((a, b) => rank(a.value) - rank(b.value));
  const out = [], legendShown = new Set();
  for (const band of ordering) {
    const label = band.value === undefined ? `no ${shortAxis(axis)}` : fmt(band.value); // the legend's title names the axis
    const colour = band.value === undefined ? GREY : colours.get(JSON.stringify(band.value));
    const first = !legendShown.has(label);
    legendShown.add(label);
    if (band.runs.length < 2) {
      out.push(runLine(band.runs[0], {colour, legend: label, showlegend: first, name: label}));
      continue;
    }
    const st = meanStd(distinctSeeds(band.runs));
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

/** Whole epochs on the x axis: a tick every 1, 2, 5, 10, ... epochs, never at 0.5. */
function epochTicks(runs) {
  if (S.x !== "epoch") return {};
  let last = 1;
  for (const run of runs) for (const e of series(run.id).xs) last = Math.max(last, e);
  const step = [1, 2, 5].flatMap((m) => [1, 10, 100, 1000].map((p) => m * p)).sort((a, b) => a - b)
    .find((d) => last / d <= 10) ?? Math.ceil(last / 10);
  return {tickmode: "linear", tick0: 0, dtick: step, tickformat: "d"};
}

function layout(runs = []) {
  return {
    margin: {l: 60, r: 20, t: 30, b: 45},
    xaxis: {title: {text: S.x === "time" ? "time (s)" : "epoch"}, zeroline: false, ...epochTicks(runs)},
    yaxis: {title: {text: `${S.mode} ${S.metric}`}, type: S.logy ? "log" : "linear", zeroline: false},
    // Below the plot, never under the toolbar at its top right; titled by the axis, so entries are its values.
    hovermode: "closest", showlegend: true,
    legend: {font: {size: 11}, orientation: "h", x: 0, y: -0.14, yanchor: "top",
      title: {text: S.group ? shortAxis(S.group) + " " : ""}},
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
/** The /api/compare answer, if it is for what the page shows now. */
function comparison() {
  const c = S.compare;
  return c && c.key === `${S.mode}/${S.metric}` && c.higher_is_better === (S.best === "max") ? c : null;
}

/** Final and best as the server defines them (Lightning's logged epoch value where there is one); the curve's until it answers. */
function summary(id) {
  const {ys} = series(id);
  if (!ys.length) return {final: null, best: null, epochs: 0};
  const served = comparison() && comparison().runs[id];
  if (served) return {final: served.final, best: served.best, epochs: ys.length, source: served.source};
  const best = S.best === "min" ? Math.min(...ys) : Math.max(...ys);
  return {final: ys[ys.length - 1], best, epochs: ys.length};
}

/** The header's note on where final and best come from: one source for all, or which cells are marked. */
function sourceNote() {
  const sources = comparison() ? comparison().sources : [];
  if (sources.length === 1) return ` (${sources[0]})`;
  return sources.length > 1 ? " (* mean of batches)" : "";
}

function renderTable(runs) {
  const colourOf = S.colourOf || new Map();
  const axes = axisNames();
  const cols = [
    {key: "id", label: "run"}, {key: "status", label: "status"},
    ...axes.map((a) => ({key: "axis:" + a, label: a, num: true})),
    {key: "final", label: `final ${S.metric ?? ""}${sourceNote()}`, num: true, help: VALUE_HELP.final},
    {key: "best", label: `best ${S.metric ?? ""} ${S.best === "min" ? "\u2193" : "\u2191"}`, num: true, help: VALUE_HELP.final},
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
    if (c.help) th.title = c.help;
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
        const mixed = (c.key === "final" || c.key === "best") && sourceNote().startsWith(" (*");
        td.textContent = fmt(v) + (mixed && values.source && values.source !== LOGGED ? " *" : "");
        if (typeof v === "number") td.className = "num";
      }
      tr.appendChild(td);
    }
    tr.addEventListener("click", () => { S.highlight = S.highlight === run.id ? null : run.id; applyHighlight(); });
    body.appendChild(tr);
  }
  $("runs-table").tBodies[0].replaceWith(body);
}

// ---------------------------------------------------------------------------------------------- comparison
const VERDICT_HELP = "Two-sided Welch t-test (p < 0.05) of this setting against the best one; the best one's row " +
  "against the runner-up. better than seed noise: the best setting's lead over the runner-up is larger than the " +
  "spread between seeds; worse than the best beyond seed noise: this setting loses to the best by more than that; " +
  "within noise: the difference could be seed noise alone; n < 2, run more seeds: a side has one trial, so its " +
  "noise is unknown.";
let comparing = 0;

/** Ask the server for the comparison of what the page shows; draw it when it is still wanted. */
async function updateComparison() {
  if (!S.mode || !S.metric) return;
  const ticket = ++comparing;
  const p = new URLSearchParams({mode: S.mode, metric: S.metric, value: S.value, best: S.best ?? "max"});
  for (const axis of S.by || [LEAF]) p.append("by", axis);
  let body;
  try {
    body = await getJSON("api/compare?" + p.toString());
  } catch (err) {
    $("cmp-note").textContent = `comparison unavailable: ${err.message}`;
    return;
  }
  if (ticket !== comparing) return; // a newer choice is on its way
  S.compare = body;
  renderTable(visibleRuns());
  applyHighlight();
  renderComparison(body);
  renderParcoords(body);
  S.compared++;
  document.body.dataset.compared = S.compared;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderComparison(c) {
  const by = c.by.map((a) => (a === LEAF ? "leaf" : shortAxis(a))).join(", ");
  const head = document.createElement("tr");
  const cols = [[by, ""], ["n", "trials counted: one per seed; finished runs only"], ["mean ± std", ""],
    ["95% CI", "Student's t interval of the mean"], ["best", ""], ["worst", ""], ["Δ to best", "mean minus the best mean"],
    ["p (Welch)", VERDICT_HELP], ["verdict", VERDICT_HELP]];
  for (const [label, help] of cols) {
    const th = document.createElement("th");
    th.textContent = label;
    if (help) th.title = help;
    head.appendChild(th);
  }
  $("compare-table").tHead.replaceChildren(head);
  const body = document.createElement("tbody");
  for (const row of c.settings) {
    const tr = document.createElement("tr");
    tr.dataset.setting = row.setting;
    tr.append(cell(row.setting), cell(String(row.n), "num"),
      cell(row.std === null ? fmt(row.mean) : `${fmt(row.mean)} ± ${fmt(row.std)}`, "num"),
      cell(row.ci_low === null ? "—" : `[${fmt(row.ci_low)}, ${fmt(row.ci_high)}]`, "num"),
      cell(fmt(row.best), "num"), cell(fmt(row.worst), "num"), cell(row.difference === 0 ? "0" : fmt(row.difference), "num"),
      cell(row.p_value === null ? "—" : row.p_value.toPrecision(2), "num"),
      cell(row.verdict, "verdict " + row.verdict.replace(/[^a-z]+/g, "-")));
    body.appendChild(tr);
  }
  $("compare-table").tBodies[0].replaceWith(body);
  const what = `${c.value} ${S.mode} ${S.metric}`;
  $("cmp-note").textContent = c.settings.length ? `${what}, ${S.best === "min" ? "lower" : "higher"} is better` :
    `no finished trials with ${what} under this grouping`;
  $("cmp-note").title = VALUE_HELP.final;
  // The means with their 95% intervals, and every counted trial's value beside them.
  const xs = c.settings.map((r) => r.setting);
  const trials = {x: [], y: [], text: []};
  for (const row of c.settings) {
    for (const id of row.runs) { trials.x.push(row.setting); trials.y.push(c.runs[id][c.value]); trials.text.push(id); }
  }
  const data = [
    {type: "scatter", mode: "markers", x: trials.x, y: trials.y, text: trials.text, name: "trials",
      marker: {size: 6, color: GREY, opacity: 0.7}, hovertemplate: "%{text}<br>%{y:.4g}<extra></extra>", meta: {kind: "trials"}},
    {type: "scatter", mode: "markers", x: xs, y: c.settings.map((r) => r.mean), name: "mean, 95% CI",
      marker: {size: 11, color: "#0969da", symbol: "diamond"}, meta: {kind: "means"},
      customdata: c.settings.map((r) => [r.n, r.verdict]),
      hovertemplate: "%{x}: %{y:.4g} (n=%{customdata[0]})<br>%{customdata[1]}<extra></extra>",
      error_y: {type: "data", symmetric: false, color: "#0969da", thickness: 2, width: 6,
        array: c.settings.map((r) => (r.ci_high === null ? 0 : r.ci_high - r.mean)),
        arrayminus: c.settings.map((r) => (r.ci_low === null ? 0 : r.mean - r.ci_low))}},
  ];
  Plotly.react($("compare-plot"), data, {
    margin: {l: 60, r: 10, t: 10, b: 60}, showlegend: true, legend: {orientation: "h", y: -0.25, x: 0},
    xaxis: {type: "category", title: {text: by}}, yaxis: {title: {text: what}, zeroline: false}, hovermode: "closest",
  }, {responsive: true, displaylogo: false});
}

/** Parallel coordinates of one leaf: a line per trial across its axes to the metric; pruned trials in grey. */
function renderParcoords(c) {
  const leaves = [...new Set([...S.runs.values()].filter((r) => r.leaf !== undefined && Object.keys(r.axes || {}).length)
    .map((r) => r.leaf))].sort();
  if (!leaves.includes(S.leaf)) {
    const swept = leaves.find((l) => [...S.runs.values()].some((r) => r.leaf === l && r.leaf_mode !== "experiment"));
    S.leaf = swept ?? leaves[0] ?? null;
  }
  fillSelect($("leaf"), leaves.map((l) => [l, l]), S.leaf ?? "");
  const runs = [...S.runs.values()].filter((r) => r.leaf === S.leaf && c.runs[r.id]).sort((a, b) => a.id.localeCompare(b.id));
  $("parcoords-section").style.display = runs.length ? "" : "none";
  if (!runs.length) { S.pcRuns = []; return; }
  const axes = [...new Set(runs.flatMap((r) => Object.keys(r.axes || {})))];
  const dimensions = axes.map((axis) => {
    const values = runs.map((r) => r.axes[axis]);
    if (values.every((v) => typeof v === "number")) {
      return {label: shortAxis(axis), values, tickvals: [...new Set(values)].sort((a, b) => a - b)};
    }
    const {values: ordered} = sortValues([...new Map(values.map((v) => [JSON.stringify(v), v])).values()]);
    const keys = ordered.map((v) => JSON.stringify(v));
    return {label: shortAxis(axis), values: values.map((v) => keys.indexOf(JSON.stringify(v))),
      tickvals: ordered.map((_, i) => i), ticktext: ordered.map(fmt)};
  });
  const metric = runs.map((r) => c.runs[r.id][c.value]);
  dimensions.push({label: `${c.value} ${S.metric}`, values: metric});
  const pruned = runs.map((r) => r.status === "pruned");
  const lo = Math.min(...metric), hi = Math.max(...metric), span = hi - lo || 1;
  // One colour scale: 0 is grey (pruned), the rest viridis by the metric.
  const colour = metric.map((v, i) => (pruned[i] ? 0 : 0.05 + 0.95 * (v - lo) / span));
  const scale = [[0, "#c8c8c8"], [0.04, "#c8c8c8"], ...VIRIDIS.map((col, i) => [0.05 + 0.95 * i / (VIRIDIS.length - 1), col])];
  S.pcRuns = runs.map((r) => r.id);
  const nPruned = pruned.filter(Boolean).length;
  $("pc-note").textContent = `${runs.length} trials${nPruned ? `, ${nPruned} pruned (grey)` : ""}; click a line to highlight its run`;
  S.pcDims = dimensions;
  S.pcTrace = {type: "parcoords", dimensions, meta: {kind: "parcoords", runs: S.pcRuns},
    line: {color: colour, colorscale: scale, cmin: 0, cmax: 1}};
  drawParcoords();
}

/**
 * Draw the parallel coordinates once they are on screen, and again only when their lines change: plotly draws them
 * with WebGL, which costs seconds where the browser has no GPU (a server, a headless test).
 */
function drawParcoords() {
  if (!S.pcVisible || !S.pcTrace) return;
  const spec = JSON.stringify(S.pcTrace);
  if (spec === S.pcDrawn) return;
  S.pcDrawn = spec;
  Plotly.react($("parcoords"), [S.pcTrace], {margin: {l: 70, r: 70, t: 40, b: 20}}, {responsive: true, displaylogo: false})
    .then(() => { document.body.dataset.parcoords = Number(document.body.dataset.parcoords || 0) + 1; });
}

/**
 * The index of the parcoords line nearest a click (within 8 px), or -1. Plotly reports lines only on hover, from a
 * WebGL pick buffer it fills lazily, so the lines are rebuilt here from the axes it drew: each axis's screen position
 * (its SVG group's transform) and its value range (the domain path, lowest value at the bottom).
 */
function lineAt(x, y) {
  const axes = [...$("parcoords").querySelectorAll(".y-axis")].map((g) => {
    const domain = g.querySelector("path.domain"), title = g.querySelector(".axis-title");
    if (!domain) return null;
    const box = domain.getBBox(), ctm = domain.getScreenCTM();
    const at = (u) => { const p = new DOMPoint(box.x + box.width, box.y + box.height * (1 - u)).matrixTransform(ctm); return [p.x, p.y]; };
    return {label: title ? title.textContent : "", at};
  }).filter(Boolean);
  const dims = S.pcDims || [];
  const used = new Set();
  const placed = axes.map((a, i) => {
    const d = dims.findIndex((dim, j) => !used.has(j) && dim.label === a.label);
    const j = d >= 0 ? d : i;
    used.add(j);
    return {at: a.at, dim: dims[j]};
  }).filter((a) => a.dim);
  let bestLine = -1, bestDistance = 8;
  for (let line = 0; line < (S.pcRuns || []).length; line++) {
    const points = placed.map(({at, dim}) => {
      const lo = Math.min(...dim.values), hi = Math.max(...dim.values);
      return at(hi > lo ? (dim.values[line] - lo) / (hi - lo) : 0.5);
    }).sort((a, b) => a[0] - b[0]);
    for (let k = 0; k + 1 < points.length; k++) {
      const [x1, y1] = points[k], [x2, y2] = points[k + 1];
      const t = Math.max(0, Math.min(1, ((x - x1) * (x2 - x1) + (y - y1) * (y2 - y1)) / ((x2 - x1) ** 2 + (y2 - y1) ** 2 || 1)));
      const distance = Math.hypot(x - (x1 + t * (x2 - x1)), y - (y1 + t * (y2 - y1)));
      if (distance < bestDistance) { bestDistance = distance; bestLine = line; }
    }
  }
  return bestLine;
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
  if (S.group === null && S.runs.size) S.group = defaultGroup();
  if (S.group && !axes.includes(S.group) && S.group !== LEAF) S.group = "";
  const groups = [...axes, ...(S.group === LEAF && !axes.includes(LEAF) ? [LEAF] : [])];
  fillSelect($("mode"), modes.map((m) => [m, m]), S.mode ?? "");
  fillSelect($("metric"), metrics.map((m) => [m, m]), S.metric ?? "");
  fillSelect($("group"), [["", "— one line per run —"], ...groups.map((a) => [a, a])], S.group ?? "");
  const byChoices = [LEAF, ...axes.filter((a) => a !== LEAF)];
  if (!S.by || !S.by.every((a) => byChoices.includes(a))) S.by = [S.group || defaultGroup() || LEAF].filter((a) => byChoices.includes(a));
  if (!S.by.length) S.by = [LEAF];
  fillSelect($("by"), byChoices.map((a) => [a, a]), null);
  for (const o of $("by").options) o.selected = S.by.includes(o.value);
  $("value").value = S.value;
  $("x").value = S.x;
  $("best").value = S.best ?? "min";
  $("logy").checked = S.logy;
  $("filter").value = S.filter;
}

function saveHash() {
  const p = new URLSearchParams();
  for (const k of ["mode", "metric", "x", "best", "filter", "value", "leaf"]) if (S[k]) p.set(k, S[k]);
  if (S.group !== null) p.set("group", S.group); // "" is a choice: one line per run
  if (S.by) p.set("by", S.by.join(","));
  if (S.logy) p.set("logy", "1");
  history.replaceState(null, "", "#" + p.toString());
}

function loadHash() {
  const p = new URLSearchParams(location.hash.slice(1));
  for (const k of ["mode", "metric", "x", "group", "best", "filter", "value", "leaf"]) if (p.has(k)) S[k] = p.get(k);
  if (p.get("by")) S.by = p.get("by").split(",");
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
  Plotly.react(plot, data, {...layout(runs), showlegend: !many}, {responsive: true, displaylogo: false});
  S.colourOf = colourOf;
  renderTable(runs);
  S.renders++;
  document.body.dataset.renders = S.renders;
  updateComparison();
}

function bind() {
  const on = (id, key, parse = (v) => v) => $(id).addEventListener("change", (ev) => {
    S[key] = parse(ev.target.type === "checkbox" ? ev.target.checked : ev.target.value);
    if (key === "mode" || key === "metric") S.best = null;
    if (key === "group" && S.group) S.by = [S.group]; // compare what the curves group by; refine it below
    render();
  });
  on("mode", "mode"); on("metric", "metric"); on("x", "x"); on("group", "group"); on("best", "best"); on("logy", "logy");
  on("value", "value"); on("leaf", "leaf");
  $("by").addEventListener("change", () => {
    S.by = [...$("by").selectedOptions].map((o) => o.value);
    if (S.by.includes(LEAF) && S.by.length > 1) S.by = S.by.filter((a) => a !== LEAF); // leaf or axes, not both
    render();
  });
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) { S.pcVisible = true; drawParcoords(); }
  }).observe($("parcoords"));
  $("parcoords").addEventListener("click", (ev) => {
    const id = S.pcRuns && S.pcRuns[lineAt(ev.clientX, ev.clientY)];
    if (id === undefined) return;
    S.highlight = S.highlight === id ? null : id;
    applyHighlight();
    const tr = document.querySelector(`#runs-table tbody tr[data-run="${CSS.escape(id)}"]`);
    if (tr) tr.scrollIntoView({block: "nearest"});
  });
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
    const live = [...S.runs.values()].filter((r) => S.live.has(r.status)).length;
    $("state").className = "";
    $("state").textContent = `${S.runs.size} runs${live ? `, ${live} running` : ""} · updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    $("state").className = "error";
    $("state").textContent = `cannot reach the server (${err.message}); retrying`;
  }
  document.body.dataset.state = "ready";
  if ($("refresh").checked) {
    const live = [...S.runs.values()].some((r) => S.live.has(r.status));
    timer = setTimeout(tick, live ? 3000 : 15000);
  }
}

loadHash();
Plotly.newPlot(plot, [], layout(), {responsive: true, displaylogo: false}).then(() => {
  bind();
  $("refresh").addEventListener("change", (ev) => { if (ev.target.checked) tick(); else clearTimeout(timer); });
  tick();
});
window.lighterDashboard = {state: S, render, refresh: tick, lineAt};
