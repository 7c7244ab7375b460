// <compare-view [runs="1,2,3"] [study-id="N"] [picker]>: several runs' curves overlaid, with
// the spec fields that differ between them. Runs that differ only by their seed form a group,
// drawn as its mean with a ± one-standard-deviation band.
import { getMetrics, getRun, getStudy, listRuns, listStudies } from "./api.js";
import "./ab-difference.js";
import { PlotElement, baseLayout } from "./plot-element.js";
import { FINISHED, el, formatNumber, formatPercent, runTitle, statusBadge, useStyle } from "./ui.js";

useStyle(import.meta.url, "compare-view.css");

const METRICS = [
  ["val_accuracy", "validation accuracy"], ["val_loss", "validation loss"],
  ["train_loss", "training loss"], ["train_accuracy", "training accuracy"],
  ["lr", "learning rate η"], ["weight_norm", "weight norm ‖w‖"],
  ["examples_per_second", "throughput (examples/s)"], ["epoch_seconds", "seconds per epoch"],
];
const PALETTE = ["#3456d1", "#e07b00", "#1f9d8a", "#c2407a", "#6d7a1f", "#8a5a2b", "#3a8fd1", "#9b59b6", "#d12f5a", "#2f9e44"];
const POINTS = 1000;
const REFRESH_MS = 2500;

/** {dotted.path: value} for every leaf of a spec; lists are leaves. The name is not a setting. */
export function flatten(spec, prefix = "", out = {}) {
  for (const [key, value] of Object.entries(spec || {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (!prefix && key === "name") continue;
    if (value && typeof value === "object" && !Array.isArray(value)) flatten(value, path, out);
    else out[path] = value;
  }
  return out;
}

/** The paths whose values are not all the same across the specs, in spec order. */
export function differingFields(specs) {
  const flat = specs.map((s) => flatten(s));
  const paths = [...new Set(flat.flatMap((f) => Object.keys(f)))];
  return paths.filter((p) => new Set(flat.map((f) => JSON.stringify(f[p] ?? null))).size > 1);
}

const show = (v) => (v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));

/** Mean and sample standard deviation (n − 1) at each x that at least one run has. */
export function meanStd(seriesList) {
  const byX = new Map();
  for (const points of seriesList) {
    for (const [x, v] of points) {
      if (v === null || !Number.isFinite(v)) continue;
      if (!byX.has(x)) byX.set(x, []);
      byX.get(x).push(v);
    }
  }
  const xs = [...byX.keys()].sort((a, b) => a - b);
  const mean = [];
  const std = [];
  const n = [];
  for (const x of xs) {
    const vs = byX.get(x);
    const m = vs.reduce((a, b) => a + b, 0) / vs.length;
    const s = vs.length > 1 ? Math.sqrt(vs.reduce((a, b) => a + (b - m) ** 2, 0) / (vs.length - 1)) : 0;
    mean.push(m);
    std.push(s);
    n.push(vs.length);
  }
  return { xs, mean, std, n };
}

/**
 * The last x up to which two curves are the same point for point (both have every x up to
 * it, with equal values), or 0 when they differ from their first point.
 */
export function identicalUpTo(a, b) {
  return agreement(a, b).upTo;
}

/** {upTo, count}: the last x and the number of leading points where two curves agree. */
function agreement(a, b) {
  let upTo = 0;
  let count = 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const [xa, va] = a[i];
    const [xb, vb] = b[i];
    const same = xa === xb && (va === vb || (va !== null && vb !== null
      && Math.abs(va - vb) <= 1e-12 * Math.max(1, Math.abs(va), Math.abs(vb))));
    if (!same) break;
    upTo = xa;
    count += 1;
  }
  return { upTo, count };
}

// Accuracies are fractions k/n: two different runs can share one epoch's value by chance.
// Curves count as the same only over MIN_AGREE leading points (or the whole of the shorter).
const MIN_AGREE = 3;

/**
 * Runs whose curves coincide from the first point on, grouped: [{ids, upTo, ends}], each with
 * at least two runs. upTo is the last epoch up to which every member that reached it has the
 * same point: where two members really part, the epoch before; where they only stop (a run
 * that early stopping ended sooner), the last epoch two of them still share. `ends`: the
 * members that stop before upTo, with their last epoch. Drawn on top of each other they
 * would look like one line.
 */
