// <run-banner>: how a run ends (or will end), in words, and the marks the run's loss and
// accuracy charts draw for it. One function, ending(), decides both, so the banner and the
// shaded window never say different things. The engine's rule (worker/engine/early_stopping.py,
// the slide's loop of lesson 3 taken literally): z* starts as the untrained network (epoch 0);
// an improvement at epoch b > 0 stops the run at b + p − 1 unless a better epoch follows; with
// no improvement at all it stops at epoch p. Endings: patience ran out, max_epochs reached,
// cancelled by hand, diverged, failed.
import { FINISHED, el, useStyle } from "./ui.js";

useStyle(import.meta.url, "run-view.css");

const has = (v) => v !== null && v !== undefined;

/** A link to the in-app guide of lesson `n` (students do not have COURSE.md). */
export function guideLink(n, text = `guide of lesson ${n}`) {
  return el("a", { href: `#/guides/${n}`, class: "guide-link", text });
}

/** The epoch at which early stopping with patience p stops, z* being at `best`. */
export function patienceStop(best, p) {
  return best > 0 ? best + p - 1 : p;
}

/** The epoch of z* from a validation series, as the engine's rule: strictly better only. */
export function bestOf(points, higherIsBetter) {
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

const afterBest = (n) => `${n} epoch${n === 1 ? "" : "s"} after z*`;

/**
 * What the charts mark and the banner says, for `run` (spec, status, result) and the best
 * epoch seen so far in the stream (`liveBest`, used while the run has no result).
 * Returns {kind, marks: {best, bestLabel, window, windowLabel, stop, stopLabel}, parts}.
 * `parts` are the banner's sentences: strings or nodes (links).
 */
export function ending(run, liveBest) {
  const es = run.spec?.training?.early_stopping || {};
  const p = has(es.patience) ? es.patience : null;
  const what = (es.monitor || "val_accuracy") === "val_accuracy" ? "validation accuracy" : "validation loss";
  const result = FINISHED.has(run.status) ? run.result || null : null;
  const best = result && has(result.best_epoch) ? result.best_epoch : liveBest;
  const maxEpochs = run.spec?.training?.max_epochs ?? run.progress?.max_epochs ?? null;
  const stopped = result ? result.stopped_epoch ?? result.epochs_run ?? null : null;
  const marks = {};
  const parts = [];
  if (has(best)) {
    marks.best = best;
    marks.bestLabel = best > 0 ? `best ${best} (z*)` : "best 0 (z*: untrained)";
  }
  const zStar = has(best)
    ? (best > 0 ? `z*, the epoch of the best ${what}, is epoch ${best}` : `no epoch beat the untrained network on the ${what}, so z* is epoch 0 (the initial weights)`)
    : null;
  const expected = has(p) && has(best) ? patienceStop(best, p) : null;
  let kind = "running";

  if (result && run.status === "cancelled") {
    kind = "cancelled";
    parts.push(`Cancelled by hand after epoch ${stopped}.`);
    if (zStar) parts.push(`Up to there, ${zStar}; the returned model is ${result.kept === "last" ? "the last epoch's" : "z*"}.`);
    if (has(p) && has(expected)) {
      parts.push(expected > stopped
        ? `Early stopping (p = ${p}) had not stopped it: it would have stopped at epoch ${expected} at the earliest, if no better epoch came.`
        : `Early stopping (p = ${p}) would have stopped it at epoch ${expected}.`);
    }
    if (has(stopped)) {
      marks.stop = stopped;
      marks.stopLabel = `cancelled ${stopped}`;
    }
  } else if (result && run.status === "diverged") {
    kind = "diverged";
    const at = result.diverged_epoch ?? stopped;
    parts.push(`The loss diverged at epoch ${at}; training stopped there.`);
    if (zStar) parts.push(`Before it, ${zStar}.`);
    if (has(at)) {
      marks.stop = at;
      marks.stopLabel = `diverged ${at}`;
    }
  } else if (result && run.status === "failed") {
    kind = "failed";
  } else if (result) {
    // succeeded: patience ran out, or max_epochs came first.
    const byPatience = has(expected) && has(stopped) && stopped === expected && (!has(maxEpochs) || expected <= maxEpochs);
    if (has(p) && byPatience) {
      kind = "early-stop";
      parts.push(`Early stopping with patience p = ${p} on the ${what}.`);
      if (has(best)) parts.push(best > 0 ? `Best epoch ${best}: z*, on which the test figures are computed.`
        : "Best epoch 0: no epoch beat the untrained network, so z* is the initial weights and the test figures are theirs.");
      parts.push(best > 0
        ? `As in the slide's loop, training goes on p − 1 = ${p - 1} epochs after the best one, so it stopped at epoch ${stopped}.`
        : `As in the slide's loop, with no improvement training runs the first p = ${p} epochs, so it stopped at epoch ${stopped}.`);
      parts.push(el("span", {}, "See the ", guideLink(3), "."));
      if (stopped > best) {
        marks.window = [best, stopped];
        marks.windowLabel = afterBest(stopped - best);
      }
      marks.stop = stopped;
      marks.stopLabel = `stopped ${stopped}`;
    } else if (has(p) && has(stopped) && has(maxEpochs) && stopped < maxEpochs) {
      // Stopped by patience, but not on one curve's rule (an ensemble whose members each keep
      // their own z* and patience): say what happened, not the single-curve arithmetic.
      kind = "early-stop";
      parts.push(`Early stopping with patience p = ${p} on the ${what} ended training at epoch ${stopped}, before max_epochs = ${maxEpochs}.`);
      if (zStar) parts.push(`${zStar[0].toUpperCase()}${zStar.slice(1)}.`);
      parts.push(el("span", {}, "See the ", guideLink(3), "."));
      marks.stop = stopped;
      marks.stopLabel = `stopped ${stopped}`;
    } else {
      kind = "max-epochs";
      parts.push(`Trained for all ${stopped ?? maxEpochs} epochs (max_epochs)`
        + (has(p) ? `: early stopping with p = ${p} never ran out of patience${has(expected) ? ` (it would have stopped at epoch ${expected})` : ""}.` : ", without early stopping."));
      if (zStar) parts.push(`${zStar[0].toUpperCase()}${zStar.slice(1)}; the returned model is ${result.kept === "last" ? "the last epoch's" : "z*"}.`);
      if (has(stopped)) {
        marks.stop = stopped;
        marks.stopLabel = `max_epochs ${stopped}`;
      }
    }
  } else if (has(best)) {
    // Live: where early stopping stands now.
    if (has(p)) {
      parts.push(`Early stopping with patience p = ${p} on the ${what}.`, `Best so far: epoch ${best}.`);
      parts.push(best > 0
        ? `As in the slide's loop, training goes on p − 1 = ${p - 1} epochs after the best one: unless a better epoch comes, it stops at epoch ${expected}.`
        : `No epoch has beaten the untrained network yet: unless one does, it stops at epoch ${p}.`);
      marks.window = [best, expected];
      marks.windowLabel = afterBest(expected - best);
    } else {
      parts.push(`No early stopping: the run trains for every epoch; the best ${what} so far is at epoch ${best}.`);
    }
  }
  if (result && run.status === "succeeded" && !has(p) && kind === "max-epochs" && parts.length === 0) {
    parts.push("Trained for every epoch, without early stopping.");
  }
  return { kind, marks, parts };
}

/** The marks of an early-stopping what-if answer ({patience, best_epoch, stopped_epoch}). */
export function whatIfMarks(a) {
  const marks = { best: a.best_epoch, bestLabel: `z* with p = ${a.patience}: ${a.best_epoch}` };
  if (a.stopped_epoch > a.best_epoch) {
    marks.window = [a.best_epoch, a.stopped_epoch];
    marks.windowLabel = afterBest(a.stopped_epoch - a.best_epoch);
  }
  marks.stop = a.stopped_epoch;
  marks.stopLabel = `would stop ${a.stopped_epoch}`;
  return marks;
}

class RunBanner extends HTMLElement {
  connectedCallback() {
    this.classList.add("notice", "notice-info", "stopping-note");
    this.setAttribute("role", "status");
    if (!this.shown) this.hidden = true;
  }

  /** Show `info` (from ending()); an empty one hides the banner. */
  set info(info) {
    this.shown = info;
    this.dataset.ending = info?.kind || "";
    const parts = info?.parts || [];
    this.hidden = parts.length === 0;
    const nodes = [];
    parts.forEach((part, i) => nodes.push(...(i ? [" "] : []), part));
    this.replaceChildren(...nodes);
  }
}

customElements.define("run-banner", RunBanner);
