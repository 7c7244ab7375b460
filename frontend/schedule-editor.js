// <schedule-editor>: draws η over the epochs from the launch form's own fields, before
// anything runs, and edits a piecewise table row by row. The form calls update() on every
// change; the table rows write their JSON back into the form's optim.schedule.table field.
import { PlotElement, baseLayout } from "./plot-element.js";
import { scheduleCurve, stagesOf } from "./schedule.js";
import { el, useStyle } from "./ui.js";

useStyle(import.meta.url, "schedule-editor.css");

const SLIDE_TABLE = [[0, 0.1], [75, 0.01], [125, 0.001], [175, 0.0001]];
const STAGE_LIMIT = 12;

/** 0.0001 stays 0.0001 (as the slide writes it), 0.1/3 becomes 0.0333333. */
const showLr = (v) => (Number.isFinite(v) ? String(Number(v.toPrecision(6))) : "—");

class ScheduleEditor extends PlotElement {
  plotLabel() {
    return "Learning-rate schedule preview chart";
  }

  build(plot) {
    this.logBox = el("input", { type: "checkbox", id: "schedule-log", checked: true, onchange: () => this.update() });
    this.stages = el("ol", { class: "schedule-stages", "aria-label": "Stages of the schedule" });
    this.tableRows = el("tbody");
    this.tableEditor = el("div", { class: "schedule-table", hidden: true },
      el("table", { class: "data-table" },
        el("caption", { text: "Piecewise table: η from the epoch after each listed epoch" }),
        el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "after epoch" }), el("th", { scope: "col", text: "η" }), el("th", { scope: "col", text: "" }))),
        this.tableRows),
      el("div", { class: "inline-form" },
        el("button", { type: "button", text: "Add a row", onclick: () => this.addRow() }),
        el("button", { type: "button", text: "The slide's table", onclick: () => this.setTable(SLIDE_TABLE) })));
    this.replaceChildren(
      el("div", { class: "chart-head" },
        el("h3", { class: "chart-title", text: "Schedule preview: η over the epochs" }),
        el("label", { class: "schedule-log" }, this.logBox, "log scale")),
      el("div", { class: "schedule-body" },
        el("div", { class: "chart-body" }, plot),
        el("div", { class: "schedule-side" }, this.stages, this.tableEditor)));
  }

  resized() {
    this.update();
  }

  /** fields: Map of dotted path → the form's field objects ({read, write, input}). */
  bind(fields) {
    this.fields = fields;
    this.update();
  }

  value(path, fallback) {
    const field = this.fields?.get(path);
    if (!field) return fallback;
    try {
      const v = field.read();
      return v === undefined || v === null || typeof v === "symbol" ? fallback : v;
    } catch {
      return fallback;
    }
  }

  layout() {
    return {
      ...baseLayout(240, this.plot),
      margin: { l: 60, r: 12, t: 8, b: 40 },
      xaxis: { title: { text: "epoch" }, gridcolor: "#eef0f5", zeroline: false },
      yaxis: { title: { text: "η" }, type: this.logBox?.checked ? "log" : "linear", gridcolor: "#eef0f5",
        ...(this.logBox?.checked ? { dtick: 1 } : {}),
        exponentformat: "power", zeroline: false, automargin: true },
      showlegend: false,
    };
  }

  update() {
    if (!this.plot || !this.fields) return;
    const schedule = {
      kind: this.value("optim.schedule.kind", "constant"),
      milestones: this.value("optim.schedule.milestones", []),
      gamma: this.value("optim.schedule.gamma", 0.1),
      table: this.value("optim.schedule.table", []),
    };
    const lr = Number(this.value("optim.lr", 0.1));
    const maxEpochs = Math.max(1, Math.min(100000, Number(this.value("training.max_epochs", 50)) || 1));
    const table = Array.isArray(schedule.table) ? schedule.table.filter((r) => Array.isArray(r) && r.length === 2) : [];
    schedule.table = table;
    if (!Array.isArray(schedule.milestones)) schedule.milestones = [];
    this.tableEditor.hidden = schedule.kind !== "piecewise";
    if (schedule.kind === "piecewise" && document.activeElement?.closest?.(".schedule-table") == null) this.showRows(table);

    const { epochs, lrs } = scheduleCurve(schedule, lr, maxEpochs);
    const stages = stagesOf(epochs, lrs);
    this.dataset.kind = schedule.kind;
    this.stages.replaceChildren(...(stages.length <= STAGE_LIMIT
      ? stages.map((s) => el("li", { dataset: { from: String(s.from), to: String(s.to), lr: String(s.lr) },
        text: `epochs ${s.from}${s.to > s.from ? `–${s.to}` : ""}: η = ${showLr(s.lr)}` }))
      : [1, Math.ceil(maxEpochs / 2), maxEpochs].map((e) => el("li", { dataset: { from: String(e), to: String(e), lr: String(lrs[e - 1]) },
        text: `epoch ${e}: η = ${showLr(lrs[e - 1])}` }))));
    const trace = { x: epochs, y: lrs, type: "scatter", mode: maxEpochs <= 60 ? "lines+markers" : "lines",
      line: { color: "#7a4fc4", width: 2, shape: "hv" }, marker: { size: 4 }, meta: "schedule",
      hovertemplate: "epoch %{x}: η = %{y:.3g}<extra></extra>" };
    this.render([trace], this.layout());
  }

  showRows(table) {
    this.tableRows.replaceChildren(...table.map((row, i) => this.row(row, i)));
  }

  row([epoch, lr], i) {
    const e = el("input", { type: "number", min: "0", step: "1", value: String(epoch), "aria-label": `row ${i + 1}: after epoch`,
      oninput: () => this.writeBack() });
    const v = el("input", { type: "number", min: "0", step: "any", value: String(lr), "aria-label": `row ${i + 1}: η`,
      oninput: () => this.writeBack() });
    return el("tr", {}, el("td", {}, e), el("td", {}, v),
      el("td", {}, el("button", { type: "button", class: "icon-button", "aria-label": `Remove row ${i + 1}`, text: "✕",
        onclick: (event) => { event.currentTarget.closest("tr").remove(); this.writeBack(); } })));
  }

  addRow() {
    const rows = this.readRows();
    const last = rows[rows.length - 1];
    rows.push(last ? [last[0] + 25, last[1] / 10] : [0, Number(this.value("optim.lr", 0.1))]);
    this.setTable(rows);
  }

  readRows() {
    return [...this.tableRows.querySelectorAll("tr")].map((tr) => {
      const [e, v] = tr.querySelectorAll("input");
      return [Number(e.value), Number(v.value)];
    });
  }

  setTable(rows) {
    this.showRows(rows);
    this.writeBack();
  }

  /** The rows become the form's table field, and the form hears an input event. */
  writeBack() {
    const field = this.fields?.get("optim.schedule.table");
    if (!field) return;
    field.write(this.readRows());
    field.input.dispatchEvent(new Event("input", { bubbles: true }));
  }
}

customElements.define("schedule-editor", ScheduleEditor);
