// <grad-noise>: the measured variance of the minibatch gradient g against the minibatch size
// m, on log-log axes, with the least-squares slope of log Var[g] on log m. COURSE.md §2: for
// sampling without structure Var[g] ∝ 1/m, a slope of −1. Earlier measurements stay faint.
import { PlotElement, baseLayout } from "./plot-element.js";
import { el, useStyle } from "./ui.js";

useStyle(import.meta.url, "grad-noise.css");

const PREFIX = "grad_var/m=";

/** Slope and intercept of the least-squares line through (log10 x, log10 y). */
export function logLogFit(points) {
  const pts = points.filter(([x, y]) => x > 0 && y > 0);
  if (pts.length < 2) return null;
  const lx = pts.map(([x]) => Math.log10(x));
  const ly = pts.map(([, y]) => Math.log10(y));
  const mx = lx.reduce((a, b) => a + b, 0) / lx.length;
  const my = ly.reduce((a, b) => a + b, 0) / ly.length;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < lx.length; i++) {
    sxy += (lx[i] - mx) * (ly[i] - my);
    sxx += (lx[i] - mx) ** 2;
  }
  if (sxx === 0) return null;
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

class GradNoise extends PlotElement {
  plotLabel() {
    return "Gradient variance against minibatch size chart";
  }

  build(plot) {
    this.byEpoch = new Map(); // epoch -> Map(m -> variance)
    this.slopeText = el("p", { class: "grad-noise-slope", role: "status" });
    this.replaceChildren(
      el("div", { class: "chart-head" }, el("h3", { class: "chart-title", text: "Variance of g against m (log-log)" })),
      this.slopeText,
      el("div", { class: "chart-body" }, plot));
  }

  get hasData() {
    return this.byEpoch.size > 0;
  }

  add(series) {
    let added = 0;
    for (const [key, points] of Object.entries(series || {})) {
      if (!key.startsWith(PREFIX) || !Array.isArray(points)) continue;
      const m = Number(key.slice(PREFIX.length));
      if (!Number.isFinite(m)) continue;
      for (const [epoch, value] of points) {
        if (!this.byEpoch.has(epoch)) this.byEpoch.set(epoch, new Map());
        this.byEpoch.get(epoch).set(m, value);
        added += 1;
      }
    }
    if (added) this.schedule();
  }

  layout() {
    return {
      ...baseLayout(this.height(280), this.plot),
      margin: { l: 64, r: 16, t: 12, b: 44 },
      xaxis: { title: { text: "minibatch size m" }, type: "log", gridcolor: "#eef0f5", automargin: true,
        ...(this.ms?.length ? { tickvals: this.ms, ticktext: this.ms.map(String) } : {}) },
      yaxis: { title: { text: "Var[g]" }, type: "log", dtick: 1, gridcolor: "#eef0f5", exponentformat: "power", automargin: true },
      hovermode: "closest",
    };
  }

  draw() {
    const plot = this.plot;
    if (!plot || !this.byEpoch.size) return;
    const epochs = [...this.byEpoch.keys()].sort((a, b) => a - b);
    const latest = epochs[epochs.length - 1];
    const pointsOf = (e) => [...this.byEpoch.get(e)].sort((a, b) => a[0] - b[0]);
    const traces = epochs.slice(0, -1).map((e) => {
      const pts = pointsOf(e);
      return { x: pts.map((p) => p[0]), y: pts.map((p) => p[1]), type: "scatter", mode: "lines+markers",
        name: `epoch ${e}`, showlegend: false, line: { color: "rgba(52,86,209,0.18)", width: 1 },
        marker: { size: 4, color: "rgba(52,86,209,0.25)" }, hovertemplate: `epoch ${e}: m=%{x}, Var=%{y:.3g}<extra></extra>` };
    });
    const pts = pointsOf(latest);
    this.ms = pts.map((p) => p[0]);
    traces.push({ x: pts.map((p) => p[0]), y: pts.map((p) => p[1]), type: "scatter", mode: "markers",
      name: `measured, epoch ${latest}`, marker: { size: 10, color: "#3456d1" } });
    const fit = logLogFit(pts);
    if (fit) {
      const ms = pts.map((p) => p[0]);
      const lo = Math.min(...ms);
      const hi = Math.max(...ms);
      traces.push({ x: [lo, hi], y: [lo, hi].map((m) => 10 ** (fit.intercept + fit.slope * Math.log10(m))),
        type: "scatter", mode: "lines", name: `fit: slope ${fit.slope.toFixed(2)}`,
        line: { color: "#e07b00", dash: "dash", width: 2 } });
      this.dataset.slope = String(fit.slope);
      this.dataset.epoch = String(latest);
      this.slopeText.replaceChildren(`Epoch ${latest}: fitted slope ${fit.slope.toFixed(2)} (about −1 expected: `
        + "the variance of g falls like 1/m; see the ",
      el("a", { href: "#/guides/2", class: "guide-link", text: "guide of lesson 2" }), ").");
    }
    this.render(traces, { ...this.layout(), showlegend: true });
  }
}

customElements.define("grad-noise", GradNoise);
