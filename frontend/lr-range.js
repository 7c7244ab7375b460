// <lr-range-finder>: the LR range test (SPEC.md "Looking inside"). On the launch form
// (`finder.launchForm = form`): a button runs the test on the form's spec, the raw and smoothed
// loss are drawn on a log-η axis with the suggestion marked and its rule written on the chart,
// and "use this η" writes it into the form's optim.lr. With run-id="N" it shows that test.
import { createLrRangeTest, getMetrics, getRun } from "./api.js";
import { PlotElement, baseLayout } from "./plot-element.js";
import { FINISHED, el, formatNumber, useStyle } from "./ui.js";

useStyle(import.meta.url, "lr-range.css");

const KEYS = ["lr_range/loss", "lr_range/smoothed_loss"];
const POLL_MS = 500;

class LrRangeFinder extends PlotElement {
  plotLabel() {
    return "LR range test: loss against η";
  }

  build(plot) {
    this.button = el("button", { type: "button", class: "lr-range-button", text: "Find η (LR range test)",
      onclick: () => this.launch() });
    this.useButton = el("button", { type: "button", class: "button-primary lr-range-use", text: "use this η", hidden: true,
      onclick: () => this.useLr() });
    this.status = el("p", { class: "muted lr-range-status", "aria-live": "polite",
      text: "Trains the form's network for up to 100 minibatches while η grows from 10⁻⁶ to 10, on 3 seeds, and suggests an η." });
    this.summary = el("p", { class: "lr-range-summary", hidden: true });
    this.link = el("a", { class: "lr-range-link", hidden: true, text: "" });
    this.body = el("div", { class: "chart-body", hidden: true }, plot);
    const runId = this.getAttribute("run-id");
    this.replaceChildren(
      el("div", { class: "chart-head" },
        el("h3", { class: "chart-title", text: "LR range test" }),
        el("div", { class: "lr-range-actions" }, runId ? null : this.button, runId ? null : this.useButton)),
      this.status, this.body, this.summary, this.link);
    if (runId) this.follow(runId);
  }

  async launch() {
    const spec = this.launchForm?.readOrMark();
    if (!spec || this.busy) return;
    this.busy = true;
    this.button.disabled = true;
    this.useButton.hidden = true;
    this.status.textContent = "Starting the LR range test…";
    try {
      const run = await createLrRangeTest({ spec, start: 1e-6, end: 10, steps: 100 });
      this.follow(run.id);
    } catch (err) {
      this.status.textContent = `The LR range test was not started: ${err.message}`;
      this.busy = false;
      this.button.disabled = false;
    }
  }

  /** Wait for test `id` to end (asking every POLL_MS), then draw it. */
  async follow(id) {
    this.runId = String(id);
    this.dataset.run = this.runId;
    let run;
    try {
      run = await getRun(id);
    } catch (err) {
      this.done(`Could not follow the LR range test: ${err.message}`);
      return;
    }
    if (this.gone) return;
    if (!FINISHED.has(run.status)) {
      const { epoch, max_epochs: total } = run.progress;
      this.status.textContent = `LR range test #${id} ${run.status}: ${epoch} of ${total} seeds swept…`;
      this.after(POLL_MS, () => this.follow(id));
      return;
    }
    this.link.href = `#/runs/${encodeURIComponent(id)}`;
    this.link.textContent = `LR range test #${id}`;
    this.link.hidden = Boolean(this.getAttribute("run-id"));
    if (run.status !== "succeeded" || !run.result?.lr_range) {
      this.done(`LR range test #${id} ${run.status}${run.error ? `: ${run.error}` : ""}.`);
      return;
    }
    let metrics;
    try {
      metrics = await getMetrics(id, { keys: KEYS });
    } catch (err) {
      this.done(`Could not load the curves: ${err.message}`);
      return;
    }
    if (this.gone) return;
    this.show(metrics.series, run.result.lr_range);
    this.done("");
  }

  done(message) {
    this.busy = false;
    this.button.disabled = false;
    if (message) this.status.textContent = message;
  }

  show(series, found) {
    this.shown = { series, found };
    this.draw();
    const { spread } = found;
    this.suggested = found.suggested_lr;
    this.dataset.suggested = String(found.suggested_lr);
    this.summary.textContent = `Suggested η = ${formatNumber(found.suggested_lr, 4)}. Over ${found.seeds.length} seeds the suggestion ranged from ${formatNumber(spread.min, 4)} to ${formatNumber(spread.max, 4)} (std of log₁₀ η: ${spread.log10_std.toFixed(2)}).`;
    this.summary.hidden = false;
    this.useButton.hidden = !this.launchForm;
  }

  draw() {
    if (!this.shown) return;
    const { series, found } = this.shown;
    const raw = series["lr_range/loss"] || [];
    const smooth = series["lr_range/smoothed_loss"] || [];
    const finite = smooth.map((p) => p[1]).filter((v) => Number.isFinite(v));
    const top = Math.min(Math.max(...finite), 4 * Math.min(...finite)) * 1.05;
    const traces = [
      { x: raw.map((p) => p[0]), y: raw.map((p) => p[1]), name: "loss (each minibatch)", meta: "lr_range/loss",
        mode: "lines", line: { color: "#3456d1", width: 1 }, opacity: 0.35 },
      { x: smooth.map((p) => p[0]), y: smooth.map((p) => p[1]), name: "smoothed loss", meta: "lr_range/smoothed_loss",
        mode: "lines", line: { color: "#3456d1", width: 2.5 } },
    ];
    const line = (x, color, dash, name) => ({ type: "line", name, xref: "x", yref: "paper", x0: x, x1: x, y0: 0, y1: 1,
      line: { color, width: 2, dash } });
    this.body.hidden = false; // before the layout measures the plot's width
    const layout = {
      ...baseLayout(320, this.plot),
      xaxis: { type: "log", title: { text: "η (log scale)" }, exponentformat: "power" },
      yaxis: { title: { text: "training loss" }, range: [0, top] },
      shapes: [line(found.suggested_lr, "#d1242f", "solid", "suggested"),
        line(found.alternative_lr, "#6d7a1f", "dot", "alternative")],
      annotations: [{ xref: "paper", yref: "paper", x: 0.01, y: 0.03, xanchor: "left", yanchor: "bottom", align: "left",
        showarrow: false, bgcolor: "rgba(255,255,255,0.85)", font: { size: 11 },
        text: `suggested η = ${formatNumber(found.suggested_lr, 4)}: ${found.rule}<br>` +
          `dotted: η = ${formatNumber(found.alternative_lr, 4)}, ${found.alternative_rule}` }],
    };
    this.render(traces, layout).then(() => { this.dataset.drawn = this.runId; }, () => {
      this.status.textContent = "The chart library could not be loaded.";
    });
  }

  /** Write the suggestion into the launch form's η. */
  useLr() {
    const field = this.launchForm?.byKey?.get("optim.lr");
    if (!field || this.suggested === undefined) return;
    field.write(Number(this.suggested.toPrecision(3)));
    field.input?.dispatchEvent(new Event("input", { bubbles: true }));
    this.status.textContent = `η = ${Number(this.suggested.toPrecision(3))} written into the form.`;
  }
}

customElements.define("lr-range-finder", LrRangeFinder);
