// <home-view>: the lessons of the course as cards (each launches its preset in one click),
// then the studies and the runs. Studies are refreshed while any of them is still running.
import { launchPreset, listPresets, listStudies } from "./api.js";
import "./run-list.js";
import { el, formatPercent, useStyle } from "./ui.js";

useStyle(import.meta.url, "home-view.css");

// COURSE.md's section titles; the presets say which lesson they belong to.
export const LESSONS = {
  1: { name: "Stochastic gradient descent with momentum" },
  2: { name: "Minibatch training" },
  3: { name: "Early stopping" },
  4: { name: "Learning-rate schedules" },
  5: { name: "Initialisation" },
  6: { name: "Batch normalisation" },
  7: { name: "L2 regularisation (weight decay)" },
  8: { name: "Dropout" },
  9: { name: "Data augmentation" },
  10: { name: "Ensembles" },
};

const REFRESH_MS = 3000;

function shortStatus(study) {
  const runs = study.runs || [];
  const done = runs.filter((r) => ["succeeded", "failed", "cancelled", "diverged"].includes(r.status)).length;
  return `${done} / ${runs.length} runs done`;
}

/** Launch a preset and open what it made (its study, or its run); `status` says how it went. */
export async function launchAndOpen(preset, button, status) {
  button.disabled = true;
  status.textContent = "Launching…";
  try {
    const out = await launchPreset(preset.id);
    location.hash = out.kind === "study"
      ? `#/studies/${encodeURIComponent(out.study.id)}` : `#/runs/${encodeURIComponent(out.run.id)}`;
  } catch (err) {
    status.textContent = `Not launched: ${err.message}`;
    button.disabled = false;
  }
}

class HomeView extends HTMLElement {
  connectedCallback() {
    this.cards = el("div", { class: "lesson-grid" }, el("p", { class: "muted", text: "Loading the lessons…" }));
    this.notice = el("div", { class: "notice notice-error", role: "alert", hidden: true });
    this.studyBody = el("tbody");
    this.studyTable = el("table", { class: "data-table study-table", hidden: true },
      el("thead", {}, el("tr", {}, ["#", "Study", "Status", "Progress", "Best test accuracy"].map(
        (h, i) => el("th", { scope: "col", class: i === 4 ? "num" : null, text: h })))),
      this.studyBody);
    this.studyEmpty = el("p", { class: "muted", text: "No studies yet: a lesson card or “Run with N seeds” on the launch form makes one." });
    this.replaceChildren(
      el("section", { class: "home-intro" },
        el("h1", { text: "The training process, in practice" }),
        el("p", { class: "muted", text: "Ten lessons from the course, each one click away. A card launches a small experiment (a study of a few runs, or one run) that shows what the lesson says should happen; its charts fill in live." })),
      this.notice,
      el("section", { "aria-label": "Lessons" }, this.cards),
      el("section", { class: "card home-studies", "aria-labelledby": "studies-heading" },
        el("div", { class: "page-head" },
          el("h2", { id: "studies-heading", text: "Studies" }),
          el("a", { href: "#/compare", text: "Compare runs…" })),
        this.studyTable, this.studyEmpty),
      el("run-list", { class: "home-runs" }),
    );
    this.loadPresets();
    this.refreshStudies();
  }

  disconnectedCallback() {
    this.gone = true;
    clearTimeout(this.timer);
  }

  async loadPresets() {
    let presets;
    try {
      presets = await listPresets();
    } catch (err) {
      if (this.gone) return;
      this.cards.replaceChildren(el("p", { class: "notice notice-error", text: `Could not load the lessons: ${err.message}` }));
      return;
    }
    if (this.gone) return;
    const sorted = [...presets].sort((a, b) => (a.lesson ?? 99) - (b.lesson ?? 99));
    this.cards.replaceChildren(...sorted.map((preset) => this.card(preset)));
  }

  card(preset) {
    const lesson = LESSONS[preset.lesson] || { name: `Lesson ${preset.lesson}` };
    const button = el("button", { type: "button", class: "button-primary",
      "aria-label": `Launch the preset “${preset.title}”`, text: "Launch" });
    const status = el("p", { class: "lesson-status", role: "status" });
    button.addEventListener("click", () => launchAndOpen(preset, button, status));
    const kind = preset.study
      ? `a study of ${Object.entries(preset.study.grid || {}).map(([k, v]) => `${v.length} × ${k}`).join(", ")}`
      : "one run";
    return el("article", { class: "card lesson-card", dataset: { preset: preset.id, lesson: String(preset.lesson) } },
      el("p", { class: "lesson-number", text: `Lesson ${preset.lesson} · ${lesson.name}` }),
      el("h2", { class: "lesson-title", text: preset.title }),
      el("p", { class: "lesson-text", text: preset.description || "" }),
      preset.formula ? el("code", { class: "formula", text: preset.formula }) : null,
      el("div", { class: "lesson-actions" },
        button,
        el("span", { class: "muted lesson-kind", text: kind }),
        el("a", { href: `#/guides/${preset.lesson}`, "aria-label": `Guide to lesson ${preset.lesson}`, text: "Guide" }),
        preset.lesson === 9 ? el("a", { href: "#/augment", text: "Augmentation lab" }) : null),
      status);
  }

  /** Every few seconds, so new and running studies show up; a failure is retried the same way. */
  async refreshStudies() {
    try {
      const studies = await listStudies();
      if (this.gone) return;
      this.showStudies(studies || []);
    } catch (err) {
      if (this.gone) return;
      this.notice.textContent = `Could not load the studies: ${err.message} (retrying)`;
      this.notice.hidden = false;
    }
    if (!this.gone) this.timer = setTimeout(() => this.refreshStudies(), REFRESH_MS);
  }

  showStudies(studies) {
    this.notice.hidden = true;
    this.studyTable.hidden = studies.length === 0;
    this.studyEmpty.hidden = studies.length !== 0;
    this.studyBody.replaceChildren(...studies.slice(0, 20).map((study) => {
      const accs = (study.summary || []).map((r) => r.test_accuracy).filter((a) => typeof a === "number");
      const href = `#/studies/${encodeURIComponent(study.id)}`;
      return el("tr", { dataset: { studyId: String(study.id) } },
        el("td", { class: "mono muted", text: String(study.id) }),
        el("td", {}, el("a", { href, text: study.name || `Study #${study.id}` })),
        el("td", {}, el("span", { class: `badge badge-${study.status}`, text: study.status })),
        el("td", { class: "muted", text: shortStatus(study) }),
        el("td", { class: "num", text: accs.length ? formatPercent(Math.max(...accs)) : "—" }));
    }));
  }
}

customElements.define("home-view", HomeView);
