// <study-view study-id="N">: one study. Its summary table (one row per run, sortable by any
// column) is refreshed while runs are going; below it the runs' curves are overlaid.
import { cancelRun, deleteStudy, getStudy, getStudyStats } from "./api.js";
import "./compare-view.js";
import "./forest-plot.js";
import "./seed-curves.js";
import "./study-heatmaps.js";
import { FINISHED, el, formatNumber, formatPercent, statusBadge, useStyle } from "./ui.js";

useStyle(import.meta.url, "study-view.css");

const REFRESH_MS = 2000;
const show = (v) => (v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));

/** Compare two cells: numbers as numbers, missing values last whatever the direction. */
function compareCells(a, b) {
  const missing = (v) => v === null || v === undefined;
  if (missing(a) && missing(b)) return 0;
  if (missing(a)) return 1;
  if (missing(b)) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return String(typeof a === "object" ? JSON.stringify(a) : a)
    .localeCompare(String(typeof b === "object" ? JSON.stringify(b) : b), undefined, { numeric: true });
}

class StudyView extends HTMLElement {
  connectedCallback() {
    this.studyId = this.getAttribute("study-id");
    this.sort = { column: "run_id", direction: "ascending" };
    this.titleEl = el("h1", { class: "study-title", text: `Study #${this.studyId}` });
    this.badge = el("span");
    this.meta = el("p", { class: "muted study-meta" });
    this.progressText = el("p", { class: "study-progress", role: "status" });
    this.notice = el("div", { class: "notice notice-error", role: "alert", hidden: true });
    this.table = el("table", { class: "data-table summary-table" });
    this.cancelButton = el("button", { type: "button", class: "button-danger", hidden: true,
      text: "Cancel unfinished runs", onclick: () => this.cancelAll() });
    this.replaceChildren(
      el("a", { class: "back", href: "#/", text: "← The lab" }),
      el("section", { class: "card study-head" },
        el("div", { class: "run-head-top" },
          el("div", { class: "run-head-title" }, this.titleEl, this.badge),
          el("div", { class: "run-actions" },
            el("a", { class: "button", href: `#/compare?study=${encodeURIComponent(this.studyId)}`, text: "Open in Compare" }),
            this.cancelButton,
            el("button", { type: "button", class: "button-danger", text: "Delete study", onclick: () => this.remove_() }))),
        this.meta, this.progressText),
      this.notice,
      el("section", { class: "card study-summary", "aria-labelledby": "summary-heading" },
        el("h2", { id: "summary-heading", text: "Summary" }),
        el("p", { class: "muted summary-note", text: "One row per run; click a column's title to sort by it." }),
        el("div", { class: "table-scroll" }, this.table)),
      this.statsSection(),
      el("compare-view", { "study-id": this.studyId }),
      this.heatmaps = el("study-heatmaps"));
    this.refresh();
  }

  disconnectedCallback() {
    this.gone = true;
    clearTimeout(this.timer);
  }

  async refresh() {
    let study;
    try {
      study = await getStudy(this.studyId);
    } catch (err) {
      if (this.gone) return;
      if (err.status === 404) {
        this.replaceChildren(el("a", { class: "back", href: "#/", text: "← The lab" }),
          el("div", { class: "notice notice-error", role: "alert", text: `There is no study #${this.studyId}; it may have been deleted.` }));
        return;
      }
      this.notice.textContent = `Could not load the study: ${err.message} (retrying)`;
      this.notice.hidden = false;
      this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
      return;
    }
    if (this.gone) return;
    this.notice.hidden = true;
    this.show(study);
    if (study.status !== "finished") this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
  }

