// <run-view run-id="N">: one run, live. The header follows status and progress, the charts
// grow from the stream (the best epoch, the patience window and the stop marked on them), and
// the final figures appear once the run is over.
import {
  cancelRun, deleteRun, getEarlyStopping, getMetrics, getRun, listDatasets, metricsCsvUrl,
  modelUrl, setRunLr, streamRun,
} from "./api.js";
import "./metric-chart.js";
import "./layer-heatmap.js";
import "./health-panel.js";
import "./grad-noise.js";
import "./boundary-plot.js";
import "./confusion-view.js";
import "./lr-range.js";
import "./loss-landscape.js";
import "./fork-form.js";
import {
  FINISHED, el, formatDuration, formatNumber, formatPercent, formatTime, runTitle, statusBadge,
  useStyle,
} from "./ui.js";

useStyle(import.meta.url, "run-view.css");

const HISTORY_POINTS = 2000;
const FIRST_KEYS = ["train_loss", "val_loss", "train_accuracy", "val_accuracy"];
const MAX_WHAT_IFS = 100; // patiences asked for at once (the server's limit)

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

const has = (v) => v !== null && v !== undefined;

/** The epoch of z* from a validation series, as the engine's rule: strictly better only. */
function bestOf(points, higherIsBetter) {
  let best = null;
  let value = higherIsBetter ? -Infinity : Infinity;
  for (const [x, v] of points) {
    if (v === null || Number.isNaN(v)) continue;
    if (higherIsBetter ? v > value : v < value) {
      value = v;
      best = x;
    }
  }
  return best;
}