export function identicalClusters(curves) {
  const clusters = [];
  for (const [id, points] of curves) {
    if (!points.length) continue;
    const home = clusters.find((c) => {
      const { count } = agreement(c.members[0][1], points);
      return count >= Math.min(MIN_AGREE, c.members[0][1].length, points.length);
    });
    if (home) home.members.push([id, points]);
    else clusters.push({ members: [[id, points]] });
  }
  return clusters.filter((c) => c.members.length > 1).map(({ members }) => {
    let upTo = Infinity;
    for (let i = 0; i < members.length; i++) {
      for (let j = i + 1; j < members.length; j++) {
        const a = members[i][1];
        const b = members[j][1];
        const { upTo: x, count } = agreement(a, b);
        if (count < Math.min(a.length, b.length)) upTo = Math.min(upTo, x); // they part
      }
    }
    const lastX = members.map(([, pts]) => pts[pts.length - 1][0]).sort((p, q) => q - p);
    if (upTo === Infinity) upTo = lastX[1]; // never parted: as far as two of them go
    const ends = members.filter(([, pts]) => pts[pts.length - 1][0] < upTo)
      .map(([id, pts]) => ({ id, last: pts[pts.length - 1][0] }));
    return { ids: members.map(([id]) => id), upTo, ends };
  });
}

const DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"];

/** The value of a curve at x, or the nearest point's after it (z* = epoch 0 has no point). */
function valueAt(points, x) {
  const p = points.find((q) => q[0] >= x);
  return p ? p[1] : null;
}

