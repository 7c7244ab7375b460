// <metric-chart keys="train_loss,val_loss" prefix="grad_std/" event-key="events/lr"
//               chart-title="Loss" y-title="loss" y-log smoothing>: metric series against x.
// Points are kept here and drawn with Plotly.react, at most once per RENDER_MS, so a live run
// costs one small redraw per burst of messages. The raw traces come first, in key order
// (data[0] is the first key); smoothed copies, event markers and vertical marks follow.
import { PlotElement, baseLayout } from "./plot-element.js";
import { plotly } from "./plotly-loader.js";
import { sketch } from "./sketch.js";
import { el, useStyle } from "./ui.js";

useStyle(import.meta.url, "metric-chart.css");

const COLORS = { train: "#3456d1", val: "#e07b00", lr: "#7a4fc4", other: ["#1f9d8a", "#c2407a", "#6d7a1f", "#8a5a2b", "#3a8fd1", "#9b59b6"] };
const MARKER_LIMIT = 60;
const RENDER_MS = 60;

export function colorFor(key, index) {
  if (key.startsWith("train")) return COLORS.train;
  if (key.startsWith("val")) return COLORS.val;
  if (key === "lr") return COLORS.lr;
  return COLORS.other[index % COLORS.other.length];
}

export function labelFor(key, prefix) {
  if (prefix && key.startsWith(prefix)) return key.slice(prefix.length);
  return ({ train_loss: "train", val_loss: "validation", train_accuracy: "train",
            val_accuracy: "validation", lr: "η", weight_norm: "‖w‖" })[key] ?? key.replaceAll("_", " ");
}

/**
 * Debiased exponential moving average (Adam's bias correction, as TensorBoard does): with
 * weight β, s_t = β s_{t−1} + (1 − β) y_t and the shown value is s_t / (1 − β^t), so the
 * curve starts on the first point instead of near 0. Missing values stay missing.
 */
export function smoothEma(values, beta) {
  const out = new Array(values.length);
  let s = 0;
  let t = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) {
      out[i] = null;
      continue;
    }
    t += 1;
    s = beta * s + (1 - beta) * v;
    out[i] = s / (1 - beta ** t);
  }
  return out;
}

class MetricChart extends PlotElement {
  build(plot) {
    this.keys = (this.getAttribute("keys") || "").split(",").map((k) => k.trim()).filter(Boolean);
    this.keyPrefix = this.getAttribute("prefix") || "";
    this.eventKey = this.getAttribute("event-key") || "";
    this.series = new Map(this.keys.map((k) => [k, { x: [], y: [] }]));
    this.events = [];
    this.points = 0;
    this.beta = 0;
    this.marks = null;
    this.xMap = null;
    this.xTitle = this.getAttribute("x-title") || "epoch";
    this.revision = 0;
    this.overlays = []; // other runs' curves drawn over these (a fork's, from its fork point)

    const title = this.getAttribute("chart-title") || "Metric";
    this.yLog = this.hasAttribute("y-log");
    this.placeholder = el("p", { class: "chart-empty", text: "Waiting for the first epoch…" });
    // A log axis shows the late, small changes of a loss that a linear axis flattens.
    this.logToggle = el("input", { type: "checkbox", checked: this.yLog,
      onchange: () => { this.yLog = this.logToggle.checked; this.schedule(); } });
    const controls = [el("label", { class: "chart-log" }, this.logToggle, "log scale")];
    if (this.hasAttribute("smoothing")) {
      const id = `smooth-${Math.random().toString(36).slice(2, 9)}`;
      this.smoothInput = el("input", { type: "range", id, min: "0", max: "0.99", step: "0.01", value: "0",
        "aria-label": `Smoothing of the ${title.toLowerCase()} curves`,
        oninput: () => this.setSmoothing(Number(this.smoothInput.value)) });
      this.smoothValue = el("output", { for: id, class: "chart-smooth-value", text: "off" });
      controls.unshift(el("label", { class: "chart-smooth", for: id }, "smoothing"), this.smoothInput, this.smoothValue);
    }
    // Until Plotly has loaded, the curves are drawn as an SVG sketch in the same box.
    this.sketchBox = el("div", { class: "sketch-box" });
    this.body = el("div", { class: "chart-body", style: `min-height: ${this.height()}px` },
      this.sketchBox, plot, this.placeholder);
    this.sizeTarget = this.body;
    this.noteEl = el("p", { class: "chart-note muted", hidden: !this.getAttribute("note"), text: this.getAttribute("note") || "" });
    this.replaceChildren(
      el("div", { class: "chart-head" },
        el("h3", { class: "chart-title", text: title }),
        el("div", { class: "chart-controls" }, controls)),
      this.noteEl,
      this.body);
  }

