// <classes-view>: the teacher's page: create a class (name, lessons, locked fields, quotas,
// challenge) and see the classes made in this browser with their join links and boards.
// <class-home>: a student's page: the class's lessons (each opens the launch form with the
// locked fields read-only), their own runs first, then their classmates' (read-only).
import { listPresets, listRuns } from "./api.js";
import { createClass, getClass, joinedClass, leaveClass, teacherClasses } from "./classes-api.js";
import { el, FINISHED, formatPercent, runTitle, statusBadge, useStyle } from "./ui.js";

useStyle(import.meta.url, "classes.css");

// Fields a teacher most often fixes; any other spec path can be typed below them.
const COMMON_LOCKS = ["data.dataset", "model.hidden", "model.activation", "optim.method", "optim.batch_size",
  "training.max_epochs", "ensemble.members", "seed"];
const REFRESH_MS = 3000;

export const joinLink = (code) => `${location.origin}${location.pathname}#/join/${encodeURIComponent(code)}`;

function numberField(id, label, value, min = 1) {
  const input = el("input", { type: "number", id, min: String(min), step: "1", value: String(value) });
  return [el("div", { class: "field" }, el("label", { class: "field-label", for: id, text: label }), input), input];
}

class ClassesView extends HTMLElement {
  connectedCallback() {
    this.error = el("p", { class: "notice notice-error", role: "alert", hidden: true });
    this.list = el("div", { class: "class-list" });
    this.presetBoxes = el("div", { class: "preset-boxes" }, el("p", { class: "muted", text: "Loading the lessons…" }));
    this.challengeSelect = el("select", { id: "class-challenge" }, el("option", { value: "", text: "no challenge" }));
    const name = el("input", { type: "text", id: "class-name", maxlength: "200", required: true });
    this.nameInput = name;
    const [runsField, runs] = numberField("class-max-runs", "runs per student", 50);
    const [queuedField, queued] = numberField("class-max-queued", "queued runs per student", 5);
    const [epochsField, epochs] = numberField("class-challenge-epochs", "challenge: at most this many epochs", 20);
    Object.assign(this, { runs, queued, epochs });
    this.lockBoxes = COMMON_LOCKS.map((path) => el("input", { type: "checkbox", value: path, id: `lock-${path}` }));
    this.moreLocks = el("input", { type: "text", id: "class-more-locks", placeholder: "e.g. optim.weight_decay, model.init.scheme" });
    this.showClassmates = el("input", { type: "checkbox", id: "class-show", checked: true });
    this.createButton = el("button", { type: "submit", class: "button-primary", text: "Create the class" });
    const form = el("form", { class: "class-form", "aria-label": "New class" },
      el("div", { class: "field" }, el("label", { class: "field-label", for: "class-name", text: "Class name" }), name),
      el("fieldset", { class: "group" }, el("legend", { text: "Lessons (the presets the class offers; the first is the default)" }),
        this.presetBoxes),
      el("fieldset", { class: "group" }, el("legend", { text: "Locked fields: students keep the lesson's value" }),
        el("div", { class: "lock-boxes" }, this.lockBoxes.map((box) =>
          el("label", { class: "check-row", for: box.id }, box, box.value))),
        el("div", { class: "field" }, el("label", { class: "field-label", for: "class-more-locks", text: "more (comma-separated spec paths)" }),
          this.moreLocks)),
      el("fieldset", { class: "group" }, el("legend", { text: "Quotas and visibility" }),
        el("div", { class: "class-row" }, runsField, queuedField),
        el("label", { class: "check-row", for: "class-show" }, this.showClassmates, "students see their classmates' runs (read-only)")),
      el("fieldset", { class: "group" }, el("legend", { text: "Challenge: rank students by the held-out test accuracy of their best run" }),
        el("div", { class: "class-row" },
          el("div", { class: "field" }, el("label", { class: "field-label", for: "class-challenge", text: "lesson" }), this.challengeSelect),
          epochsField)),
      this.error,
      el("div", { class: "actions" }, this.createButton));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.create();
    });
    this.replaceChildren(
      el("h1", { text: "Classes" }),
      el("p", { class: "muted", text: "A class gets a join link: each student opens it, types a name and launches the class's lessons, within the locks and quotas set here. Runs of a class are shared fairly between its students." }),
      this.list,
      el("section", { class: "card" }, el("h2", { text: "New class" }), form));
    this.renderList();
    this.loadPresets();
  }

  async loadPresets() {
    try {
      const presets = await listPresets();
      this.presetBoxes.replaceChildren(...presets.map((p, i) => el("label", { class: "check-row", for: `preset-${p.id}` },
        el("input", { type: "checkbox", id: `preset-${p.id}`, value: p.id, checked: i === 0, class: "preset-box" }),
        `${p.title} (lesson ${p.lesson})`)));
      this.challengeSelect.append(...presets.map((p) => el("option", { value: p.id, text: p.title })));
    } catch (err) {
      this.presetBoxes.replaceChildren(el("p", { class: "field-error", text: `Could not load the lessons: ${err.message}` }));
    }
  }

  renderList() {
    const classes = teacherClasses();
    if (!classes.length) {
      this.list.replaceChildren();
      return;
    }
    this.list.replaceChildren(...classes.map((c) => el("section", { class: "card class-card", dataset: { classId: c.id } },
      el("h2", { text: c.name }),
      el("p", {}, "Join code ", el("strong", { class: "join-code", text: c.join_code }), " · link ",
        el("a", { class: "join-link", href: joinLink(c.join_code), text: joinLink(c.join_code) })),
      el("p", {}, el("a", { class: "button button-primary", href: `#/classes/${encodeURIComponent(c.id)}/board`, text: "Open the board" })))));
  }

  async create() {
    const presets = [...this.querySelectorAll(".preset-box:checked")].map((b) => b.value);
    const locked = [...this.lockBoxes.filter((b) => b.checked).map((b) => b.value),
      ...this.moreLocks.value.split(",").map((s) => s.trim()).filter(Boolean)];
    const body = {
      name: this.nameInput.value.trim(), presets, locked,
      max_runs_per_student: Number(this.runs.value), max_queued_per_student: Number(this.queued.value),
      show_classmates: this.showClassmates.checked,
    };
    if (this.challengeSelect.value) body.challenge = { preset: this.challengeSelect.value, max_epochs: Number(this.epochs.value) || null };
    this.error.hidden = true;
    if (!body.name) {
      this.error.textContent = "Give the class a name.";
      this.error.hidden = false;
      return;
    }
    this.createButton.disabled = true;
    try {
      await createClass(body);
      this.renderList();
      this.nameInput.value = "";
    } catch (err) {
      this.error.textContent = `Not created: ${err.message}`;
      this.error.hidden = false;
    } finally {
      this.createButton.disabled = false;
    }
  }
}

