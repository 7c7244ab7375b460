// Turns the spec's JSON Schema (pydantic v2 output) into form controls.
// buildForm(schema) returns {root, fields, groups}: `root` holds one <fieldset> per nested
// object; each field knows its dotted path, reads its value back (or says why it can't) and
// can be written, so the form never needs to know the spec's shape in advance.
import { makeOpsField } from "./augment-ops.js";
import { el } from "./ui.js";

export const OMIT = Symbol("omit");

/** A value the user typed that cannot become JSON; shown next to its field. */
export class FieldError extends Error {}

export function deref(root, node) {
  let seen = 0;
  let out = node || {};
  while (out.$ref && seen++ < 20) {
    const { $ref, ...rest } = out;
    const target = $ref.replace(/^#\//, "").split("/").reduce((o, k) => (o ? o[k] : undefined), root);
    // The property's own description (the one in the parent) wins over the definition's.
    out = { ...(target || {}), ...rest };
  }
  return out;
}

function splitNullable(root, node) {
  if (!Array.isArray(node.anyOf)) return { nullable: node.type === "null", branches: [node] };
  const branches = node.anyOf.map((b) => deref(root, b));
  const nonNull = branches.filter((b) => b.type !== "null");
  return { nullable: nonNull.length < branches.length, branches: nonNull };
}

const isChoice = (b) => Array.isArray(b.enum) || "const" in b || b.type === "boolean";
const choicesOf = (b) =>
  b.type === "boolean" && !b.enum ? [true, false] : b.enum ? b.enum : "const" in b ? [b.const] : [];
const isScalarItems = (items) =>
  items && ["integer", "number", "string"].includes(items.type) && !items.prefixItems && !items.enum;

function kindOf(root, node) {
  const { nullable, branches } = splitNullable(root, node);
  if (branches.length > 1) {
    return { nullable, kind: branches.every(isChoice) ? "choice" : "union", branches };
  }
  const b = branches[0] || {};
  if (b.type === "object" && b.properties) return { nullable, kind: "object", branch: b };
  if (b.enum || "const" in b) return { nullable, kind: "choice", branches: [b] };
  if (b.type === "boolean") return { nullable, kind: nullable ? "choice" : "boolean", branches: [b] };
  if (b.type === "integer" || b.type === "number") return { nullable, kind: b.type, branch: b };
  if (b.type === "array") {
    const items = deref(root, b.items);
    return { nullable, kind: isScalarItems(items) ? "list" : "json", branch: b, items };
  }
  if (b.type === "string") return { nullable, kind: "text", branch: b };
  return { nullable, kind: "json", branch: b };
}

function constraintText(b) {
  if (!b) return "";
  const parts = [];
  if ("exclusiveMinimum" in b) parts.push(`> ${b.exclusiveMinimum}`);
  if ("minimum" in b) parts.push(`≥ ${b.minimum}`);
  if ("exclusiveMaximum" in b) parts.push(`< ${b.exclusiveMaximum}`);
  if ("maximum" in b) parts.push(`≤ ${b.maximum}`);
  return parts.join(", ");
}

function showDefault(value) {
  if (value === null) return "empty (none)";
  if (Array.isArray(value)) {
    return value.every((v) => typeof v !== "object") ? value.join(", ") || "[]" : JSON.stringify(value);
  }
  return typeof value === "string" ? value : JSON.stringify(value);
}

const slug = (path) => `f-${path.join("-").replace(/[^A-Za-z0-9_-]/g, "_")}`;

function parseNumber(text, integer, path) {
  const n = Number(text);
  if (text === "" || !Number.isFinite(n)) throw new FieldError("Write a number.");
  if (integer && !Number.isInteger(n)) throw new FieldError("Write a whole number.");
  return n;
}

export function makeField(root, name, node, path) {
  const info = kindOf(root, node);
  // A list of ops whose parameters the schema publishes per op (augment): a sub-form.
  if (info.kind === "json" && info.items?.["x-op-params"]) {
    return makeOpsField({ name, node, path, opSchemas: info.items["x-op-params"], makeParam: makeField, OMIT });
  }
  const id = slug(path);
  const hasDefault = "default" in node;
  const help = [node.description || "", hasDefault ? `default: ${showDefault(node.default)}` : "",
    constraintText(info.branch)].filter(Boolean).join(" · ");
  const label = el("label", { for: id, class: "field-label", text: name });
  const helpEl = el("small", { class: "field-help", id: `${id}-help`, text: help });
  const errorEl = el("p", { class: "field-error", id: `${id}-error`, hidden: true });
  let input;
  let read;
  let write;
  let datalist = null;

  switch (info.kind) {
    case "boolean": {
      input = el("input", { type: "checkbox", id, name: path.join(".") });
      read = () => input.checked;
      write = (v) => { input.checked = Boolean(v); };
      break;
    }
    case "choice": {
      const values = info.branches.flatMap(choicesOf);
      if (info.nullable) values.unshift(null);
      input = el("select", { id, name: path.join(".") },
        values.map((v, i) => el("option", { value: String(i), text: v === null ? "— none —" : String(v) })));
      read = () => values[Number(input.value)];
      write = (v) => {
        const i = values.findIndex((x) => x === v);
        input.value = String(i >= 0 ? i : 0);
      };
      break;
    }
    case "integer":
    case "number": {
      const integer = info.kind === "integer";
      input = el("input", { type: "number", id, name: path.join("."), step: integer ? "1" : "any",
        inputmode: integer ? "numeric" : "decimal" });
      read = () => {
        const text = input.value.trim();
        if (text === "") {
          if (input.validity && input.validity.badInput) throw new FieldError("Write a number.");
          return info.nullable ? null : OMIT;
        }
        return parseNumber(text, integer, path);
      };
      write = (v) => { input.value = v === null || v === undefined ? "" : String(v); };
      break;
    }
    case "union": {
      // e.g. batch_size: an integer or "full". Numbers become numbers, the rest stays text.
      input = el("input", { type: "text", id, name: path.join("."), autocomplete: "off", spellcheck: "false" });
      const types = new Set(info.branches.map((b) => b.type));
      read = () => {
        const text = input.value.trim();
        if (text === "") return info.nullable ? null : OMIT;
        if (types.has("integer") && /^[+-]?\d+$/.test(text)) return Number(text);
        if (types.has("number") && text !== "" && Number.isFinite(Number(text))) return Number(text);
        if (types.has("boolean") && (text === "true" || text === "false")) return text === "true";
        if (types.has("array") && /^\[.*\]$/s.test(text)) {
          try {
            return JSON.parse(text);
          } catch {
            throw new FieldError("Write a list as JSON, e.g. [28, 28].");
          }
        }
        return text;
      };
      write = (v) => { input.value = v === null || v === undefined ? "" : Array.isArray(v) ? JSON.stringify(v) : String(v); };
      const options = info.branches.flatMap((b) => ("const" in b ? [b.const] : b.enum || []));
      if (options.length) input.setAttribute("placeholder", `a number or ${options.map((o) => `"${o}"`).join(", ")}`);
      break;
    }
    case "list": {
      const integer = info.items.type === "integer";
      const numeric = integer || info.items.type === "number";
      input = el("input", { type: "text", id, name: path.join("."), autocomplete: "off",
        spellcheck: "false", placeholder: hasDefault ? "" : "empty = default; [] = none" });
      read = () => {
        const text = input.value.trim();
        if (text === "") return info.nullable ? null : hasDefault ? [] : OMIT;
        if (/^\[\s*\]$/.test(text)) return [];
        const tokens = text.replace(/^\[|\]$/g, "").split(/[\s,;]+/).filter(Boolean);
        if (!numeric) return tokens;
        return tokens.map((t) => {
          const n = Number(t);
          if (!Number.isFinite(n) || (integer && !Number.isInteger(n))) {
            throw new FieldError(`“${t}” is not a ${integer ? "whole number" : "number"}; write numbers separated by commas, e.g. 128, 128.`);
          }
          return n;
        });
      };
      write = (v) => { input.value = Array.isArray(v) ? v.join(", ") : ""; };
      break;
    }
    case "json": {
      input = el("textarea", { id, name: path.join("."), rows: "3", spellcheck: "false",
        class: "json-input", placeholder: hasDefault ? "" : "JSON; empty = default" });
      read = () => {
        const text = input.value.trim();
        if (text === "") return info.nullable ? null : OMIT;
        try {
          return JSON.parse(text);
        } catch {
          throw new FieldError("This is not valid JSON (use double quotes, e.g. [{\"op\": \"random_crop\", \"size\": 8}]).");
        }
      };
      write = (v) => { input.value = v === undefined || v === null ? "" : JSON.stringify(v); };
      break;
    }
    default: {
      input = el("input", { type: "text", id, name: path.join("."), autocomplete: "off", spellcheck: "false" });
      const examples = info.branch && Array.isArray(info.branch.examples) ? info.branch.examples
        : Array.isArray(node.examples) ? node.examples : null;
      if (examples) {
        datalist = el("datalist", { id: `${id}-options` }, examples.map((e) => el("option", { value: String(e) })));
        input.setAttribute("list", `${id}-options`);
      }
      read = () => {
        const text = input.value.trim();
        if (text === "") return info.nullable ? null : OMIT;
        return text;
      };
      write = (v) => { input.value = v === null || v === undefined ? "" : String(v); };
    }
  }

  input.setAttribute("aria-describedby", `${id}-help`);
  const wrapper = el("div", { class: `field field-${info.kind}`, dataset: { path: path.join(".") } });
  if (info.kind === "boolean") {
    wrapper.append(el("div", { class: "check-row" }, input, label), errorEl, helpEl);
  } else {
    wrapper.append(label, input, datalist || "", errorEl, helpEl);
  }
  if (info.kind === "json") wrapper.classList.add("field-wide");

  const field = {
    path, key: path.join("."), input, wrapper, errorEl, helpId: `${id}-help`,
    read, write, defaultValue: hasDefault ? node.default : undefined, hasDefault,
  };
  if (hasDefault) write(node.default);
  return field;
}

function legendText(node, fallback) {
  const text = (node.description || node.title || fallback || "").trim();
  return text.endsWith(".") && !text.endsWith("..") ? text.slice(0, -1) : text;
}

function makeGroup(root, node, path, legend, fields, groups) {
  const errorEl = el("p", { class: "field-error group-error", hidden: true });
  const grid = el("div", { class: "field-grid" });
  const fieldset = el("fieldset", { class: `group depth-${path.length}`, dataset: { path: path.join(".") } },
    el("legend", { text: legend }), errorEl, grid);
  if (path.length) groups.set(path.join("."), { fieldset, errorEl, path });
  const nested = [];
  for (const [name, raw] of Object.entries(node.properties || {})) {
    const child = deref(root, raw);
    const info = kindOf(root, child);
    const childPath = [...path, name];
    if (info.kind === "object") {
      const merged = { ...info.branch, description: child.description || info.branch.description };
      nested.push(makeGroup(root, merged, childPath, legendText(merged, name), fields, groups));
    } else {
      const field = makeField(root, name, child, childPath);
      fields.push(field);
      grid.append(field.wrapper);
    }
  }
  fieldset.append(...nested);
  return fieldset;
}

// Nested objects that are lessons of their own (initialisation, early stopping) get a top-level
// section of their own, placed after the section they live in; their field paths stay nested.
const PROMOTED = ["model.init", "training.early_stopping"];

function promote(root, groups) {
  for (const key of PROMOTED) {
    const group = groups.get(key);
    if (!group) continue;
    const parent = groups.get(group.path.slice(0, 1).join("."));
    group.fieldset.classList.replace(`depth-${group.path.length}`, "depth-1");
    group.fieldset.classList.add("promoted");
    (parent ? parent.fieldset : root.lastElementChild).after(group.fieldset);
  }
}

/** Build the whole form body from the spec schema. */
export function buildForm(schema) {
  const fields = [];
  const groups = new Map();
  const root = el("div", { class: "schema-form" });
  const general = { properties: {} };
  const sections = [];
  for (const [name, raw] of Object.entries(schema.properties || {})) {
    const node = deref(schema, raw);
    const info = kindOf(schema, node);
    if (info.kind === "object") {
      const merged = { ...info.branch, description: node.description || info.branch.description };
      sections.push(() => makeGroup(schema, merged, [name], legendText(merged, name), fields, groups));
    } else if (info.kind === "json") {
      // A list of objects (augment) is a section of its own, titled like one.
      sections.push(() => makeGroup(schema, { properties: { [name]: raw } }, [],
        node.title || name, fields, groups));
    } else {
      general.properties[name] = raw;
    }
  }
  if (Object.keys(general.properties).length) {
    root.append(makeGroup(schema, general, [], "Run", fields, groups));
  }
  for (const make of sections) root.append(make());
  promote(root, groups);
  return { root, fields, groups };
}

/** Collect the spec: {value} or {errors: Map(field -> message)} when something can't be read. */
export function readSpec(fields) {
  const spec = {};
  const errors = new Map();
  for (const field of fields) {
    let value;
    try {
      value = field.read();
    } catch (err) {
      if (err instanceof FieldError) {
        errors.set(field, err.message);
        continue;
      }
      throw err;
    }
    if (value === OMIT) continue;
    let target = spec;
    for (const key of field.path.slice(0, -1)) target = target[key] ??= {};
    target[field.path[field.path.length - 1]] = value;
  }
  return errors.size ? { errors } : { value: spec };
}

/** Set every field from a (partial) spec; fields the spec lacks go back to their defaults. */
export function writeSpec(fields, spec) {
  for (const field of fields) {
    const value = field.path.reduce((o, k) => (o && typeof o === "object" ? o[k] : undefined), spec);
    if (value !== undefined) field.write(value);
    else field.write(field.hasDefault ? field.defaultValue : undefined);
  }
}
