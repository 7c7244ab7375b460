// <run-view run-id="N">: one run, live. The orchestrator: it holds the header (status,
// progress, actions, η by hand), loads the run and its history, follows the stream, and hands
// what it learns to its parts by property or method: <run-banner> (how the run ends, in
// words), <run-what-if> (the patience slider, answering with "what-if" events), <run-figures>
// (the final figures) and <run-charts> (every chart; z* and the stop marked on them).
import {
  cancelRun, deleteRun, getMetrics, getRun, listDatasets, metricsCsvUrl, modelUrl, setRunLr, streamRun,
} from "./api.js";
import "./run-charts.js";
import "./run-figures.js";
import "./run-what-if.js";
import "./fork-form.js";
import { bestOf, ending, whatIfMarks } from "./run-banner.js";
import {
  FINISHED, el, formatDuration, formatTime, runTitle, statusBadge, useStyle,
} from "./ui.js";

useStyle(import.meta.url, "run-view.css");

const HISTORY_POINTS = 2000;
const FIRST_KEYS = ["train_loss", "val_loss", "train_accuracy", "val_accuracy"];

// name → kind ("2d", "image", "signal") as /api/datasets serves it from the engine's catalog;
// asked for once per page, and again after a failure.
let kindsPromise = null;
function datasetKinds() {
  kindsPromise ??= listDatasets()
    .then((list) => new Map(list.map((d) => [d.name, d.kind])))
    .catch(() => { kindsPromise = null; return new Map(); });
  return kindsPromise;
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
    this.valPoints = { val_accuracy: [], val_loss: [] };
    this.seconds = [];
    this.xMode = "epoch";
    this.titleEl = el("h1", { class: "run-title", text: `Run #${this.runId}` });
    this.badge = el("span");
    this.meta = el("p", { class: "run-meta muted" });
    this.studyLink = el("a", { class: "button", hidden: true, text: "Its study" });
    this.progress = el("progress", { max: "1", value: "0", "aria-label": "Training progress" });
    this.progressText = el("span", { class: "progress-label", role: "status" });
    this.connection = el("span", { class: "connection muted", "aria-live": "polite" });
    this.notice = el("div", { class: "notice notice-error", role: "alert", hidden: true });
    this.banner = el("run-banner");
    this.whatIf = el("run-what-if", { "run-id": this.runId });
    this.whatIf.addEventListener("what-if", (event) => {
      this.whatIfChoice = event.detail;
      this.dataset.whatIfPatience = String(event.detail.patience);
      this.showMarks();
    });
    this.figures = el("run-figures");
    this.cancelButton = el("button", { type: "button", class: "button-danger", hidden: true,
      text: "Cancel run", onclick: () => this.cancel() });
    this.modelLink = el("a", { class: "button", href: modelUrl(this.runId), download: `run-${this.runId}-model.pt`,
      hidden: true, text: "Download model" });
    const lrId = `lr-${this.runId}`;
    this.lrInput = el("input", { type: "number", id: lrId, step: "any", inputmode: "decimal", min: "0",
      oninput: () => this.syncSlider() });
    this.lrSlider = el("input", { type: "range", min: "-5", max: "1", step: "0.01", value: "-1",
      "aria-label": "η on a log scale, from 0.00001 to 10", oninput: () => this.syncNumber() });
    this.lrMessage = el("span", { class: "lr-message", role: "status" });
    this.lrForm = el("form", { class: "lr-form", hidden: true, novalidate: true,
      onsubmit: (event) => { event.preventDefault(); this.changeLr(); } },
      el("label", { for: lrId, text: "η from the next epoch" }),
      this.lrSlider, this.lrInput,
      el("button", { type: "submit", text: "Set η" }),
      this.lrMessage);
    // A packed run shares one η with the other seeds of its study (one stacked network).
    this.packNote = el("p", { class: "muted pack-note", hidden: true });
    this.deleteButton = el("button", { type: "button", class: "button-danger", hidden: true,
      text: "Delete", onclick: () => this.remove_() });
    const xName = `x-axis-${this.runId}`;
    this.xRadios = ["epoch", "time"].map((mode) => el("input", { type: "radio", name: xName, value: mode,
      id: `${xName}-${mode}`, checked: mode === "epoch", onchange: () => this.setXMode(mode) }));
    const viewControls = el("fieldset", { class: "view-controls" },
      el("legend", { text: "x-axis" }),
      el("label", { for: `${xName}-epoch` }, this.xRadios[0], "epoch"),
      el("label", { for: `${xName}-time` }, this.xRadios[1], "time (s, Σ epoch_seconds)"));

    this.charts = el("run-charts", { "run-id": this.runId });
    // Click a point of the loss or accuracy curve: fork from that epoch (fork-form.js).
    this.forks = el("fork-form");
    this.addEventListener("chart-click", (e) => this.forks.charts?.includes(e.target) && this.forks.open(e.detail.epoch));

    this.replaceChildren(
      el("a", { class: "back", href: "#/", text: "← All runs" }),
      el("section", { class: "card run-head" },
        el("div", { class: "run-head-top" },
          el("div", { class: "run-head-title" }, this.titleEl, this.badge),
          el("div", { class: "run-actions" },
            el("a", { class: "button", href: metricsCsvUrl(this.runId), download: `run-${this.runId}-metrics.csv`, text: "Download metrics CSV" }),
            this.modelLink,
            el("a", { class: "button", href: `#/launch?from=${encodeURIComponent(this.runId)}`, text: "Run again with changes" }),
            el("a", { class: "button", href: `#/compare?runs=${encodeURIComponent(this.runId)}`, text: "Compare…" }),
            this.studyLink, this.cancelButton, this.deleteButton)),
        this.meta,
        el("div", { class: "progress-row" }, this.progress, this.progressText, this.connection),
        this.lrForm,
        this.packNote,
        viewControls),
      this.notice,
      this.banner,
      this.whatIf,
      this.forks,
      this.figures,
      this.charts,
    );
    this.forks.charts = [this.charts.charts.loss, this.charts.charts.accuracy]; // built on connect
    this.start();
  }

  disconnectedCallback() {
    this.gone = true;
    this.stream?.close();
    clearInterval(this.clock);
  }

  async start() {
    // The run and the first curves are asked for together: the first paint waits for one
    // round trip, not two.
    const firstHistory = getMetrics(this.runId, { keys: FIRST_KEYS, points: HISTORY_POINTS });
    firstHistory.catch(() => {});
    const kinds = datasetKinds(); // asked for now, needed once the history is drawn
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
    // History first, downsampled so a long run stays light: the loss and accuracy curves in
    // one small request (the first paint), then every series. The stream starts from the
    // smaller cursor; points it repeats are dropped by x, so none is missed or drawn twice.
    let after = 0;
    try {
      const first = await firstHistory;
      if (this.gone) return;
      this.addPoints(first.series || {});
      const rest = await getMetrics(this.runId, { points: HISTORY_POINTS });
      if (this.gone) return;
      this.addPoints(rest.series || {});
      after = Math.min(first.cursor || 0, rest.cursor || 0);
    } catch {
      after = 0; // the stream alone replays everything
    }
    // The decision boundary of a 2-D dataset, placed before the stream starts: the stream
    // announces its grids (the newest first) and they must find the plot there.
    const byName = await kinds;
    if (this.gone) return;
    const dataset = this.run.spec?.data?.dataset;
    if (this.run.kind === "lr_range") this.charts.showLrRange();
    if (byName.get(dataset) === "2d" && this.run.spec?.diagnostics?.boundary !== "off") this.charts.showBoundary();
    this.stream = streamRun(this.runId, {
      after,
      onPoints: (series) => this.addPoints(series),
      onRun: (run) => this.show(run),
      onBoundary: (epoch) => this.charts.boundaryNewer(epoch),
      onEnd: (run) => {
        if (run) this.show(run);
        this.charts.ended();
        this.dataset.stream = "ended";
        this.connection.textContent = "";
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
    this.charts.add(series);
    let valChanged = false;
    for (const key of ["val_accuracy", "val_loss"]) {
      if (Array.isArray(series[key])) {
        this.valPoints[key].push(...series[key]);
        valChanged = true;
      }
    }
    if (Array.isArray(series.epoch_seconds)) {
      this.seconds.push(...series.epoch_seconds);
      if (this.xMode === "time") this.applyXMode();
    }
    if (valChanged) this.showMarks();
  }

  /** Epoch → seconds since the start: Σ epoch_seconds, interpolated across downsampled gaps. */
  timeMap() {
    const pts = [...new Map(this.seconds.map((p) => [p[0], p[1]])).entries()].sort((a, b) => a[0] - b[0]);
    if (!pts.length) return null;
    const xs = [];
    const cum = [];
    let total = 0;
    let prev = 0;
    for (const [x, v] of pts) {
      total += (x - prev) * (Number(v) || 0);
      prev = x;
      xs.push(x);
      cum.push(total);
    }
    const lastRate = Number(pts[pts.length - 1][1]) || 0;
    return (e) => {
      if (e <= xs[0]) return (cum[0] * e) / xs[0];
      if (e >= xs[xs.length - 1]) return cum[cum.length - 1] + (e - xs[xs.length - 1]) * lastRate;
      let lo = 0;
      let hi = xs.length - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (xs[mid] <= e) lo = mid; else hi = mid;
      }
      return cum[lo] + ((cum[hi] - cum[lo]) * (e - xs[lo])) / (xs[hi] - xs[lo]);
    };
  }

  setXMode(mode) {
    this.xMode = mode;
    this.dataset.xAxis = mode;
    this.applyXMode();
  }

  applyXMode() {
    const fn = this.xMode === "time" ? this.timeMap() : null;
    const title = fn ? "time (s)" : "epoch";
    this.charts.setXMap(fn, title);
  }

  /** Best epoch, patience window and stop on the loss and accuracy charts; the banner. */
  showMarks() {
    const run = this.run;
    if (!run) return;
    const monitor = run.spec?.training?.early_stopping?.monitor || "val_accuracy";
    const liveBest = bestOf(this.valPoints[monitor] || [], monitor === "val_accuracy");
    const info = ending(run, liveBest);
    // The what-if slider's p moves the marks to what early stopping with it would have done.
    const marks = this.whatIfChoice ? whatIfMarks(this.whatIfChoice) : info.marks;
    this.charts.setMarks(marks);
    this.dataset.bestEpoch = marks.best !== null && marks.best !== undefined ? String(marks.best) : "";
    this.dataset.ending = info.kind;
    this.banner.info = info;
  }

  showMeta() {
    const run = this.run;
    const parts = [describeSpec(run.spec), `created ${formatTime(run.created_at)}`];
    if (run.started_at) parts.push(`${FINISHED.has(run.status) ? "took" : "running for"} ${formatDuration(run.started_at, run.finished_at)}`);
    this.meta.textContent = parts.filter(Boolean).join(" · ");
  }

  show(run) {
    if (!run || this.gone) return;
    // An answer to an earlier request (e.g. Cancel's) can arrive after the stream's final
    // message: a finished run never goes back to running.
    if (this.run && FINISHED.has(this.run.status) && !FINISHED.has(run.status)) return;
    this.run = run;
    // The server says whether this viewer may steer the run (a class's student: her own runs
    // only); the stream's messages, shared by every viewer, leave it out: keep the last word.
    if (typeof run.can_control === "boolean") this.canControl = run.can_control;
    this.dataset.control = this.canControl === false ? "no" : "yes";
    this.forks.readOnly = this.canControl === false;
    this.forks.run = run;
    this.dataset.status = run.status;
    if (FINISHED.has(run.status) && run.result) this.whatIf.run = run;
    this.titleEl.textContent = runTitle(run);
    document.title = `${runTitle(run)} · Époque`;
    this.badge.replaceChildren(statusBadge(run.status));
    this.showMeta();
    if (run.study_id !== null && run.study_id !== undefined) {
      this.studyLink.href = `#/studies/${encodeURIComponent(run.study_id)}`;
      this.studyLink.hidden = false;
    }

    const epoch = run.progress?.epoch ?? 0;
    const max = run.progress?.max_epochs ?? run.spec?.training?.max_epochs ?? 0;
    this.progress.max = max || 1;
    this.progress.value = Math.min(epoch, max || 1);
    const early = FINISHED.has(run.status) && epoch < max
      ? { succeeded: " · stopped early", cancelled: " · cancelled", diverged: " · diverged", failed: " · failed" }[run.status] || ""
      : "";
    this.progressText.textContent = run.status === "queued"
      ? (run.waiting ? `queued: ${run.waiting}` : "waiting for a worker…")
      : `epoch ${epoch} / ${max}${early}`;

    const finished = FINISHED.has(run.status);
    const control = this.canControl !== false;
    this.deleteButton.hidden = !finished || !control;
    this.cancelButton.hidden = finished || !control;
    const packRuns = run.result?.pack?.run_ids;
    const declined = run.result?.pack?.declined;
    this.lrForm.hidden = finished || run.pack != null || !control;
    this.packNote.hidden = !declined && (run.pack == null || (finished && !packRuns));
    this.packNote.textContent = packRuns
      ? `Trained together with runs ${packRuns.join(", ")} (seeds of one study) as one stacked network.`
      : declined
        ? `Trained on its own, not stacked with the other seeds of its study: ${declined}.`
        : "Trains together with the other seeds of its study as one stacked network: they share one η, so η cannot be set by hand here.";
    this.modelLink.hidden = !(finished && run.result && run.status !== "failed");
    if (!this.lrInput.value && run.spec?.optim?.lr !== undefined) {
      this.lrInput.value = String(run.spec.optim.lr);
      this.syncSlider();
    }

    if (run.error || run.status === "failed" || run.status === "diverged") {
      const headline = { failed: "The run failed.", diverged: "The loss diverged (NaN or infinite).", cancelled: "The run was cancelled." }[run.status] || "";
      this.notice.replaceChildren(
        ...[headline, run.error].filter(Boolean).map((text) => el("p", { text })));
      this.notice.hidden = false;
    }
    if (run.result) this.figures.run = run;
    this.showMarks();
  }

  syncSlider() {
    const v = Number(this.lrInput.value);
    if (v > 0) this.lrSlider.value = String(Math.log10(v));
  }

  syncNumber() {
    this.lrInput.value = String(Number((10 ** Number(this.lrSlider.value)).toPrecision(3)));
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
      this.lrMessage.textContent = `η = ${lr} from the next epoch (marked ◆ on the η chart).`;
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
