// <forest-plot>: a study's grid points, one row each: the mean of a result figure over its
// seeds and its 95 % t interval (GET /api/studies/{id}/stats), so overlapping intervals and
// clear gaps are seen at a glance. Set `stats` (the endpoint's answer) and `label` (a point's
// name). Rows whose interval is unknown (fewer than 2 seeds) show the mean alone.
import { PlotElement, baseLayout } from "./plot-element.js";
import { useStyle } from "./ui.js";

useStyle(import.meta.url, "forest-plot.css");

class ForestPlot extends PlotElement {
  #stats = null;

  plotLabel() {
    return "Forest plot: each grid point's mean and 95 % interval over seeds";
  }

  cardClass() {
    return ""; // it sits in the study's statistics card
  }

  build(plot) {
    super.build(plot);
    if (this.#stats) this.draw();
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
    const drawn = this.render([trace], layout);
    drawn.then(() => { if (this.ready === drawn) this.dataset.drawn = String(groups.length); }, () => {});
  }
}

customElements.define("forest-plot", ForestPlot);
