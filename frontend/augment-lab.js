// <augment-lab>: pick a dataset example (or upload an image of your own), build an
// augmentation pipeline, and see N seeded samples: sample k is exactly what a training run
// with seed + k does to that image. A second panel shows ColorJitter one component at a time,
// trials #0…#3, like the course's slides.
import { getSpecSchema, listDatasets, previewAugment, previewImage, previewJitter } from "./api.js";
import { FieldError, OMIT, makeField } from "./schema-fields.js";
import { el, useStyle } from "./ui.js";

useStyle(import.meta.url, "augment-lab.css");

// Each op with parameters that show it clearly on a small image; every parameter is optional.
const OPS = {
  random_crop: { padding: 1 },
  random_horizontal_flip: { p: 0.5 },
  random_vertical_flip: { p: 0.5 },
  random_resized_crop: { scale: [0.6, 1.0] },
  random_rotation: { degrees: 15 },
  random_affine: { degrees: 10, translate: [0.1, 0.1] },
  color_jitter: { brightness: 0.4, contrast: 0.4, saturation: 0.4, hue: 0.1 },
};

const RECIPES = [
  { id: "trap-vflip", label: "6-vs-9 trap: vertical flip", dataset: "digits", index: 6,
    ops: [{ op: "random_vertical_flip", p: 1.0 }],
    note: "Example 6 of digits is a 6. Flipped upside down it looks like a 9 but keeps the label 6: on digits this augmentation teaches wrong labels (guide: #/guides/9)." },
  { id: "trap-rot", label: "6-vs-9 trap: 180° rotation", dataset: "digits", index: 6,
    ops: [{ op: "random_rotation", degrees: [180, 180] }],
    note: "A 6 turned by 180° is a 9 with the label 6. Understand how the data was made before choosing an augmentation." },
  { id: "helpful", label: "Helpful: small shift and rotation", dataset: "digits", index: 6,
    ops: [{ op: "random_crop", padding: 1 }, { op: "random_rotation", degrees: 10 }],
    note: "Small shifts and rotations keep a 6 a 6: new examples with the right label." },
  // Example 3 of shapes (the loader's order, fixed by the dataset's seed) is a left arrow;
  // example 0 is a triangle, on which a flip shows nothing.
  { id: "flip-shapes", label: "Arrows: horizontal flip", dataset: "shapes", index: 3,
    ops: [{ op: "random_horizontal_flip", p: 0.5 }],
    note: "Example 3 of shapes is a left arrow. About half the samples are flipped into right arrows that keep the label arrow_left: on shapes, a horizontal flip turns one class into the other." },
];

const pngSrc = (b64) => `data:image/png;base64,${b64}`;

function imageFigure(b64, caption, attrs = {}) {
  return el("figure", { class: "aug-figure", ...attrs },
    el("img", { src: pngSrc(b64), alt: caption, width: "96", height: "96" }),
    el("figcaption", { text: caption }));
}