  /** A line of words under the title (e.g. a summary of the curve); empty hides it. */
  setNote(text) {
    this.noteEl.textContent = text || "";
    this.noteEl.hidden = !text;
  }

  /** β of the debiased EMA; 0 shows the raw curves only. */
  setSmoothing(beta) {
    this.beta = Math.max(0, Math.min(0.999, Number(beta) || 0));
    if (this.smoothInput) {
      this.smoothInput.value = String(this.beta);
      this.smoothValue.textContent = this.beta > 0 ? this.beta.toFixed(2) : "off";
    }
    this.dataset.smoothing = String(this.beta);
    this.schedule();
  }

  /** x values are epochs; fn maps an epoch to what the axis shows (e.g. seconds), or null. */
  setXMap(fn, title) {
    this.xMap = fn;
    this.xTitle = title || "epoch";
    this.schedule();
  }

  /**
   * Vertical marks in epochs: {best, bestLabel, window: [from, to], windowLabel, stop,
   * stopLabel}. Any can be missing.
   */
  setMarks(marks) {
    this.marks = marks;
    this.schedule();
  }

  /** Curves of other runs drawn dashed over this chart: [{name, key, x, y}] (x in epochs). */
  setOverlays(overlays) {
    this.overlays = overlays || [];
    this.schedule();
  }

  accepts(key) {
    return this.series.has(key) || (this.keyPrefix !== "" && key.startsWith(this.keyPrefix));
  }

  /** Append points: series is {key: [[x, value], ...]}; other keys are ignored. */
  add(series) {
    if (!this.plot) return;
    let added = 0;
    for (const [key, points] of Object.entries(series || {})) {
      if (!Array.isArray(points)) continue;
      if (key === this.eventKey) {
        const last = this.events.length ? this.events[this.events.length - 1][0] : -Infinity;
        for (const p of points) if (Array.isArray(p) && p[0] > last) this.events.push([p[0], p[1]]);
        added += points.length;
        continue;
      }
      if (!this.accepts(key)) continue;
      if (!this.series.has(key)) this.series.set(key, { x: [], y: [] });
      const s = this.series.get(key);
      // x only grows for a key; anything at or before the last x was already drawn.
      let last = s.x.length ? s.x[s.x.length - 1] : -Infinity;
      for (const p of points) {
        if (!Array.isArray(p) || !(p[0] > last)) continue;
        last = p[0];
        s.x.push(p[0]);
        s.y.push(p[1] === null ? null : Number(p[1]));
        this.points += 1;
        added += 1;
      }
    }
    if (!added) return;
    this.placeholder.hidden = true;
    this.dataset.points = String(this.points);
    this.schedule();
  }

  /** The last x of every series (the epoch reached). */
  lastX() {
    let last = 0;
    for (const s of this.series.values()) if (s.x.length) last = Math.max(last, s.x[s.x.length - 1]);
    return last;
  }

  /** The first points are drawn at once (the first paint); later bursts are coalesced. */
  delay() {
    return this.revision ? RENDER_MS : 0;
  }

  mapX(xs) {
    if (!this.xMap) return xs;
    return xs.map((x) => this.xMap(x));
  }