  show(study) {
    this.study = study;
    this.dataset.status = study.status;
    this.titleEl.textContent = study.name || `Study #${study.id}`;
    document.title = `${this.titleEl.textContent} · Époque`;
    this.badge.replaceChildren(el("span", { class: `badge badge-${study.status}`, text: study.status }));
    const grid = Object.entries(study.grid || {}).map(([k, v]) => `${k} ∈ {${v.map(show).join(", ")}}`);
    this.meta.textContent = `${study.base?.data?.dataset ?? ""} · grid: ${grid.join(" × ") || "none"}`;
    const runs = study.runs || [];
    const done = runs.filter((r) => FINISHED.has(r.status)).length;
    this.progressText.textContent = `${done} of ${runs.length} runs finished`;
    this.cancelButton.hidden = done === runs.length;
    this.renderTable();
    this.refreshStats(study);
    const labels = new Map((study.summary || []).map((r) => [r.run_id,
      Object.entries(r.point || {}).map(([k, v]) => `${k}=${show(v)}`).join(", ")]));
    this.heatmaps.runs = runs.map((r) => ({ id: r.id, status: r.status, label: labels.get(r.id) || "" }));
  }

  /** Seeds and significance: each grid point's mean and 95 % interval over its seeds, and each
   * pair of points compared (paired by seed where they share seeds) with a verdict in words. */
  statsSection() {
    this.statsGroups = el("table", { class: "data-table stats-groups" });
    this.statsComparisons = el("table", { class: "data-table stats-comparisons" });
    this.stats = el("section", { class: "card study-stats", hidden: true, "aria-labelledby": "stats-heading" },
      el("h2", { id: "stats-heading", text: "Seeds and significance (test accuracy)" }),
      el("p", { class: "muted summary-note", text: "Finished runs only; a t interval over seeds, and a t-test per pair of points at 5 %." }),
      this.forest = el("forest-plot"),
      el("div", { class: "table-scroll" }, this.statsGroups),
      el("div", { class: "table-scroll" }, this.statsComparisons),
      this.curves = el("seed-curves"));
    return this.stats;
  }

  async refreshStats(study) {
    if (!(study.grid?.seed?.length > 1)) return; // one seed per point: nothing to test
    let stats;
    try {
      stats = await getStudyStats(study.id);
    } catch {
      return; // shown again with the next refresh
    }
    if (this.gone) return;
    const pct = (v) => (v === null || v === undefined ? "—" : formatPercent(v));
    const interval = (ci) => (ci ? `${pct(ci[0])} … ${pct(ci[1])}` : "—");
    const label = (g) => Object.entries(g.point).map(([k, v]) => `${k}=${show(v)}`).join(", ") || "base";
    const row = (cells) => el("tr", {}, cells.map(([text, cls]) => el("td", { class: cls || null, text })));
    const head = (names) => el("thead", {}, el("tr", {}, names.map((n) => el("th", { scope: "col", text: n }))));
    this.statsGroups.replaceChildren(head(["point", "seeds", "mean", "95 % interval", "std"]),
      el("tbody", {}, stats.groups.map((g) => row([
        [label(g), "mono"], [`${g.n}${g.pending ? ` (+${g.pending} running)` : ""}`, "num"],
        [pct(g.mean), "num"], [interval(g.ci95), "num"],
        [g.std === null ? "—" : formatNumber(g.std), "num"]]))));
    const signed = (v) => (v === null || v === undefined ? "—" : `${v > 0 ? "+" : ""}${(v * 100).toFixed(2)} pts`);
    this.statsComparisons.replaceChildren(head(["a", "b", "a − b", "95 % interval", "p", "test", "verdict"]),
      el("tbody", {}, stats.comparisons.map((c) => el("tr", { dataset: { verdict: c.verdict } },
        el("td", { class: "mono", text: label(stats.groups[c.a]) }),
        el("td", { class: "mono", text: label(stats.groups[c.b]) }),
        el("td", { class: "num", text: signed(c.diff) }),
        el("td", { class: "num", text: c.ci95 ? `${signed(c.ci95[0])} … ${signed(c.ci95[1])}` : "—" }),
        el("td", { class: "num", text: c.p_value === null ? "—" : c.p_value.toPrecision(2) }),
        el("td", { text: c.test }),
        el("td", { class: "verdict", text: c.says || c.verdict })))));
    Object.assign(this.forest, { label }).stats = stats;
    Object.assign(this.curves, { label }).study = study;
    this.stats.hidden = false;
  }

