// <boundary-plot run-id="N">: the decision boundary of a 2-D run, redrawn whenever the stream
// says a newer grid exists. A slider goes back to the grids of earlier epochs.
import { getBoundary } from "./api.js";
import { EpochSlider } from "./epoch-slider.js";
import { PlotElement, baseLayout } from "./plot-element.js";
import { el, useStyle } from "./ui.js";

useStyle(import.meta.url, "boundary-plot.css");

const CLASS_COLORS = ["#3456d1", "#e07b00", "#1f9d8a", "#c2407a", "#6d7a1f", "#8a5a2b", "#9b59b6", "#3a8fd1"];

class BoundaryPlot extends PlotElement {
  plotLabel() {
    return "Decision boundary chart";
  }

  build(plot) {
    this.runId = this.getAttribute("run-id");
    this.placeholder = el("p", { class: "chart-empty", text: "Waiting for the first grid…" });
    this.slider = new EpochSlider(this, { name: "boundary", label: "grid of epoch",
      fetch: (epoch) => getBoundary(this.runId, epoch),
      show: (grid) => {
        this.grid = grid;
        this.draw();
      },
      fail: (err) => { this.placeholder.textContent = `Could not load the boundary: ${err.message}`; } });
    this.replaceChildren(
      el("div", { class: "chart-head" },
        el("h3", { class: "chart-title", text: "Decision boundary" }), this.slider.controls),
      el("p", { class: "chart-note muted", text: "Colour: the model's probability of class 1 (or its predicted class), on a grid over the standardised inputs; the black line is p = ½." }),
      el("div", { class: "chart-body" }, plot, this.placeholder));
    // A confusion cell's validation points (confusion-view.js), ringed over the map.
    this.onExamples = (event) => {
      if (String(event.detail?.runId) !== String(this.runId)) return;
      this.highlight = event.detail.points.length ? event.detail : null;
      this.dataset.highlighted = String(event.detail.points.length);
      this.draw();
    };
    document.addEventListener("confusion-examples", this.onExamples);
    // No request yet: the run's stream announces every grid, the newest one first (newer()),
    // so a run without a grid so far is never asked for one (that would be a 404).
  }

  disconnectedCallback() {
    document.removeEventListener("confusion-examples", this.onExamples);
    super.disconnectedCallback();
  }

  /** The stream says a grid newer than what is shown exists. */
  newer(epoch) {
    if (epoch !== this.slider.epoch) this.slider.refresh();
  }

  layout() {
    return {
      ...baseLayout(this.height(380), this.plot),
      margin: { l: 48, r: 16, t: 12, b: 40 },
      xaxis: { title: { text: "x₁" }, zeroline: false, constrain: "domain" },
      yaxis: { title: { text: "x₂" }, zeroline: false, scaleanchor: "x" },
    };
  }

  draw() {
    const grid = this.grid;
    if (!grid || !Array.isArray(grid.x) || !this.plot) return;
    const binary = grid.probs_of === "class_1";
    const traces = [];
    if (binary) {
      traces.push({ type: "heatmap", x: grid.x, y: grid.y, z: grid.probs, zmin: 0, zmax: 1,
        colorscale: [[0, CLASS_COLORS[0]], [0.5, "#f7f7f7"], [1, CLASS_COLORS[1]]], opacity: 0.85,
        colorbar: { title: { text: "p(class 1)", side: "right" }, thickness: 12 },
        hovertemplate: "x₁ %{x:.2f}, x₂ %{y:.2f}<br>p(class 1) %{z:.3f}<extra></extra>" });
      traces.push({ type: "contour", x: grid.x, y: grid.y, z: grid.probs, showscale: false,
        contours: { coloring: "none", start: 0.5, end: 0.5, size: 1 }, line: { color: "#1d2433", width: 2 },
        hoverinfo: "skip", name: "p = ½" });
    } else {
      const k = Math.max(2, ...grid.labels.flat().map((v) => v + 1));
      const scale = [];
      for (let i = 0; i < k; i++) {
        const c = CLASS_COLORS[i % CLASS_COLORS.length];
        scale.push([i / k, c], [(i + 1) / k, c]);
      }
      traces.push({ type: "heatmap", x: grid.x, y: grid.y, z: grid.labels, zmin: -0.5, zmax: k - 0.5,
        colorscale: scale, opacity: 0.75, customdata: grid.probs,
        colorbar: { title: { text: "class", side: "right" }, thickness: 12, tickvals: [...Array(k).keys()] },
        hovertemplate: "x₁ %{x:.2f}, x₂ %{y:.2f}<br>class %{z}, p %{customdata:.3f}<extra></extra>" });
    }
    // The training examples themselves, over the map: where the boundary must pass.
    const pts = grid.points;
    if (pts && Array.isArray(pts.x) && pts.x.length) {
      traces.push({ type: "scatter", mode: "markers", x: pts.x, y: pts.y, name: "training examples",
        marker: { size: 5, color: pts.label.map((c) => CLASS_COLORS[c % CLASS_COLORS.length]),
          line: { color: "#1d2433", width: 0.6 } },
        hovertemplate: "x₁ %{x:.2f}, x₂ %{y:.2f}<extra>training example</extra>", showlegend: false });
    }
    if (this.highlight) {
      const shown = this.highlight.points;
      traces.push({ type: "scatter", mode: "markers", x: shown.map((p) => p[0]), y: shown.map((p) => p[1]),
        name: this.highlight.label, marker: { size: 13, color: "rgba(0,0,0,0)", line: { color: "#d1242f", width: 2.5 } },
        hovertemplate: "x₁ %{x:.2f}, x₂ %{y:.2f}<extra>validation example</extra>", showlegend: true });
    }
    this.render(traces, this.layout()).then(() => {
      this.placeholder.hidden = true;
      this.dataset.drawn = String(grid.epoch);
    }, () => { this.placeholder.textContent = "The chart library could not be loaded."; });
  }
}

customElements.define("boundary-plot", BoundaryPlot);