  traces() {
    const thin = this.lastX() > MARKER_LIMIT;
    const raw = [];
    const smooth = [];
    let i = 0;
    for (const [key, s] of this.series) {
      const color = colorFor(key, i);
      const name = labelFor(key, this.keyPrefix);
      const smoothing = this.beta > 0;
      raw.push({
        x: this.mapX(s.x), y: s.y, name, meta: key, type: "scatter",
        mode: thin || smoothing ? "lines" : "lines+markers",
        // η is held for a whole epoch: drawn as steps, a drop is a drop, not a slope.
        line: { color, width: smoothing ? 1 : 2, shape: key === "lr" ? "hv" : "linear" },
        marker: { size: 5 }, connectgaps: false,
        opacity: smoothing ? 0.25 : 1, showlegend: !smoothing, legendgroup: key,
        hoverinfo: smoothing ? "skip" : undefined,
      });
      if (smoothing) {
        smooth.push({
          x: this.mapX(s.x), y: smoothEma(s.y, this.beta), name, meta: `${key} (smoothed)`,
          type: "scatter", mode: "lines", line: { color, width: 2.2 }, legendgroup: key,
        });
      }
      i += 1;
    }
    const extra = [];
    if (this.eventKey && this.events.length) {
      extra.push({
        x: this.mapX(this.events.map((e) => e[0])), y: this.events.map((e) => e[1]),
        name: "changed by hand", meta: this.eventKey, type: "scatter", mode: "markers",
        marker: { symbol: "diamond", size: 12, color: "#d12f5a", line: { color: "#fff", width: 1.5 } },
      });
    }
    this.overlays.forEach((o, j) => extra.push({
      x: this.mapX(o.x), y: o.y, name: o.name, meta: `overlay:${o.key}`, type: "scatter",
      mode: "lines", line: { color: colorFor(o.key, j), width: 2, dash: "dash" },
    }));
    return [...raw, ...smooth, ...extra];
  }

  markShapes() {
    const shapes = [];
    const annotations = [];
    const m = this.marks || {};
    const at = (x) => (this.xMap ? this.xMap(x) : x);
    const vline = (name, x, color, dash, text, yanchor) => {
      const xv = at(x);
      if (xv === null || xv === undefined) return;
      shapes.push({ type: "line", name, xref: "x", yref: "paper", x0: xv, x1: xv, y0: 0, y1: 1,
        line: { color, width: 2, dash } });
      annotations.push({ name, x: xv, xref: "x", y: yanchor, yref: "paper", text, showarrow: false,
        font: { size: 11, color }, bgcolor: "rgba(255,255,255,0.85)", xanchor: "left" });
    };
    if (Array.isArray(m.window) && m.window[1] > m.window[0]) {
      const x0 = at(m.window[0]);
      const x1 = at(m.window[1]);
      if (x0 !== null && x0 !== undefined && x1 !== null && x1 !== undefined) {
        shapes.push({ type: "rect", name: "patience", xref: "x", yref: "paper", x0, x1, y0: 0, y1: 1,
          fillcolor: "rgba(224,123,0,0.10)", line: { width: 0 }, layer: "below" });
        if (m.windowLabel) {
          annotations.push({ name: "patience", x: (x0 + x1) / 2, xref: "x", y: 0.5, yref: "paper",
            text: m.windowLabel, showarrow: false, font: { size: 10, color: "#9a5b00" } });
        }
      }
    }
    if (m.best !== null && m.best !== undefined) vline("best", m.best, "#1f7a4d", "dash", m.bestLabel || `best ${m.best}`, 0.98);
    // Drawn even on the best epoch's line: a run cancelled (or diverged) right at z* must still
    // say so; the two labels sit at different heights.
    if (m.stop !== null && m.stop !== undefined) {
      vline("stop", m.stop, "#b4232c", "dot", m.stopLabel || `stop ${m.stop}`, 0.86);
    }
    if (this.eventKey) {
      for (const [x] of this.events) {
        const xv = at(x);
        if (xv === null || xv === undefined) continue;
        shapes.push({ type: "line", name: "event", xref: "x", yref: "paper", x0: xv, x1: xv, y0: 0, y1: 1,
          line: { color: "rgba(209,47,90,0.45)", width: 1, dash: "dot" } });
      }
    }
    return { shapes, annotations };
  }