  columns() {
    const paths = Object.keys(this.study?.grid || {});
    return [
      { id: "run_id", label: "run", num: true, get: (r) => r.run_id },
      ...paths.map((p) => ({ id: `point:${p}`, label: p, mono: true, get: (r) => r.point?.[p] })),
      { id: "status", label: "status", get: (r) => r.status },
      { id: "best_epoch", label: "best epoch", num: true, get: (r) => r.best_epoch },
      // The figures beside it are the returned model's: z* or the last epoch's (training.keep).
      { id: "kept_epoch", label: "returned model", num: true, get: (r) => r.kept_epoch,
        fmt: (v, r) => (v === null || v === undefined ? "—" : `${r.kept === "last" ? "last" : "best"}: ${v}`) },
      { id: "test_accuracy", label: "test accuracy", num: true, get: (r) => r.test_accuracy, fmt: formatPercent },
      { id: "test_loss", label: "test loss", num: true, get: (r) => r.test_loss, fmt: (v) => formatNumber(v) },
      { id: "seconds", label: "seconds", num: true, get: (r) => r.seconds, fmt: (v) => (v === null || v === undefined ? "—" : v.toFixed(1)) },
    ];
  }

  sortBy(column) {
    const same = this.sort.column === column;
    this.sort = { column, direction: same && this.sort.direction === "ascending" ? "descending" : "ascending" };
    this.renderTable();
    this.table.querySelector(`th[data-column="${CSS.escape(column)}"] button`)?.focus();
  }

  renderTable() {
    const columns = this.columns();
    const col = columns.find((c) => c.id === this.sort.column) || columns[0];
    const sign = this.sort.direction === "ascending" ? 1 : -1;
    const rows = [...(this.study?.summary || [])].sort((a, b) => {
      const av = col.get(a);
      const bv = col.get(b);
      const missing = (v) => v === null || v === undefined;
      if (missing(av) || missing(bv)) return compareCells(av, bv); // missing stays last
      return sign * compareCells(av, bv);
    });
    const head = el("tr", {}, columns.map((c) => el("th", {
      scope: "col", class: [c.num ? "num" : "", c.mono ? "mono" : ""].join(" ").trim() || null,
      "aria-sort": c.id === col.id ? this.sort.direction : "none", dataset: { column: c.id } },
    el("button", { type: "button", class: "sort-button", text: c.label, onclick: () => this.sortBy(c.id) }))));
    const body = rows.map((r) => el("tr", { dataset: { runId: String(r.run_id) } }, columns.map((c) => {
      const v = c.get(r);
      if (c.id === "run_id") return el("td", { class: "num" }, el("a", { href: `#/runs/${encodeURIComponent(v)}`, text: `#${v}` }));
      if (c.id === "status") return el("td", {}, statusBadge(v));
      return el("td", { class: [c.num ? "num" : "", c.mono ? "mono" : ""].join(" ").trim() || null,
        dataset: { column: c.id, ...(typeof v === "number" ? { value: String(v) } : {}) },
        text: c.fmt ? c.fmt(v, r) : show(v) });
    })));
    this.table.replaceChildren(el("thead", {}, head), el("tbody", {}, body));
  }

  async cancelAll() {
    this.cancelButton.disabled = true;
    const live = (this.study?.runs || []).filter((r) => !FINISHED.has(r.status));
    await Promise.all(live.map((r) => cancelRun(r.id).catch(() => null)));
    this.cancelButton.disabled = false;
    clearTimeout(this.timer);
    this.refresh();
  }

  async remove_() {
    if (!window.confirm(`Delete ${this.study?.name || `study #${this.studyId}`} and all its runs?`)) return;
    try {
      await deleteStudy(this.studyId);
      location.hash = "#/";
    } catch (err) {
      this.notice.textContent = `Could not delete: ${err.message}`;
      this.notice.hidden = false;
    }
  }
}

customElements.define("study-view", StudyView);
