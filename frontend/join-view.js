// <join-view code="…">: a student types a name and joins the class of the link's code; the
// student token is then kept by this browser (classes-api.js) and the class's page opens.
import { joinClass, joinedClass } from "./classes-api.js";
import { el, useStyle } from "./ui.js";

useStyle(import.meta.url, "classes.css");

class JoinView extends HTMLElement {
  connectedCallback() {
    const code = (this.getAttribute("code") || "").toUpperCase();
    this.name = el("input", { type: "text", id: "join-name", maxlength: "100", autocomplete: "nickname", required: true });
    this.error = el("p", { class: "field-error", role: "alert", hidden: true });
    this.button = el("button", { type: "submit", class: "button-primary", text: "Join" });
    const form = el("form", { class: "join-form", "aria-label": "Join the class" },
      el("div", { class: "field" },
        el("label", { class: "field-label", for: "join-name", text: "Your name (as the class will see it)" }),
        this.name, this.error),
      this.button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.join(code);
    });
    const already = joinedClass();
    this.replaceChildren(el("section", { class: "card class-card" },
      el("h1", { text: "Join a class" }),
      el("p", {}, "Class code ", el("strong", { class: "join-code", text: code })),
      already ? el("p", { class: "notice notice-info" }, `This browser is already in a class as ${already.name}: `,
        el("a", { href: "#/class", text: "open it" }), ", or join this one instead.") : "",
      form));
    this.name.focus();
  }

  async join(code) {
    const name = this.name.value.trim();
    if (!name) {
      this.error.textContent = "Type a name.";
      this.error.hidden = false;
      return;
    }
    this.button.disabled = true;
    this.error.hidden = true;
    try {
      await joinClass(code, name);
      location.hash = "#/class";
    } catch (err) {
      this.error.textContent = err.message;
      this.error.hidden = false;
      this.button.disabled = false;
    }
  }
}

customElements.define("join-view", JoinView);