  layout() {
    const { shapes, annotations } = this.markShapes();
    return {
      ...baseLayout(this.height(), this.plot),
      datarevision: this.revision,
      xaxis: { title: { text: this.xTitle }, rangemode: "nonnegative", gridcolor: "#eef0f5",
               zeroline: false, automargin: true },
      yaxis: { title: { text: this.getAttribute("y-title") || "" }, type: this.yLog ? "log" : "linear",
               rangemode: this.yLog ? "normal" : "tozero", autorange: true,
               // e.g. ".3s": 20k, 30k instead of a log axis's bare mantissas
               ...(this.getAttribute("y-format") ? { tickformat: this.getAttribute("y-format") } : {}),
               gridcolor: "#eef0f5", zeroline: false, exponentformat: "power", automargin: true },
      hovermode: "x unified",
      showlegend: this.series.size > 1 || this.keyPrefix !== "" || this.events.length > 0,
      shapes, annotations,
      uirevision: "keep",
    };
  }

  /** data-first-paint: the time (ms since the page opened) of the first frame that shows points. */
  stampFirstPaint() {
    if (this.dataset.firstPaint || !this.points) return;
    // The frame's own time: the paint that shows the points follows these callbacks.
    requestAnimationFrame((frame) => {
      if (this.dataset.firstPaint) return;
      this.dataset.firstPaint = frame.toFixed(0);
      this.dataset.firstPaintWith = this.dataset.drawnWith;
    });
  }

  /** The curves as SVG, while Plotly loads (see sketch.js). */
  drawSketch() {
    const lines = [];
    let i = 0;
    for (const [key, s] of this.series) {
      lines.push({ x: this.mapX(s.x), y: this.beta > 0 ? smoothEma(s.y, this.beta) : s.y, color: colorFor(key, i) });
      i += 1;
    }
    const m = this.marks || {};
    const marks = [[m.best, "#1f7a4d"], [m.stop, "#b4232c"]]
      .filter(([x]) => x !== null && x !== undefined)
      .map(([x, color]) => ({ x: this.xMap ? this.xMap(x) : x, color }));
    this.sketchBox.replaceChildren(sketch({ lines, marks, width: this.body.clientWidth || 600,
      height: this.height(), yLog: this.yLog, xTitle: this.xTitle, yTitle: this.getAttribute("y-title") || "" }));
    this.dataset.drawnWith = "sketch";
    this.stampFirstPaint();
  }

  /** A click on a point of one of this chart's own series answers with a bubbling
   * "chart-click" event, detail {epoch, key, value} (the run view offers a fork from there). */
  listenForClicks(plot) {
    if (plot.dataset.clicks || typeof plot.on !== "function") return;
    plot.dataset.clicks = "on";
    plot.on("plotly_click", (event) => {
      const p = event?.points?.find((q) => this.series.has(q.data?.meta));
      if (!p) return;
      const epoch = this.series.get(p.data.meta).x[p.pointIndex];
      if (epoch === undefined) return;
      this.dispatchEvent(new CustomEvent("chart-click", { bubbles: true,
        detail: { epoch, key: p.data.meta, value: p.y } }));
    });
  }

  draw() {
    const plot = this.plot;
    if (!plot) return;
    this.revision += 1;
    if (!window.Plotly) {
      if (!this.points) return; // nothing to show yet: no reason to load Plotly now
      this.drawSketch();
      this.loading ??= plotly().then(() => this.schedule(), () => {
        this.loading = null;
        this.placeholder.hidden = false;
        this.placeholder.textContent = "The interactive chart library could not be loaded.";
      });
      return;
    }
    this.render(this.traces(), this.layout()).then(() => {
      this.listenForClicks(plot);
      this.sketchBox.replaceChildren();
      this.dataset.drawnWith = "plotly";
      this.stampFirstPaint();
    }, () => {});
  }
}

customElements.define("metric-chart", MetricChart);
