// <loss-landscape run-id="N">: the training loss on a plane through the returned model z*
// (two filter-normalised random directions, Li et al. 2018) as a contour plot, with the
// optimiser's path (each epoch's weights projected on the plane) drawn on it. Computed on a
// worker when asked for: a progress bar follows it until the server has it.
import { getLandscape } from "./api.js";
import { PlotElement, baseLayout } from "./plot-element.js";
import { el, formatNumber, useStyle } from "./ui.js";

useStyle(import.meta.url, "loss-landscape.css");

const POLL_MS = 700;
const RESOLUTION = 21;

class LossLandscape extends PlotElement {
  plotLabel() {
    return "Loss landscape contour plot";
  }

  build(plot) {
    this.runId = this.getAttribute("run-id");
    this.button = el("button", { type: "button", class: "landscape-button", text: "Compute the loss landscape",
      onclick: () => this.load() });
    this.progress = el("progress", { class: "landscape-progress", max: "1", value: "0", hidden: true,
      "aria-label": "loss landscape progress" });
    this.status = el("p", { class: "muted landscape-status", "aria-live": "polite",
      text: `A ${RESOLUTION} × ${RESOLUTION} grid of training losses around the returned model; computed on a worker when asked for (single networks of up to about a million weights).` });
    this.body = el("div", { class: "chart-body", hidden: true }, plot);
    this.replaceChildren(
      el("div", { class: "chart-head" },
        el("h3", { class: "chart-title", text: "Loss landscape around z*" }),
        el("div", { class: "landscape-actions" }, this.button, this.progress)),
      this.status, this.body);
  }

  async load() {
    this.button.disabled = true;
    let answer;
    try {
      answer = await getLandscape(this.runId, RESOLUTION);
    } catch (err) {
      if (this.gone) return;
      this.status.textContent = `No loss landscape: ${err.message}`;
      this.progress.hidden = true;
      this.button.disabled = false;
      return;
    }
    if (this.gone) return;
    if (answer.status !== "done") {
      this.progress.hidden = false;
      this.progress.value = answer.progress;
      this.dataset.progress = String(answer.progress);
      this.status.textContent = `Computing the loss landscape on a worker (${answer.status}, ${Math.round(100 * answer.progress)} %)…`;
      this.after(POLL_MS, () => this.load());
      return;
    }
    this.progress.value = 1;
    this.progress.hidden = true;
    this.button.hidden = true;
    this.status.textContent = `Training loss on ${answer.examples} examples of the training set at z* + α·d₁ + β·d₂; directions filter-normalised (each neuron's or filter's row scaled to z*'s), biases and batchnorm fixed. The line is the optimiser's path: each stored epoch's weights projected on the plane (least squares). Loss at z*: ${formatNumber(answer.centre_loss, 4)}.${this.reachNote(answer)}`;
    this.shown = answer;
    this.draw();
  }

  /** How far the path strays from z* on the plane: random directions in many dimensions are
   * nearly orthogonal to the path, so it often stays close (Li et al. 2018, §7). */
  reachNote(found) {
    const reach = Math.max(0, ...found.path.flat().map(Math.abs));
    if (!found.path.length) return " This run kept no per-epoch weights, so no path is drawn.";
    return ` The path stays within ${formatNumber(reach, 3)} of z* on this plane${reach < 0.1
      ? ": random directions are nearly orthogonal to the direction the optimiser moved in (Li et al. 2018, §7)" : ""}.`;
  }

  draw() {
    const found = this.shown;
    if (!found) return;
    this.body.hidden = false; // before the layout measures the plot's width
    const [a, b] = [found.path.map((p) => p[0]), found.path.map((p) => p[1])];
    const traces = [
      { type: "contour", x: found.alphas, y: found.betas, z: found.loss, ncontours: 30, colorscale: "Viridis",
        contours: { coloring: "heatmap", showlabels: true, labelfont: { size: 9, color: "white" } },
        colorbar: { title: { text: "training loss", side: "right" }, thickness: 12 },
        hovertemplate: "α %{x:.2f}, β %{y:.2f}<br>loss %{z:.4f}<extra></extra>", name: "loss" },
      { type: "scatter", mode: "lines+markers", x: a, y: b, name: "path (per epoch)", meta: "path",
        text: found.path_epochs.map((e) => `epoch ${e}`), line: { color: "#ffffff", width: 2 },
        marker: { size: 6, color: "#d1242f", line: { color: "#ffffff", width: 1 } },
        hovertemplate: "%{text}<br>α %{x:.3f}, β %{y:.3f}<extra></extra>" },
      { type: "scatter", mode: "markers", x: [0], y: [0], name: "z* (returned model)",
        marker: { symbol: "star", size: 14, color: "#ffd33d", line: { color: "#1d2433", width: 1 } },
        hovertemplate: "z*<extra></extra>" },
    ];
    const layout = {
      ...baseLayout(440, this.plot),
      xaxis: { title: { text: "α (along d₁)" }, zeroline: false, constrain: "domain",
        range: [found.alphas[0], found.alphas[found.alphas.length - 1]] },
      yaxis: { title: { text: "β (along d₂)" }, zeroline: false, scaleanchor: "x", constrain: "domain",
        range: [found.betas[0], found.betas[found.betas.length - 1]] },
    };
    this.render(traces, layout).then(() => { this.dataset.drawn = String(found.alphas.length); }, () => {
      this.status.textContent = "The chart library could not be loaded.";
    });
  }
}

customElements.define("loss-landscape", LossLandscape);
