// <run-charts run-id="N">: every chart of one run, fed by the run view: add(series) with the
// stream's points, setMarks(marks) for z*, the patience window and the stop (loss and
// accuracy), setXMap(fn, title) for the time axis, ended() once the stream is over, and
// showBoundary() for a 2-D dataset. The charts themselves are metric-chart, layer-heatmap,
// health-panel, confusion-view, loss-landscape, grad-noise, boundary-plot and (for an LR range
// test) lr-range-finder elements; public names and data-metric
// attributes are the ones the tests and other views look for.
import "./metric-chart.js";
import "./layer-heatmap.js";
import "./health-panel.js";
import "./grad-noise.js";
import "./boundary-plot.js";
import "./confusion-view.js";
import "./loss-landscape.js";
import "./lr-range.js";
import { el } from "./ui.js";

export function medianOf(values) {
  if (!values.length) return null;
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

const formatRate = (v) => (v >= 1000 ? `${Math.round(v).toLocaleString("en")}` : v.toPrecision(3));

class RunCharts extends HTMLElement {
  connectedCallback() {
    if (this.charts) return;
    this.runId = this.getAttribute("run-id");
    const chart = (attrs) => el("metric-chart", attrs);
    this.charts = {
      loss: chart({ keys: "train_loss,val_loss", "chart-title": "Loss", "y-title": "loss", "data-metric": "loss", smoothing: true }),
      accuracy: chart({ keys: "train_accuracy,val_accuracy", "chart-title": "Accuracy", "y-title": "accuracy", "data-metric": "accuracy", smoothing: true }),
      lr: chart({ keys: "lr", "event-key": "events/lr", "chart-title": "Learning rate η", "y-title": "η", height: "260", "data-metric": "lr" }),
      weight: chart({ keys: "weight_norm", "chart-title": "Weight norm ‖w‖", "y-title": "‖w‖", height: "260", "data-metric": "weight_norm" }),
      // Throughput swings by orders of magnitude between epochs (a busy machine, a first epoch
      // that warms caches): a log axis, and its median in words, which one slow epoch cannot move.
      speed: chart({ keys: "examples_per_second", "chart-title": "Throughput", "y-title": "examples / s", height: "260",
        "data-metric": "examples_per_second", "y-log": true, "y-format": ".3s" }),
    };
    this.stepChart = chart({ keys: "step_loss", "chart-title": "Minibatch loss per step", "y-title": "loss",
      "x-title": "step", height: "260", "data-metric": "step_loss", smoothing: true });
    this.heatmaps = {
      act: el("layer-heatmap", { prefix: "act_std/", "chart-title": "Activation spread per layer (std)", "data-metric": "act_std",
        note: "One row per layer, first layer on top: a good initialisation keeps the colour similar down each column." }),
      grad: el("layer-heatmap", { prefix: "grad_std/", "chart-title": "Gradient spread per layer (std)", "data-metric": "grad_std",
        note: "Vanishing gradients darken the first layers; exploding ones brighten them." }),
    };
    this.gradNoise = el("grad-noise", { hidden: true });
    this.health = el("health-panel", { "run-id": this.runId }); // hidden until health figures come
    this.confusion = el("confusion-view", { "run-id": this.runId }); // hidden until a matrix exists
    this.stepRow = el("div", { class: "chart-grid chart-grid-1", hidden: true }, this.stepChart);
    this.extraRow = el("div", { class: "chart-grid", hidden: true }, this.gradNoise);
    this.replaceChildren(
      el("div", { class: "chart-grid" }, this.charts.loss, this.charts.accuracy),
      el("div", { class: "chart-grid chart-grid-3" }, this.charts.lr, this.charts.weight, this.charts.speed),
      el("div", { class: "chart-grid" }, this.heatmaps.act, this.heatmaps.grad),
      el("div", { class: "chart-grid chart-grid-1" }, this.health),
      el("div", { class: "chart-grid chart-grid-1" }, this.confusion, el("loss-landscape", { "run-id": this.runId })),
      this.stepRow,
      this.extraRow);
  }

  add(series) {
    if (!this.charts) return;
    if (Array.isArray(series.examples_per_second)) this.showMedianSpeed(series.examples_per_second);
    for (const c of Object.values(this.charts)) c.add(series);
    for (const h of Object.values(this.heatmaps)) h.add(series);
    this.health.add(series);
    this.confusion.add(series);
    if (series.step_loss) {
      this.stepChart.add(series);
      this.stepRow.hidden = false;
    }
    this.gradNoise.add(series);
    if (this.gradNoise.hasData && this.gradNoise.hidden) {
      this.gradNoise.hidden = false;
      this.extraRow.hidden = false;
    }
  }

  showMedianSpeed(points) {
    this.speeds ??= new Map();
    for (const [x, v] of points) if (Number.isFinite(v) && v > 0) this.speeds.set(x, v);
    const median = medianOf([...this.speeds.values()]);
    if (median === null) return;
    this.charts.speed.dataset.median = String(median);
    this.charts.speed.setNote(`Median ${formatRate(median)} examples/s over ${this.speeds.size} epoch${this.speeds.size === 1 ? "" : "s"} (log axis).`);
  }

  /** z*, the patience window and the stop, on the loss and accuracy charts. */
  setMarks(marks) {
    this.charts.loss.setMarks(marks);
    this.charts.accuracy.setMarks(marks);
  }

  /** x as epochs (fn null) or as what fn maps an epoch to (e.g. seconds). */
  setXMap(fn, title) {
    for (const c of [...Object.values(this.charts), ...Object.values(this.heatmaps)]) c.setXMap(fn, title);
  }

  /** The decision boundary of a 2-D dataset; placed before the stream announces grids. */
  showBoundary() {
    if (this.boundary) return;
    this.boundary = el("boundary-plot", { "run-id": this.runId });
    this.extraRow.append(this.boundary);
    this.extraRow.hidden = false;
  }

  /** An LR range test's run: its loss against η (lr-range.js) instead of epochs. */
  showLrRange() {
    if (this.lrRange) return;
    this.lrRange = el("lr-range-finder", { "run-id": this.runId });
    this.extraRow.append(this.lrRange);
    this.extraRow.hidden = false;
  }

  boundaryNewer(epoch) {
    this.boundary?.newer(epoch);
  }

  /** The stream is over: the last diagnoses, and words where a chart got nothing. */
  ended() {
    this.boundary?.newer(-1);
    if (!this.health.hidden) this.health.refresh(true); // the last epoch's diagnoses
    for (const c of Object.values(this.charts)) {
      if (!c.points && c.placeholder) c.placeholder.textContent = "Nothing recorded for this run.";
    }
  }
}

customElements.define("run-charts", RunCharts);
