// EpochSlider: a slider over the epochs a run stored a figure for (the confusion matrix, the
// decision boundary grid), and the fetching behind it. At most one request is in flight: an
// epoch picked meanwhile waits, and a later pick replaces it, so a drag asks for the epoch it
// starts on and the one it ends on, not every epoch between; an answer overtaken by a newer
// pick is dropped, so only the newest epoch's figure is drawn (and the thumb never jumps back).
import { el } from "./ui.js";

export class EpochSlider {
  /**
   * host: the element (a PlotElement, whose `gone` says it left the page); name: the prefix of
   * the controls' id and classes; label: the slider's accessible name. fetch(epoch) asks for
   * one epoch's figure (epoch null: the API's default, the newest or the returned model's);
   * show(answer) draws it; fail(error) says why one could not be loaded (a 404 is not said:
   * no figure is stored yet).
   */
  constructor(host, { name, label, fetch, show, fail }) {
    Object.assign(this, { host, fetch, show, fail });
    this.epochs = [];
    this.epoch = null; // the epoch shown
    this.follow = true; // show the default (epoch null) until the slider moves off the newest
    this.loading = false;
    this.queued = null;
    const id = `${name}-epoch-${host.getAttribute("run-id")}`;
    this.input = el("input", { type: "range", id, min: "0", max: "0", step: "1", value: "0", disabled: true,
      oninput: () => this.pick(Number(this.input.value)) });
    this.output = el("output", { for: id, class: `${name}-epoch`, text: "" });
    this.controls = el("div", { class: `${name}-controls` }, el("label", { for: id, text: label }), this.input, this.output);
  }

  pick(index) {
    const epoch = this.epochs[index];
    if (epoch === undefined) return;
    this.follow = index === this.epochs.length - 1;
    this.output.textContent = String(epoch);
    this.load(epoch);
  }

  /** A newer figure may exist: fetch it, unless the slider has moved off the newest. */
  refresh() {
    if (this.follow) this.load(null);
  }

  async load(epoch) {
    if (this.loading) {
      this.queued = { epoch };
      return;
    }
    this.loading = true;
    let answer = null;
    let error = null;
    try {
      answer = await this.fetch(epoch);
    } catch (err) {
      error = err;
    }
    this.loading = false;
    const next = this.queued;
    this.queued = null;
    if (this.host.gone) return;
    if (next) {
      this.load(next.epoch); // this answer is stale already
    } else if (error) {
      if (error.status !== 404) this.fail(error);
    } else {
      this.place(answer);
      this.show(answer);
    }
  }

  /** The slider at the answer's epoch, with a stop for each epoch it says is stored. */
  place({ epoch, epochs }) {
    this.epoch = epoch;
    this.epochs = Array.isArray(epochs) ? epochs : [epoch];
    this.input.max = String(Math.max(0, this.epochs.length - 1));
    this.input.value = String(Math.max(0, this.epochs.indexOf(epoch)));
    this.input.disabled = this.epochs.length < 2;
    this.output.textContent = String(epoch);
    this.host.dataset.epoch = String(epoch);
  }
}
