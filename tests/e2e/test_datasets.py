"""Bring your own data in a real browser: upload a zip in the Datasets page, see its card, click
"Train on this", launch, and the run learns it."""

from __future__ import annotations

import base64
import io
import re
import shutil
import zipfile
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import DOCS_SHOTS
from tests.e2e.test_browser import percent
from tests.upload_zips import CLASSES, pattern_zip

pytestmark = pytest.mark.browser

# The states the page went through, recorded as they happen (processing can be brief).
RECORD_STATES = """() => {
  window.__states = [];
  const view = document.querySelector("datasets-view");
  new MutationObserver(() => window.__states.push(view.dataset.state || ""))
    .observe(view, { attributes: true, attributeFilter: ["data-state"] });
}"""


@pytest.mark.timeout(600)
def test_upload_a_zip_see_its_card_and_train_on_it(page: Page, server: str, artifacts: Path,
                                                    tmp_path: Path) -> None:
    # 3 classes of distinguishable patterns, 30 images each, PNG and JPEG, one name not ASCII.
    archive = tmp_path / "patterns.zip"
    archive.write_bytes(pattern_zip(per_class=30))
    page.goto("/#/datasets")
    expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible()
    page.evaluate(RECORD_STATES)
    page.locator("#dataset-zip").set_input_files(str(archive))

    card = page.locator(".dataset-card")
    expect(card).to_be_visible(timeout=60_000)
    states = page.evaluate("() => window.__states")
    assert states[0] == "uploading" and states[-1] == "ready", states
    dataset_id = card.get_attribute("data-dataset-id")
    expect(page).to_have_url(re.compile(rf"#/datasets/{dataset_id}$"))
    rows = card.locator(".class-row")
    expect(rows).to_have_count(3)
    for i, name in enumerate(sorted(CLASSES)):
        row = rows.nth(i)
        expect(row.locator(".class-name")).to_have_text(name)  # "damier été" as written
        expect(row.locator(".class-count")).to_have_text("30 images")
        expect(row.locator("img")).to_have_count(8)
    # Every thumbnail is a real decoded picture.
    assert page.evaluate("() => [...document.querySelectorAll('.class-samples img')]"
                         ".every((img) => img.complete && img.naturalWidth === 64)")
    expect(card.locator('dd[data-fact="input_shape"]')).to_have_text("32×32 pixels, RGB")
    expect(card.locator('dd[data-fact="n_images"]')).to_have_text("90")
    expect(page.locator(f'.upload-rows li[data-dataset-id="{dataset_id}"]')).to_contain_text(
        "90 images, 3 classes")
    page.mouse.move(1, 1)
    page.screenshot(path=str(artifacts / "datasets.png"), full_page=True)
    DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifacts / "datasets.png", DOCS_SHOTS / "datasets.png")

    listed = next(d for d in httpx.get(f"{server}/api/datasets").json()
                  if d.get("id") == dataset_id)
    assert listed["available"] is True and listed["input_shape"] == [3, 32, 32]

    # "Train on this": the launch form with the upload chosen and a small CNN.
    card.get_by_role("link", name="Train on this").click()
    expect(page).to_have_url(re.compile(r"#/launch\?dataset=folder%3A"))
    expect(page.get_by_label("dataset", exact=True)).to_have_value(f"folder:{dataset_id}")
    expect(page.get_by_label("arch", exact=True).locator("option:checked")).to_have_text("cnn")
    expect(page.locator("launch-form .notice-info")).to_contain_text("a small CNN")
    # The dataset field lists the upload by its title, beside the lab's own datasets.
    expect(page.locator(f'launch-form select option[value="folder:{dataset_id}"]')).to_have_text(
        f"patterns (folder:{dataset_id})")
    page.get_by_role("button", name="Launch").click()

    expect(page).to_have_url(re.compile(r"#/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("run-view")).to_have_attribute("data-stream", "ended", timeout=480_000)
    run = httpx.get(f"{server}/api/runs/{run_id}").json()
    assert run["status"] == "succeeded", run["error"]
    assert run["spec"]["data"]["dataset"] == f"folder:{dataset_id}"
    assert run["spec"]["model"]["arch"] == "cnn"
    assert run["result"]["test_accuracy"] >= 0.9, run["result"]
    expect(page.locator('.figure[data-figure="test_accuracy"] dd')).to_have_text(
        percent(run["result"]["test_accuracy"]))


# A zip dropped on the page: the DataTransfer a user's drag would carry.
DROP_ZIP = """async ([b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type: "application/zip" }));
  const zone = document.querySelector(".drop-zone");
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }
}"""


def test_drop_a_zip_or_pick_a_folder_then_delete(page: Page, server: str, tmp_path: Path) -> None:
    data = pattern_zip(per_class=4, seed=1)
    page.goto("/#/datasets")
    before = len([d for d in httpx.get(f"{server}/api/datasets").json() if d.get("uploaded")])
    page.evaluate(DROP_ZIP, [base64.b64encode(data).decode(), "dropped.zip"])
    card = page.locator(".dataset-card")
    expect(card.get_by_role("heading", name="dropped")).to_be_visible(timeout=60_000)
    expect(card.locator(".class-row")).to_have_count(3)

    # A folder of class folders, zipped by the page (names as written, UTF-8).
    folder = tmp_path / "my pictures"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(folder)
    page.locator("#dataset-folder").set_input_files(folder)
    expect(card.get_by_role("heading", name="my pictures")).to_be_visible(timeout=60_000)
    rows = card.locator(".class-row")
    expect(rows).to_have_count(3)
    expect(rows.locator(".class-name")).to_have_text(sorted(CLASSES))
    expect(rows.locator(".class-count")).to_have_text(["4 images"] * 3)

    uploads = page.locator(".upload-rows li")
    expect(uploads).to_have_count(before + 2)
    page.get_by_role("button", name="Delete my pictures").click()
    expect(uploads).to_have_count(before + 1)
    expect(card).to_have_count(0)
    page.get_by_role("button", name="Delete dropped").click()
    if before:  # uploads of the module's other tests
        expect(uploads).to_have_count(before)
    else:
        expect(page.locator(".dataset-list")).to_have_text("None yet.")
    names = [d["title"] for d in httpx.get(f"{server}/api/datasets").json() if d.get("uploaded")]
    assert "dropped" not in names and "my pictures" not in names and len(names) == before


@pytest.mark.console_422
def test_a_refused_zip_says_which_file(page: Page, tmp_path: Path) -> None:
    data = io.BytesIO(pattern_zip(per_class=2))
    with zipfile.ZipFile(data, "a") as archive:
        archive.writestr("horizontal/notes.txt", "not an image")
    bad = tmp_path / "bad.zip"
    bad.write_bytes(data.getvalue())
    page.goto("/#/datasets")
    page.locator("#dataset-zip").set_input_files(str(bad))
    notice = page.locator("datasets-view .notice-error")
    expect(notice).to_be_visible(timeout=30_000)
    expect(notice).to_contain_text("Not uploaded: not images of an accepted format")
    expect(notice).to_contain_text("horizontal/notes.txt")
    expect(page.locator(".dataset-card")).to_have_count(0)
    expect(page.locator(".upload-progress")).to_be_hidden()
