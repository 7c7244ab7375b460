// PlotElement: the base class of every custom element that draws one Plotly figure. It owns
// the figure's lifecycle, written once here instead of in each chart: the plot box, the first
// drawing (which loads Plotly), coalesced redraws, a redraw when the box's width changes (a
// chart first drawn while hidden would otherwise keep Plotly's default 700 px), and purging
// Plotly's listeners when the element leaves the page (a route change removes it for good).
//
// A subclass implements build(plot) (its DOM around the plot box) and draw() (which calls
// render(traces, layout)); it may override plotLabel(), cardClass(), resized(), delay() and
// sizeTarget.
// after(ms, fn) is its timer for polls and refreshes (stopAfter() cancels it, `due` says
// whether it is set), stopped when the element leaves.
import { drawPlot } from "./plotly-loader.js";
import { el, releasePlot } from "./ui.js";

export const PLOT_CONFIG = { responsive: true, displaylogo: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"] };

/** Call `redraw` whenever the width of `box` changes; returns the observer. */
export function watchWidth(box, redraw) {
  let width = box.clientWidth;
  const observer = new ResizeObserver(() => {
    const now = box.clientWidth;
    if (now && now !== width) {
      width = now;
      redraw();
    }
  });
  observer.observe(box);
  return observer;
}

/** The layout every chart shares; the width is the plot's own box, measured now. */
export function baseLayout(height, plot = null) {
  const width = plot ? plot.clientWidth : 0;
  return {
    height,
    ...(width ? { width } : {}),
    margin: { l: 56, r: 16, t: 28, b: 44 },
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "#ffffff",
    font: { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", color: "#1d2433", size: 12 },
    legend: { orientation: "h", x: 1, xanchor: "right", y: 1.02, yanchor: "bottom" },
  };
}

export class PlotElement extends HTMLElement {
  connectedCallback() {
    if (this.plot) return;
    if (this.cardClass()) this.classList.add(this.cardClass());
    this.gone = false;
    this.ready = null; // the chain of Plotly drawings; the first one loads Plotly
    this.timer = null;
    this.waiting = null; // after()'s timer
    this.plot = el("div", { class: "plot", role: "img", "aria-label": this.plotLabel() });
    this.build(this.plot);
    this.sizer = watchWidth(this.sizeTarget || this.plot, () => this.resized());
  }

  disconnectedCallback() {
    this.gone = true;
    clearTimeout(this.timer);
    clearTimeout(this.waiting);
    this.timer = this.waiting = null;
    this.sizer?.disconnect();
    this.sizer = null;
    const plot = this.plot;
    this.plot = null;
    releasePlot(plot, this.ready);
  }

  /** The plot box's accessible name. */
  plotLabel() {
    return `${this.getAttribute("chart-title") || "Metric"} chart`;
  }

  /** The class that frames the element; "" for a figure that sits inside someone else's frame. */
  cardClass() {
    return "chart-card";
  }

  /** Lay out the element's children around `plot` (the box Plotly draws in). */
  build(plot) {
    this.replaceChildren(plot);
  }

  /** What a change of width does: a coalesced redraw. */
  resized() {
    this.schedule();
  }

  /** Milliseconds a redraw waits, so that a burst of changes costs one drawing. */
  delay() {
    return 80;
  }

  height(fallback = 300) {
    return Number(this.getAttribute("height")) || fallback;
  }

  /** draw() once, after delay(), however many times this is called meanwhile. */
  schedule() {
    if (this.timer || !this.plot) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.plot) this.draw();
    }, this.delay());
  }

  /** Call fn once after ms (a poll, a refresh), unless the element has left the page by then. */
  after(ms, fn) {
    this.stopAfter();
    this.waiting = setTimeout(() => {
      this.waiting = null;
      if (!this.gone) fn();
    }, ms);
  }

  /** Cancel after()'s pending call, if any. */
  stopAfter() {
    clearTimeout(this.waiting);
    this.waiting = null;
  }

  /** Whether after()'s call is still to come. */
  get due() {
    return Boolean(this.waiting);
  }

  draw() {}

  /** Draw now (Plotly.react after the previous drawing); returns the drawing's promise. */
  render(traces, layout, config = PLOT_CONFIG) {
    if (!this.plot) return Promise.resolve(null); // left the page: nothing to draw on
    this.ready = drawPlot(this.ready, this.plot, traces, layout, config);
    return this.ready;
  }
}
