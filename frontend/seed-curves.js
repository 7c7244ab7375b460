// <seed-curves>: a study's learning curves, one per grid point: the mean over its seeds at each
// epoch and a band of the 95 % t interval of that mean (mean ± t₀.₉₇₅,n−1 · s/√n), so where
// two points' bands part, the seeds no longer explain the gap. Set `study` (GET
// /api/studies/{id}: its summary rows) and `label` (a point's name); curves are read once a run has finished.
import { getMetrics } from "./api.js";
import { PlotElement, baseLayout } from "./plot-element.js";
import { FINISHED, el, useStyle } from "./ui.js";

useStyle(import.meta.url, "forest-plot.css");

const PALETTE = ["#3456d1", "#e07b00", "#1f9d8a", "#c2407a", "#6d7a1f", "#8a5a2b", "#3a8fd1", "#9b59b6"];
const METRICS = ["val_accuracy", "val_loss", "train_loss"];

// t₀.₉₇₅ with df degrees of freedom: scipy.stats.t.ppf(0.975, df) for df 1…30; beyond, the
// value at the step below (40, 60, 120), a little wider than exact, never narrower.
const T975 = [12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
  2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796,
  2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423];
export function t975(df) {
  if (df <= 30) return T975[df - 1];
  if (df < 60) return df < 40 ? T975[29] : 2.0211;
  return df < 120 ? 2.0003 : 1.9799;
}

/** Per x where every curve has a finite value: {xs, mean, lo, hi} (lo/hi: the t interval). */
export function meanInterval(curves) {
  const maps = curves.map((pts) => new Map(pts.filter((p) => p[1] !== null && Number.isFinite(p[1]))));
  const xs = [...(maps[0]?.keys() || [])].filter((x) => maps.every((m) => m.has(x))).sort((a, b) => a - b);
  const mean = [];
  const lo = [];
  const hi = [];
  const n = maps.length;
  for (const x of xs) {
    const v = maps.map((m) => m.get(x));
    const m = v.reduce((a, b) => a + b, 0) / n;
    const s = n > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (n - 1)) : 0;
    const half = n > 1 ? (t975(n - 1) * s) / Math.sqrt(n) : 0;
    mean.push(m);
    lo.push(m - half);
    hi.push(m + half);
  }
  return { xs, mean, lo, hi };
}

const rgba = (hex, a) => `rgba(${parseInt(hex.slice(1, 3), 16)},${parseInt(hex.slice(3, 5), 16)},${parseInt(hex.slice(5, 7), 16)},${a})`;

class SeedCurves extends PlotElement {
  #study = null;
  #curves = new Map(); // "run id|metric" → points of a finished run

  plotLabel() {
    return "Learning curves: mean and 95 % interval over seeds per grid point";
  }

  cardClass() {
    return ""; // it sits in the study's statistics card
  }

  build(plot) {
    this.metric = METRICS[0];
    const id = `seed-curves-metric-${Math.random().toString(36).slice(2, 8)}`;
    this.select = el("select", { id, onchange: () => { this.metric = this.select.value; this.load(); } },
      METRICS.map((m) => el("option", { value: m, text: m.replaceAll("_", " ") })));
    this.replaceChildren(
      el("div", { class: "seed-curves-head" },
        el("label", { for: id, text: "curve" }), this.select),
      plot);
    if (this.#study) this.load();
  }

  set study(study) {
    this.#study = study;
    if (this.plot) this.load();
  }

  /** Each grid point's finished runs (seeds), in the study's order. */
  groups() {
    const byPoint = new Map();
    for (const r of this.#study?.summary || []) {
      if (!FINISHED.has(r.status)) continue;
      const point = Object.fromEntries(Object.entries(r.point || {}).filter(([k]) => k !== "seed"));
      const key = JSON.stringify(point);
      if (!byPoint.has(key)) byPoint.set(key, { point, runs: [] });
      byPoint.get(key).runs.push(r.run_id);
    }
    return [...byPoint.values()];
  }

  async load() {
    const metric = this.metric;
    const wanted = this.groups().flatMap((g) => g.runs).filter((id) => !this.#curves.has(`${id}|${metric}`));
    try {
      await Promise.all(wanted.map(async (id) => {
        const got = await getMetrics(id, { keys: [metric], points: 2000 });
        this.#curves.set(`${id}|${metric}`, got.series?.[metric] || []);
      }));
    } catch {
      return; // drawn with the next study refresh
    }
    if (!this.gone) this.draw();
  }

  draw() {
    if (!this.plot || !this.#study) return;
    const label = this.label || ((g) => JSON.stringify(g.point));
    const traces = [];
    const groups = this.groups();
    groups.forEach((g, i) => {
      const curves = g.runs.map((id) => this.#curves.get(`${id}|${this.metric}`)).filter(Boolean);
      if (!curves.length) return;
      const color = PALETTE[i % PALETTE.length];
      const { xs, mean, lo, hi } = meanInterval(curves);
      const name = `${label(g)} (mean of ${curves.length} seeds)`;
      traces.push({ x: xs, y: lo, type: "scatter", mode: "lines", line: { width: 0 }, showlegend: false,
        hoverinfo: "skip", meta: `lo|${i}`, legendgroup: String(i) });
      traces.push({ x: xs, y: hi, type: "scatter", mode: "lines", line: { width: 0 }, fill: "tonexty",
        fillcolor: rgba(color, 0.18), showlegend: false, hoverinfo: "skip", meta: `hi|${i}`, legendgroup: String(i) });
      traces.push({ x: xs, y: mean, type: "scatter", mode: "lines", name, line: { color, width: 2.2 },
        meta: `mean|${i}`, legendgroup: String(i) });
    });
    const layout = {
      ...baseLayout(340, this.plot),
      xaxis: { title: { text: "epoch" }, gridcolor: "#eef0f5", zeroline: false, automargin: true },
      yaxis: { title: { text: this.metric.replaceAll("_", " ") }, gridcolor: "#eef0f5", zeroline: false, automargin: true },
      legend: { orientation: "h", x: 0, y: -0.2, yanchor: "top" },
      hovermode: "x unified",
    };
    const shown = String(traces.length / 3);
    this.dataset.groups = shown;
    // data-drawn: Plotly shows these groups (tests wait on it).
    const drawn = this.render(traces, layout);
    drawn.then(() => { if (this.ready === drawn) this.dataset.drawn = shown; }, () => {});
  }
}

customElements.define("seed-curves", SeedCurves);
