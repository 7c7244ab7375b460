// <class-settings class-id="…">: the teacher's form to change a class after its creation (name,
// locked fields, quotas, whether students see classmates' runs, the challenge). It sends only
// what the form holds; the server checks the result exactly as a new class (PATCH, 422 naming
// the field). Its lessons (presets) are changed through the API.
import { getClass, updateClass } from "./classes-api.js";
import { el } from "./ui.js";

function field(id, label, input) {
  return el("div", { class: "field" }, el("label", { class: "field-label", for: id, text: label }), input);
}

class ClassSettings extends HTMLElement {
  connectedCallback() {
    const id = this.getAttribute("class-id");
    this.classId = id;
    const input = (key, attrs) => el("input", { id: `settings-${key}`, ...attrs });
    this.inputs = {
      name: input("name", { type: "text", maxlength: "200", required: true }),
      locked: input("locked", { type: "text", placeholder: "e.g. model.hidden, optim.lr" }),
      max_runs_per_student: input("max-runs", { type: "number", min: "1", step: "1" }),
      max_queued_per_student: input("max-queued", { type: "number", min: "1", step: "1" }),
      show_classmates: input("show", { type: "checkbox" }),
      challenge: el("select", { id: "settings-challenge" }),
      challenge_epochs: input("challenge-epochs", { type: "number", min: "1", step: "1" }),
    };
    this.message = el("p", { class: "class-settings-message", role: "status" });
    this.saveButton = el("button", { type: "submit", class: "button-primary", text: "Save the settings" });
    const i = this.inputs;
    this.form = el("form", { class: "class-form", "aria-label": "Class settings", novalidate: true,
      onsubmit: (event) => { event.preventDefault(); this.save(); } },
      field(i.name.id, "Class name", i.name),
      field(i.locked.id, "Locked fields (comma-separated spec paths)", i.locked),
      el("div", { class: "class-row" },
        field(i.max_runs_per_student.id, "runs per student", i.max_runs_per_student),
        field(i.max_queued_per_student.id, "queued runs per student", i.max_queued_per_student)),
      el("label", { class: "check-row", for: i.show_classmates.id }, i.show_classmates, "students see their classmates' runs (read-only)"),
      el("div", { class: "class-row" },
        field(i.challenge.id, "challenge lesson", i.challenge),
        field(i.challenge_epochs.id, "challenge: at most this many epochs", i.challenge_epochs)),
      this.message,
      el("div", { class: "actions" }, this.saveButton));
    this.replaceChildren(el("details", { class: "card class-settings" },
      el("summary", { text: "Settings" }), this.form));
    this.load();
  }

  async load() {
    try {
      this.fill(await getClass(this.classId));
    } catch (err) {
      this.message.textContent = `Could not load the settings: ${err.message}`;
    }
  }

  fill(klass) {
    const i = this.inputs;
    i.name.value = klass.name;
    i.locked.value = klass.locked.join(", ");
    i.max_runs_per_student.value = String(klass.max_runs_per_student);
    i.max_queued_per_student.value = String(klass.max_queued_per_student);
    i.show_classmates.checked = klass.show_classmates;
    i.challenge.replaceChildren(el("option", { value: "", text: "no challenge" }),
      ...klass.presets.map((p) => el("option", { value: p.id, text: p.title })));
    i.challenge.value = klass.challenge?.preset || "";
    i.challenge_epochs.value = klass.challenge?.max_epochs ? String(klass.challenge.max_epochs) : "";
  }

  async save() {
    const i = this.inputs;
    const changes = {
      name: i.name.value.trim(),
      locked: i.locked.value.split(",").map((s) => s.trim()).filter(Boolean),
      max_runs_per_student: Number(i.max_runs_per_student.value),
      max_queued_per_student: Number(i.max_queued_per_student.value),
      show_classmates: i.show_classmates.checked,
      challenge: i.challenge.value ? { preset: i.challenge.value, max_epochs: Number(i.challenge_epochs.value) || null } : null,
    };
    this.saveButton.disabled = true;
    this.message.classList.remove("field-error");
    try {
      this.fill(await updateClass(this.classId, changes));
      this.message.textContent = "Saved: the new rules hold for the runs launched from now on.";
      this.dispatchEvent(new CustomEvent("class-changed", { bubbles: true }));
    } catch (err) {
      // A 422 names the field and the reason (e.g. "locked.1: 'x' is not a spec field path").
      const first = err.details?.[0];
      this.message.textContent = `Not saved: ${first ? `${first.field}: ${first.msg}` : err.message}`;
      this.message.classList.add("field-error");
    } finally {
      this.saveButton.disabled = false;
    }
  }
}

customElements.define("class-settings", ClassSettings);
