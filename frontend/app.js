// Hash routing: #/ the lessons and runs, #/launch the form, #/runs/<id> one run, #/studies/<id>
// one study, #/compare?runs=… overlaid runs, #/augment the augmentation lab, #/guides/<n> a
// lesson's guide, #/datasets[/<id>] uploads. Each route mounts one custom element into <main>; leaving a route removes it,
// which stops its timers and streams.
import { getHealth } from "./api.js";
import { joinedClass } from "./classes-api.js";
import { el } from "./ui.js";
import "./home-view.js";
import "./run-list.js";
import "./launch-form.js";
import "./run-view.js";
import "./study-view.js";
import "./compare-view.js";
import "./augment-lab.js";
import "./guide-view.js";
import "./datasets-view.js";
import "./metric-chart.js";
import "./classes-view.js";
import "./class-board.js";
import "./join-view.js";

const routes = [
  // A student (this browser joined a class) sees the class's lessons instead of the lab's.
  { pattern: /^#?\/?$/, title: "Lab", nav: "#/", make: () => el(joinedClass() ? "class-home" : "home-view") },
  {
    pattern: /^#\/launch\/?(?:\?(.*))?$/,
    title: "New run",
    make: (query) => {
      const params = new URLSearchParams(query || "");
      return joinedClass() ? el("class-home")
        : el("launch-form", { "from-run": params.get("from"), "with-dataset": params.get("dataset") });
    },
  },
  {
    pattern: /^#\/runs\/([^/?]+)\/?$/,
    title: "Run",
    make: (id) => el("run-view", { "run-id": decodeURIComponent(id) }),
  },
  {
    pattern: /^#\/studies\/([^/?]+)\/?$/,
    title: "Study",
    make: (id) => el("study-view", { "study-id": decodeURIComponent(id) }),
  },
  {
    pattern: /^#\/compare\/?(?:\?(.*))?$/,
    title: "Compare",
    nav: "#/compare",
    make: (query) => {
      const params = new URLSearchParams(query || "");
      return el("compare-view", { runs: params.get("runs") || "", "study-id": params.get("study") || null, picker: true });
    },
  },
  { pattern: /^#\/augment\/?$/, title: "Augmentation lab", nav: "#/augment", make: () => el("augment-lab") },
  {
    pattern: /^#\/datasets(?:\/([^/?]+))?\/?$/,
    title: "Datasets",
    nav: "#/datasets",
    make: (id) => el("datasets-view", { "dataset-id": id ? decodeURIComponent(id) : null }),
  },
  { pattern: /^#\/guides\/(\d+)\/?$/, title: "Guide", make: (lesson) => el("guide-view", { lesson }) },
  // Classrooms: classes-view.js, join-view.js, class-board.js, class-launch.js.
  { pattern: /^#\/classes\/?$/, title: "Classes", nav: "#/classes", make: () => el("classes-view") },
  { pattern: /^#\/classes\/(\d+)\/board\/?$/, title: "Class board", make: (id) => el("class-board", { "class-id": id }) },
  { pattern: /^#\/join\/([A-Za-z0-9]+)\/?$/, title: "Join a class", make: (code) => el("join-view", { code }) },
  { pattern: /^#\/class\/?$/, title: "Class", make: () => el("class-home") },
  {
    pattern: /^#\/class\/launch\/([^/?]+)\/?$/,
    title: "New run",
    make: (preset) => el("launch-form", { lesson: decodeURIComponent(preset) }),
  },
];

function render() {
  const view = document.getElementById("view");
  const hash = location.hash || "#/";
  for (const link of document.querySelectorAll(".topnav a[data-nav]")) link.removeAttribute("aria-current");
  for (const route of routes) {
    const match = hash.match(route.pattern);
    if (match) {
      view.replaceChildren(route.make(...match.slice(1)));
      document.title = `${route.title} · Époque`;
      if (route.nav) document.querySelector(`.topnav a[data-nav="${route.nav}"]`)?.setAttribute("aria-current", "page");
      return;
    }
  }
  view.replaceChildren(
    el("section", { class: "card" },
      el("h1", { text: "Page not found" }),
      el("p", {}, "Nothing lives at this address. ", el("a", { href: "#/", text: "Back to the lab" }), ".")),
  );
  document.title = "Not found · Époque";
}

async function showHealth() {
  const box = document.getElementById("health");
  try {
    const health = await getHealth();
    const workers = Array.isArray(health.workers)
      ? health.workers.length
      : Number(health.workers) || 0;
    const ok = health.status === "ok" && workers > 0;
    box.className = `health ${ok ? "health-ok" : "health-warn"}`;
    const waiting = (health.waiting || []).map((w) => w.message);
    box.textContent = waiting.length
      ? waiting.join("; ")
      : workers > 0
        ? `${workers} worker${workers === 1 ? "" : "s"} ready`
        : "no worker: runs will wait in the queue";
  } catch {
    box.className = "health health-down";
    box.textContent = "server unreachable: retrying…";
  }
}

window.addEventListener("hashchange", render);
render();
showHealth();
setInterval(showHealth, 5000);
