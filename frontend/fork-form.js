// <fork-form>: forks of one run. A click on a point of its curves (the charts' "chart-click")
// opens a small form (η, momentum, schedule, λ, patience) that forks the run from that epoch:
// a new run holding these points up to there, then trained with the changed knobs. The run's
// forks are drawn dashed on its loss and accuracy charts from their fork points, and a fork's
// own view links back to its parent. Set `charts` (metric-chart elements) and `run`.
import { forkRun, getMetrics, getRun, listRuns } from "./api.js";
import { FINISHED, el, runTitle, useStyle } from "./ui.js";

useStyle(import.meta.url, "fork-form.css");

const OVERLAY_KEYS = { val_loss: "loss", val_accuracy: "accuracy" };
const POLL_MS = 1500;
const SCHEDULES = ["constant", "step", "cosine", "inv_sqrt", "exponential"];

const numberOrNull = (text) => (text.trim() === "" ? null : Number(text));

class ForkForm extends HTMLElement {
  #run = null;
  #forks = new Map(); // fork id → {run, series}
  #timer = null;
  #epoch = null;

  connectedCallback() {
    if (this.form) return;
    this.charts = this.charts || [];
    this.parentLink = el("p", { class: "fork-parent", hidden: true });
    this.hint = el("p", { class: "muted fork-hint", hidden: true,
      text: "Click a point on the loss or accuracy curve to fork the run from that epoch." });
    const field = (name, label, attrs = {}) => {
      const input = el("input", { name, id: `fork-${name}`, inputmode: "decimal", ...attrs });
      return [input, el("label", { for: input.id }, label, input)];
    };
    [this.lr, this.lrLabel] = field("lr", "η", { type: "number", step: "any", min: "0" });
    [this.momentum, this.momentumLabel] = field("momentum", "momentum α", { type: "number", step: "any", min: "0", max: "0.999" });
    [this.decay, this.decayLabel] = field("weight_decay", "λ", { type: "number", step: "any", min: "0" });
    [this.patience, this.patienceLabel] = field("patience", "patience p", { type: "number", step: "1", min: "1", placeholder: "none" });
    this.schedule = el("select", { name: "schedule", id: "fork-schedule",
      onchange: () => { this.stepFields.hidden = this.schedule.value !== "step"; } },
      SCHEDULES.map((k) => el("option", { value: k, text: k })));
    [this.milestones, this.milestonesLabel] = field("milestones", "milestones", { type: "text", placeholder: "e.g. 10, 20" });
    [this.gamma, this.gammaLabel] = field("gamma", "γ", { type: "number", step: "any", min: "0" });
    this.stepFields = el("span", { class: "fork-step", hidden: true }, this.milestonesLabel, this.gammaLabel);
    this.heading = el("h2", { class: "fork-title" });
    this.message = el("p", { class: "fork-message", role: "status" });
    this.form = el("form", { class: "card fork-form", hidden: true, novalidate: true,
      "aria-label": "Fork from here", onsubmit: (e) => { e.preventDefault(); this.submit(); } },
      this.heading,
      el("p", { class: "muted fork-note", text: "The fork keeps this run's points up to that epoch exactly (same z₀, same minibatch order) and trains on with the knobs below." }),
      el("div", { class: "fork-fields" }, this.lrLabel, this.momentumLabel,
        el("label", { for: "fork-schedule" }, "schedule", this.schedule), this.stepFields,
        this.decayLabel, this.patienceLabel),
      el("div", { class: "fork-buttons" },
        el("button", { type: "submit", text: "Fork from here" }),
        el("button", { type: "button", class: "button-secondary", text: "Close",
          onclick: () => { this.form.hidden = true; } })),
      this.message);
    this.replaceChildren(this.parentLink, this.hint, this.form);
  }

