// <guide-view lesson="3">: the lesson's guide from docs/lessons (GET /api/guides/3), rendered
// from its Markdown, with the lesson's preset one click away.
import { getGuide, listPresets } from "./api.js";
import { launchAndOpen } from "./home-view.js";
import { render } from "./markdown.js";
import { el, useStyle } from "./ui.js";

useStyle(import.meta.url, "guide-view.css");

class GuideView extends HTMLElement {
  connectedCallback() {
    this.lesson = Number(this.getAttribute("lesson"));
    this.status = el("p", { class: "lesson-status", role: "status" });
    this.actions = el("div", { class: "guide-actions" });
    this.body = el("article", { class: "card guide" }, el("p", { class: "muted", text: "Loading the guide…" }));
    this.replaceChildren(el("a", { class: "back", href: "#/", text: "← All lessons" }), this.actions, this.status, this.body);
    this.load();
  }

  disconnectedCallback() {
    this.gone = true;
  }

  async load() {
    let guide;
    let presets = [];
    try {
      [guide, presets] = await Promise.all([getGuide(this.lesson), listPresets().catch(() => [])]);
    } catch (err) {
      if (this.gone) return;
      const text = err.status === 404 || err.status === 422
        ? `There is no guide for lesson ${this.getAttribute("lesson")}.`
        : `Could not load the guide: ${err.message}`;
      this.body.replaceChildren(el("p", { class: "notice notice-error", role: "alert", text }));
      return;
    }
    if (this.gone) return;
    document.title = `${guide.title} · Époque`;
    this.body.replaceChildren(render(guide.markdown));
    this.dataset.slug = guide.slug;
    const mine = presets.filter((p) => p.lesson === guide.lesson);
    this.actions.replaceChildren(...mine.map((preset) => {
      const button = el("button", { type: "button", class: "button-primary", text: `Launch “${preset.title}”` });
      button.addEventListener("click", () => launchAndOpen(preset, button, this.status));
      return button;
    }));
  }
}

customElements.define("guide-view", GuideView);
