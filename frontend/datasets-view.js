// <datasets-view [dataset-id]>: bring your own images. Drop a zip of class folders (or pick
// one, or pick a folder: it is zipped here), watch it upload and be processed, then see its
// card: classes with counts, a few images of each class as the network will see them, the
// training size, and "Train on this", which opens the launch form with a small CNN on it.
import { ApiError, deleteDataset, getDataset, getDatasetSamples, listDatasets, uploadDataset } from "./api.js";
import { el, formatTime, useStyle } from "./ui.js";
import { storeZip } from "./zip-store.js";

useStyle(import.meta.url, "datasets-view.css");

const POLL_MS = 300;
const IMAGE_SUFFIX = /\.(png|jpe?g|bmp|gif|webp)$/i;

const shapeText = (shape) => (Array.isArray(shape) && shape.length === 3
  ? `${shape[1]}×${shape[2]} pixels, ${shape[0] === 3 ? "RGB" : `${shape[0]} channel${shape[0] === 1 ? "" : "s"}`}` : "—");

/** The launch form's starting point for an upload: a small CNN, sized for few images. */
export function datasetLaunchHash(name) {
  return `#/launch?dataset=${encodeURIComponent(name)}`;
}

class DatasetsView extends HTMLElement {
  #timer = null;
  #gone = false;

  connectedCallback() {
    this.notice = el("div", { class: "notice notice-error", role: "alert", hidden: true });
    this.zipInput = el("input", { type: "file", id: "dataset-zip", accept: ".zip,application/zip", class: "visually-hidden" });
    this.folderInput = el("input", { type: "file", id: "dataset-folder", webkitdirectory: true, multiple: true, class: "visually-hidden" });
    this.zipInput.addEventListener("change", () => this.zipInput.files[0] && this.send(this.zipInput.files[0]));
    this.folderInput.addEventListener("change", () => this.sendFolder([...this.folderInput.files]));
    this.bar = el("progress", { class: "upload-bar", max: "1", value: "0" });
    this.barLabel = el("p", { class: "upload-label", role: "status", "aria-live": "polite" });
    this.progress = el("div", { class: "upload-progress", hidden: true }, this.barLabel, this.bar);
    this.drop = el("div", { class: "drop-zone card", tabindex: "0", "aria-label": "Drop a zip of class folders here" },
      el("p", { class: "drop-title", text: "Drop a zip of class folders here" }),
      el("p", { class: "muted", text: "One folder per class, images inside (PNG, JPEG, BMP, GIF or WebP). Every image is resized to 32×32 RGB once, at upload." }),
      el("div", { class: "drop-actions" },
        el("label", { class: "button", for: "dataset-zip", text: "Choose a zip…" }), this.zipInput,
        el("label", { class: "button", for: "dataset-folder", text: "Choose a folder…" }), this.folderInput),
      this.progress);
    for (const type of ["dragenter", "dragover"]) {
      this.drop.addEventListener(type, (event) => {
        event.preventDefault();
        this.drop.classList.add("drag-over");
      });
    }
    this.drop.addEventListener("dragleave", () => this.drop.classList.remove("drag-over"));
    this.drop.addEventListener("drop", (event) => {
      event.preventDefault();
      this.drop.classList.remove("drag-over");
      const file = event.dataTransfer?.files?.[0];
      if (file) this.send(file);
    });
    this.card = el("div", { class: "dataset-card-slot" });
    this.list = el("div", { class: "dataset-list" });
    this.replaceChildren(
      el("section", { class: "datasets-intro" },
        el("h1", { text: "Datasets" }),
        el("p", { class: "muted", text: "Train on your own images: upload them here, check what the network will see, and launch a run on them." })),
      this.notice, this.drop, this.card,
      el("section", { "aria-label": "Uploaded datasets" }, el("h2", { text: "Your uploads" }), this.list));
    const id = this.getAttribute("dataset-id");
    if (id) this.follow(id);
    this.refreshList();
  }