  disconnectedCallback() {
    clearTimeout(this.#timer);
    this.#timer = null;
    this.gone = true;
  }

  set run(run) {
    const first = !this.#run;
    this.#run = run;
    if (run.forked_from) {
      const { run: parent, epoch } = run.forked_from;
      this.parentLink.replaceChildren("Forked from ",
        el("a", { href: `#/runs/${encodeURIComponent(parent)}`, class: "fork-parent-link", text: `run #${parent}` }),
        ` after epoch ${epoch}: its points up to there are that run's.`);
      this.parentLink.hidden = false;
    }
    this.hint.hidden = Boolean(this.readOnly);
    if (first) this.loadForks();
  }

  get run() { return this.#run; }

  /** The form for a fork after `epoch`, filled with the run's own knobs. */
  open(epoch) {
    const spec = this.#run?.spec;
    // A run this viewer may not fork (a classmate's): the server would answer 403.
    if (!spec || this.readOnly) return;
    this.#epoch = epoch;
    const o = spec.optim || {};
    this.heading.textContent = `Fork from epoch ${epoch}`;
    this.lr.value = String(o.lr ?? "");
    this.momentum.value = String(o.momentum ?? 0);
    this.momentum.disabled = o.method === "adam";
    this.decay.value = String(o.weight_decay ?? 0);
    this.patience.value = String(spec.training?.early_stopping?.patience ?? "");
    const kind = o.schedule?.kind || "constant";
    if (![...this.schedule.options].some((opt) => opt.value === kind)) {
      this.schedule.append(el("option", { value: kind, text: kind }));
    }
    this.schedule.value = kind;
    this.milestones.value = (o.schedule?.milestones || []).join(", ");
    this.gamma.value = String(o.schedule?.gamma ?? 0.1);
    this.stepFields.hidden = kind !== "step";
    this.message.textContent = "";
    this.form.hidden = false;
    this.dataset.epoch = String(epoch);
    this.lr.focus();
  }

  /** Only what differs from the run's spec: the server merges it over the parent's. */
  changes() {
    const spec = this.#run.spec;
    const o = spec.optim || {};
    const optim = {};
    const lr = numberOrNull(this.lr.value);
    if (lr !== null && lr !== o.lr) optim.lr = lr;
    const momentum = numberOrNull(this.momentum.value);
    if (!this.momentum.disabled && momentum !== null && momentum !== o.momentum) optim.momentum = momentum;
    const decay = numberOrNull(this.decay.value);
    if (decay !== null && decay !== o.weight_decay) optim.weight_decay = decay;
    const schedule = { kind: this.schedule.value };
    if (schedule.kind === "step") {
      schedule.milestones = this.milestones.value.split(",").map((t) => t.trim()).filter(Boolean).map(Number);
      schedule.gamma = numberOrNull(this.gamma.value) ?? 0.1;
    }
    const now = o.schedule || {};
    if (schedule.kind !== now.kind || (schedule.kind === "step" &&
        (JSON.stringify(schedule.milestones) !== JSON.stringify(now.milestones) || schedule.gamma !== now.gamma))) {
      optim.schedule = schedule;
    }
    // Named for where it comes from, so the overlay, lists and Compare tell it from its parent.
    const out = { name: `${runTitle(this.#run)} · fork at ${this.#epoch}`.slice(0, 200) };
    if (Object.keys(optim).length) out.optim = optim;
    const patience = numberOrNull(this.patience.value);
    if (patience !== (spec.training?.early_stopping?.patience ?? null)) {
      out.training = { early_stopping: { patience } };
    }
    return out;
  }

  async submit() {
    const run = this.#run;
    this.message.textContent = "Forking…";
    try {
      const fork = await forkRun(run.id, this.#epoch, this.changes());
      this.message.replaceChildren(
        `Fork #${fork.id} started; it is drawn dashed on the charts. `,
        el("a", { href: `#/runs/${fork.id}`, class: "fork-link", text: `Open run #${fork.id}` }));
      this.#forks.set(fork.id, { run: fork, series: {} });
      this.poll();
    } catch (err) {
      this.message.textContent = `Could not fork: ${err.message}`;
    }
  }

  async loadForks() {
    try {
      const runs = await listRuns();
      for (const r of runs) {
        if (r.forked_from?.run === this.#run.id) this.#forks.set(r.id, { run: r, series: {} });
      }
    } catch {
      return; // the forks are an extra: the run's own view goes on without them
    }
    if (this.#forks.size) this.poll();
  }

  /** Each fork's curves from its fork point on, until every fork has ended. */
  async poll() {
    clearTimeout(this.#timer);
    this.#timer = null;
    let live = false;
    for (const [id, fork] of this.#forks) {
      if (fork.done) continue;
      try {
        const [run, metrics] = await Promise.all([
          getRun(id),
          getMetrics(id, { keys: Object.keys(OVERLAY_KEYS), points: 2000 })]);
        fork.run = run;
        fork.series = metrics.series || {};
        fork.done = FINISHED.has(run.status);
      } catch {
        fork.done = true; // deleted meanwhile
      }
      live ||= !fork.done;
    }
    if (this.gone) return;
    this.draw();
    if (live) this.#timer = setTimeout(() => this.poll(), POLL_MS);
  }

  draw() {
    for (const chart of this.charts) {
      const metric = chart.dataset.metric;
      const overlays = [];
      for (const [id, fork] of this.#forks) {
        const from = fork.run.forked_from?.epoch ?? 0;
        for (const [key, m] of Object.entries(OVERLAY_KEYS)) {
          if (m !== metric || !fork.series[key]) continue;
          const points = fork.series[key].filter((p) => p[0] >= from);
          overlays.push({ name: `fork #${id} ${key.startsWith("val") ? "validation" : key}`, key,
            x: points.map((p) => p[0]), y: points.map((p) => p[1]) });
        }
      }
      chart.setOverlays(overlays);
    }
    this.dataset.forks = String(this.#forks.size);
  }
}

customElements.define("fork-form", ForkForm);
