"""The lab in a real browser: launch a run through the form, watch it live, read its result."""

from __future__ import annotations

import json
import re
import shutil
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, WebSocketRoute, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import Hold
from tests.e2e.conftest import DOCS_SHOTS

pytestmark = pytest.mark.browser

FINISHED = {"succeeded", "failed", "cancelled", "diverged"}
EPOCHS = 20

# What the run view shows at one moment: its status and the points in each loss trace.
READ_LIVE = """() => {
  const view = document.querySelector("run-view");
  const plot = document.querySelector('metric-chart[data-metric="loss"] .js-plotly-plot');
  return {
    status: view ? view.dataset.status || null : null,
    train: plot && plot.data ? plot.data[0].x.length : -1,
    val: plot && plot.data ? plot.data[1].x.length : -1,
  };
}"""


def wait_for_points(page: Page, n: int) -> dict:
    """The charts draw asynchronously; give the last update a moment, then read them."""
    try:
        page.wait_for_function(
            f"() => ({READ_LIVE})().train >= {n} && ({READ_LIVE})().val >= {n}", timeout=5_000
        )
    except PlaywrightTimeout:
        pass  # the assertion that follows says what the chart holds
    return page.evaluate(READ_LIVE)


def percent(value: float) -> str:
    """The lab's accuracy format: JavaScript's (value * 100).toFixed(2), which rounds half up."""
    return f"{Decimal(value * 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)} %"


def _live_chart_shows(page: Page, epochs: int) -> dict:
    """What the run view shows once its loss chart has ``epochs`` points (or after 30 s)."""
    try:
        page.wait_for_function(f"() => ({READ_LIVE})().train >= {epochs} "
                               f"&& ({READ_LIVE})().val >= {epochs}", timeout=30_000)
    except PlaywrightTimeout:
        pass  # the assertion that follows says what the chart holds
    return page.evaluate(READ_LIVE)


