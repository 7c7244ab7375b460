// <metric-chart keys="train_loss,val_loss" prefix="grad_std/" chart-title="Loss" y-title="loss"
//               y-log>: one Plotly chart of metric series against x (the epoch).
// The chart is drawn once; later points are appended with Plotly.extendTraces, so a live run
// costs one small update per message instead of a redraw.
import { el, useStyle } from "./ui.js";

useStyle(import.meta.url, "metric-chart.css");

const COLORS = { train: "#3456d1", val: "#e07b00", lr: "#7a4fc4", other: ["#1f9d8a", "#c2407a", "#6d7a1f", "#8a5a2b", "#3a8fd1", "#9b59b6"] };

const MARKER_LIMIT = 60;

function colorFor(key, index) {
  if (key.startsWith("train")) return COLORS.train;
  if (key.startsWith("val")) return COLORS.val;
  if (key === "lr") return COLORS.lr;
  return COLORS.other[index % COLORS.other.length];
}

function labelFor(key, prefix) {
  if (prefix && key.startsWith(prefix)) return key.slice(prefix.length);
  return ({ train_loss: "train", val_loss: "validation", train_accuracy: "train",
            val_accuracy: "validation", lr: "η" })[key] ?? key.replaceAll("_", " ");
}

class MetricChart extends HTMLElement {
  connectedCallback() {
    if (this.plot) return;
    this.keys = (this.getAttribute("keys") || "").split(",").map((k) => k.trim()).filter(Boolean);
    this.keyPrefix = this.getAttribute("prefix") || "";
    this.traceIndex = new Map();
    this.lastX = new Map();
    this.points = 0;

    const title = this.getAttribute("chart-title") || "Metric";
    const yLog = this.hasAttribute("y-log");
    this.plot = el("div", { class: "plot", role: "img", "aria-label": `${title} chart` });
    this.placeholder = el("p", { class: "chart-empty", text: "Waiting for the first epoch…" });
    // A log axis shows the late, small changes of a loss that a linear axis flattens.
    this.logToggle = el("input", { type: "checkbox", checked: yLog,
      onchange: () => this.setLog(this.logToggle.checked) });
    this.replaceChildren(
      el("div", { class: "chart-head" },
        el("h3", { class: "chart-title", text: title }),
        el("label", { class: "chart-log" }, this.logToggle, "log scale")),
      el("div", { class: "chart-body" }, this.plot, this.placeholder));

    const traces = this.keys.map((key, i) => {
      this.traceIndex.set(key, i);
      return this.trace(key, i);
    });
    const layout = {
      height: Number(this.getAttribute("height")) || 300,
      margin: { l: 56, r: 16, t: 28, b: 44 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#ffffff",
      font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", color: "#1d2433", size: 12 },
      xaxis: { title: { text: "epoch" }, rangemode: "nonnegative", gridcolor: "#eef0f5",
               zeroline: false, automargin: true },
      yaxis: { title: { text: this.getAttribute("y-title") || "" }, type: yLog ? "log" : "linear",
               rangemode: yLog ? "normal" : "tozero",
               gridcolor: "#eef0f5", zeroline: false, exponentformat: "power", automargin: true },
      legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
      hovermode: "x unified",
      showlegend: this.keys.length > 1 || this.keyPrefix !== "",
    };
    const config = { responsive: true, displaylogo: false,
      modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"] };
    this.ready = window.Plotly
      ? window.Plotly.newPlot(this.plot, traces, layout, config)
      : Promise.reject(new Error("Plotly did not load"));
    this.ready.catch(() => {
      this.placeholder.textContent = "The chart library could not be loaded.";
    });
  }

  setLog(on) {
    const plot = this.plot;
    if (!plot) return;
    this.ready = this.ready.catch(() => {}).then(() => window.Plotly.relayout(plot, {
      "yaxis.type": on ? "log" : "linear", "yaxis.rangemode": on ? "normal" : "tozero",
      "yaxis.autorange": true,
    }));
    this.ready.catch(() => {});
  }

  disconnectedCallback() {
    // A route change removes the element for good; release Plotly's listeners.
    const plot = this.plot;
    this.plot = null;
    if (plot && window.Plotly) this.ready.finally(() => window.Plotly.purge(plot)).catch(() => {});
  }

  trace(key, index) {
    return {
      x: [], y: [], name: labelFor(key, this.keyPrefix), meta: key,
      type: "scatter", mode: this.thinned ? "lines" : "lines+markers",
      line: { color: colorFor(key, index), width: 2 },
      marker: { size: 5 }, connectgaps: false,
    };
  }

  accepts(key) {
    return this.traceIndex.has(key) || (this.keyPrefix !== "" && key.startsWith(this.keyPrefix));
  }

  /** Append points: series is {key: [[x, value], ...]}; other keys are ignored. */
  add(series) {
    if (!this.plot) return;
    const newTraces = [];
    const update = { x: [], y: [] };
    const indices = [];
    for (const [key, points] of Object.entries(series || {})) {
      if (!this.accepts(key) || !Array.isArray(points)) continue;
      // x only grows for a key; anything at or before the last x was already drawn.
      const last = this.lastX.get(key) ?? -Infinity;
      const fresh = points.filter((p) => Array.isArray(p) && p[0] > last);
      if (!fresh.length) continue;
      this.lastX.set(key, fresh[fresh.length - 1][0]);
      if (!this.traceIndex.has(key)) {
        this.traceIndex.set(key, this.traceIndex.size);
        newTraces.push(this.trace(key, this.traceIndex.size - 1));
      }
      indices.push(this.traceIndex.get(key));
      update.x.push(fresh.map((p) => p[0]));
      update.y.push(fresh.map((p) => (p[1] === null ? null : Number(p[1]))));
      this.points += fresh.length;
    }
    if (!indices.length) return;
    this.placeholder.hidden = true;
    this.dataset.points = String(this.points);
    const plot = this.plot;
    // One failed update must not stall the ones after it.
    // Markers help read a short run; on a long one they blur into the line.
    const thin = !this.thinned && Math.max(...this.lastX.values()) > MARKER_LIMIT;
    if (thin) this.thinned = true;
    this.ready = this.ready.catch(() => {}).then(async () => {
      if (newTraces.length) await window.Plotly.addTraces(plot, newTraces);
      await window.Plotly.extendTraces(plot, update, indices);
      if (thin) await window.Plotly.restyle(plot, { mode: "lines" });
    });
    this.ready.catch(() => {});
  }
}

customElements.define("metric-chart", MetricChart);
