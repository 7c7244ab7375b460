// <study-heatmaps>: the per-layer spreads (activations, gradients) of every finished run of a
// study side by side, on ONE colour scale per kind: the min and max of log₁₀ std over all the
// maps shown. Two runs drawn on their own scales (say −8…−2 and −3…−2) cannot be compared by
// eye; on a shared one the same colour is the same spread. Given by property:
// element.runs = [{id, label, status}, ...]; finished runs are fetched once each.
import { getMetrics } from "./api.js";
import "./layer-heatmap.js";
import { FINISHED, el } from "./ui.js";

const MAX_RUNS = 8;
const POINTS = 300;
const KINDS = [
  ["act_std/", "act_std", "activation spread"],
  ["grad_std/", "grad_std", "gradient spread"],
];

class StudyHeatmaps extends HTMLElement {
  connectedCallback() {
    if (this.grid) return;
    this.loaded = new Map(); // run id → row element
    this.grid = el("div", { class: "study-heatmap-rows" });
    this.note = el("p", { class: "muted chart-note" });
    this.section = el("section", { class: "card study-heatmaps", hidden: true, "aria-labelledby": "study-heatmaps-heading" },
      el("h2", { id: "study-heatmaps-heading", text: "Per-layer spread, run by run" }),
      this.note, this.grid);
    this.replaceChildren(this.section);
  }

  disconnectedCallback() {
    this.gone = true;
  }

  set runs(runs) {
    if (!this.grid) return;
    const finished = (runs || []).filter((r) => FINISHED.has(r.status)).slice(0, MAX_RUNS);
    for (const run of finished) if (!this.loaded.has(run.id)) this.load(run);
  }

  async load(run) {
    this.loaded.set(run.id, null);
    let data;
    try {
      data = await getMetrics(run.id, { points: POINTS });
    } catch {
      this.loaded.delete(run.id); // asked again with the next refresh
      return;
    }
    if (this.gone) return;
    const series = data.series || {};
    if (!Object.keys(series).some((k) => KINDS.some(([prefix]) => k.startsWith(prefix)))) return;
    const maps = KINDS.map(([prefix, metric, title]) => el("layer-heatmap", {
      prefix, "chart-title": `run #${run.id}: ${title}`, "data-metric": metric, "data-run-id": String(run.id), height: "220" }));
    const row = el("div", { class: "chart-grid study-heatmap-row", dataset: { runId: String(run.id) } },
      el("h3", { class: "study-heatmap-label", text: `run #${run.id}${run.label ? ` · ${run.label}` : ""}` }), maps);
    this.loaded.set(run.id, row);
    // In run order, without moving the rows already there (a chart moved is a chart rebuilt).
    const next = [...this.grid.children].find((r) => Number(r.dataset.runId) > run.id) || null;
    this.grid.insertBefore(row, next);
    for (const map of maps) map.add(series);
    this.section.hidden = false;
    this.share();
  }

  /** One colour scale per kind: the widest range over every map of that kind. */
  share() {
    const parts = [];
    for (const [, metric, title] of KINDS) {
      const maps = [...this.grid.querySelectorAll(`layer-heatmap[data-metric="${metric}"]`)];
      const ranges = maps.map((m) => m.dataRange()).filter(Boolean);
      if (!ranges.length) continue;
      const range = [Math.min(...ranges.map((r) => r[0])), Math.max(...ranges.map((r) => r[1]))];
      for (const m of maps) m.setRange(range);
      this.dataset[metric === "act_std" ? "actRange" : "gradRange"] = range.join(",");
      parts.push(`${title} ${range[0].toFixed(1)} … ${range[1].toFixed(1)}`);
    }
    this.note.textContent = `Each kind shares one colour scale across the runs (log₁₀ std: ${parts.join("; ")}), so the same colour is the same spread.`;
  }
}

customElements.define("study-heatmaps", StudyHeatmaps);
