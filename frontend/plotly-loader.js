// Plotly is 3.5 MB of script that takes over a second to run on a slow laptop. The lab does
// not wait for it: pages paint first (charts as light SVG sketches, see sketch.js) and Plotly
// is loaded once something needs it, after the frame that shows what is already there.
let loading = null;

const afterPaint = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));

/** Resolves with window.Plotly, loading it on first use. */
export function plotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  loading ??= afterPaint().then(() => new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/vendor/plotly.min.js";
    script.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("Plotly did not load")));
    script.onerror = () => {
      loading = null; // a later chart may try again
      reject(new Error("the chart library could not be loaded"));
    };
    document.head.append(script);
  }));
  return loading;
}

/**
 * Draw `traces` on `plot` after the chart's `previous` drawing (a pending Plotly call must
 * finish before the next); the first drawing loads Plotly. Returns the new chain, whose
 * failure (no Plotly) the caller may show.
 */
export function drawPlot(previous, plot, traces, layout, config) {
  const start = previous ? previous.catch(() => {}) : plotly();
  const next = start.then(() => window.Plotly.react(plot, traces, layout, config));
  next.catch(() => {});
  return next;
}
