// <run-list>: the runs, newest first, a page at a time (PAGE rows; the API's offset and limit),
// filtered by status and by study, refreshed every 2 s. Rows are kept by run id and updated
// in place, so keyboard focus survives a refresh. The page and filters live in the element's
// data-* attributes (data-page from 1, data-status, data-study) for scripts and tests.
import { listRuns, listStudies } from "./api.js";
import { el, formatPercent, formatTime, statusBadge, useStyle, runTitle } from "./ui.js";

useStyle(import.meta.url, "run-list.css");

const REFRESH_MS = 2000;
const PAGE = 20;
const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "diverged"];

class RunList extends HTMLElement {
  connectedCallback() {
    this.rows = new Map();
    this.cells = new WeakMap();
    this.error = el("p", { class: "notice notice-error", role: "alert", hidden: true });
    this.empty = el("div", { class: "run-list-empty", hidden: true },
      el("p", { text: "No runs yet." }),
      el("p", { class: "muted", text: "Launch one to watch its loss and accuracy curves grow epoch by epoch." }),
      el("a", { class: "button button-primary", href: "#/launch", text: "Launch your first run" }));
    this.noMatch = el("p", { class: "muted run-list-empty", hidden: true, text: "No run matches these filters." });
    this.page = 0;
    this.statusFilter = el("select", { id: "runs-status", onchange: () => this.filtersChanged() },
      el("option", { value: "", text: "any status" }), STATUSES.map((s) => el("option", { value: s, text: s })));
    this.studyFilter = el("select", { id: "runs-study", onchange: () => this.filtersChanged() },
      el("option", { value: "", text: "any study (or none)" }));
    this.prevButton = el("button", { type: "button", text: "← Newer", onclick: () => this.turn(-1) });
    this.nextButton = el("button", { type: "button", text: "Older →", onclick: () => this.turn(1) });
    this.pageText = el("span", { class: "muted run-page", role: "status" });
    this.filters = el("div", { class: "inline-form run-filters" },
      el("label", { for: "runs-status", text: "status" }), this.statusFilter,
      el("label", { for: "runs-study", text: "study" }), this.studyFilter,
      el("span", { class: "run-pager" }, this.prevButton, this.pageText, this.nextButton));
    this.tbody = el("tbody");
    this.table = el("table", { class: "run-table", hidden: true },
      el("thead", {}, el("tr", {},
        ["#", "Name", "Dataset", "Study", "Status", "Progress", "Test accuracy", "Created"].map(
          (h) => el("th", { scope: "col", text: h })))),
      this.tbody);
    this.replaceChildren(
      el("div", { class: "run-list-head" },
        el("h2", { class: "run-list-title", text: "Runs" }),
        el("a", { class: "button button-primary", href: "#/launch", text: "New run" })),
      this.error,
      this.filters,
      el("section", { class: "card run-list-card", "aria-live": "polite" },
        el("p", { class: "muted loading", text: "Loading runs…" }), this.table, this.empty, this.noMatch),
    );
    this.syncState();
    this.refresh();
    this.loadStudies();
  }

  async loadStudies() {
    try {
      const studies = await listStudies();
      if (this.gone) return;
      this.studyFilter.append(...studies.map((s) => el("option", { value: String(s.id),
        text: `study #${s.id}${s.name ? ` ${s.name}` : ""}` })));
    } catch {
      // the status filter and paging still work
    }
  }

  filtersChanged() {
    this.page = 0;
    this.syncState();
    this.reload();
  }

  turn(step) {
    this.page = Math.max(0, this.page + step);
    this.syncState();
    this.reload();
  }

  syncState() {
    this.dataset.page = String(this.page + 1);
    this.dataset.status = this.statusFilter.value;
    this.dataset.study = this.studyFilter.value;
  }

  reload() {
    clearTimeout(this.timer);
    this.token = (this.token || 0) + 1;
    this.refresh();
  }

  disconnectedCallback() {
    clearTimeout(this.timer);
    this.gone = true;
  }

