// The spec's `augment` list as a sub-form instead of a JSON box: one row per op, in order, each
// with the op's own parameter fields, generated from the schema's `x-op-params` (one JSON
// Schema per op, published by worker/engine/augment_spec.py). makeOpsField() returns a field
// object like schema-fields.js's (read, write, input, wrapper, errorEl), so the launch form
// reads, writes and marks it like any other field.
import { el } from "./ui.js";

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * The field for a list of ops. `opSchemas`: {op: JSON Schema of its parameters};
 * `makeParam(schema, name, node, path)`: schema-fields.js's field maker; `OMIT`: its "no value".
 */
export function makeOpsField({ name, node, path, opSchemas, makeParam, OMIT }) {
  const key = path.join(".");
  const id = `f-${key.replace(/[^A-Za-z0-9_-]/g, "_")}`;
  const ops = Object.keys(opSchemas);
  const rows = []; // {op, params: [field], element}
  let serial = 0; // row ids stay unique when rows are removed and added
  const list = el("ol", { class: "ops-list", "aria-label": "Augmentation ops, applied in this order" });
  const empty = el("p", { class: "muted ops-empty", text: "No augmentation: the training examples are used as they are." });
  const addSelect = el("select", { id, name: key },
    ops.map((op) => el("option", { value: op, text: op.replaceAll("_", " ") })));
  const errorEl = el("p", { class: "field-error", id: `${id}-error`, hidden: true });
  const help = `${node.description || ""} Each op's parameters start at their defaults; only the ones you change are sent.`.trim();
  const helpEl = el("small", { class: "field-help", id: `${id}-help`, text: help });

  function renumber() {
    rows.forEach((row, i) => {
      row.element.dataset.index = String(i);
      row.title.textContent = `${i + 1}. ${row.op.replaceAll("_", " ")}`;
    });
    empty.hidden = rows.length > 0;
  }

  function addRow(op, values = {}) {
    const schema = opSchemas[op] || { properties: {} };
    const index = serial++;
    const params = Object.entries(schema.properties || {}).map(([param, raw]) =>
      makeParam(schema, param, raw, [...path, `op${index}`, param]));
    for (const p of params) {
      if (p.path[p.path.length - 1] in values) p.write(values[p.path[p.path.length - 1]]);
    }
    const title = el("h4", { class: "ops-title" });
    const row = { op, params, title, defaults: Object.fromEntries(params.map((p) => [p.path[p.path.length - 1], p.defaultValue])) };
    const remove = el("button", { type: "button", class: "ops-remove", text: "Remove",
      onclick: () => {
        rows.splice(rows.indexOf(row), 1);
        row.element.remove();
        renumber();
        wrapper.dispatchEvent(new Event("change", { bubbles: true }));
      } });
    row.element = el("li", { class: "ops-row", dataset: { op } },
      el("div", { class: "ops-head" }, title, remove),
      el("p", { class: "muted ops-note", text: schema.description || "" }),
      el("div", { class: "field-grid" }, params.map((p) => p.wrapper)));
    rows.push(row);
    list.append(row.element);
    renumber();
    return row;
  }

  const addButton = el("button", { type: "button", class: "ops-add", text: "Add this op",
    onclick: () => {
      addRow(addSelect.value);
      wrapper.dispatchEvent(new Event("change", { bubbles: true }));
    } });
  const wrapper = el("div", { class: "field field-ops field-wide", dataset: { path: key } },
    el("span", { class: "field-label", text: name }),
    list, empty,
    el("div", { class: "inline-form ops-adder" },
      el("label", { for: id, text: "op" }), addSelect, addButton),
    errorEl, helpEl);
  addSelect.setAttribute("aria-describedby", `${id}-help`);

  const read = () => {
    if (!rows.length) return node.default !== undefined ? [] : OMIT;
    return rows.map((row) => {
      const out = { op: row.op };
      for (const p of row.params) {
        const v = p.read(); // a FieldError names the op's parameter
        const param = p.path[p.path.length - 1];
        if (v === OMIT || same(v, row.defaults[param])) continue;
        out[param] = v;
      }
      return out;
    });
  };
  const write = (value) => {
    rows.splice(0).forEach((row) => row.element.remove());
    for (const item of Array.isArray(value) ? value : []) {
      if (item && typeof item === "object" && opSchemas[item.op]) {
        const { op, ...values } = item;
        addRow(op, values);
      }
    }
    renumber();
  };
  write(node.default);
  const field = {
    path, key, input: addSelect, wrapper, errorEl, helpId: `${id}-help`, read, write,
    defaultValue: node.default, hasDefault: "default" in node,
    /** The parameter fields of every row (422 messages naming augment.<i>.<param> go there). */
    paramFields: () => rows.flatMap((r) => r.params),
  };
  return field;
}