/** A caption for a group of figures, e.g. a table. */
function table(caption, head, rows, attrs = {}) {
  return el("table", { class: "data-table figure-table", ...attrs },
    el("caption", { text: caption }),
    el("thead", {}, el("tr", {}, head.map(([text, cls]) => el("th", { scope: "col", class: cls, text })))),
    el("tbody", {}, rows));
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
    this.stopping = el("p", { class: "notice notice-info stopping-note", hidden: true });
    this.figures = el("section", { class: "card figures", hidden: true, "aria-label": "Final figures" });
    // After the run: a slider over the patience p moves the z* and stop marks to what early
    // stopping with that p would have done, read off the stored curves (no new run).
    this.whatIfSlider = el("input", { type: "range", min: "1", max: "1", step: "1", value: "1",
      id: `what-if-${this.runId}`, class: "what-if-slider", oninput: () => this.chooseWhatIf() });
    this.whatIfText = el("output", { class: "what-if-text", for: this.whatIfSlider.id });
    this.whatIf = el("section", { class: "card what-if", hidden: true, "aria-label": "Early-stopping what-if" },
      el("label", { for: this.whatIfSlider.id, text: "What if the patience p had been…" }),
      this.whatIfSlider, this.whatIfText);
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

    const chart = (attrs) => el("metric-chart", attrs);
    this.charts = {
      loss: chart({ keys: "train_loss,val_loss", "chart-title": "Loss", "y-title": "loss", "data-metric": "loss", smoothing: true }),
      accuracy: chart({ keys: "train_accuracy,val_accuracy", "chart-title": "Accuracy", "y-title": "accuracy", "data-metric": "accuracy", smoothing: true }),
      lr: chart({ keys: "lr", "event-key": "events/lr", "chart-title": "Learning rate η", "y-title": "η", height: "260", "data-metric": "lr" }),
      weight: chart({ keys: "weight_norm", "chart-title": "Weight norm ‖w‖", "y-title": "‖w‖", height: "260", "data-metric": "weight_norm" }),
      speed: chart({ keys: "examples_per_second", "chart-title": "Throughput", "y-title": "examples / s", height: "260", "data-metric": "examples_per_second" }),
    };
    this.stepChart = chart({ keys: "step_loss", "chart-title": "Minibatch loss per step", "y-title": "loss",
      "x-title": "step", height: "260", "data-metric": "step_loss", smoothing: true });
    this.heatmaps = {
      act: el("layer-heatmap", { prefix: "act_std/", "chart-title": "Activation spread per layer (std)", "data-metric": "act_std",
        note: "One row per layer, first layer on top: a good initialisation keeps the colour similar down each column." }),
      grad: el("layer-heatmap", { prefix: "grad_std/", "chart-title": "Gradient spread per layer (std)", "data-metric": "grad_std",
        note: "Vanishing gradients darken the first layers; exploding ones brighten them." }),
    };
    this.forks = Object.assign(el("fork-form"), { charts: [this.charts.loss, this.charts.accuracy] });
    this.addEventListener("chart-click", (e) => this.forks.charts.includes(e.target) && this.forks.open(e.detail.epoch));
    this.gradNoise = el("grad-noise", { hidden: true });
    this.health = el("health-panel", { "run-id": this.runId }); // hidden until health figures come
    this.confusion = el("confusion-view", { "run-id": this.runId }); // hidden until a matrix exists
    this.stepRow = el("div", { class: "chart-grid chart-grid-1", hidden: true }, this.stepChart);
    this.extraRow = el("div", { class: "chart-grid", hidden: true }, this.gradNoise);

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
      this.stopping,
      this.whatIf,
      this.forks,
      this.figures,
      el("div", { class: "chart-grid" }, this.charts.loss, this.charts.accuracy),
      el("div", { class: "chart-grid chart-grid-3" }, this.charts.lr, this.charts.weight, this.charts.speed),
      el("div", { class: "chart-grid" }, this.heatmaps.act, this.heatmaps.grad),
      el("div", { class: "chart-grid chart-grid-1" }, this.health),
      el("div", { class: "chart-grid chart-grid-1" }, this.confusion, el("loss-landscape", { "run-id": this.runId })),
      this.stepRow,
      this.extraRow,
    );
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
    if (this.run.kind === "lr_range") this.extraRow.hidden = !this.extraRow.appendChild(el("lr-range-finder", { "run-id": this.runId }));
    if (byName.get(dataset) === "2d" && this.run.spec?.diagnostics?.boundary !== "off") {
      this.boundary = el("boundary-plot", { "run-id": this.runId });
      this.extraRow.append(this.boundary);
      this.extraRow.hidden = false;
    }
    this.stream = streamRun(this.runId, {
      after,
      onPoints: (series) => this.addPoints(series),
      onRun: (run) => this.show(run),
      onBoundary: (epoch) => this.boundary?.newer(epoch),
      onEnd: (run) => {
        if (run) this.show(run);
        this.boundary?.newer(-1);
        if (!this.health.hidden) this.health.refresh(true); // the last epoch's diagnoses
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
    for (const c of Object.values(this.charts)) c.add(series);
    for (const h of Object.values(this.heatmaps)) h.add(series);
    this.health.add(series);
    this.confusion.add(series);
    if (series.step_loss) {
      this.stepChart.add(series);
      this.stepRow.hidden = false;
    }
    this.gradNoise.add(series);
    if (this.gradNoise.hasData && this.gradNoise.hidden) {
      this.gradNoise.hidden = false;
      this.extraRow.hidden = false;
    }
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
    for (const c of [...Object.values(this.charts), ...Object.values(this.heatmaps)]) c.setXMap(fn, title);
  }

  /** Best epoch, patience window and stop on the loss and accuracy charts. */
  showMarks() {
    const run = this.run;
    if (!run) return;
    const es = run.spec?.training?.early_stopping || {};
    const p = es.patience;
    const monitor = es.monitor || "val_accuracy";
    const result = run.result || null;
    const finished = FINISHED.has(run.status) && result;
    const best = finished && has(result.best_epoch) ? result.best_epoch
      : bestOf(this.valPoints[monitor] || [], monitor === "val_accuracy");
    const marks = {};
    const chosen = this.whatIfChoice;
    if (chosen) {
      // The what-if slider's p: its z*, the epochs it would have waited, where it would stop.
      if (chosen.best_epoch > 0) {
        marks.best = chosen.best_epoch;
        marks.bestLabel = `z* with p = ${chosen.patience}: ${chosen.best_epoch}`;
      }
      if (chosen.stopped_epoch > chosen.best_epoch) marks.window = [chosen.best_epoch, chosen.stopped_epoch];
      marks.stop = chosen.stopped_epoch;
      marks.stopLabel = `would stop ${chosen.stopped_epoch}`;
      this.charts.loss.setMarks(marks);
      this.charts.accuracy.setMarks(marks);
      this.dataset.bestEpoch = has(marks.best) ? String(marks.best) : "";
      return;
    }
    if (has(best) && best > 0) {
      marks.best = best;
      marks.bestLabel = `best ${best} (z*)`;
    }
    if (has(p)) {
      const stop = finished ? result.stopped_epoch ?? result.epochs_run : null;
      const end = has(stop) ? stop : (has(best) ? best : 0) + p - 1;
      if (has(best) && end > best) {
        marks.window = [best, end];
        marks.windowLabel = `p − 1 = ${p - 1}`;
      }
      if (has(stop)) {
        marks.stop = stop;
        marks.stopLabel = `stopped ${stop}`;
      }
    } else if (finished && run.status === "cancelled" && has(result.stopped_epoch)) {
      marks.stop = result.stopped_epoch;
      marks.stopLabel = `cancelled ${result.stopped_epoch}`;
    }
    if (finished && has(result.diverged_epoch)) {
      marks.stop = result.diverged_epoch;
      marks.stopLabel = `diverged ${result.diverged_epoch}`;
    }
    this.charts.loss.setMarks(marks);
    this.charts.accuracy.setMarks(marks);
    this.dataset.bestEpoch = has(marks.best) ? String(marks.best) : "";
    this.showStoppingNote(p, monitor, marks.best, finished ? result : null);
  }

  /** Once the run has ended: ask what each p from 1 to its length would have returned. */
  async loadWhatIf(run) {
    this.whatIfAsked = true;
    const epochs = Math.min(run.result?.epochs_run ?? 0, MAX_WHAT_IFS);
    // An ensemble whose members each keep their own z* has no one curve to replay (409).
    const ens = run.spec?.ensemble || {};
    if (epochs < 1 || ((ens.members ?? 1) > 1 && ens.select !== "joint")) return;
    let answers;
    try {
      answers = await getEarlyStopping(this.runId, Array.from({ length: epochs }, (_, i) => i + 1));
    } catch {
      return; // a run without held-out curves (older, or per-member ensemble): no slider
    }
    if (this.gone) return;
    this.whatIfAnswers = answers;
    this.whatIfSlider.max = String(answers.length);
    const own = run.spec?.training?.early_stopping?.patience;
    this.whatIfSlider.value = String(has(own) ? Math.min(own, answers.length) : answers.length);
    this.whatIf.hidden = false;
    this.describeWhatIf(answers[Number(this.whatIfSlider.value) - 1]);
  }

  chooseWhatIf() {
    const chosen = this.whatIfAnswers?.[Number(this.whatIfSlider.value) - 1];
    if (!chosen) return;
    this.whatIfChoice = chosen;
    this.dataset.whatIfPatience = String(chosen.patience);
    this.describeWhatIf(chosen);
    this.showMarks();
  }

  describeWhatIf(a) {
    const test = has(a.test_accuracy) ? formatPercent(a.test_accuracy) : "—";
    const z = a.best_epoch > 0 ? `z* at epoch ${a.best_epoch}` : "z* the untrained network (epoch 0)";
    this.whatIfText.textContent = `p = ${a.patience}: ${z}, stopping at epoch ${a.stopped_epoch}; `
      + `it would have returned test accuracy ${test}`
      + (a.complete ? "." : " (the run ended before this p would have stopped: figures of the epochs there are).");
  }

  showStoppingNote(p, monitor, best, result) {
    const what = monitor === "val_accuracy" ? "validation accuracy" : "validation loss";
    if (!has(p)) {
      this.stopping.hidden = !has(best);
      this.stopping.textContent = has(best)
        ? (result?.kept === "last"
          ? `No early stopping: the run trains for every epoch and returns the last epoch's model; z*, the best ${what}, was at epoch ${best}.`
          : `No early stopping: the run trains for every epoch, and the returned model z* is the one of the best ${what}${result ? ` (epoch ${best})` : ` so far (epoch ${best})`}.`)
        : "";
      return;
    }
    const parts = [`Early stopping with patience p = ${p} on the ${what}.`];
    if (has(best)) {
      parts.push(result
        ? `Best epoch ${best}: z*, on which the test figures are computed.`
        : `Best so far: epoch ${best}.`);
    }
    parts.push(`As in the slide's loop (guide: #/guides/3), training goes on p − 1 = ${p - 1} epochs after the best one`
      + (result && has(result.stopped_epoch) ? `, so it stopped at epoch ${result.stopped_epoch}.` : " before it stops."));
    this.stopping.textContent = parts.join(" ");
    this.stopping.hidden = false;
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
    this.forks.run = run;
    this.dataset.status = run.status;
    if (FINISHED.has(run.status) && run.result && !this.whatIfAsked) this.loadWhatIf(run);
    this.titleEl.textContent = runTitle(run);
    document.title = `${runTitle(run)} · Époque`;
    this.badge.replaceChildren(statusBadge(run.status));
    this.showMeta();
    if (has(run.study_id)) {
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
    this.deleteButton.hidden = !finished;
    this.cancelButton.hidden = finished;
    const packRuns = run.result?.pack?.run_ids;
    const declined = run.result?.pack?.declined;
    this.lrForm.hidden = finished || run.pack != null;
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
    if (run.result) this.showFigures(run);
    this.showMarks();
  }

  showFigures(run) {
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
    this.figures.replaceChildren(
      el("h2", { text: status === "succeeded" ? "Final figures" : "Figures of the returned model" }),
      el("p", { class: "muted figures-note", text: result.kept === "last"
        ? "Measured on the test set with the returned model: the last epoch's weights (training.keep)."
        : "Measured on the test set with the returned model z* (the best epoch on the validation set)." }),
      el("dl", {}, rows.map(([key, label, text, raw]) =>
        el("div", { class: "figure", dataset: { figure: key, ...(typeof raw === "number" ? { value: String(raw) } : {}) } },
          el("dt", { text: label }), el("dd", { text: String(text) })))),
      tables.length ? el("div", { class: "figure-tables" }, tables) : null);
    this.figures.hidden = false;
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
    return table("Layers: distinct units and the initialisation actually used (guide: #/guides/5)",
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
    return table("Dropout at inference: strategy A against strategy B (guide: #/guides/8)",
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
    return table(`Ensemble of ${ens.member_test_accuracy.length} networks, like the slide's table (guide: #/guides/10)`,
      [["model"], ["test accuracy", "num"], ["test error", "num"]], rows, { "data-table": "ensemble" });
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
