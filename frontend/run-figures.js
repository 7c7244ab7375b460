// <run-figures>: the final figures of a finished run (its result), given by property:
// element.run = run. The returned model's test figures, which model that is (z* or the last
// epoch's), and the tables a lesson needs: layers and init (lesson 5), dropout A against B
// (lesson 8), the ensemble against its members (lesson 10).
import { guideLink } from "./run-banner.js";
import { el, formatNumber, formatPercent, useStyle } from "./ui.js";

useStyle(import.meta.url, "run-view.css");

const has = (v) => v !== null && v !== undefined;

/** A table of figures under a caption (text or nodes). */
function table(caption, head, rows, attrs = {}) {
  return el("table", { class: "data-table figure-table", ...attrs },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, head.map(([text, cls]) => el("th", { scope: "col", class: cls, text })))),
    el("tbody", {}, rows));
}

class RunFigures extends HTMLElement {
  connectedCallback() {
    if (this.section) return;
    this.section = el("section", { class: "card figures", hidden: true, "aria-label": "Final figures" });
    this.replaceChildren(this.section);
    if (this.shownRun) this.run = this.shownRun;
  }

  get run() {
    return this.shownRun;
  }

  set run(run) {
    this.shownRun = run;
    if (!this.section) return;
    if (!run?.result) {
      this.section.hidden = true;
      return;
    }
    const { result, status, spec } = run;
    const rows = [
      ["test_accuracy", "Test accuracy", formatPercent(result.test_accuracy), result.test_accuracy],
      ["test_loss", "Test loss", formatNumber(result.test_loss), result.test_loss],
      ["best_epoch", "Best epoch", result.best_epoch ?? "—", result.best_epoch],
      ["epochs_run", "Epochs run", result.epochs_run ?? "—", result.epochs_run],
      ["distinct_units", "Distinct units per layer",
        Array.isArray(result.distinct_units) ? result.distinct_units.join(", ") || "—" : "—", null],
    ];
    // Which model the figures are of (training.keep): z* or the last epoch's z, and the other
    // one's test figures beside it, so a student sees what early stopping (or not) returned.
    const kept = result.kept === "last" ? result.final : result.best;
    if (kept && has(kept.epoch)) {
      rows.push(["kept", "Returned model", `${result.kept === "last" ? "last epoch" : "best epoch (z*)"}: ${kept.epoch}`, kept.epoch]);
      const other = result.kept === "last" ? ["best", "Best epoch's model (z*)", result.best] : ["final", "Last epoch's model", result.final];
      if (other[2] && has(other[2].epoch) && other[2].epoch !== kept.epoch) {
        rows.push([other[0], other[1], `epoch ${other[2].epoch}: ${formatPercent(other[2].test_accuracy)} test accuracy`, other[2].test_accuracy]);
      }
    }
    if (has(result.stopped_epoch) && result.stopped_epoch !== result.epochs_run) {
      rows.push(["stopped_epoch", "Stopped at epoch", result.stopped_epoch, result.stopped_epoch]);
    }
    if (has(result.diverged_epoch)) {
      rows.push(["diverged_epoch", "Diverged at epoch", result.diverged_epoch, result.diverged_epoch]);
    }
    const ens = result.ensemble;
    if (ens && typeof ens === "object") {
      rows.push(["ensemble_test_accuracy", "Ensemble test accuracy", formatPercent(ens.ensemble_test_accuracy), ens.ensemble_test_accuracy]);
      rows.push(["mean_member_accuracy", "Mean member accuracy", formatPercent(ens.mean_member_accuracy), ens.mean_member_accuracy]);
    }
    const tables = [this.layerTable(result, spec), this.dropoutTable(result, spec), this.ensembleTable(result, spec)]
      .filter(Boolean);
    this.section.replaceChildren(
      el("h2", { text: status === "succeeded" ? "Final figures" : "Figures of the returned model" }),
      el("p", { class: "muted figures-note", text: result.kept === "last"
        ? "Measured on the test set with the returned model: the last epoch's weights (training.keep)."
        : "Measured on the test set with the returned model z* (the best epoch on the validation set)." }),
      el("dl", {}, rows.map(([key, label, text, raw]) =>
        el("div", { class: "figure", dataset: { figure: key, ...(typeof raw === "number" ? { value: String(raw) } : {}) } },
          el("dt", { text: label }), el("dd", { text: String(text) })))),
      tables.length ? el("div", { class: "figure-tables" }, tables) : null);
    this.section.hidden = false;
  }

