// <confusion-view run-id="N">: the validation-set confusion matrix of one epoch (SPEC.md
// "Looking inside"), with a slider over every epoch the run stored. Clicking a cell lists its
// examples (of the returned model): the image, the 1-D signal or the 2-D point, each with
// its predicted probabilities as bars (and, for ensembles and MC dropout, their spread).
// 2-D points are also announced ("confusion-examples" on document) for the boundary plot.
import { getCellExamples, getConfusion } from "./api.js";
import { EpochSlider } from "./epoch-slider.js";
import { PlotElement, baseLayout } from "./plot-element.js";
import { sketch } from "./sketch.js";
import { el, formatPercent, useStyle } from "./ui.js";

useStyle(import.meta.url, "confusion-view.css");

const REFRESH_MS = 2000; // a live run's newest matrix is asked for at most this often
const LIMIT = 20; // examples listed per cell

// Class names, with their index in front where the name is not the index itself.
const axisLabels = (classes) => classes.map((c, i) => (String(c) === String(i) ? String(c) : `${i}: ${c}`));

class ConfusionView extends PlotElement {
  plotLabel() {
    return "Confusion matrix heatmap";
  }

  build(plot) {
    this.hidden = true; // until the run has a matrix
    this.runId = this.getAttribute("run-id");
    this.slider = new EpochSlider(this, { name: "confusion", label: "matrix of epoch",
      fetch: (epoch) => getConfusion(this.runId, epoch),
      show: (confusion) => {
        this.hidden = false;
        this.shown = confusion;
        this.draw();
      },
      fail: (err) => {
        this.hidden = false;
        this.cellNote.textContent = `Could not load the confusion matrix: ${err.message}`;
      } });
    this.cellTitle = el("h4", { class: "confusion-cell-title", text: "" });
    this.cellNote = el("p", { class: "muted confusion-cell-note", text: "Click a cell to see its examples." });
    this.list = el("ul", { class: "confusion-examples" });
    this.replaceChildren(
      el("div", { class: "chart-head" },
        el("h3", { class: "chart-title", text: "Confusion matrix (validation set)" }), this.slider.controls),
      el("p", { class: "chart-note muted", text: "Rows: true class; columns: predicted class; the number is how many validation examples. The diagonal is right." }),
      el("div", { class: "chart-body" }, plot),
      el("section", { class: "confusion-cell" }, this.cellTitle, this.cellNote, this.list));
    // No request yet: a matrix is stored with its epoch's validation figures, so the first
    // val_loss points (add()) say one exists; asking before would be a 404.
  }

  /** New metric points: an epoch ended, so a newer matrix may exist. */
  add(series) {
    if (!series || !(series.val_loss || series.val_accuracy) || !this.slider.follow || this.due) return;
    if (!this.shown && !this.slider.loading) this.slider.refresh();
    else this.after(REFRESH_MS, () => this.slider.refresh());
  }

