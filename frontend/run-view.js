// <run-view run-id="N">: one run, live. The header follows status and progress, the charts
// grow from the stream, and the final figures appear once the run is over.
import {
  cancelRun, deleteRun, getMetrics, getRun, metricsCsvUrl, setRunLr, streamRun,
} from "./api.js";
import "./metric-chart.js";
import {
  FINISHED, el, formatDuration, formatNumber, formatPercent, formatTime, runTitle, statusBadge,
  useStyle,
} from "./ui.js";

useStyle(import.meta.url, "run-view.css");

const HISTORY_POINTS = 2000;

function chart(attrs) {
  return el("metric-chart", attrs);
}

function describeSpec(spec) {
  if (!spec) return "";
  const parts = [];
  if (spec.data?.dataset) parts.push(spec.data.dataset);
  if (spec.model) {
    const hidden = Array.isArray(spec.model.hidden) ? ` [${spec.model.hidden.join(", ")}]` : "";
    parts.push(`${spec.model.arch || "mlp"}${hidden} ${spec.model.activation || ""}`.trim());
  }
  if (spec.optim) {
    const o = spec.optim;
    parts.push(`${o.method || "sgd"} η=${o.lr}${o.momentum !== undefined ? ` α=${o.momentum}` : ""} m=${o.batch_size}`);
  }
  if (spec.seed !== undefined) parts.push(`seed ${spec.seed}`);
  return parts.join(" · ");
}

class RunView extends HTMLElement {
  connectedCallback() {
    this.runId = this.getAttribute("run-id");
    this.titleEl = el("h1", { class: "run-title", text: `Run #${this.runId}` });
    this.badge = el("span");
    this.meta = el("p", { class: "run-meta muted" });
    this.progress = el("progress", { max: "1", value: "0", "aria-label": "Training progress" });
    this.progressText = el("span", { class: "progress-label", role: "status" });
    this.connection = el("span", { class: "connection muted", "aria-live": "polite" });
    this.notice = el("div", { class: "notice notice-error", role: "alert", hidden: true });
    this.figures = el("section", { class: "card figures", hidden: true, "aria-label": "Final figures" });
    this.cancelButton = el("button", { type: "button", class: "button-danger", hidden: true,
      text: "Cancel run", onclick: () => this.cancel() });
    this.lrInput = el("input", { type: "number", id: `lr-${this.runId}`, step: "any", inputmode: "decimal" });
    this.lrMessage = el("span", { class: "lr-message", role: "status" });
    this.lrForm = el("form", { class: "lr-form", hidden: true, novalidate: true,
      onsubmit: (event) => { event.preventDefault(); this.changeLr(); } },
      el("label", { for: `lr-${this.runId}`, text: "η from the next epoch" }),
      this.lrInput,
      el("button", { type: "submit", text: "Set η" }),
      this.lrMessage);
    this.deleteButton = el("button", { type: "button", class: "button-danger", hidden: true,
      text: "Delete", onclick: () => this.remove_() });
    this.charts = {
      loss: chart({ keys: "train_loss,val_loss", "chart-title": "Loss", "y-title": "loss", "data-metric": "loss" }),
      accuracy: chart({ keys: "train_accuracy,val_accuracy", "chart-title": "Accuracy", "y-title": "accuracy", "data-metric": "accuracy" }),
      lr: chart({ keys: "lr", "chart-title": "Learning rate η", "y-title": "η", height: "240", "data-metric": "lr" }),
      grad: chart({ prefix: "grad_std/", "chart-title": "Gradient std per layer", "y-title": "std", "y-log": true, height: "240", "data-metric": "grad_std" }),
      act: chart({ prefix: "act_std/", "chart-title": "Activation std per layer", "y-title": "std", "y-log": true, height: "240", "data-metric": "act_std" }),
    };

    this.replaceChildren(
      el("a", { class: "back", href: "#/", text: "← All runs" }),
      el("section", { class: "card run-head" },
        el("div", { class: "run-head-top" },
          el("div", { class: "run-head-title" }, this.titleEl, this.badge),
          el("div", { class: "run-actions" },
            el("a", { class: "button", href: metricsCsvUrl(this.runId), download: `run-${this.runId}-metrics.csv`, text: "Download metrics CSV" }),
            el("a", { class: "button", href: `#/launch?from=${encodeURIComponent(this.runId)}`, text: "Run again with changes" }),
            this.cancelButton, this.deleteButton)),
        this.meta,
        el("div", { class: "progress-row" }, this.progress, this.progressText, this.connection),
        this.lrForm),
      this.notice,
      this.figures,
      el("div", { class: "chart-grid" }, this.charts.loss, this.charts.accuracy),
      el("div", { class: "chart-grid chart-grid-3" }, this.charts.lr, this.charts.grad, this.charts.act),
    );
    this.start();
  }

