// <ab-difference>: for exactly two runs A and B, whether they share z₀ and the minibatch order
// ("same start and order": their specs differ only in optimisation knobs, asked of the
// server), and for such a pair the difference curve B − A of the chosen metric, so where one
// knob starts to matter shows as where the curve leaves 0. Call `show(runs, metric, points)`
// with the compared runs, the metric key and {run id: [[x, value], ...]}.
import { getSameStart } from "./api.js";
import { PlotElement, baseLayout } from "./plot-element.js";
import { el, runTitle, useStyle } from "./ui.js";

useStyle(import.meta.url, "ab-difference.css");

/** (x, B − A) at every x where both runs have a finite value. */
export function difference(a, b) {
  const byX = new Map(a.filter((p) => p[1] !== null && Number.isFinite(p[1])));
  const out = [];
  for (const [x, v] of b) {
    if (v === null || !Number.isFinite(v) || !byX.has(x)) continue;
    out.push([x, v - byX.get(x)]);
  }
  return out.sort((p, q) => p[0] - q[0]);
}

class AbDifference extends PlotElement {
  #answers = new Map(); // "a|b" → the server's answer

  plotLabel() {
    return "Difference curve B − A";
  }

  cardClass() {
    return "card";
  }

  build(plot) {
    this.hidden = true;
    this.verdict = el("p", { class: "ab-verdict", role: "status" });
    this.replaceChildren(el("h2", { class: "ab-title", text: "Controlled A/B" }), this.verdict, plot);
  }

  async show(runs, metric, points) {
    if (runs.length !== 2) {
      this.hidden = true;
      this.pair = null;
      return;
    }
    const [a, b] = runs;
    const key = `${a.id}|${b.id}`;
    if (!this.#answers.has(key)) {
      try {
        this.#answers.set(key, await getSameStart(a.id, b.id));
      } catch {
        return; // asked again with the next refresh
      }
    }
    const answer = this.#answers.get(key);
    this.pair = { a, b, metric, points, answer };
    this.hidden = false;
    this.dataset.sameStart = String(answer.same_start_and_order);
    const names = `A = #${a.id} ${runTitle(a)}, B = #${b.id} ${runTitle(b)}`;
    const knobs = answer.differences.length ? answer.differences.join(", ") : "nothing";
    this.verdict.textContent = answer.same_start_and_order
      ? `Same start and order: ${names} share z₀ and the minibatch order (same seed, data, architecture and initialisation); they differ only in ${knobs}. The curve below, B − A, is that change's doing, not the seed's.`
      : `Not the same start and order: ${names} differ in ${answer.not_knobs.join(", ")}, which changes z₀ or the minibatch order, so a gap between their curves mixes the seed's luck with the settings. Fork a run or change only optimisation knobs for a controlled comparison.`;
    this.draw();
  }

  draw() {
    const pair = this.pair;
    if (!this.plot || !pair) return;
    if (!pair.answer.same_start_and_order) {
      this.plot.hidden = true;
      return;
    }
    this.plot.hidden = false;
    const diff = difference(pair.points[pair.a.id] || [], pair.points[pair.b.id] || []);
    const label = pair.metric.replaceAll("_", " ");
    const trace = { x: diff.map((p) => p[0]), y: diff.map((p) => p[1]), type: "scatter", mode: "lines+markers",
      name: `B − A ${label}`, meta: "difference", line: { color: "#c2407a", width: 2 }, marker: { size: 4 } };
    const layout = {
      ...baseLayout(280, this.plot),
      xaxis: { title: { text: "epoch" }, gridcolor: "#eef0f5", zeroline: false, automargin: true },
      yaxis: { title: { text: `B − A (${label})` }, gridcolor: "#eef0f5", zeroline: true,
               zerolinecolor: "#8a94a6", zerolinewidth: 1.5, automargin: true },
      showlegend: false,
    };
    this.dataset.points = String(diff.length);
    this.render([trace], layout);
  }
}

customElements.define("ab-difference", AbDifference);
