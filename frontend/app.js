// Hash routing: #/ the run list, #/launch the form, #/runs/<id> one run. Each route mounts
// one custom element into <main>; leaving a route removes it, which stops its timers and streams.
import { getHealth } from "./api.js";
import { el } from "./ui.js";
import "./run-list.js";
import "./launch-form.js";
import "./run-view.js";
import "./metric-chart.js";

const routes = [
  { pattern: /^#?\/?$/, title: "Runs", make: () => el("run-list") },
  {
    pattern: /^#\/launch\/?(?:\?from=([^&]+))?$/,
    title: "New run",
    make: (from) => el("launch-form", { "from-run": from ? decodeURIComponent(from) : null }),
  },
  {
    pattern: /^#\/runs\/([^/]+)\/?$/,
    title: "Run",
    make: (id) => el("run-view", { "run-id": decodeURIComponent(id) }),
  },
];

function render() {
  const view = document.getElementById("view");
  const hash = location.hash || "#/";
  for (const route of routes) {
    const match = hash.match(route.pattern);
    if (match) {
      view.replaceChildren(route.make(...match.slice(1)));
      document.title = `${route.title} · Époque`;
      return;
    }
  }
  view.replaceChildren(
    el("section", { class: "card" },
      el("h1", { text: "Page not found" }),
      el("p", {}, "Nothing lives at this address. ", el("a", { href: "#/", text: "Back to the runs" }), ".")),
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
    box.textContent = workers > 0
      ? `${workers} worker${workers === 1 ? "" : "s"} ready`
      : "no worker: runs will wait in the queue";
  } catch {
    box.className = "health health-down";
    box.textContent = "server unreachable";
  }
}

window.addEventListener("hashchange", render);
render();
showHealth();
setInterval(showHealth, 10000);
