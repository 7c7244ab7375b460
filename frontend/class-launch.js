// A class's lesson in the launch form (<launch-form lesson="preset id">): the fields start from
// the lesson's spec, the class's locked fields are read-only (the API refuses a change with a
// 422 naming the field anyway), and studies are not offered (a class token launches runs).
import { joinedClass, getClass } from "./classes-api.js";
import { writeSpec } from "./schema-fields.js";
import { el } from "./ui.js";

const lockedBy = (locked, key) => locked.some((path) => key === path || key.startsWith(`${path}.`));

/** Fill `form` (a launch-form, its fields built) from the lesson and lock what the class locks. */
export async function applyLesson(form, lesson) {
  const me = joinedClass();
  if (!me) throw new Error("This browser has not joined a class.");
  const klass = await getClass(me.class_id);
  const base = klass.base_specs[lesson];
  if (!base) throw new Error(`${lesson} is not one of this class's lessons.`);
  writeSpec(form.fields, base);
  for (const field of form.fields) {
    if (!lockedBy(klass.locked, field.key)) continue;
    field.input.disabled = true;
    field.wrapper.classList.add("field-locked");
    field.wrapper.append(el("small", { class: "locked-note", text: "locked by the class" }));
  }
  form.querySelector(".study-controls")?.setAttribute("hidden", "");
  const title = klass.presets.find((p) => p.id === lesson)?.title || lesson;
  form.querySelector(".launch-head h1").textContent = `New run: ${title}`;
  form.querySelector(".launch-head p").textContent = `${klass.name}: the lesson's spec; fields marked "locked by the class" keep the lesson's value.`;
}