  /** Each layer: its width, how many of its units are distinct, the init bound really used. */
  layerTable(result, spec) {
    const init = result.init && typeof result.init === "object" ? result.init : null;
    const distinct = Array.isArray(result.distinct_units) ? result.distinct_units : [];
    if (!init && !distinct.length) return null;
    const names = init ? Object.keys(init) : distinct.map((_, i) => `layer ${i + 1}`);
    const hidden = Array.isArray(spec?.model?.hidden) ? spec.model.hidden : [];
    const rows = names.map((name, i) => {
      const info = init?.[name] || {};
      const spread = has(info.bound) ? `U[±${formatNumber(info.bound)}]`
        : has(info.std) ? `N(0, ${formatNumber(info.std)}²)` : has(info.value) ? `= ${info.value}` : "—";
      const d = i < distinct.length ? distinct[i] : null;
      return el("tr", { dataset: { layer: name } },
        el("td", { class: "mono", text: name }),
        el("td", { class: "num", text: i < hidden.length ? String(hidden[i]) : "—" }),
        el("td", { class: "num", dataset: { cell: "distinct" }, text: has(d) ? String(d) : "—" }),
        el("td", { text: info.scheme || "—" }),
        el("td", { class: "mono", text: spread }));
    });
    return table(["Layers: distinct units and the initialisation actually used (", guideLink(5), ")"],
      [["layer"], ["units", "num"], ["distinct units", "num"], ["init scheme"], ["drawn from"]], rows,
      { "data-table": "layers" });
  }

  dropoutTable(result, spec) {
    const d = result.dropout;
    if (!d || typeof d !== "object") return null;
    const used = d.inference || spec?.model?.dropout?.inference;
    const row = (key, label, value, isUsed) => el("tr", { dataset: { row: key }, class: isUsed ? "row-strong" : null },
      el("td", { text: label }), el("td", { class: "num", text: formatPercent(value) }),
      el("td", { class: "muted", text: isUsed ? "reported as test accuracy" : "" }));
    // A against the number of masks: one mask is a thinned network, many approach B.
    const curve = Array.isArray(d.mc_curve) ? d.mc_curve.filter(([k]) => k !== d.mc_samples) : [];
    return table(["Dropout at inference: strategy A against strategy B (", guideLink(8), ")"],
      [["strategy"], ["test accuracy", "num"], [""]], [
        ...curve.map(([k, acc]) => row(`A-${k}`, `A with ${k} mask${k === 1 ? "" : "s"}`, acc, false)),
        row("A", `A: average the predictions of ${d.mc_samples ?? "K"} dropout masks`, d.mc, used === "mc"),
        row("B", "B: keep every unit, outgoing weights × p_inc", d.scale, used === "scale"),
      ], { "data-table": "dropout" });
  }

  ensembleTable(result, spec) {
    const ens = result.ensemble;
    if (!ens || !Array.isArray(ens.member_test_accuracy)) return null;
    const seed = spec?.seed ?? 0;
    const error = (a) => (has(a) ? formatPercent(1 - a) : "—");
    const row = (key, label, acc, strong = false) => el("tr", { dataset: { row: key }, class: strong ? "row-strong" : null },
      el("td", { text: label }), el("td", { class: "num", text: formatPercent(acc) }), el("td", { class: "num", text: error(acc) }));
    const rows = ens.member_test_accuracy.map((acc, i) => row(`member-${i + 1}`, `member ${i + 1} (seed ${seed + i})`, acc));
    rows.push(row("mean", "mean of the members", ens.mean_member_accuracy));
    if (has(ens.mean_test_accuracy)) rows.push(row("by-mean", "ensemble: average of probabilities", ens.mean_test_accuracy, ens.combine === "mean"));
    if (has(ens.vote_test_accuracy)) rows.push(row("by-vote", "ensemble: majority vote", ens.vote_test_accuracy, ens.combine === "vote"));
    const gain = ens.gain;
    rows.push(el("tr", { dataset: { row: "gain" }, class: "row-strong" },
      el("td", { text: `gain of the ensemble (${ens.combine || "mean"}) over the mean member` }),
      el("td", { class: "num", text: has(gain) ? `${gain >= 0 ? "+" : ""}${(gain * 100).toFixed(2)} points` : "—" }),
      el("td", { class: "num", text: has(gain) ? `${gain >= 0 ? "−" : "+"}${Math.abs(gain * 100).toFixed(2)} points` : "—" })));
    return table([`Ensemble of ${ens.member_test_accuracy.length} networks, like the slide's table (`, guideLink(10), ")"],
      [["model"], ["test accuracy", "num"], ["test error", "num"]], rows, { "data-table": "ensemble" });
  }

}

customElements.define("run-figures", RunFigures);