  draw() {
    const confusion = this.shown;
    if (!confusion) return;
    const { classes, matrix } = confusion;
    const labels = axisLabels(classes);
    // Colour by each row's share, so a rare class's errors show as clearly as a common one's;
    // the count is written in each cell.
    const shares = matrix.map((row) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      return row.map((v) => v / total);
    });
    const text = matrix.map((row) => row.map(String));
    const traces = [{
      type: "heatmap", x: labels, y: labels, z: shares, zmin: 0, zmax: 1, customdata: matrix,
      text, texttemplate: "%{text}", colorscale: [[0, "#f7fbff"], [0.5, "#6baed6"], [1, "#08306b"]], xgap: 1, ygap: 1,
      colorbar: { title: { text: "share of row", side: "right" }, thickness: 12 },
      hovertemplate: "true %{y}, predicted %{x}<br>%{customdata} examples (%{z:.1%} of the row)<extra></extra>",
    }];
    const size = Math.min(560, 140 + 34 * classes.length);
    const layout = {
      ...baseLayout(size, this.plot),
      margin: { l: 90, r: 16, t: 12, b: 70 },
      xaxis: { title: { text: "predicted class" }, type: "category", tickangle: -30 },
      yaxis: { title: { text: "true class" }, type: "category", autorange: "reversed" },
    };
    const first = !this.ready;
    this.render(traces, layout).then(() => {
      if (first && this.plot) this.plot.on("plotly_click", (e) => this.clicked(e));
      if (this.plot) this.dataset.drawn = String(confusion.epoch);
    }, () => {
      this.cellNote.textContent = "The chart library could not be loaded.";
    });
  }

  clicked(event) {
    const point = event?.points?.[0];
    if (!point || !this.shown) return;
    const labels = axisLabels(this.shown.classes);
    this.openCell(labels.indexOf(point.y), labels.indexOf(point.x));
  }

  /** List the examples of the cell (true class t, predicted class p) of the shown epoch. */
  async openCell(t, p) {
    if (t < 0 || p < 0) return;
    const { classes, matrix, epoch } = this.shown;
    this.dataset.cell = `${t},${p}`;
    this.cellTitle.textContent = `True ${classes[t]}, predicted ${classes[p]}: ${matrix[t][p]} example${matrix[t][p] === 1 ? "" : "s"}`;
    this.cellNote.textContent = "Loading…";
    this.list.replaceChildren();
    let found;
    try {
      found = await getCellExamples(this.runId, { trueClass: t, predClass: p, epoch, limit: LIMIT });
    } catch (err) {
      if (this.gone) return;
      // 409: only the returned model is kept, so other epochs (and a running run) have none.
      this.cellNote.textContent = err.status === 409
        ? `Examples come from the returned model only: ${err.message}`
        : `Could not load the examples: ${err.message}`;
      return;
    }
    if (this.gone || this.dataset.cell !== `${t},${p}`) return;
    this.cellNote.textContent = found.length
      ? `The first ${found.length} of the returned model (epoch ${epoch}), each with its predicted probabilities.`
      : "No example in this cell.";
    this.dataset.examples = String(found.length);
    this.list.replaceChildren(...found.map((e) => this.example(e, classes)));
    const points = found.filter((e) => Array.isArray(e.input) && e.input.length === 2);
    document.dispatchEvent(new CustomEvent("confusion-examples", {
      detail: { runId: this.runId, label: `true ${classes[t]}, predicted ${classes[p]}`,
        points: points.map((e) => e.input) },
    }));
  }

  example(e, classes) {
    let input = null;
    if (e.png) {
      input = el("img", { class: "confusion-image", src: `data:image/png;base64,${e.png}`,
        alt: `validation example ${e.index}` });
    } else if (Array.isArray(e.input) && e.input.length === 2) {
      input = el("span", { class: "mono confusion-point", text: `(${e.input.map((v) => v.toFixed(3)).join(", ")})` });
    } else if (Array.isArray(e.input)) {
      input = el("span", { class: "confusion-signal" },
        sketch({ lines: [{ x: e.input.map((_, i) => i), y: e.input, color: "#3456d1" }], width: 220, height: 110 }));
    }
    // Many classes: the ten likeliest (and the true one), as a bar each.
    let shown = e.probabilities.map((_, k) => k);
    if (shown.length > 10) {
      shown = shown.sort((a, b) => e.probabilities[b] - e.probabilities[a]).slice(0, 10);
      if (!shown.includes(e.label)) shown.push(e.label);
    }
    const bars = el("div", { class: "confusion-probs" }, shown.map((k) => {
      const prob = e.probabilities[k];
      const spread = e.spread ? e.spread[k] : null;
      const title = `${classes[k]}: ${formatPercent(prob)}${spread === null ? "" : ` ± ${formatPercent(spread)}`}`;
      return el("div", { class: `confusion-prob${k === e.pred ? " is-pred" : ""}${k === e.label ? " is-true" : ""}`, title },
        el("span", { class: "confusion-prob-name", text: classes[k] }),
        el("span", { class: "confusion-prob-track" },
          el("span", { class: "confusion-prob-bar", style: `width: ${(100 * prob).toFixed(1)}%` }),
          spread === null ? null : el("span", { class: "confusion-prob-spread",
            style: `left: ${(100 * Math.max(0, prob - spread)).toFixed(1)}%; width: ${(100 * (Math.min(1, prob + spread) - Math.max(0, prob - spread))).toFixed(1)}%` })),
        el("span", { class: "num confusion-prob-value", text: formatPercent(prob) }));
    }));
    return el("li", { class: "confusion-example", dataset: { index: String(e.index) } },
      el("div", { class: "confusion-input" }, input, el("span", { class: "muted", text: `#${e.index}` })),
      bars);
  }
}

customElements.define("confusion-view", ConfusionView);
