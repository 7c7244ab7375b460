// <launch-form [from-run="id"]>: the experiment spec as a form, generated from the server's
// JSON Schema. Launch posts the spec; a 422 puts each message next to the field it names and
// leaves every value as the user typed it.
import { ApiError, createRun, getRun, getSpecSchema } from "./api.js";
import { buildForm, readSpec, writeSpec } from "./schema-fields.js";
import { el, runTitle, useStyle } from "./ui.js";

useStyle(import.meta.url, "launch-form.css");

/** The field path of one 422 entry, without FastAPI's leading "body". */
function pathOf(detail) {
  let parts = Array.isArray(detail.loc)
    ? detail.loc.map(String)
    : typeof detail.field === "string" && detail.field !== "(spec)" ? detail.field.split(".") : [];
  if (parts[0] === "body") parts = parts.slice(1);
  return parts;
}

function readable(msg) {
  return String(msg || "This value is not accepted.").replace(/^(Value error|Assertion failed), /, "");
}

class LaunchForm extends HTMLElement {
  connectedCallback() {
    this.notice = el("div", { class: "notice notice-error", role: "alert", hidden: true });
    this.info = el("p", { class: "notice notice-info", hidden: true });
    this.body = el("div", {}, el("p", { class: "muted", text: "Loading the spec schema…" }));
    this.replaceChildren(
      el("div", { class: "launch-head" },
        el("h1", { text: "New run" }),
        el("p", { class: "muted", text: "Every field starts at its default, so Launch alone trains a small MLP on the digits data. Change what you want to study." })),
      this.info, this.notice, this.body);
    this.load();
  }

  disconnectedCallback() {
    this.gone = true;
  }

  async load() {
    let schema;
    try {
      schema = await getSpecSchema();
    } catch (err) {
      this.body.replaceChildren();
      this.fail(`Could not load the form: ${err.message}`);
      return;
    }
    if (this.gone) return;
    const { root, fields, groups } = buildForm(schema);
    this.fields = fields;
    this.groups = groups;
    this.byKey = new Map(fields.map((f) => [f.key, f]));

    this.submitButton = el("button", { type: "submit", class: "button-primary launch-button", text: "Launch" });
    this.preview = el("pre", { class: "spec-json" });
    this.form = el("form", { class: "launch", novalidate: true, "aria-label": "Experiment spec" },
      root,
      el("div", { class: "actions" },
        this.submitButton,
        el("button", { type: "button", text: "Reset to defaults", onclick: () => this.reset() }),
        el("a", { href: "#/", text: "Back to runs" })),
      el("details", { class: "spec-preview" },
        el("summary", { text: "The spec this form sends (JSON)" }), this.preview));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.form.addEventListener("input", () => this.updatePreview());
    this.form.addEventListener("change", () => this.updatePreview());
    this.body.replaceChildren(this.form);

    const from = this.getAttribute("from-run");
    if (from) await this.copyFrom(from);
    this.updatePreview();
  }

  async copyFrom(id) {
    try {
      const run = await getRun(id);
      writeSpec(this.fields, run.spec || {});
      this.info.textContent = `Starting from the spec of ${runTitle(run)}. Change what you want, then launch.`;
      this.info.hidden = false;
    } catch (err) {
      this.fail(`Could not copy run ${id}: ${err.message}`);
    }
  }

  updatePreview() {
    const { value } = readSpec(this.fields);
    this.preview.textContent = value ? JSON.stringify(value, null, 2) : "Some fields cannot be read yet.";
  }

  reset() {
    writeSpec(this.fields, {});
    this.clearErrors();
    this.info.hidden = true;
    this.updatePreview();
  }

  fail(message) {
    this.notice.replaceChildren(el("p", { text: message }));
    this.notice.hidden = false;
  }

  clearErrors() {
    this.notice.hidden = true;
    this.notice.replaceChildren();
    for (const field of this.fields || []) {
      field.errorEl.hidden = true;
      field.errorEl.textContent = "";
      field.wrapper.classList.remove("has-error");
      field.input.removeAttribute("aria-invalid");
      field.input.setAttribute("aria-describedby", field.helpId);
    }
    for (const group of this.groups?.values() || []) {
      group.errorEl.hidden = true;
      group.errorEl.textContent = "";
    }
  }

  markField(field, message) {
    const previous = field.errorEl.textContent;
    field.errorEl.textContent = previous ? `${previous} ${message}` : message;
    field.errorEl.hidden = false;
    field.wrapper.classList.add("has-error");
    field.input.setAttribute("aria-invalid", "true");
    field.input.setAttribute("aria-describedby", `${field.errorEl.id} ${field.helpId}`);
  }

  /** Put each 422 message next to the deepest field or fieldset its path names. */
  showServerErrors(details) {
    const general = [];
    let first = null;
    for (const detail of details) {
      const parts = pathOf(detail);
      const message = readable(detail.msg);
      let placed = false;
      for (let i = parts.length; i > 0 && !placed; i--) {
        const key = parts.slice(0, i).join(".");
        // List items: "model.hidden.1" is item 1 of hidden; union branches ("int") add nothing.
        const rest = parts.slice(i).filter((p) => /^\d+$/.test(p));
        const where = rest.length ? `Item ${rest.map((p) => `[${p}]`).join("")}: ` : "";
        const field = this.byKey.get(key);
        const group = this.groups.get(key);
        if (field) {
          this.markField(field, where + message);
          first ??= field.input;
          placed = true;
        } else if (group) {
          group.errorEl.textContent = [group.errorEl.textContent, message].filter(Boolean).join(" ");
          group.errorEl.hidden = false;
          first ??= group.fieldset;
          placed = true;
        }
      }
      if (!placed) general.push(parts.length ? `${parts.join(".")}: ${message}` : message);
    }
    const count = details.length;
    this.notice.replaceChildren(
      el("p", { text: `The server did not accept this spec: ${count} problem${count === 1 ? "" : "s"}, marked below.` }),
      ...general.map((m) => el("p", { text: m })));
    this.notice.hidden = false;
    if (first) {
      first.scrollIntoView({ block: "center" });
      if (first.focus) first.focus({ preventScroll: true });
    }
  }

  async submit() {
    if (this.busy) return;
    this.clearErrors();
    const { value, errors } = readSpec(this.fields);
    if (errors) {
      for (const [field, message] of errors) this.markField(field, message);
      this.fail("Some values cannot be read; they are marked below.");
      [...errors.keys()][0].input.focus();
      return;
    }
    this.busy = true;
    this.submitButton.disabled = true;
    this.submitButton.textContent = "Launching…";
    try {
      const run = await createRun(value);
      location.hash = `#/runs/${encodeURIComponent(run.id)}`;
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && err.details.length) {
        this.showServerErrors(err.details);
      } else {
        this.fail(`The run was not launched: ${err.message}`);
      }
    } finally {
      this.busy = false;
      this.submitButton.disabled = false;
      this.submitButton.textContent = "Launch";
    }
  }
}

customElements.define("launch-form", LaunchForm);
