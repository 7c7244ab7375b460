// The classroom part of the API (SPEC.md "Classrooms"): classes, joining, the board, the
// export. Requests go through api.js's `request`; a teacher's calls name the class's teacher
// token, kept by this browser for each class it created.
import { ApiError, CLASS_TOKEN_KEY, request } from "./api.js";

const TEACHER_KEY = "epoque-teacher-classes";
const STUDENT_KEY = "epoque-class-student";
const classPath = (id) => `/api/classes/${encodeURIComponent(id)}`;

/** [{id, name, join_code, teacher_token}] of the classes created in this browser. */
export function teacherClasses() {
  try {
    const list = JSON.parse(localStorage.getItem(TEACHER_KEY) || "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

export const teacherToken = (id) => teacherClasses().find((c) => String(c.id) === String(id))?.teacher_token || null;

function rememberClass(entry) {
  const list = teacherClasses().filter((c) => c.id !== entry.id);
  localStorage.setItem(TEACHER_KEY, JSON.stringify([entry, ...list]));
}

/** {student_id, class_id, name} of the class this browser joined, or null. */
export function joinedClass() {
  if (!localStorage.getItem(CLASS_TOKEN_KEY)) return null;
  try {
    return JSON.parse(localStorage.getItem(STUDENT_KEY) || "null");
  } catch {
    return null;
  }
}

export function leaveClass() {
  localStorage.removeItem(CLASS_TOKEN_KEY);
  localStorage.removeItem(STUDENT_KEY);
}

/** Create a class; its teacher token is kept in this browser. */
export async function createClass(body) {
  const created = await request("POST", "/api/classes", body);
  rememberClass({ id: created.id, name: body.name, join_code: created.join_code, teacher_token: created.teacher_token });
  return created;
}

/** Join with a code and a name; the student token then goes with every request (api.js). */
export async function joinClass(code, name) {
  const joined = await request("POST", "/api/classes/join", { join_code: code, name });
  localStorage.setItem(CLASS_TOKEN_KEY, joined.student_token);
  localStorage.setItem(STUDENT_KEY, JSON.stringify({ student_id: joined.student_id, class_id: joined.class_id, name: joined.name }));
  return joined;
}

/** The class (lessons, base specs, locked fields, quotas), as its teacher when this browser created it. */
export const getClass = (id) => request("GET", classPath(id), undefined, false, teacherToken(id));
/** Change the class's settings (any of the creation's fields), as its teacher: the class as GET gives it. */
export const updateClass = (id, changes) => request("PATCH", classPath(id), changes, false, teacherToken(id));
export const getBoard = (id) => request("GET", `${classPath(id)}/board`, undefined, false, teacherToken(id));
/** Cancel a run of class `id` from its board, as its teacher when this browser created the class. */
export const cancelClassRun = (id, runId) => request("POST", `/api/runs/${encodeURIComponent(runId)}/cancel`, undefined, false, teacherToken(id));

/** The class's zip (specs, metrics CSV, results, board.html) as a Blob: the teacher's token goes in a header. */
export async function downloadExport(id) {
  const response = await fetch(`${classPath(id)}/export`, {
    headers: { Authorization: `Bearer ${teacherToken(id) || ""}` },
  });
  if (!response.ok) throw new ApiError(`The export failed (${response.status}).`, { status: response.status });
  return response.blob();
}
