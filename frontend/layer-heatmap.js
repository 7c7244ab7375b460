// <layer-heatmap prefix="act_std/" chart-title="…">: one per-layer series per row, depth
// (first layer on top) against the epoch, coloured by log₁₀ of the value. A spread that
// shrinks or grows with depth shows as a colour gradient down a column (lesson 5).
// Several heatmaps meant to be read together (the runs of one study) share one colour scale:
// each says its own log₁₀ range (dataRange()), and setRange([lo, hi]) imposes a common one.
// A map with nothing to colour (every value 0 or missing) or one colour (constant data) says
// so in words instead of drawing an empty or flat plot.
import { PlotElement, baseLayout } from "./plot-element.js";
import { el, useStyle } from "./ui.js";

useStyle(import.meta.url, "layer-heatmap.css");

const RENDER_MS = 80;
// Spreads within 10^±0.0001 (0.03 %) of each other are one value: a colour scale stretched
// over float noise would paint it as a contrast.
export const CONSTANT_LOG10 = 1e-4;

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
    this.range = null; // a shared [lo, hi] of log₁₀ values, or null for this map's own
    this.gaps = el("p", { class: "chart-note muted heatmap-gaps", hidden: true });
    this.replaceChildren(
      el("div", { class: "chart-head" }, el("h3", { class: "chart-title", text: title })),
      el("p", { class: "chart-note muted", text: this.getAttribute("note") || "" }),
      this.gaps,
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

  /** A common colour scale [lo, hi] in log₁₀ units (null: this map's own range). */
  setRange(range) {
    this.range = range;
    this.schedule();
  }

  /** The [min, max] of log₁₀ of the positive values shown, or null when there are none. */
  dataRange() {
    let lo = Infinity;
    let hi = -Infinity;
    for (const row of this.layers.values()) {
      for (const v of row.values()) {
        if (!(v > 0)) continue;
        const l = Math.log10(v);
        lo = Math.min(lo, l);
        hi = Math.max(hi, l);
      }
    }
    return lo <= hi ? [lo, hi] : null;
  }

  /** Words instead of a plot (null: draw the plot). */
  say(text) {
    this.dataset.empty = text ? (text.startsWith("Every value") ? "empty" : "constant") : "";
    this.plot.hidden = Boolean(text);
    this.placeholder.hidden = !text;
    if (text) this.placeholder.textContent = text;
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
    this.dataset.layers = String(names.length);
    this.dataset.columns = String(xs.length);
    const own = this.dataRange();
    if (!own) {
      this.say("Every value is 0 or missing: nothing to colour (e.g. all-zero weights give every unit the same output, and zero spread).");
      return;
    }
    // One colour: words, unless a shared scale (other runs' maps) gives that colour a meaning.
    const shared = this.range && this.range[1] - this.range[0] >= CONSTANT_LOG10;
    if (own[1] - own[0] < CONSTANT_LOG10 && !shared) {
      this.say(`Every layer has the same spread, ${(10 ** own[0]).toPrecision(3)}, at every ${this.xTitle} (to within 0.03 %): one colour, nothing to compare.`);
      return;
    }
    this.say(null);
    // Blank cells are not a colour: say what they are (log₁₀ 0 does not exist).
    const blanks = z.reduce((n, row) => n + row.filter((v) => v === null).length, 0);
    this.dataset.blanks = String(blanks);
    this.gaps.hidden = blanks === 0;
    this.gaps.textContent = blanks
      ? `${blanks} blank cell${blanks === 1 ? "" : "s"}: a spread of exactly 0 (no logarithm) or nothing measured at that ${this.xTitle}.`
      : "";
    const range = this.range || own;
    this.dataset.zmin = String(range[0]);
    this.dataset.zmax = String(range[1]);
    const trace = {
      type: "heatmap", x: shownX, y: names, z, colorscale: "Viridis", hoverongaps: false,
      zmin: range[0], zmax: range[1], zauto: false,
      colorbar: { title: { text: "log₁₀ std", side: "right" }, thickness: 12 },
      customdata: z.map((row) => row.map((v) => (v === null ? null : 10 ** v))),
      hovertemplate: `layer %{y}<br>${this.xTitle} %{x}<br>std %{customdata:.3g}<extra></extra>`,
    };
    this.render([trace], this.layout()).then(() => { this.placeholder.hidden = true; },
      () => { this.placeholder.textContent = "The chart library could not be loaded."; });
  }
}

customElements.define("layer-heatmap", LayerHeatmap);