function runRow(run, mine) {
  const acc = FINISHED.has(run.status) ? run.result?.test_accuracy : null;
  return el("li", { class: `class-run${mine ? " class-run-mine" : ""}`, dataset: { runId: run.id } },
    el("a", { href: `#/runs/${encodeURIComponent(run.id)}`, text: runTitle(run) }), " ", statusBadge(run.status),
    el("span", { class: "muted", text: ` epoch ${run.progress?.epoch ?? 0}/${run.progress?.max_epochs ?? "?"}` }),
    acc !== null && acc !== undefined ? el("span", { class: "class-acc", text: ` test ${formatPercent(acc)}` }) : "",
    mine ? "" : el("span", { class: "muted", text: " (a classmate's: read-only)" }));
}

class ClassHome extends HTMLElement {
  connectedCallback() {
    this.me = joinedClass();
    if (!this.me) {
      this.replaceChildren(el("section", { class: "card" }, el("h1", { text: "No class" }),
        el("p", { text: "This browser has not joined a class: open the join link your teacher gave you." })));
      return;
    }
    this.lessons = el("div", { class: "lesson-cards" }, el("p", { class: "muted", text: "Loading the lessons…" }));
    this.mine = el("ul", { class: "class-runs", "aria-label": "My runs" });
    this.others = el("ul", { class: "class-runs", "aria-label": "Classmates' runs" });
    this.replaceChildren(
      el("div", { class: "class-head" },
        el("h1", { class: "class-title", text: "Class" }),
        el("p", { class: "muted" }, `You are ${this.me.name}. `,
          el("a", { href: `#/classes/${encodeURIComponent(this.me.class_id)}/board`, text: "The class board" }), " · ",
          el("button", { type: "button", class: "button-small", text: "Leave this class", onclick: () => {
            leaveClass();
            location.hash = "#/";
          } }))),
      el("h2", { text: "Lessons" }), this.lessons,
      el("h2", { text: "My runs" }), this.mine,
      el("h2", { text: "Classmates' runs" }), this.others);
    this.load();
    this.timer = setInterval(() => this.refreshRuns(), REFRESH_MS);
  }

  disconnectedCallback() {
    clearInterval(this.timer);
  }

  async load() {
    try {
      const klass = await getClass(this.me.class_id);
      this.querySelector(".class-title").textContent = klass.name;
      this.lessons.replaceChildren(...klass.presets.map((p) => el("section", { class: "card lesson-card" },
        el("h3", { text: p.title }),
        el("p", { class: "muted", text: p.description }),
        klass.locked.length ? el("p", { class: "muted", text: `Locked: ${klass.locked.join(", ")}` }) : "",
        el("a", { class: "button button-primary", href: `#/class/launch/${encodeURIComponent(p.id)}`, text: "Launch a run" }))));
    } catch (err) {
      this.lessons.replaceChildren(el("p", { class: "field-error", text: `Could not load the class: ${err.message}` }));
    }
    this.refreshRuns();
  }

  async refreshRuns() {
    try {
      const runs = await listRuns();
      const mine = runs.filter((r) => r.student === this.me.student_id);
      const others = runs.filter((r) => r.student !== this.me.student_id);
      this.mine.replaceChildren(...(mine.length ? mine.map((r) => runRow(r, true)) : [el("li", { class: "muted", text: "No run yet: launch one from a lesson." })]));
      this.others.replaceChildren(...(others.length ? others.map((r) => runRow(r, false)) : [el("li", { class: "muted", text: "None to show." })]));
    } catch {
      // the next refresh tries again
    }
  }
}

customElements.define("classes-view", ClassesView);
customElements.define("class-home", ClassHome);
