// <layer-heatmap prefix="act_std/" chart-title="…">: one per-layer series per row, depth
// (first layer on top) against the epoch, coloured by log₁₀ of the value. A spread that
// shrinks or grows with depth shows as a colour gradient down a column (COURSE.md §5).
import { PlotElement, baseLayout } from "./plot-element.js";
import { el, useStyle } from "./ui.js";

useStyle(import.meta.url, "layer-heatmap.css");

const RENDER_MS = 80;

class LayerHeatmap extends PlotElement {
  plotLabel() {
    return `${this.getAttribute("chart-title") || "Per layer"} heatmap`;
  }

  build(plot) {
    this.layerPrefix = this.getAttribute("prefix") || "";
    this.layers = new Map();
    this.xMap = null;
    this.xTitle = "epoch";
    const title = this.getAttribute("chart-title") || "Per layer";
    this.placeholder = el("p", { class: "chart-empty", text: "Waiting for the first epoch…" });
    this.replaceChildren(
      el("div", { class: "chart-head" }, el("h3", { class: "chart-title", text: title })),
      el("p", { class: "chart-note muted", text: this.getAttribute("note") || "" }),
      el("div", { class: "chart-body" }, plot, this.placeholder));
  }

  add(series) {
    let added = 0;
    for (const [key, points] of Object.entries(series || {})) {
      if (!key.startsWith(this.layerPrefix) || !Array.isArray(points)) continue;
      const name = key.slice(this.layerPrefix.length);
      if (!this.layers.has(name)) this.layers.set(name, new Map());
      const row = this.layers.get(name);
      for (const p of points) {
        if (Array.isArray(p)) {
          row.set(p[0], p[1]);
          added += 1;
        }
      }
    }
    if (added) this.schedule();
  }

  setXMap(fn, title) {
    this.xMap = fn;
    this.xTitle = title || "epoch";
    this.schedule();
  }

  delay() {
    return RENDER_MS;
  }

  layout() {
    return {
      ...baseLayout(this.height(260), this.plot),
      margin: { l: 56, r: 16, t: 12, b: 44 },
      xaxis: { title: { text: this.xTitle }, zeroline: false, automargin: true },
      yaxis: { title: { text: "layer (depth ↓)" }, autorange: "reversed", type: "category", automargin: true },
    };
  }

  draw() {
    const plot = this.plot;
    if (!plot || !this.layers.size) return;
    const names = [...this.layers.keys()];
    const xs = [...new Set(names.flatMap((n) => [...this.layers.get(n).keys()]))].sort((a, b) => a - b);
    const z = names.map((n) => {
      const row = this.layers.get(n);
      return xs.map((x) => {
        const v = row.get(x);
        return v === null || v === undefined || !(v > 0) ? null : Math.log10(v);
      });
    });
    const shownX = this.xMap ? xs.map((x) => this.xMap(x)) : xs;
    const trace = {
      type: "heatmap", x: shownX, y: names, z, colorscale: "Viridis", hoverongaps: false,
      colorbar: { title: { text: "log₁₀ std", side: "right" }, thickness: 12 },
      customdata: z.map((row) => row.map((v) => (v === null ? null : 10 ** v))),
      hovertemplate: `layer %{y}<br>${this.xTitle} %{x}<br>std %{customdata:.3g}<extra></extra>`,
    };
    this.dataset.layers = String(names.length);
    this.dataset.columns = String(xs.length);
    this.render([trace], this.layout()).then(() => { this.placeholder.hidden = true; },
      () => { this.placeholder.textContent = "The chart library could not be loaded."; });
  }
}

customElements.define("layer-heatmap", LayerHeatmap);