  disconnectedCallback() {
    this.gone = true;
    this.stream?.close();
    clearInterval(this.clock);
  }

  async start() {
    try {
      this.show(await getRun(this.runId));
    } catch (err) {
      if (this.gone) return;
      const message = err.status === 404
        ? `There is no run #${this.runId}; it may have been deleted.`
        : `Could not load run #${this.runId}: ${err.message}`;
      this.replaceChildren(
        el("a", { class: "back", href: "#/", text: "← All runs" }),
        el("div", { class: "notice notice-error", role: "alert", text: message }));
      return;
    }
    if (this.gone) return;
    // History first, downsampled so a long run stays light; the stream goes on from its cursor.
    let after = 0;
    try {
      const history = await getMetrics(this.runId, { points: HISTORY_POINTS });
      if (this.gone) return;
      this.addPoints(history.series || {});
      after = history.cursor || 0;
    } catch {
      after = 0; // the stream alone replays everything
    }
    this.stream = streamRun(this.runId, {
      after,
      onPoints: (series) => this.addPoints(series),
      onRun: (run) => this.show(run),
      onEnd: (run) => {
        if (run) this.show(run);
        this.dataset.stream = "ended";
        this.connection.textContent = "";
        for (const c of Object.values(this.charts)) {
          if (!c.points && c.placeholder) c.placeholder.textContent = "Nothing recorded for this run.";
        }
      },
      onError: (err) => {
        this.connection.textContent = "";
        this.dataset.stream = "error";
        this.notice.replaceChildren(el("p", { text: `The live view stopped: ${err.message}` }));
        this.notice.hidden = false;
      },
      onState: (state) => {
        this.connection.textContent = state === "live" ? "● live" : "reconnecting…";
        this.connection.dataset.state = state;
        this.dataset.stream = state;
      },
    });
    // Keeps the elapsed time moving between messages.
    this.clock = setInterval(() => this.run && !FINISHED.has(this.run.status) && this.showMeta(), 1000);
  }

  addPoints(series) {
    for (const chart of Object.values(this.charts)) chart.add(series);
  }

  showMeta() {
    const run = this.run;
    const parts = [describeSpec(run.spec), `created ${formatTime(run.created_at)}`];
    if (run.started_at) parts.push(`${FINISHED.has(run.status) ? "took" : "running for"} ${formatDuration(run.started_at, run.finished_at)}`);
    this.meta.textContent = parts.filter(Boolean).join(" · ");
  }

  show(run) {
    if (!run || this.gone) return;
    this.run = run;
    this.dataset.status = run.status;
    this.titleEl.textContent = runTitle(run);
    document.title = `${runTitle(run)} · Époque`;
    this.badge.replaceChildren(statusBadge(run.status));
    this.showMeta();

    const epoch = run.progress?.epoch ?? 0;
    const max = run.progress?.max_epochs ?? run.spec?.training?.max_epochs ?? 0;
    this.progress.max = max || 1;
    this.progress.value = Math.min(epoch, max || 1);
    this.progressText.textContent = run.status === "queued"
      ? "waiting for a worker…"
      : `epoch ${epoch} / ${max}`;

    const finished = FINISHED.has(run.status);
    this.deleteButton.hidden = !finished;
    this.cancelButton.hidden = finished;
    this.lrForm.hidden = finished;
    if (!this.lrInput.value && run.spec?.optim?.lr !== undefined) this.lrInput.value = String(run.spec.optim.lr);

    if (run.error || run.status === "failed" || run.status === "diverged") {
      const headline = { failed: "The run failed.", diverged: "The loss diverged (NaN or infinite).", cancelled: "The run was cancelled." }[run.status] || "";
      this.notice.replaceChildren(
        ...[headline, run.error].filter(Boolean).map((text) => el("p", { text })));
      this.notice.hidden = false;
    }
    if (run.result) this.showFigures(run.result, run.status);
  }

