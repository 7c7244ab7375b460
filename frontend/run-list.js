// <run-list>: every run, newest first, refreshed every 2 s. Rows are kept by run id and
// updated in place, so keyboard focus survives a refresh.
import { listRuns } from "./api.js";
import { el, formatPercent, formatTime, statusBadge, useStyle, runTitle } from "./ui.js";

useStyle(import.meta.url, "run-list.css");

const REFRESH_MS = 2000;

class RunList extends HTMLElement {
  connectedCallback() {
    this.rows = new Map();
    this.cells = new WeakMap();
    this.error = el("p", { class: "notice notice-error", role: "alert", hidden: true });
    this.empty = el("div", { class: "run-list-empty", hidden: true },
      el("p", { text: "No runs yet." }),
      el("p", { class: "muted", text: "Launch one to watch its loss and accuracy curves grow epoch by epoch." }),
      el("a", { class: "button button-primary", href: "#/launch", text: "Launch your first run" }));
    this.tbody = el("tbody");
    this.table = el("table", { class: "run-table", hidden: true },
      el("thead", {}, el("tr", {},
        ["#", "Name", "Dataset", "Status", "Progress", "Test accuracy", "Created"].map(
          (h) => el("th", { scope: "col", text: h })))),
      this.tbody);
    this.replaceChildren(
      el("div", { class: "run-list-head" },
        el("h2", { class: "run-list-title", text: "Runs" }),
        el("a", { class: "button button-primary", href: "#/launch", text: "New run" })),
      this.error,
      el("section", { class: "card run-list-card", "aria-live": "polite" },
        el("p", { class: "muted loading", text: "Loading runs…" }), this.table, this.empty),
    );
    this.refresh();
  }

  disconnectedCallback() {
    clearTimeout(this.timer);
    this.gone = true;
  }

  async refresh() {
    try {
      const runs = await listRuns();
      if (this.gone) return;
      this.error.hidden = true;
      this.show(runs || []);
    } catch (err) {
      if (this.gone) return;
      this.error.textContent = `Could not load the runs: ${err.message}`;
      this.error.hidden = false;
    } finally {
      this.querySelector(".loading")?.remove();
      if (!this.gone) this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
    }
  }

  show(runs) {
    this.table.hidden = runs.length === 0;
    this.empty.hidden = runs.length !== 0;
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
