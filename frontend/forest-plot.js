// <forest-plot>: a study's grid points, one row each: the mean of a result figure over its
// seeds and its 95 % t interval (GET /api/studies/{id}/stats), so overlapping intervals and
// clear gaps are seen at a glance. Set `stats` (the endpoint's answer) and `label` (a point's
// name). Rows whose interval is unknown (fewer than 2 seeds) show the mean alone.
import { drawPlot } from "./plotly-loader.js";
import { PLOT_CONFIG, baseLayout, watchWidth } from "./metric-chart.js";
import { el, releasePlot, useStyle } from "./ui.js";

useStyle(import.meta.url, "forest-plot.css");

class ForestPlot extends HTMLElement {
  #stats = null;

  connectedCallback() {
    if (this.plot) return;
    this.plot = el("div", { class: "plot", role: "img", "aria-label": "Forest plot: each grid point's mean and 95 % interval over seeds" });
    this.replaceChildren(this.plot);
    this.ready = null;
    this.sizer = watchWidth(this.plot, () => this.draw());
    if (this.#stats) this.draw();
  }

  disconnectedCallback() {
    this.sizer?.disconnect();
    const plot = this.plot;
    this.plot = null;
    releasePlot(plot, this.ready);
  }

  set stats(stats) {
    this.#stats = stats;
    this.draw();
  }

  get stats() { return this.#stats; }

  draw() {
    const stats = this.#stats;
    if (!this.plot || !stats) return;
    const label = this.label || ((g) => JSON.stringify(g.point));
    const groups = stats.groups.filter((g) => g.mean !== null && g.mean !== undefined);
    // First grid point on top, as in the table.
    const names = groups.map((g) => `${label(g)}  (n = ${g.n})`);
    const mean = groups.map((g) => g.mean);
    const trace = {
      type: "scatter", mode: "markers", x: mean, y: names, meta: "forest",
      marker: { size: 10, color: "#3456d1", symbol: "square" },
      error_x: { type: "data", symmetric: false, color: "#3456d1", thickness: 2, width: 6,
        array: groups.map((g) => (g.ci95 ? g.ci95[1] - g.mean : 0)),
        arrayminus: groups.map((g) => (g.ci95 ? g.mean - g.ci95[0] : 0)) },
      hovertemplate: "%{y}: mean %{x:.4f}<extra></extra>",
    };
    const height = 90 + 42 * groups.length;
    const layout = {
      ...baseLayout(height, this.plot),
      margin: { l: 16, r: 16, t: 16, b: 44 },
      xaxis: { title: { text: `${stats.metric.replaceAll("_", " ")}: mean and 95 % interval over seeds` },
               gridcolor: "#eef0f5", zeroline: false, automargin: true },
      yaxis: { autorange: "reversed", automargin: true, type: "category" },
      showlegend: false,
    };
    this.dataset.points = String(groups.length);
    this.ready = drawPlot(this.ready, this.plot, [trace], layout, PLOT_CONFIG);
    const drawn = this.ready;
    drawn.then(() => { if (this.ready === drawn) this.dataset.drawn = String(groups.length); }, () => {});
  }
}

customElements.define("forest-plot", ForestPlot);
