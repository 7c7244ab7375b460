// <health-panel run-id="N">: training health per layer (SPEC.md "Looking inside"), live. For
// the newest epoch: log₁₀ of the update ratio ‖Δw‖/‖w‖ on a gauge with the healthy band
// −4…−2 shaded (about −3 is the rule of thumb) and a word when it leaves it, the share of dead
// units (ReLU family) and of saturated outputs (tanh, sigmoid); below, the server's one-line
// diagnoses, each with the rule that fired.
import { getRunHealth } from "./api.js";
import { el, formatPercent, useStyle } from "./ui.js";

useStyle(import.meta.url, "health-panel.css");

const METRICS = ["update_ratio", "dead_fraction", "saturation"];
const BAND = [-4, -2];
const GAUGE = [-7, 1]; // the gauge's log₁₀ range; values beyond sit at its ends
const REFRESH_MS = 3000; // diagnoses are asked for again at most this often while live

function bandWord(log) {
  if (log > BAND[1]) return "too large";
  if (log < BAND[0]) return "too small";
  return "in band";
}

function percentOf(log) {
  const [lo, hi] = GAUGE;
  return (100 * (Math.min(hi, Math.max(lo, log)) - lo)) / (hi - lo);
}

function gauge(log) {
  const band = `left: ${percentOf(BAND[0])}%; width: ${percentOf(BAND[1]) - percentOf(BAND[0])}%`;
  return el("div", { class: "health-gauge", "aria-hidden": "true" },
    el("div", { class: "health-band", style: band }),
    log === null ? null : el("div", { class: "health-marker", style: `left: ${percentOf(log)}%` }));
}

class HealthPanel extends HTMLElement {
  connectedCallback() {
    if (this.rows) return;
    this.runId = this.getAttribute("run-id");
    this.layers = new Map(); // layer → {metric: [epoch, value]} (the newest epoch's)
    this.rows = el("tbody");
    this.lines = el("ul", { class: "health-diagnoses", "aria-live": "polite" });
    this.replaceChildren(
      el("h3", { class: "chart-title", text: "Training health per layer" }),
      el("p", { class: "chart-note muted", text: "Newest epoch. Update ratio: log₁₀ ‖Δw‖/‖w‖ of the epoch's last step; the shaded band is −4…−2 (aim about −3). Dead: units never positive on the validation set (ReLU). Saturated: outputs with |a| > 0.99 (tanh, sigmoid)." }),
      el("table", { class: "data-table health-table" },
        el("thead", {}, el("tr", {}, ["layer", "log₁₀ update ratio", "band −4…−2", "dead units", "saturated"]
          .map((text) => el("th", { scope: "col", text })))),
        this.rows),
      this.lines);
    this.classList.add("chart-card");
    this.hidden = true;
  }

  disconnectedCallback() {
    clearTimeout(this.timer);
    this.timer = null;
    this.gone = true;
  }

  add(series) {
    let added = false;
    for (const [key, points] of Object.entries(series || {})) {
      const [metric, layer] = key.split("/", 2);
      if (!layer || !METRICS.includes(metric) || !Array.isArray(points) || !points.length) continue;
      if (!this.layers.has(layer)) this.layers.set(layer, {});
      const figures = this.layers.get(layer);
      for (const p of points) {
        if (Array.isArray(p) && (!figures[metric] || p[0] >= figures[metric][0])) figures[metric] = p;
      }
      added = true;
    }
    if (!added) return;
    this.hidden = false;
    this.render();
    this.refresh();
  }

  render() {
    const value = (figures, metric) => (figures[metric] ? figures[metric][1] : null);
    this.rows.replaceChildren(...[...this.layers].map(([layer, figures]) => {
      const ratio = value(figures, "update_ratio");
      const log = ratio > 0 ? Math.log10(ratio) : null;
      const share = (metric) => (figures[metric] ? formatPercent(value(figures, metric)) : "—");
      return el("tr", { dataset: { layer } },
        el("td", { class: "mono", text: layer }),
        el("td", { class: "num", dataset: { cell: "log-ratio" }, text: log === null ? "—" : log.toFixed(2) },
          log === null ? null : el("span", { class: `health-word health-${bandWord(log).replace(" ", "-")}`, text: ` ${bandWord(log)}` })),
        el("td", {}, gauge(log)),
        el("td", { class: "num", dataset: { cell: "dead" }, text: share("dead_fraction") }),
        el("td", { class: "num", dataset: { cell: "saturated" }, text: share("saturation") }));
    }));
  }

  /** Ask for the diagnoses now, or once the last request is REFRESH_MS old. */
  refresh(now = false) {
    if (this.timer && !now) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), now ? 0 : REFRESH_MS);
  }

  async load() {
    this.timer = null;
    let health;
    try {
      health = await getRunHealth(this.runId);
    } catch {
      return; // the figures above still show; the next points ask again
    }
    if (this.gone) return;
    this.dataset.diagnoses = String(health.diagnoses.length);
    this.lines.replaceChildren(...health.diagnoses.map((d) =>
      el("li", { class: "health-diagnosis", dataset: { key: d.key } },
        el("strong", { text: d.message }),
        el("span", { class: "muted health-rule", text: ` (rule: ${d.rule})` }))));
  }
}

customElements.define("health-panel", HealthPanel);
