// <class-board class-id="…">: per student their runs, statuses and best test accuracy, and the
// challenge ranking; refreshed every few seconds. The teacher (this browser created the class)
// also gets the zip export, the class's settings form and each run's η and epochs. A live run has a Cancel button where
// the server says this viewer may cancel it (can_control: the teacher any, a student her own).
import { cancelClassRun, downloadExport, getBoard, teacherToken } from "./classes-api.js";
import { el, FINISHED, formatPercent, statusBadge, useStyle } from "./ui.js";
import "./class-settings.js";

useStyle(import.meta.url, "classes.css");

const REFRESH_MS = 3000;

class ClassBoard extends HTMLElement {
  connectedCallback() {
    this.classId = this.getAttribute("class-id");
    this.teacher = Boolean(teacherToken(this.classId));
    this.heading = el("h1", { text: "Class board" });
    this.status = el("p", { class: "muted", role: "status" });
    this.challenge = el("div", { class: "class-challenge" });
    this.table = el("div", { class: "class-board-table" });
    this.exportButton = this.teacher
      ? el("button", { type: "button", text: "Export the class (zip)", onclick: () => this.export() }) : "";
    // The teacher changes the class here; a change shows on the board at once.
    this.settings = this.teacher ? el("class-settings", { "class-id": this.classId }) : "";
    this.addEventListener("class-changed", () => this.refresh());
    this.replaceChildren(
      el("div", { class: "class-head" }, this.heading, this.exportButton),
      this.settings, this.status, this.challenge, this.table);
    this.refresh();
    this.timer = setInterval(() => this.refresh(), REFRESH_MS);
  }

  disconnectedCallback() {
    clearInterval(this.timer);
  }

  async refresh() {
    let board;
    try {
      board = await getBoard(this.classId);
    } catch (err) {
      this.status.textContent = `Could not load the board: ${err.message}`;
      return;
    }
    if (!this.isConnected) return;
    this.heading.textContent = `${board.class.name}: board`;
    const students = board.students;
    this.status.textContent = `${students.length} student${students.length === 1 ? "" : "s"}, ${students.reduce((n, s) => n + s.runs.length, 0)} runs · refreshed every ${REFRESH_MS / 1000} s`;
    this.renderChallenge(board.challenge);
    const rows = students.map((s) => el("tr", { dataset: { student: s.id } },
      el("th", { scope: "row", text: s.name }),
      el("td", { text: String(s.runs.length) }),
      el("td", { class: "num", text: formatPercent(s.best_test_accuracy) }),
      el("td", {}, el("ul", { class: "board-runs" }, s.runs.map((r) => el("li", {},
        el("a", { href: `#/runs/${encodeURIComponent(r.id)}`, text: `#${r.id}` }), " ", statusBadge(r.status),
        r.test_accuracy !== null ? ` ${formatPercent(r.test_accuracy)}` : ` ${r.epoch}/${r.max_epochs}`,
        this.teacher && r.spec ? el("span", { class: "muted", text: ` η ${r.spec.optim?.lr}` }) : "",
        r.can_control && !FINISHED.has(r.status)
          ? el("button", { type: "button", class: "button-small board-cancel", text: "Cancel",
            "aria-label": `Cancel run #${r.id}`, onclick: () => this.cancel(r.id) })
          : ""))))));
    this.table.replaceChildren(el("table", { class: "board" },
      el("thead", {}, el("tr", {}, ...["Student", "Runs", "Best test accuracy", "Runs (status, test accuracy)"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: "4", class: "muted", text: "No student has joined yet." })))));
  }

  renderChallenge(challenge) {
    if (!challenge) {
      this.challenge.replaceChildren();
      return;
    }
    const limit = challenge.max_epochs ? ` with ≤ ${challenge.max_epochs} epochs` : "";
    this.challenge.replaceChildren(el("section", { class: "card" },
      el("h2", { text: `Challenge: best test accuracy on ${challenge.preset}${limit}` }),
      challenge.ranking.length
        ? el("ol", { class: "ranking" }, challenge.ranking.map((r) => el("li", {},
          el("strong", { text: r.name }), ` ${formatPercent(r.test_accuracy)} `,
          el("a", { href: `#/runs/${encodeURIComponent(r.run_id)}`, text: `run #${r.run_id}` }))))
        : el("p", { class: "muted", text: "No finished run counts yet." })));
  }

  async cancel(runId) {
    try {
      await cancelClassRun(this.classId, runId);
      this.refresh();
    } catch (err) {
      this.status.textContent = `Could not cancel run #${runId}: ${err.message}`;
    }
  }

  async export() {
    try {
      const blob = await downloadExport(this.classId);
      const url = URL.createObjectURL(blob);
      const link = el("a", { href: url, download: `class-${this.classId}.zip` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (err) {
      this.status.textContent = err.message;
    }
  }
}

customElements.define("class-board", ClassBoard);