  disconnectedCallback() {
    this.#gone = true;
    clearTimeout(this.#timer);
  }

  fail(message) {
    this.notice.textContent = message;
    this.notice.hidden = !message;
  }

  showProgress(fraction, text) {
    this.progress.hidden = false;
    this.bar.value = Math.max(0, Math.min(1, fraction));
    this.barLabel.textContent = text;
  }

  async sendFolder(files) {
    const images = files.filter((f) => IMAGE_SUFFIX.test(f.name) && !f.name.startsWith("."));
    if (!images.length) {
      this.fail("That folder holds no PNG, JPEG, BMP, GIF or WebP images.");
      return;
    }
    const top = (images[0].webkitRelativePath || "").split("/")[0] || "dataset";
    this.showProgress(0, `Packing ${images.length} images…`);
    const zip = await storeZip(images.map((f) => ({ name: f.webkitRelativePath || f.name, file: f })));
    this.send(new File([zip], `${top}.zip`, { type: "application/zip" }), top);
  }

  async send(file, name = null) {
    this.fail("");
    this.card.replaceChildren();
    this.dataset.state = "uploading";
    this.showProgress(0, `Uploading ${file.name}…`);
    try {
      const started = await uploadDataset(file, {
        name: name || file.name.replace(/\.zip$/i, ""),
        onProgress: (sent, total) => this.showProgress(0.5 * sent / total, `Uploading ${file.name}: ${Math.round(100 * sent / total)} %`),
      });
      history.replaceState(null, "", `#/datasets/${encodeURIComponent(started.id)}`);
      this.follow(started.id, started);
    } catch (err) {
      this.progress.hidden = true;
      delete this.dataset.state;
      this.fail(`Not uploaded: ${err.message}`);
    }
  }

  /** Poll the upload until it is processed, then show its card. */
  async follow(id, known = null) {
    clearTimeout(this.#timer);
    let dataset = known;
    try {
      dataset = dataset || await getDataset(id);
    } catch (err) {
      this.fail(err instanceof ApiError && err.status === 404 ? "This dataset no longer exists." : err.message);
      return;
    }
    if (this.#gone) return;
    if (dataset.status === "processing") {
      const { done = 0, total = 1 } = dataset.progress || {};
      this.dataset.state = "processing";
      this.showProgress(0.5 + 0.5 * done / Math.max(total, 1), `Processing images: ${done} / ${total}`);
      this.#timer = setTimeout(() => this.follow(id), POLL_MS);
      return;
    }
    this.progress.hidden = true;
    this.refreshList();
    if (dataset.status === "failed") {
      delete this.dataset.state;
      this.fail(`Not usable: ${dataset.reason || "processing failed"}`);
      this.card.replaceChildren(this.failedCard(dataset));
      return;
    }
    this.showCard(dataset);
  }

  failedCard(dataset) {
    return el("article", { class: "card dataset-card dataset-failed" },
      el("h2", { text: dataset.title }),
      el("p", { text: dataset.reason || "Its images could not be processed." }),
      el("button", { type: "button", text: "Dismiss", onclick: () => this.remove(dataset) }));
  }

  async showCard(dataset) {
    let samples;
    try {
      samples = await getDatasetSamples(dataset.id);
    } catch (err) {
      this.fail(`Could not load its images: ${err.message}`);
      return;
    }
    if (this.#gone) return;
    const classes = samples.classes.map((c) => el("li", { class: "class-row", dataset: { className: c.name } },
      el("div", { class: "class-head" },
        el("span", { class: "class-name", text: c.name }),
        el("span", { class: "class-count", text: `${c.count} image${c.count === 1 ? "" : "s"}` })),
      el("div", { class: "class-samples" }, c.samples.map((png, i) =>
        el("img", { src: `data:image/png;base64,${png}`, alt: `${c.name}, example ${i + 1}`, width: "48", height: "48" })))));
    const train = el("a", { class: "button button-primary", href: datasetLaunchHash(dataset.name), text: "Train on this" });
    this.card.replaceChildren(el("article", { class: "card dataset-card", dataset: { datasetId: dataset.id } },
      el("div", { class: "dataset-card-head" },
        el("div", {},
          el("h2", { text: dataset.title }),
          el("p", { class: "muted" }, el("code", { text: dataset.name }), ` · uploaded ${formatTime(dataset.created_at)}`)),
        train),
      el("dl", { class: "dataset-facts" },
        el("div", {}, el("dt", { text: "images" }), el("dd", { dataset: { fact: "n_images" }, text: String(dataset.n_images) })),
        el("div", {}, el("dt", { text: "classes" }), el("dd", { dataset: { fact: "classes" }, text: String(dataset.classes.length) })),
        el("div", {}, el("dt", { text: "trained at" }), el("dd", { dataset: { fact: "input_shape" }, text: shapeText(dataset.input_shape) })),
        el("div", {}, el("dt", { text: "split (train / val / test)" }), el("dd", {
          text: dataset.sizes ? `${dataset.sizes.train} / ${dataset.sizes.val} / ${dataset.sizes.test}` : "—" }))),
      el("ul", { class: "class-list" }, classes)));
    this.dataset.state = "ready";
  }

  async remove(dataset) {
    try {
      await deleteDataset(dataset.id);
    } catch (err) {
      this.fail(`Not deleted: ${err.message}`);
      return;
    }
    this.card.replaceChildren();
    this.fail("");
    if (location.hash !== "#/datasets") history.replaceState(null, "", "#/datasets");
    this.refreshList();
  }

  async refreshList() {
    let all;
    try {
      all = await listDatasets();
    } catch (err) {
      this.fail(`Could not list the datasets: ${err.message}`);
      return;
    }
    if (this.#gone) return;
    const uploads = all.filter((d) => d.uploaded);
    if (!uploads.length) {
      this.list.replaceChildren(el("p", { class: "muted", text: "None yet." }));
      return;
    }
    this.list.replaceChildren(el("ul", { class: "upload-rows" }, uploads.map((d) => el("li", { dataset: { datasetId: d.id } },
      el("a", { href: `#/datasets/${encodeURIComponent(d.id)}`, text: d.title, onclick: (event) => {
        event.preventDefault();
        history.replaceState(null, "", `#/datasets/${encodeURIComponent(d.id)}`);
        this.fail("");
        this.follow(d.id);
      } }),
      el("span", { class: "muted", text: d.status === "ready" ? ` ${d.n_images} images, ${d.classes.length} classes` : ` ${d.status}` }),
      el("button", { type: "button", class: "link-button", text: "Delete", "aria-label": `Delete ${d.title}`, onclick: () => this.remove(d) })))));
  }
}

customElements.define("datasets-view", DatasetsView);
