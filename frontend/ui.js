// Small DOM and formatting helpers shared by the views. Text always goes in as textContent.

/** createElement with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Each view's CSS sits beside its module; link it once into the document head. */
export function useStyle(moduleUrl, file) {
  if (document.head.querySelector(`link[data-style="${file}"]`)) return;
  const href = new URL(file, moduleUrl).href;
  document.head.append(el("link", { rel: "stylesheet", href, "data-style": file }));
}

export const FINISHED = new Set(["succeeded", "failed", "cancelled", "diverged"]);

export function statusBadge(status) {
  return el("span", { class: `badge badge-${status || "unknown"}`, text: status || "unknown" });
}

/** Accuracy in [0, 1] as a percentage with two decimals, e.g. "97.22 %". */
export function formatPercent(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return `${(value * 100).toFixed(2)} %`;
}

export function formatNumber(value, digits = 4) {
  if (value === null || value === undefined) return "—";
  if (!Number.isFinite(value)) return String(value);
  if (value !== 0 && (Math.abs(value) < 1e-3 || Math.abs(value) >= 1e5)) {
    return value.toExponential(2);
  }
  return Number(value.toFixed(digits)).toString();
}

// The server writes UTC; a timestamp without a zone is read as UTC too, not as local time.
export function parseTime(iso) {
  if (!iso) return null;
  const hasZone = /[zZ]|[+-]\d\d:?\d\d$/.test(iso);
  const date = new Date(hasZone ? iso : `${iso}Z`);
  return Number.isNaN(date.getTime()) ? null : date;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function formatTime(iso) {
  const date = parseTime(iso);
  return date ? timeFormat.format(date) : "—";
}

export function formatDuration(startIso, endIso) {
  const start = parseTime(startIso);
  const end = parseTime(endIso) || (start ? new Date() : null);
  if (!start || !end) return "—";
  const seconds = Math.max(0, Math.round((end - start) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function runTitle(run) {
  return run.name || `Run #${run.id}`;
}

/** Free a Plotly chart once its last drawing is done (a custom element leaving the page). */
export function releasePlot(plot, ready) {
  if (plot && ready) ready.finally(() => window.Plotly?.purge(plot)).catch(() => {});
}