def test_launch_run_from_form_and_watch_it_live(page: Page, server: str, artifacts: Path,
                                                hold: Hold) -> None:
    hold.every_run_at(2)
    page.goto("/")
    expect(page.get_by_role("heading", name="Runs")).to_be_visible()
    page.locator("run-list").get_by_role("link", name="New run").click()
    expect(page).to_have_url(re.compile(r"#/launch$"))

    # Fill the generated form by its labels, as a user would.
    page.get_by_label("name", exact=True).fill("browser: digits MLP")
    page.get_by_label("dataset", exact=True).select_option("digits")  # a list of the lab's datasets
    max_epochs = page.get_by_label("max_epochs", exact=True)
    expect(max_epochs).to_have_value("50")  # the schema's default is shown
    max_epochs.fill(str(EPOCHS))
    expect(page.get_by_label("lr", exact=True)).to_have_value("0.1")
    page.screenshot(path=str(artifacts / "launch-form.png"), full_page=True)
    page.get_by_role("button", name="Launch").click()

    expect(page).to_have_url(re.compile(r"#/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_role("heading", name="browser: digits MLP")).to_be_visible()

    # Held at the end of epoch 2 (worker/testhold.py), the run is live with 2 points drawn;
    # let on by one epoch, the chart gains the third while the run is still running.
    for epoch in (2, 3):
        if epoch > 2:
            hold.run_until(run_id, epoch)
        hold.held_at(run_id, epoch)
        live = _live_chart_shows(page, epoch)
        assert live == {"status": "running", "train": epoch, "val": epoch}, live
    expect(page.locator("run-view .progress-label")).to_contain_text(f"/ {EPOCHS}")
    page.screenshot(path=str(artifacts / "run-view-live.png"), full_page=True)
    hold.release(run_id)

    # Once finished, the figures panel shows the API's own test accuracy.
    view = page.locator("run-view")
    expect(view).to_have_attribute("data-stream", "ended", timeout=180_000)
    run = httpx.get(f"{server}/api/runs/{run_id}").json()
    assert run["status"] == "succeeded", f"the run ended {run['status']}: {run['error']}"
    result = run["result"]
    accuracy = page.locator('.figure[data-figure="test_accuracy"] dd')
    expect(accuracy).to_have_text(percent(result["test_accuracy"]))
    expect(page.locator("run-view .badge")).to_have_text("succeeded")
    expect(page.locator('.figure[data-figure="epochs_run"] dd')).to_have_text(str(result["epochs_run"]))
    expect(page.locator('.figure[data-figure="best_epoch"] dd')).to_have_text(str(result["best_epoch"]))
    expect(page.locator("run-view .progress-label")).to_have_text(f"epoch {EPOCHS} / {EPOCHS}")

    # Every epoch reached the chart exactly once: as many points as the API has.
    metrics = httpx.get(
        f"{server}/api/runs/{run_id}/metrics", params={"keys": "train_loss,val_loss"}
    ).json()["series"]
    final = wait_for_points(page, result["epochs_run"])
    assert final["train"] == len(metrics["train_loss"]) == result["epochs_run"]
    assert final["val"] == len(metrics["val_loss"])
    assert page.evaluate(
        """() => document.querySelector('metric-chart[data-metric="accuracy"] .js-plotly-plot')
                   .data[1].y.length"""
    ) == result["epochs_run"]

    csv = page.get_by_role("link", name="Download metrics CSV")
    assert httpx.get(server + csv.get_attribute("href")).text.startswith("key,x,value")

    page.mouse.move(1, 1)  # no hover toolbar in the picture
    page.wait_for_timeout(400)  # let Plotly finish its last transition before the picture
    page.screenshot(path=str(artifacts / "run-view.png"), full_page=True)
    DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(artifacts / "run-view.png", DOCS_SHOTS / "run-view.png")

    # Back home, the run list shows the finished run with the same figure.
    page.get_by_role("link", name="← All runs").click()
    row = page.locator(f'tr[data-run-id="{run_id}"]')
    expect(row).to_contain_text("succeeded")
    expect(row).to_contain_text("digits")
    expect(row).to_contain_text(percent(result["test_accuracy"]))
    expect(row).to_contain_text(f"{EPOCHS} / {EPOCHS}")
    page.screenshot(path=str(artifacts / "run-list.png"), full_page=True)


@pytest.mark.console_422  # a bad η, on purpose
def test_invalid_lr_is_explained_next_to_its_field(page: Page, server: str, artifacts: Path) -> None:
    before = [run["id"] for run in httpx.get(f"{server}/api/runs").json()]
    page.goto("/#/launch")
    # The form's sections: initialisation and early stopping get their own, after the section
    # whose spec object holds them. (The form is built once the schema has arrived.)
    expect(page.locator('.schema-form > fieldset[data-path="model.init"]')).to_have_count(1)
    legends = page.locator(".schema-form > fieldset > legend").all_inner_texts()
    assert legends[:3] == ["Run", "Data", "Model"], legends
    assert legends[legends.index("Model") + 1] == "Initialisation", legends
    assert legends[legends.index("Training") + 1].startswith("Early stopping"), legends
    lr = page.get_by_label("lr", exact=True)
    lr.fill("-1")
    page.get_by_role("button", name="Launch").click()

    error = page.locator('.field[data-path="optim.lr"] .field-error')
    expect(error).to_be_visible()
    expect(error).to_contain_text("greater than 0")
    expect(lr).to_have_attribute("aria-invalid", "true")
    expect(lr).to_have_accessible_description(re.compile("greater than 0"))
    expect(lr).to_be_focused()
    # Only the lr field is marked, the form keeps what was typed, and the page stays put.
    expect(page.locator(".field.has-error")).to_have_count(1)
    expect(lr).to_have_value("-1")
    expect(page).to_have_url(re.compile(r"#/launch$"))
    expect(page.get_by_role("alert").first).to_contain_text("did not accept")
    page.screenshot(path=str(artifacts / "launch-form-422.png"), full_page=True)

    time.sleep(0.5)
    after = [run["id"] for run in httpx.get(f"{server}/api/runs").json()]
    assert after == before, "a rejected spec must not create a run"


def test_stream_reconnects_from_its_last_cursor(page: Page, server: str, hold: Hold) -> None:
    """Cut the live socket after its first message: the view reopens it from the cursor it
    last saw, and the charts end with every epoch exactly once."""
    epochs = 30
    hold.every_run_at(2)  # live when the page opens, until the view has reconnected
    run = httpx.post(
        f"{server}/api/runs", json={"name": "reconnect", "training": {"max_epochs": epochs}}
    ).json()
    hold.held_at(run["id"], 2)
    opened: list[str] = []
    delivered: list[int] = []

    def route(ws: WebSocketRoute) -> None:
        opened.append(ws.url)
        upstream = ws.connect_to_server()
        if len(opened) > 1:
            return  # later connections pass through untouched
        cut = False

        def relay(message: str | bytes) -> None:
            nonlocal cut
            if cut:
                return
            ws.send(message)
            data = json.loads(message)
            delivered.append(data["cursor"])
            if data["type"] != "end":
                cut = True
                ws.close()
                upstream.close()

        upstream.on_message(relay)

    page.route_web_socket(re.compile(r"/api/runs/\d+/stream"), route)
    page.goto(f"/#/runs/{run['id']}")
    deadline = time.monotonic() + 60
    while len(opened) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    hold.release(run["id"])
    view = page.locator("run-view")
    expect(view).to_have_attribute("data-stream", "ended", timeout=180_000)
    expect(view).to_have_attribute("data-status", "succeeded")

    assert len(opened) >= 2, f"the view did not reconnect: {opened} {delivered}"
    assert delivered and delivered[-1] > 0
    assert opened[1].endswith(f"after={delivered[-1]}"), (opened, delivered)
    metrics = httpx.get(f"{server}/api/runs/{run['id']}/metrics").json()["series"]
    final = wait_for_points(page, epochs)
    assert final["train"] == len(metrics["train_loss"]) == epochs
    assert final["val"] == len(metrics["val_loss"]) == epochs


def test_several_tabs_follow_live_runs_side_by_side(page: Page, server: str) -> None:
    """Three tabs, two live runs: each tab draws its own run's every epoch, once."""
    epochs = 200
    runs = [httpx.post(f"{server}/api/runs", json={"name": f"tab {i}",
                                                     "training": {"max_epochs": epochs}}).json()
            for i in range(2)]
    tabs = [page, page.context.new_page(), page.context.new_page()]
    for tab, run in zip(tabs, [runs[0], runs[1], runs[0]], strict=True):
        tab.goto(f"/#/runs/{run['id']}")
    for tab, run in zip(tabs, [runs[0], runs[1], runs[0]], strict=True):
        view = tab.locator("run-view")
        expect(view).to_have_attribute("data-stream", "ended", timeout=180_000)
        expect(view).to_have_attribute("data-status", "succeeded")
        drawn = wait_for_points(tab, epochs)
        assert drawn["train"] == drawn["val"] == epochs, (run["id"], drawn)
        expect(tab.locator("run-view h1")).to_have_text(run["name"])


# Every form control a user can reach, without a name a screen reader would announce.
UNNAMED = """() => [...document.querySelectorAll('main input, main select, main textarea, main button')]
  .filter((c) => c.type !== 'hidden' && !c.closest('[hidden]'))
  .filter((c) => !(c.labels && c.labels.length) && !c.getAttribute('aria-label')
    && !c.getAttribute('aria-labelledby') && !(c.tagName === 'BUTTON' && c.textContent.trim()))
  .map((c) => c.outerHTML.slice(0, 120))"""


def test_every_control_has_a_label(page: Page, server: str) -> None:
    run = httpx.post(f"{server}/api/runs", json={"name": "labels", "data": {"dataset": "moons"},
                                                   "training": {"max_epochs": 5}}).json()
    for route, ready in (("/#/launch", "launch-form form"), (f"/#/runs/{run['id']}", "run-view metric-chart"),
                         ("/#/augment", "augment-lab"), ("/#/compare", "compare-view"),
                         ("/#/", "home-view .lesson-card"), ("/#/datasets", "datasets-view .drop-zone")):
        page.goto(route)
        expect(page.locator(ready).first).to_be_visible()
        page.wait_for_timeout(300)  # controls that are built after the first data arrives
        assert page.evaluate(UNNAMED) == [], route