function hexToRgba(hex, alpha) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${alpha})`;
}

// A page, but one Plotly figure (the overlay; <ab-difference> draws its own): PlotElement owns
// the figure's lifecycle and the refresh timer.
class CompareView extends PlotElement {
  plotLabel() {
    return "Overlaid curves chart";
  }

  cardClass() {
    return ""; // the page; the chart has its own card below
  }

  build(plot) {
    this.selected = (this.getAttribute("runs") || "").split(",").map((s) => s.trim()).filter(Boolean).map(Number);
    this.studyId = this.getAttribute("study-id");
    this.withPicker = this.hasAttribute("picker");
    this.runs = new Map();
    this.metrics = new Map(); // `${id}|${key}` -> points
    this.metric = "val_accuracy";
    this.notice = el("div", { class: "notice notice-error", role: "alert", hidden: true });
    this.metricSelect = el("select", { id: "compare-metric", onchange: () => { this.metric = this.metricSelect.value; this.refresh(); } },
      METRICS.map(([k, label]) => el("option", { value: k, text: label })));
    this.bandBox = el("input", { type: "checkbox", id: "compare-band", checked: true, onchange: () => this.draw() });
    this.bandLabel = el("label", { class: "check", hidden: true }, this.bandBox, "mean ± std over seeds");
    this.overlayNotes = el("ul", { class: "overlay-notes", hidden: true, "aria-live": "polite" });
    this.logBox = el("input", { type: "checkbox", id: "compare-log", onchange: () => this.draw() });
    this.placeholder = el("p", { class: "chart-empty", text: "Pick runs to overlay their curves." });
    this.diffTable = el("table", { class: "data-table diff-table" });
    this.diffNote = el("p", { class: "muted diff-note" });
    this.picker = this.withPicker ? el("section", { class: "card compare-picker", "aria-label": "Runs to compare" }) : null;

    const chartCard = el("section", { class: "chart-card compare-chart" },
      el("div", { class: "chart-head" },
        el("h3", { class: "chart-title", text: "Curves" }),
        el("div", { class: "inline-form compare-controls" },
          el("label", { for: "compare-metric", text: "metric" }), this.metricSelect,
          this.bandLabel,
          el("label", { class: "check" }, this.logBox, "log scale"))),
      el("div", { class: "chart-body" }, plot, this.placeholder),
      el("p", { class: "muted chart-note overlay-key", text: "★ a run's best epoch (z*), ✕ where it stopped." }),
      this.overlayNotes);
    const diffCard = el("section", { class: "card compare-diff", "aria-labelledby": "diff-heading" },
      el("h2", { id: "diff-heading", text: "Spec fields that differ" }), this.diffNote, el("div", { class: "table-scroll" }, this.diffTable));
    this.ab = el("ab-difference"); // two runs: same start and order? then B − A
    const main = el("div", { class: "compare-main" }, chartCard, this.ab, diffCard);
    if (this.withPicker) {
      this.replaceChildren(
        el("div", { class: "page-head" }, el("h1", { text: "Compare runs" })),
        el("p", { class: "muted compare-intro", text: "Tick runs (or add a whole study) to overlay their curves. Runs whose specs differ only by the seed are drawn as a mean with a ± 1 standard deviation band." }),
        this.notice,
        el("div", { class: "compare-layout" }, this.picker, main));
    } else {
      this.replaceChildren(this.notice, main);
    }
    if (this.withPicker) this.loadPicker();
    this.refresh();
  }

  async loadPicker() {
    let runs = [];
    let studies = [];
    try {
      [runs, studies] = await Promise.all([listRuns(), listStudies()]);
    } catch (err) {
      this.fail(`Could not load the runs to pick from: ${err.message}`);
      return;
    }
    if (this.gone) return;
    const studySelect = el("select", { id: "compare-study" },
      el("option", { value: "", text: "— add a study's runs —" }),
      studies.map((s) => el("option", { value: String(s.id), text: `study #${s.id} ${s.name || ""} (${(s.runs || []).length} runs)`.replace("  ", " ") })));
    studySelect.addEventListener("change", async () => {
      const id = studySelect.value;
      studySelect.value = "";
      if (!id) return;
      const study = studies.find((s) => String(s.id) === id);
      for (const r of study?.runs || []) if (!this.selected.includes(r.id)) this.selected.push(r.id);
      this.syncChecks();
      this.selectionChanged();
    });
    this.checks = new Map();
    const list = el("ul", { class: "pick-list" }, runs.slice(0, 300).map((run) => {
      const id = `pick-${run.id}`;
      const box = el("input", { type: "checkbox", id, value: String(run.id), checked: this.selected.includes(run.id) });
      box.addEventListener("change", () => {
        if (box.checked && !this.selected.includes(run.id)) this.selected.push(run.id);
        if (!box.checked) this.selected = this.selected.filter((x) => x !== run.id);
        this.selectionChanged();
      });
      this.checks.set(run.id, box);
      return el("li", {}, box, el("label", { for: id },
        el("span", { class: "mono muted", text: `run #${run.id} ` }), runTitle(run),
        el("span", { class: "muted", text: ` · ${run.spec?.data?.dataset ?? ""} · ${run.status}` })));
    }));
    this.picker.replaceChildren(
      el("h2", { text: "Runs" }),
      el("div", { class: "inline-form" }, el("label", { for: "compare-study", class: "visually-hidden", text: "Add a study" }), studySelect),
      el("button", { type: "button", text: "Clear", onclick: () => { this.selected = []; this.syncChecks(); this.selectionChanged(); } }),
      runs.length ? list : el("p", { class: "muted", text: "No runs yet." }));
  }

  syncChecks() {
    for (const [id, box] of this.checks || []) box.checked = this.selected.includes(id);
  }

  selectionChanged() {
    if (this.withPicker) history.replaceState(null, "", `#/compare?runs=${this.selected.join(",")}`);
    this.refresh();
  }

  fail(message) {
    this.notice.textContent = message;
    this.notice.hidden = false;
  }

  /** Reload the runs (and the study's list of runs), then the metrics of unfinished ones. */
  async refresh() {
    this.stopAfter(); // a poll due now would only repeat this refresh
    const token = (this.token = (this.token || 0) + 1);
    try {
      if (this.studyId) {
        const study = await getStudy(this.studyId);
        for (const r of study.runs || []) this.runs.set(r.id, r);
        this.selected = (study.runs || []).map((r) => r.id);
      } else {
        const stale = this.selected.filter((id) => !this.runs.has(id) || !FINISHED.has(this.runs.get(id).status));
        const fresh = await Promise.all(stale.map((id) => getRun(id).catch(() => null)));
        for (const r of fresh) if (r) this.runs.set(r.id, r);
      }
      if (this.gone || token !== this.token) return;
      await Promise.all(this.selected.map(async (id) => {
        const run = this.runs.get(id);
        const key = `${id}|${this.metric}`;
        if (!run || (this.metrics.has(key) && FINISHED.has(run.status) && this.metrics.get(key).final)) return;
        const data = await getMetrics(id, { keys: [this.metric], points: POINTS });
        this.metrics.set(key, { points: data.series?.[this.metric] || [], final: FINISHED.has(run.status) });
      }));
      if (this.gone || token !== this.token) return;
      this.notice.hidden = true;
      this.draw();
      this.showDiff();
      this.ab.show(this.chosenRuns(), this.metric, Object.fromEntries(this.selected.map(
        (id) => [id, this.metrics.get(`${id}|${this.metric}`)?.points || []])));
    } catch (err) {
      if (this.gone) return;
      this.fail(`Could not load the runs: ${err.message} (retrying)`);
    }
    const live = this.selected.some((id) => !FINISHED.has(this.runs.get(id)?.status));
    if (!this.gone && (live || !this.notice.hidden)) this.after(REFRESH_MS, () => this.refresh());
  }

  chosenRuns() {
    return this.selected.map((id) => this.runs.get(id)).filter(Boolean);
  }

  /** Runs grouped by their spec without the seed: {key, runs, label}. */
  groups(runs, differ) {
    const shown = differ.filter((p) => p !== "seed");
    const map = new Map();
    for (const run of runs) {
      const flat = flatten(run.spec);
      delete flat.seed;
      const key = JSON.stringify(flat);
      if (!map.has(key)) {
        const label = shown.map((p) => `${p}=${show(flatten(run.spec)[p])}`).join(", ");
        map.set(key, { key, runs: [], label });
      }
      map.get(key).runs.push(run);
    }
    return [...map.values()];
  }

  layout() {
    const metricLabel = (METRICS.find(([k]) => k === this.metric) || [null, this.metric])[1];
    return {
      ...baseLayout(380, this.plot),
      xaxis: { title: { text: "epoch" }, gridcolor: "#eef0f5", zeroline: false, automargin: true },
      yaxis: { title: { text: metricLabel }, type: this.logBox?.checked ? "log" : "linear", gridcolor: "#eef0f5",
        zeroline: false, exponentformat: "power", automargin: true },
      hovermode: "x unified",
      showlegend: true,
      legend: { orientation: "h", x: 0, y: -0.22, yanchor: "top" },
      margin: { l: 60, r: 16, t: 16, b: 40 },
    };
  }

  draw() {
    if (!this.plot) return;
    const runs = this.chosenRuns();
    const differ = differingFields(runs.map((r) => r.spec));
    const groups = this.groups(runs, differ);
    // "mean ± std over seeds" only means something where a group has several seeds.
    const seeded = groups.some((g) => g.runs.length > 1);
    this.bandLabel.hidden = !seeded;
    this.dataset.seeded = String(seeded);
    const band = seeded && this.bandBox.checked;
    const curveOf = (run) => this.metrics.get(`${run.id}|${this.metric}`)?.points || [];
    // Curves drawn one per run: those that coincide get distinct dashes and widths (the first
    // widest, underneath) and a note saying up to which epoch they are the same.
    const single = groups.filter((g) => !(band && g.runs.length > 1)).flatMap((g) => g.runs);
    const clusters = identicalClusters(single.map((r) => [r.id, curveOf(r)]));
    const style = new Map(); // run id → {dash, width}
    for (const c of clusters) {
      c.ids.forEach((id, k) => style.set(id, { dash: DASHES[k % DASHES.length], width: Math.max(1.6, 4.5 - 1.1 * k) }));
    }
    const traces = [];
    const markers = [];
    groups.forEach((group, gi) => {
      const color = PALETTE[gi % PALETTE.length];
      const series = group.runs.map(curveOf);
      if (band && group.runs.length > 1) {
        const { xs, mean, std } = meanStd(series);
        const label = `${group.label || "runs"} (mean of ${group.runs.length} seeds)`;
        traces.push({ x: xs, y: mean.map((m, i) => m - std[i]), type: "scatter", mode: "lines", line: { width: 0 },
          showlegend: false, hoverinfo: "skip", meta: `band-lower|${group.key}`, legendgroup: group.key });
        traces.push({ x: xs, y: mean.map((m, i) => m + std[i]), type: "scatter", mode: "lines", line: { width: 0 },
          fill: "tonexty", fillcolor: hexToRgba(color, 0.18), showlegend: false, hoverinfo: "skip",
          meta: `band-upper|${group.key}`, legendgroup: group.key });
        traces.push({ x: xs, y: mean, type: "scatter", mode: "lines", name: label, line: { color, width: 2.2 },
          meta: `mean|${group.key}`, legendgroup: group.key });
      } else {
        group.runs.forEach((run, ri) => {
          const pts = series[ri];
          const seed = differ.includes("seed") ? ` seed=${run.spec?.seed}` : "";
          const own = style.get(run.id) || { dash: DASHES[ri % DASHES.length], width: 1.8 };
          traces.push({ x: pts.map((p) => p[0]), y: pts.map((p) => p[1]), type: "scatter", mode: "lines",
            name: `run #${run.id} ${group.label || runTitle(run)}${seed}`.trim(), line: { color, width: own.width, dash: own.dash },
            meta: `run|${run.id}`, legendgroup: `run-${run.id}` });
          markers.push(...this.runMarks(run, pts, color));
        });
      }
    });
    traces.push(...markers);
    this.showOverlayNotes(clusters);
    this.placeholder.hidden = runs.length > 0;
    this.dataset.traces = String(traces.length);
    // data-settled: the chart shows every chosen run's final curve (tests and scripts wait on it).
    const settled = runs.length > 0 && runs.every((r) => FINISHED.has(r.status)
      && this.metrics.get(`${r.id}|${this.metric}`)?.final);
    this.dataset.settled = "false";
    const drawn = this.render(traces, this.layout());
    drawn.then(() => { if (this.ready === drawn) this.dataset.settled = String(settled); },
      () => { this.placeholder.textContent = "The chart library could not be loaded."; });
  }

  /** A finished run's best epoch (★, z*) and last epoch (✕, where it stopped) on its curve. */
  runMarks(run, pts, color) {
    const r = run.result;
    if (!r || !pts.length) return [];
    const out = [];
    const mark = (kind, x, symbol, text) => {
      if (x === null || x === undefined) return;
      const y = valueAt(pts, x) ?? pts[pts.length - 1][1];
      out.push({ x: [x], y: [y], type: "scatter", mode: "markers", showlegend: false, legendgroup: `run-${run.id}`,
        meta: `${kind}|${run.id}`, marker: { symbol, size: kind === "best" ? 13 : 11, color,
          line: { color: "#1d2433", width: 1 } },
        hovertemplate: `run #${run.id}: ${text}<extra></extra>` });
    };
    mark("best", r.best_epoch, "star", `best epoch ${r.best_epoch} (z*)`);
    const stop = r.stopped_epoch ?? r.epochs_run;
    const how = run.status === "cancelled" ? "cancelled" : run.status === "diverged" ? "diverged" : "stopped";
    // A plain stop on z* adds nothing to the star; a cancel or divergence there is news.
    if (stop !== r.best_epoch || how !== "stopped") mark("stop", stop, "x", `${how} at epoch ${stop}`);
    return out;
  }

  showOverlayNotes(clusters) {
    const label = (id) => `run #${id}`;
    this.overlayNotes.replaceChildren(...clusters.map((c) => el("li", {
      class: "identical-note", dataset: { runs: c.ids.join(","), upTo: String(c.upTo) } },
    `${c.ids.map(label).join(", ")}: these runs are identical up to epoch ${c.upTo}`
      + (c.ends.length ? ` (${c.ends.map((e) => `${label(e.id)} stopped at epoch ${e.last}`).join(", ")}, identical as far as it ran)` : "")
      + ` · drawn ${c.ids.map((_, k) => DASHES[k % DASHES.length]).join(", ")}.`)));
    this.overlayNotes.hidden = clusters.length === 0;
  }

  showDiff() {
    const runs = this.chosenRuns();
    const differ = differingFields(runs.map((r) => r.spec));
    this.dataset.differ = differ.join(",");
    if (runs.length < 2) {
      this.diffNote.textContent = runs.length ? "Pick a second run to see what differs." : "";
    } else {
      this.diffNote.textContent = differ.length
        ? `${differ.length} field${differ.length === 1 ? " differs" : "s differ"}; every other field of the spec is the same in all ${runs.length} runs.`
        : `The ${runs.length} specs are identical (apart from their names).`;
    }
    const head = el("tr", {},
      el("th", { scope: "col", text: "run" }),
      differ.map((p) => el("th", { scope: "col", class: "mono diff-field", text: p })),
      el("th", { scope: "col", text: "status" }),
      el("th", { scope: "col", class: "num", text: "best epoch" }),
      el("th", { scope: "col", class: "num", text: "test accuracy" }),
      el("th", { scope: "col", class: "num", text: "test loss" }));
    const rows = runs.map((run) => {
      const flat = flatten(run.spec);
      return el("tr", { dataset: { runId: String(run.id) } },
        el("td", { class: "diff-run" }, el("a", { href: `#/runs/${encodeURIComponent(run.id)}`, text: `run #${run.id} ${runTitle(run)}` })),
        differ.map((p) => el("td", { class: "mono", text: show(flat[p]) })),
        el("td", {}, statusBadge(run.status)),
        el("td", { class: "num", text: show(run.result?.best_epoch) }),
        el("td", { class: "num", text: run.result ? formatPercent(run.result.test_accuracy) : "—" }),
        el("td", { class: "num", text: run.result ? formatNumber(run.result.test_loss) : "—" }));
    });
    this.diffTable.replaceChildren(el("thead", {}, head), el("tbody", {}, rows));
  }
}

customElements.define("compare-view", CompareView);