  showFigures(result, status) {
    const rows = [
      ["test_accuracy", "Test accuracy", formatPercent(result.test_accuracy), result.test_accuracy],
      ["test_loss", "Test loss", formatNumber(result.test_loss), result.test_loss],
      ["best_epoch", "Best epoch", result.best_epoch ?? "—", result.best_epoch],
      ["epochs_run", "Epochs run", result.epochs_run ?? "—", result.epochs_run],
      ["distinct_units", "Distinct units per layer",
        Array.isArray(result.distinct_units) ? result.distinct_units.join(", ") || "—" : "—", null],
    ];
    if (result.test_accuracy_mc !== null && result.test_accuracy_mc !== undefined) {
      rows.push(["test_accuracy_mc", "Test accuracy, averaged masks", formatPercent(result.test_accuracy_mc), result.test_accuracy_mc]);
    }
    if (result.stopped_epoch !== null && result.stopped_epoch !== undefined && result.stopped_epoch !== result.epochs_run) {
      rows.push(["stopped_epoch", "Stopped at epoch", result.stopped_epoch, result.stopped_epoch]);
    }
    if (result.diverged_epoch !== null && result.diverged_epoch !== undefined) {
      rows.push(["diverged_epoch", "Diverged at epoch", result.diverged_epoch, result.diverged_epoch]);
    }
    const ens = result.ensemble;
    if (ens && typeof ens === "object") {
      rows.push(["ensemble_test_accuracy", "Ensemble test accuracy", formatPercent(ens.ensemble_test_accuracy), ens.ensemble_test_accuracy]);
      rows.push(["mean_member_accuracy", "Mean member accuracy", formatPercent(ens.mean_member_accuracy), ens.mean_member_accuracy]);
    }
    this.figures.replaceChildren(
      el("h2", { text: status === "succeeded" ? "Final figures" : "Figures of the returned model" }),
      el("p", { class: "muted figures-note", text: "Measured on the test set with the returned model z* (the best epoch when early stopping is on)." }),
      el("dl", {}, rows.map(([key, label, text, raw]) =>
        el("div", { class: "figure", dataset: { figure: key, ...(typeof raw === "number" ? { value: String(raw) } : {}) } },
          el("dt", { text: label }), el("dd", { text: String(text) })))));
    this.figures.hidden = false;
  }

  async cancel() {
    this.cancelButton.disabled = true;
    try {
      this.show(await cancelRun(this.runId));
      this.progressText.textContent += " · stopping after this epoch";
    } catch (err) {
      this.notice.replaceChildren(el("p", { text: `Could not cancel: ${err.message}` }));
      this.notice.hidden = false;
    } finally {
      this.cancelButton.disabled = false;
    }
  }

  async changeLr() {
    const lr = Number(this.lrInput.value);
    if (this.lrInput.value.trim() === "" || !Number.isFinite(lr)) {
      this.lrMessage.textContent = "Write a number.";
      return;
    }
    try {
      await setRunLr(this.runId, lr);
      this.lrMessage.textContent = `η = ${lr} from the next epoch (watch the η chart).`;
    } catch (err) {
      this.lrMessage.textContent = err.details?.[0]?.msg || err.message;
    }
  }

  async remove_() {
    if (!window.confirm(`Delete ${this.run ? runTitle(this.run) : `run #${this.runId}`} and its metrics?`)) return;
    try {
      await deleteRun(this.runId);
      location.hash = "#/";
    } catch (err) {
      this.notice.replaceChildren(el("p", { text: `Could not delete: ${err.message}` }));
      this.notice.hidden = false;
    }
  }
}

customElements.define("run-view", RunView);
