// <launch-form [from-run="id"] [with-dataset="folder:<id>"]>: the experiment spec as a form, generated from the server's
// JSON Schema. Launch posts the spec; a 422 puts each message next to the field it names and
// leaves every value as the user typed it.
import { ApiError, createRun, createStudy, getRun, getSpecSchema, listDatasets } from "./api.js";
import { applyLesson } from "./class-launch.js";
import "./schedule-editor.js";
import "./lr-range.js";
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
    this.scheduleEditor = el("schedule-editor");
    const scheduleGroup = groups.get("optim.schedule");
    (scheduleGroup ? scheduleGroup.fieldset : root).append(this.scheduleEditor);
    this.form = el("form", { class: "launch", novalidate: true, "aria-label": "Experiment spec" },
      root,
      this.studyControls(),
      el("div", { class: "actions" },
        this.submitButton,
        el("button", { type: "button", text: "Reset to defaults", onclick: () => this.reset() }),
        el("a", { href: "#/", text: "Back to the lab" })),
      el("details", { class: "spec-preview" },
        el("summary", { text: "The spec this form sends (JSON)" }), this.preview),
      Object.assign(el("lr-range-finder"), { launchForm: this })); // reads the spec, writes optim.lr
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    this.form.addEventListener("input", () => this.updatePreview());
    this.form.addEventListener("change", () => this.updatePreview());
    this.body.replaceChildren(this.form);
    this.scheduleEditor.bind(this.byKey);
    this.fillSweepFields();
    await this.datasetChoices();
    if (this.gone) return;

    const from = this.getAttribute("from-run");
    const dataset = this.getAttribute("with-dataset");
    if (from) await this.copyFrom(from);
    else if (dataset) await this.startOn(dataset);
    const lesson = this.getAttribute("lesson"); // a class's lesson: class-launch.js
    if (lesson) await applyLesson(this, lesson).catch((err) => this.fail(err.message));
    this.updatePreview();
  }

  /** "Train on this" from the Datasets page: the upload chosen, and a small CNN for its size. */
  async startOn(name) {
    let described = null;
    try {
      described = (await listDatasets()).find((d) => d.name === name) || null;
    } catch {
      described = null; // the form still opens with the name; launching says what is wrong
    }
    const n = described?.n_images || 0;
    const big = n > 5000;
    writeSpec(this.fields, {
      name: `CNN on ${described?.title || name}`,
      data: { dataset: name },
      model: { arch: "cnn", hidden: big ? [32, 64] : [16, 32] },
      optim: { lr: 0.05 },
      training: { max_epochs: big ? 10 : 20 },
    });
    const shape = described?.input_shape;
    const size = Array.isArray(shape) ? ` resized to ${shape[1]}×${shape[2]}` : "";
    this.info.textContent = `Training on your dataset “${described?.title || name}” (${n} images${size}): `
      + "a small CNN to start with. Change what you want, then launch.";
    this.info.hidden = false;
  }

  /**
   * The dataset field as a list of this lab's datasets: those whose files are missing here
   * (available: false) are greyed out with the reason, and cannot be chosen.
   */
  async datasetChoices() {
    const field = this.byKey.get("data.dataset");
    if (!field) return;
    let list;
    try {
      list = await listDatasets();
    } catch {
      return; // the text field stays: any name can still be typed
    }
    if (this.gone || !Array.isArray(list) || !list.length) return;
    const text = field.input;
    const select = el("select", { id: text.id, name: text.name, "aria-describedby": text.getAttribute("aria-describedby") });
    const option = (d) => el("option", {
      value: d.name, disabled: d.available === false, class: d.available === false ? "dataset-unavailable" : null,
      dataset: { available: String(d.available !== false) },
      text: `${d.title && d.title !== d.name ? `${d.title} (${d.name})` : d.name}`
        + (d.available === false ? ` — not available on this lab${d.reason ? `: ${d.reason}` : ""}` : "") });
    select.append(...list.map(option));
    const write = (v) => {
      const name = v === null || v === undefined ? field.defaultValue : String(v);
      if (name && ![...select.options].some((o) => o.value === name)) {
        select.append(el("option", { value: name, text: `${name} (not listed here)` }));
      }
      select.value = name;
    };
    write(field.read());
    text.replaceWith(select);
    if (text.nextElementSibling?.tagName === "DATALIST") text.nextElementSibling.remove();
    field.input = select;
    field.read = () => select.value;
    field.write = write;
    this.dataset.datasets = String(list.length);
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
    this.scheduleEditor?.update();
  }

  /** "Run with N seeds" and "Sweep this field": both make a study from the form's spec. */
  studyControls() {
    this.seedsInput = el("input", { type: "number", id: "study-seeds", min: "1", max: "64", step: "1", value: "3" });
    this.seedsError = el("p", { class: "field-error", id: "study-seeds-error", hidden: true });
    this.packBox = el("input", { type: "checkbox", id: "study-pack", checked: true });
    this.sweepField = el("select", { id: "sweep-field" });
    this.sweepValues = el("input", { type: "text", id: "sweep-values", autocomplete: "off", spellcheck: "false",
      placeholder: "e.g. 1, 32, 512", "aria-describedby": "sweep-values-help" });
    this.sweepError = el("p", { class: "field-error", id: "sweep-values-error", hidden: true });
    this.sweepSeeds = el("input", { type: "checkbox", id: "sweep-seeds" });
    this.sweepCount = el("small", { class: "field-help sweep-count", role: "status" });
    const count = () => this.countSweep();
    this.sweepField.addEventListener("change", () => { this.suggestValues(); count(); });
    for (const input of [this.sweepValues, this.sweepSeeds, this.seedsInput]) input.addEventListener("input", count);
    this.sweepSeeds.addEventListener("change", count);
    return el("fieldset", { class: "group study-controls" },
      el("legend", { text: "Studies: repeat or sweep this spec" }),
      el("div", { class: "study-row" },
        el("div", { class: "field" },
          el("label", { class: "field-label", for: "study-seeds", text: "seeds" }), this.seedsInput, this.seedsError,
          el("small", { class: "field-help", text: "The same spec with seeds seed, seed + 1, …: the compare view draws their mean ± std." })),
        el("div", { class: "field pack-toggle" },
          el("label", { class: "check-row", for: "study-pack" }, this.packBox, "train the seeds together"),
          el("small", { class: "field-help", text: "One stacked network for all seeds: the same runs, several times faster; η cannot then be set by hand per run." })),
        el("button", { type: "button", class: "study-button", text: "Run with N seeds", onclick: () => this.launchStudy("seeds") })),
      el("div", { class: "study-row" },
        el("div", { class: "field" },
          el("label", { class: "field-label", for: "sweep-field", text: "sweep field" }), this.sweepField),
        el("div", { class: "field field-grow" },
          el("label", { class: "field-label", for: "sweep-values", text: "values" }), this.sweepValues, this.sweepError,
          el("small", { class: "field-help", id: "sweep-values-help", text: "Comma-separated; one run per value, everything else as in the form. Lists as JSON, e.g. [64], [128, 128]." })),
        el("div", { class: "field pack-toggle" },
          el("label", { class: "check-row", for: "sweep-seeds" }, this.sweepSeeds, "× seeds: repeat every value with the seeds above"),
          this.sweepCount),
        el("button", { type: "button", class: "study-button", text: "Sweep this field", onclick: () => this.launchStudy("sweep") })));
  }

  fillSweepFields() {
    const skip = new Set(["name"]);
    this.sweepField.replaceChildren(...this.fields.filter((f) => !skip.has(f.key)).map((f) =>
      el("option", { value: f.key, text: f.key })));
    this.sweepField.value = this.byKey.has("optim.batch_size") ? "optim.batch_size" : this.fields[0]?.key;
    this.suggestValues();
  }

  suggestValues() {
    const examples = { "optim.batch_size": "1, 32, 512", "optim.lr": "0.01, 0.1, 0.5", "optim.weight_decay": "0, 0.0001, 0.001, 0.01",
      "model.init.scheme": "constant, pytorch, xavier_uniform, kaiming_uniform", "optim.momentum": "0, 0.9",
      "training.early_stopping.patience": "5, 20, 60", "model.batchnorm": "false, true", "seed": "0, 1, 2" };
    this.sweepValues.value = examples[this.sweepField.value] || "";
    this.countSweep();
  }

  /** Says how many runs the sweep makes: values, or values × seeds (a grid × seeds study). */
  countSweep() {
    let values = 0;
    try {
      values = this.parseValues(this.sweepValues.value).length;
    } catch {
      this.sweepCount.textContent = "";
      return;
    }
    const seeds = Number(this.seedsInput.value);
    this.sweepCount.textContent = this.sweepSeeds.checked && Number.isInteger(seeds) && seeds >= 1
      ? `${values} value${values === 1 ? "" : "s"} × ${seeds} seed${seeds === 1 ? "" : "s"} = ${values * seeds} runs`
      : `${values} run${values === 1 ? "" : "s"}, one seed each`;
  }

  /** "0.1, 0.5" → [0.1, 0.5]; "true" → true; "[128, 128]; [64]" → lists; anything else stays text. */
  parseValues(text) {
    const trimmed = text.trim();
    if (!trimmed) throw new Error("Write at least one value.");
    if (trimmed.startsWith("[[") || (trimmed.startsWith("[") && trimmed.includes("];"))) {
      try {
        return trimmed.startsWith("[[") ? JSON.parse(trimmed) : trimmed.split(";").map((t) => JSON.parse(t.trim()));
      } catch {
        throw new Error("Lists must be JSON, e.g. [[64], [128, 128]] or [64]; [128, 128].");
      }
    }
    return trimmed.split(",").map((t) => t.trim()).filter(Boolean).map((t) => {
      if (t === "true" || t === "false") return t === "true";
      if (t === "null") return null;
      const n = Number(t);
      return Number.isFinite(n) && /^[-+.\d]/.test(t) ? n : t.replace(/^"(.*)"$/, "$1");
    });
  }

  async launchStudy(kind) {
    if (this.busy) return;
    this.clearErrors();
    const value = this.readOrMark();
    if (!value) return;
    const name = value.name || null;
    let body;
    if (kind === "seeds") {
      const n = Number(this.seedsInput.value);
      body = { name: `${name || "spec"} × ${n} seeds`, base: value, seeds: n, pack: this.packBox.checked };
    } else {
      let values;
      try {
        values = this.parseValues(this.sweepValues.value);
      } catch (err) {
        this.showSideError(this.sweepValues, this.sweepError, err.message);
        return;
      }
      const path = this.sweepField.value;
      body = { name: `${name || "sweep"}: ${path}`, base: value, grid: { [path]: values } };
      if (this.sweepSeeds.checked) {
        // A grid × seeds study: every value repeated with seeds seed, seed + 1, … (the API's
        // `seeds` adds a seed axis to the grid); the study view then tests the values' means.
        const n = Number(this.seedsInput.value);
        body.name = `${body.name} × ${n} seeds`;
        body.seeds = n;
        body.pack = this.packBox.checked;
      }
    }
    this.busy = true;
    try {
      const study = await createStudy(body);
      location.hash = `#/studies/${encodeURIComponent(study.id)}`;
    } catch (err) {
      if (err instanceof ApiError && err.status === 422 && err.details.length) this.showStudyErrors(err.details);
      else this.fail(`The study was not created: ${err.message}`);
    } finally {
      this.busy = false;
    }
  }

  showSideError(input, errorEl, message) {
    errorEl.textContent = message;
    errorEl.hidden = false;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", `${errorEl.id} ${input.getAttribute("aria-describedby") || ""}`.trim());
    input.focus();
  }

  /** base.<field> goes next to the form's field, grid.<path> next to the sweep values, seeds next to seeds. */
  showStudyErrors(details) {
    const forForm = [];
    for (const d of details) {
      const parts = pathOf(d);
      if (parts[0] === "base") forForm.push({ ...d, loc: parts.slice(1), field: undefined });
      else if (parts[0] === "grid") this.showSideError(this.sweepValues, this.sweepError, readable(d.msg));
      else if (parts[0] === "seeds") this.showSideError(this.seedsInput, this.seedsError, readable(d.msg));
      else forForm.push(d);
    }
    if (forForm.length) this.showServerErrors(forForm);
    else {
      this.notice.replaceChildren(el("p", { text: "The server did not accept this study; the problem is marked below." }));
      this.notice.hidden = false;
    }
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
    for (const [input, errorEl] of [[this.sweepValues, this.sweepError], [this.seedsInput, this.seedsError]]) {
      if (!input) continue;
      errorEl.hidden = true;
      errorEl.textContent = "";
      input.removeAttribute("aria-invalid");
      input.setAttribute("aria-describedby", (input.getAttribute("aria-describedby") || "").replace(errorEl.id, "").trim());
    }
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

  /** The form's spec, or null after marking every field that cannot be read. */
  readOrMark() {
    const { value, errors } = readSpec(this.fields);
    if (!errors) return value;
    for (const [field, message] of errors) this.markField(field, message);
    this.fail("Some values cannot be read; they are marked below.");
    [...errors.keys()][0].input.focus();
    return null;
  }

  async submit() {
    if (this.busy) return;
    this.clearErrors();
    const value = this.readOrMark();
    if (!value) return;
    this.busy = true;
    this.submitButton.disabled = true;
    this.submitButton.textContent = "Launching…";
    try {
      const run = await createRun(value, this.getAttribute("lesson"));
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
