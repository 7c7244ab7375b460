// <run-what-if run-id="N">: after a run, a slider over the patience p; each position says what
// early stopping with that p would have returned, read off the stored curves (no new run).
// element.run = run (a finished run) asks the server once; moving the slider dispatches a
// "what-if" event whose detail is the chosen answer {patience, best_epoch, stopped_epoch, ...}.
import { getEarlyStopping } from "./api.js";
import { el, formatPercent } from "./ui.js";

const MAX_WHAT_IFS = 100; // patiences asked for at once (the server's limit)
const has = (v) => v !== null && v !== undefined;

class RunWhatIf extends HTMLElement {
  connectedCallback() {
    if (this.slider) return;
    const runId = this.getAttribute("run-id");
    this.slider = el("input", { type: "range", min: "1", max: "1", step: "1", value: "1",
      id: `what-if-${runId}`, class: "what-if-slider", oninput: () => this.choose() });
    this.text = el("output", { class: "what-if-text", for: this.slider.id });
    this.section = el("section", { class: "card what-if", hidden: true, "aria-label": "Early-stopping what-if" },
      el("label", { for: this.slider.id, text: "What if the patience p had been…" }),
      this.slider, this.text);
    this.replaceChildren(this.section);
  }

  disconnectedCallback() {
    this.gone = true;
  }

  /** A finished run: ask what each p from 1 to its length would have returned (once). */
  set run(run) {
    if (this.asked || !run?.result) return;
    this.asked = true;
    this.load(run);
  }

  async load(run) {
    const epochs = Math.min(run.result?.epochs_run ?? 0, MAX_WHAT_IFS);
    // An ensemble whose members each keep their own z* has no one curve to replay (409).
    const ens = run.spec?.ensemble || {};
    if (epochs < 1 || ((ens.members ?? 1) > 1 && ens.select !== "joint")) return;
    let answers;
    try {
      answers = await getEarlyStopping(run.id ?? this.getAttribute("run-id"), Array.from({ length: epochs }, (_, i) => i + 1));
    } catch {
      return; // a run without held-out curves (older, or per-member ensemble): no slider
    }
    if (this.gone || !this.slider) return;
    this.answers = answers;
    this.slider.max = String(answers.length);
    const own = run.spec?.training?.early_stopping?.patience;
    this.slider.value = String(has(own) ? Math.min(own, answers.length) : answers.length);
    this.section.hidden = false;
    this.describe(answers[Number(this.slider.value) - 1]);
  }

  choose() {
    const chosen = this.answers?.[Number(this.slider.value) - 1];
    if (!chosen) return;
    this.describe(chosen);
    this.dispatchEvent(new CustomEvent("what-if", { detail: chosen, bubbles: true }));
  }

  describe(a) {
    const test = has(a.test_accuracy) ? formatPercent(a.test_accuracy) : "—";
    const z = a.best_epoch > 0 ? `z* at epoch ${a.best_epoch}` : "z* the untrained network (epoch 0)";
    this.text.textContent = `p = ${a.patience}: ${z}, stopping at epoch ${a.stopped_epoch}; `
      + `it would have returned test accuracy ${test}`
      + (a.complete ? "." : " (the run ended before this p would have stopped: figures of the epochs there are).");
  }
}

customElements.define("run-what-if", RunWhatIf);