  async refresh() {
    const token = this.token;
    try {
      // One more than a page: whether an older page exists, without counting every run.
      const runs = await listRuns({ status: this.statusFilter.value || null, studyId: this.studyFilter.value || null,
        offset: this.page * PAGE, limit: PAGE + 1 });
      if (this.gone || token !== this.token) return;
      this.error.hidden = true;
      if (!runs.length && this.page > 0) {
        this.turn(-1); // the page emptied (runs deleted): show the one before
        return;
      }
      const more = runs.length > PAGE;
      const shown = runs.slice(0, PAGE);
      this.prevButton.disabled = this.page === 0;
      this.nextButton.disabled = !more;
      this.pageText.textContent = shown.length
        ? `runs ${this.page * PAGE + 1}–${this.page * PAGE + shown.length}, newest first`
        : "";
      this.dataset.more = String(more);
      this.show(shown);
    } catch (err) {
      if (this.gone) return;
      this.error.textContent = `Could not load the runs: ${err.message}`;
      this.error.hidden = false;
    } finally {
      this.querySelector(".loading")?.remove();
      if (!this.gone && token === this.token) this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
    }
  }

  show(runs) {
    const filtered = Boolean(this.statusFilter.value || this.studyFilter.value);
    this.table.hidden = runs.length === 0;
    this.empty.hidden = runs.length !== 0 || filtered;
    this.noMatch.hidden = runs.length !== 0 || !filtered;
    const seen = new Set();
    runs.forEach((run, index) => {
      seen.add(run.id);
      let row = this.rows.get(run.id);
      if (!row) {
        row = this.makeRow(run.id);
        this.rows.set(run.id, row);
      }
      this.fillRow(row, run);
      if (this.tbody.children[index] !== row) this.tbody.insertBefore(row, this.tbody.children[index] || null);
    });
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.remove();
        this.rows.delete(id);
      }
    }
  }

  makeRow(id) {
    const href = `#/runs/${encodeURIComponent(id)}`;
    const row = el("tr", { class: "run-row", dataset: { runId: String(id) } });
    const cells = {
      id: el("td", { class: "mono muted", text: String(id) }),
      name: el("td", {}, el("a", { href })),
      dataset: el("td", { class: "mono" }),
      study: el("td", {}, el("a", {})),
      status: el("td"),
      progress: el("td", { class: "progress-cell" }),
      accuracy: el("td", { class: "num" }),
      created: el("td", { class: "muted" }),
    };
    this.cells.set(row, cells);
    row.append(...Object.values(cells));
    // The whole row is a target for the mouse; the name link is the keyboard's way in.
    row.addEventListener("click", (event) => {
      if (event.target.closest("a")) return;
      location.hash = href;
    });
    return row;
  }

  fillRow(row, run) {
    const c = this.cells.get(row);
    c.name.firstChild.textContent = runTitle(run);
    c.dataset.textContent = run.spec?.data?.dataset ?? "—";
    const study = c.study.firstChild;
    if (run.study_id !== null && run.study_id !== undefined) {
      study.href = `#/studies/${encodeURIComponent(run.study_id)}`;
      study.textContent = `study #${run.study_id}`;
    } else {
      study.removeAttribute("href");
      study.textContent = "—";
    }
    c.status.replaceChildren(statusBadge(run.status));
    const epoch = run.progress?.epoch ?? 0;
    const max = run.progress?.max_epochs ?? run.spec?.training?.max_epochs ?? 0;
    c.progress.replaceChildren(
      el("progress", { max: max || 1, value: Math.min(epoch, max || 1), "aria-label": `epoch ${epoch} of ${max}` }),
      el("span", { class: "progress-text", text: `${epoch} / ${max}` }));
    c.accuracy.textContent = run.result ? formatPercent(run.result.test_accuracy) : "—";
    c.created.textContent = formatTime(run.created_at);
    row.dataset.status = run.status;
  }
}

customElements.define("run-list", RunList);