/** Each op's parameter schema, as the spec schema publishes it (AugmentOp's x-op-params). */
function opSchemasOf(schema) {
  for (const def of Object.values(schema?.$defs || {})) if (def?.["x-op-params"]) return def["x-op-params"];
  return null;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/** The 422 entries of one prefix, e.g. augment.1.degrees → {1: ["degrees: …"]}. */
function errorsByOp(details) {
  const byOp = new Map();
  const rest = [];
  for (const d of details || []) {
    const loc = (Array.isArray(d.loc) ? d.loc.map(String) : String(d.field || "").split(".")).filter((p) => p !== "body");
    if (loc[0] === "augment" && /^\d+$/.test(loc[1] || "")) {
      const i = Number(loc[1]);
      if (!byOp.has(i)) byOp.set(i, []);
      byOp.get(i).push(String(d.msg || "not accepted"));
    } else {
      rest.push({ field: loc.join("."), msg: String(d.msg || "not accepted") });
    }
  }
  return { byOp, rest };
}

class AugmentLab extends HTMLElement {
  connectedCallback() {
    this.rows = [];
    this.file = null;
    this.serial = 0;
    this.opSchemas = null; // until the schema arrives, parameters are a JSON box per op
    getSpecSchema().then((schema) => {
      if (this.gone) return;
      this.opSchemas = opSchemasOf(schema);
      if (this.opSchemas) for (const row of this.rows) this.useFields(row, this.paramsOf(row) || {});
    }, () => {});
    this.notice = el("div", { class: "notice notice-error", role: "alert", hidden: true });
    this.datasetSelect = el("select", { id: "aug-dataset", name: "dataset" }, el("option", { value: "digits", text: "digits" }));
    this.indexInput = el("input", { type: "number", id: "aug-index", min: "0", step: "1", value: "6" });
    this.fileInput = el("input", { type: "file", id: "aug-file", accept: "image/*", onchange: () => this.pickFile() });
    this.fileNote = el("p", { class: "muted aug-file-note", text: "" });
    this.nInput = el("input", { type: "number", id: "aug-n", min: "1", max: "64", step: "1", value: "8" });
    this.seedInput = el("input", { type: "number", id: "aug-seed", min: "0", step: "1", value: "0" });
    this.opList = el("ol", { class: "op-list", "aria-label": "Pipeline" });
    this.addSelect = el("select", { id: "aug-add-op" }, Object.keys(OPS).map((op) => el("option", { value: op, text: op })));
    this.recipeNote = el("p", { class: "notice notice-info recipe-note", hidden: true });
    this.sourceError = el("p", { class: "field-error", hidden: true, id: "aug-source-error" });
    this.samples = el("div", { class: "aug-grid", "aria-live": "polite" });
    this.original = el("div", { class: "aug-original" });
    this.showButton = el("button", { type: "submit", class: "button-primary", text: "Show samples" });

    const form = el("form", { class: "card aug-form", novalidate: true, "aria-label": "Augmentation pipeline" },
      el("fieldset", { class: "aug-source" },
        el("legend", { text: "Image" }),
        el("div", { class: "aug-row" },
          el("div", { class: "aug-field" }, el("label", { for: "aug-dataset", text: "dataset" }), this.datasetSelect),
          el("div", { class: "aug-field" }, el("label", { for: "aug-index", text: "example index" }), this.indexInput),
          el("div", { class: "aug-field" }, el("label", { for: "aug-file", text: "or an image of your own" }), this.fileInput)),
        this.fileNote, this.sourceError),
      el("fieldset", { class: "aug-pipeline" },
        el("legend", { text: "Pipeline (applied in order)" }),
        this.opList,
        el("div", { class: "inline-form" },
          el("label", { for: "aug-add-op", text: "add" }), this.addSelect,
          el("button", { type: "button", text: "Add op", onclick: () => { this.addOp({ op: this.addSelect.value, ...OPS[this.addSelect.value] }); } }))),
      el("div", { class: "aug-row aug-run" },
        el("div", { class: "aug-field" }, el("label", { for: "aug-n", text: "samples N" }), this.nInput),
        el("div", { class: "aug-field" }, el("label", { for: "aug-seed", text: "seed" }), this.seedInput),
        this.showButton));
    form.addEventListener("submit", (event) => { event.preventDefault(); this.showSamples(); });

    this.replaceChildren(
      el("div", { class: "page-head" }, el("h1", { text: "Augmentation lab" })),
      el("p", { class: "muted aug-intro", text: "Sample k uses seed + k, through the same code as training: the same seed always gives the same images. Try the recipes, then your own pipeline." }),
      el("div", { class: "recipes", role: "group", "aria-label": "Recipes" },
        RECIPES.map((r) => el("button", { type: "button", dataset: { recipe: r.id }, text: r.label, onclick: () => this.useRecipe(r) }))),
      this.recipeNote,
      this.notice,
      el("div", { class: "aug-layout" },
        form,
        el("section", { class: "card aug-results", "aria-labelledby": "aug-results-heading" },
          el("h2", { id: "aug-results-heading", text: "Samples" }),
          this.original, this.samples)),
      this.jitterPanel());
    this.addOp({ op: "random_crop", padding: 1 });
    this.addOp({ op: "random_rotation", degrees: 15 });
    this.loadDatasets();
  }

  disconnectedCallback() {
    this.gone = true;
  }

  async loadDatasets() {
    try {
      const all = await listDatasets();
      if (this.gone) return;
      const images = all.filter((d) => d.kind === "image" && d.available !== false);
      const current = this.datasetSelect.value;
      this.datasetSelect.replaceChildren(...images.map((d) => el("option", { value: d.name,
        text: d.uploaded ? `${d.title || d.name} (uploaded)` : d.name })));
      this.datasetSelect.value = images.some((d) => d.name === current) ? current : images[0]?.name || "digits";
      this.jitterDataset.replaceChildren(...images.map((d) => el("option", { value: d.name, text: d.uploaded ? `${d.title || d.name} (uploaded)` : d.name })));
      this.jitterDataset.value = images.some((d) => d.name === "shapes") ? "shapes" : this.datasetSelect.value;
      // Something to look at straight away: the default pipeline on a digit.
      if (!this.dataset.shown) this.showSamples();
    } catch (err) {
      this.fail(`Could not list the datasets: ${err.message}`);
    }
  }

  fail(message) {
    this.notice.textContent = message;
    this.notice.hidden = !message;
  }

  pickFile() {
    this.file = this.fileInput.files?.[0] || null;
    this.fileNote.replaceChildren();
    if (this.file) {
      this.fileNote.append(`Using your image “${this.file.name}”. `,
        el("button", { type: "button", class: "link-button", text: "Use the dataset again",
          onclick: () => { this.fileInput.value = ""; this.pickFile(); } }));
    }
    this.datasetSelect.disabled = Boolean(this.file);
    this.indexInput.disabled = Boolean(this.file);
  }

  useRecipe(recipe) {
    this.fileInput.value = "";
    this.pickFile();
    if ([...this.datasetSelect.options].some((o) => o.value === recipe.dataset)) this.datasetSelect.value = recipe.dataset;
    this.indexInput.value = String(recipe.index);
    for (const row of [...this.rows]) this.removeOp(row);
    for (const op of recipe.ops) this.addOp(op);
    this.recipeNote.textContent = recipe.note;
    this.recipeNote.hidden = false;
    this.showSamples();
  }

  addOp(op) {
    const i = this.rows.length;
    const { op: name, ...params } = op;
    const select = el("select", { "aria-label": "op" }, Object.keys(OPS).map((o) => el("option", { value: o, text: o })));
    select.value = name;
    const error = el("p", { class: "field-error op-error", hidden: true });
    const row = { select, paramsInput: null, fields: null, error, box: el("div", { class: "op-params" }) };
    select.addEventListener("change", () => this.setParams(row, OPS[select.value] || {}));
    row.node = el("li", { class: "op-row", dataset: { op: name } },
      el("div", { class: "op-controls" },
        select,
        el("button", { type: "button", class: "icon-button", "aria-label": "Move up", text: "↑", onclick: () => this.moveOp(row, -1) }),
        el("button", { type: "button", class: "icon-button", "aria-label": "Remove this op", text: "✕", onclick: () => this.removeOp(row) })),
      row.box, error);
    this.rows.push(row);
    this.opList.append(row.node);
    this.setParams(row, params);
    this.relabel();
    return i;
  }

  /** The row's parameters: one field per parameter of its op (from the schema), or JSON. */
  setParams(row, params) {
    row.node.dataset.op = row.select.value;
    if (this.opSchemas?.[row.select.value]) {
      this.useFields(row, params);
      return;
    }
    row.fields = null;
    row.paramsInput = el("input", { type: "text", class: "mono", spellcheck: "false", autocomplete: "off",
      "aria-label": "parameters (JSON)", value: JSON.stringify(params) });
    row.box.replaceChildren(row.paramsInput);
    this.relabel();
  }

  useFields(row, params) {
    const schema = this.opSchemas?.[row.select.value];
    if (!schema) return;
    const n = (this.serial += 1);
    row.fields = Object.entries(schema.properties || {}).map(([name, node]) =>
      makeField(schema, name, node, ["aug", `op${n}`, name]));
    for (const f of row.fields) {
      const name = f.path[f.path.length - 1];
      if (name in params) f.write(params[name]);
    }
    row.paramsInput = null;
    row.box.replaceChildren(el("div", { class: "op-fields" }, row.fields.map((f) => f.wrapper)));
  }

  /** The row's parameters as an object (defaults left out), or null after marking the row. */
  paramsOf(row) {
    if (row.fields) {
      const out = {};
      for (const f of row.fields) {
        f.input.removeAttribute("aria-invalid");
        let v;
        try {
          v = f.read();
        } catch (err) {
          if (!(err instanceof FieldError)) throw err;
          row.error.textContent = `${f.path[f.path.length - 1]}: ${err.message}`;
          row.error.hidden = false;
          f.input.setAttribute("aria-invalid", "true");
          return null;
        }
        const name = f.path[f.path.length - 1];
        if (v === OMIT || (f.hasDefault && same(v, f.defaultValue))) continue;
        out[name] = v;
      }
      return out;
    }
    const text = row.paramsInput.value.trim();
    if (!text) return {};
    try {
      const params = JSON.parse(text);
      if (!params || typeof params !== "object" || Array.isArray(params)) throw new Error("not an object");
      return params;
    } catch {
      row.error.textContent = 'Write the parameters as a JSON object, e.g. {"p": 0.5}.';
      row.error.hidden = false;
      row.paramsInput.setAttribute("aria-invalid", "true");
      return null;
    }
  }

  removeOp(row) {
    this.rows = this.rows.filter((r) => r !== row);
    row.node.remove();
    this.relabel();
  }

  moveOp(row, delta) {
    const i = this.rows.indexOf(row);
    const j = i + delta;
    if (j < 0 || j >= this.rows.length) return;
    [this.rows[i], this.rows[j]] = [this.rows[j], this.rows[i]];
    this.opList.replaceChildren(...this.rows.map((r) => r.node));
    this.relabel();
  }

  relabel() {
    this.rows.forEach((r, i) => {
      r.select.setAttribute("aria-label", `op ${i + 1}`);
      r.paramsInput?.setAttribute("aria-label", `parameters of op ${i + 1} (JSON)`);
      r.box.setAttribute("aria-label", `parameters of op ${i + 1}`);
      r.box.setAttribute("role", "group");
    });
  }

  /** The pipeline as spec ops, or null after marking the rows whose parameters can't be read. */
  readOps() {
    let ok = true;
    const ops = this.rows.map((r) => {
      r.error.hidden = true;
      r.paramsInput?.removeAttribute("aria-invalid");
      const params = this.paramsOf(r);
      if (!params) ok = false;
      return { op: r.select.value, ...(params || {}) };
    });
    return ok ? ops : null;
  }

  showErrors(err) {
    const { byOp, rest } = errorsByOp(err.details);
    for (const [i, messages] of byOp) {
      const row = this.rows[i];
      if (!row) continue;
      row.error.textContent = messages.join(" ");
      row.error.hidden = false;
      row.paramsInput?.setAttribute("aria-invalid", "true");
    }
    const source = rest.filter((r) => ["dataset", "index", "file"].includes(r.field));
    if (source.length) {
      this.sourceError.textContent = source.map((r) => `${r.field}: ${r.msg}`).join(" ");
      this.sourceError.hidden = false;
    }
    const other = rest.filter((r) => !source.includes(r));
    if (other.length || (!byOp.size && !source.length)) {
      this.fail(other.length ? other.map((r) => `${r.field || "request"}: ${r.msg}`).join(" ") : err.message);
    }
  }

  async showSamples() {
    this.fail("");
    this.sourceError.hidden = true;
    const ops = this.readOps();
    if (!ops) return;
    const n = Number(this.nInput.value) || 8;
    const seed = Number(this.seedInput.value) || 0;
    const token = (this.sampleToken = (this.sampleToken || 0) + 1);
    this.showButton.disabled = true;
    this.samples.setAttribute("aria-busy", "true");
    this.dataset.busy = "true";
    try {
      const out = this.file
        ? await previewImage(this.file, { augment: ops, n, seed })
        : await previewAugment({ dataset: this.datasetSelect.value, index: Number(this.indexInput.value) || 0, augment: ops, n, seed });
      // Only the newest request is shown: an older answer arriving late is dropped.
      if (this.gone || token !== this.sampleToken) return;
      this.original.replaceChildren(imageFigure(out.original, this.file ? "your image" : `original: ${this.datasetSelect.value} #${this.indexInput.value}, label ${out.label}`, { class: "aug-figure aug-figure-original" }));
      this.samples.replaceChildren(...(out.samples || []).map((s) => imageFigure(s.png, `seed ${s.seed}`, { dataset: { seed: String(s.seed) } })));
      this.dataset.shown = String((out.samples || []).length);
    } catch (err) {
      if (token !== this.sampleToken) return;
      if (err.status === 422) this.showErrors(err);
      else this.fail(`No preview: ${err.message}`);
    } finally {
      if (token === this.sampleToken) {
        this.showButton.disabled = false;
        this.samples.removeAttribute("aria-busy");
        delete this.dataset.busy;
      }
    }
  }

  jitterPanel() {
    const field = (name, value, attrs = {}) => {
      const input = el("input", { type: "number", id: `jit-${name}`, step: "any", min: "0", value: String(value), ...attrs });
      return [input, el("div", { class: "aug-field" }, el("label", { for: `jit-${name}`, text: name }), input)];
    };
    const [b, bField] = field("brightness", 0.4);
    const [c, cField] = field("contrast", 0.4);
    const [s, sField] = field("saturation", 0.4);
    const [h, hField] = field("hue", 0.1, { max: "0.5" });
    const [t, tField] = field("trials", 4, { step: "1", min: "1", max: "16" });
    const [seed, seedField] = field("seed", 0, { step: "1" });
    const [index, indexField] = field("index", 0, { step: "1" });
    this.jitterDataset = el("select", { id: "jit-dataset" }, el("option", { value: "shapes", text: "shapes" }));
    this.jitterInputs = { brightness: b, contrast: c, saturation: s, hue: h, trials: t, seed, index };
    this.jitterGrid = el("div", { class: "jitter-grid", "aria-live": "polite" });
    this.jitterError = el("p", { class: "field-error", hidden: true });
    const form = el("form", { class: "aug-row", novalidate: true, "aria-label": "ColorJitter components" },
      el("div", { class: "aug-field" }, el("label", { for: "jit-dataset", text: "dataset" }), this.jitterDataset),
      indexField, bField, cField, sField, hField, tField, seedField,
      el("button", { type: "submit", class: "button-primary", text: "Show ColorJitter" }));
    form.addEventListener("submit", (event) => { event.preventDefault(); this.showJitter(); });
    return el("section", { class: "card jitter-panel", "aria-labelledby": "jitter-heading" },
      el("h2", { id: "jitter-heading", text: "ColorJitter, one component at a time" }),
      el("p", { class: "muted", text: "Each row applies only one of brightness, contrast, saturation and hue, with trials #0, #1, … drawn from successive seeds, as on the course's slides." }),
      form, this.jitterError, this.jitterGrid);
  }

  async showJitter() {
    const v = Object.fromEntries(Object.entries(this.jitterInputs).map(([k, input]) => [k, Number(input.value)]));
    this.jitterError.hidden = true;
    try {
      const out = await previewJitter({ dataset: this.jitterDataset.value, ...v });
      if (this.gone) return;
      this.jitterGrid.replaceChildren(
        el("div", { class: "jitter-row" },
          el("p", { class: "jitter-name", text: "original" }),
          imageFigure(out.original, `${this.jitterDataset.value} #${v.index}, label ${out.label}`)),
        ...(out.components || []).map((comp) => el("div", { class: "jitter-row", dataset: { component: comp.name } },
          el("p", { class: "jitter-name" }, el("strong", { text: comp.name }), ` ${comp.value}`,
            comp.applies ? null : el("span", { class: "muted", text: " (no effect on 1-channel images)" })),
          ...comp.trials.map((trial) => imageFigure(trial.png, `trial #${trial.trial}`, { dataset: { trial: String(trial.trial) } })))));
    } catch (err) {
      this.jitterError.textContent = err.status === 422 && err.details?.length
        ? err.details.map((d) => `${d.field || (d.loc || []).slice(1).join(".")}: ${d.msg}`).join(" ")
        : `No preview: ${err.message}`;
      this.jitterError.hidden = false;
    }
  }
}

customElements.define("augment-lab", AugmentLab);
