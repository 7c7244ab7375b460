"""SPEC.md "Looking inside" in the browser: the training-health panel, the confusion matrix with
its epoch slider and a clicked cell's examples, checked against the API's own numbers."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_lab import PLOT, plot_data, plot_layout, post_run, snap, wait_finished

pytestmark = pytest.mark.browser


def click_cell(page: Page, selector: str, row: int, col: int) -> None:
    """Click the centre of heatmap cell (row, col) where Plotly drew it."""
    page.locator(f"{selector} .js-plotly-plot").scroll_into_view_if_needed()
    box = page.evaluate(f"""() => {{
        const plot = {PLOT.format(sel=selector)};
        const fl = plot._fullLayout, r = plot.getBoundingClientRect();
        return {{x: r.left + fl.xaxis._offset + fl.xaxis.l2p({col}),
                 y: r.top + fl.yaxis._offset + fl.yaxis.l2p({row})}};
    }}""")
    page.mouse.click(box["x"], box["y"])


def test_health_panel_diagnoses_a_constant_init(page: Page, server: str, artifacts: Path) -> None:
    run = post_run(server, {"name": "constant init, ReLU", "model": {
        "hidden": [32, 32], "activation": "relu", "init": {"scheme": "constant"}},
        "training": {"max_epochs": 3}})
    page.goto(f"/#/runs/{run['id']}")
    expect(page.locator("run-view")).to_have_attribute("data-stream", "ended", timeout=120_000)
    health = httpx.get(f"{server}/api/runs/{run['id']}/health").json()
    dead = [d for d in health["diagnoses"] if d["key"].startswith("dead_fraction/")]
    assert dead, health
    panel = page.locator("health-panel")
    expect(panel).to_have_attribute("data-diagnoses", str(len(health["diagnoses"])))
    expect(panel.locator(".health-diagnosis").first).to_contain_text(health["diagnoses"][0]["message"])
    expect(panel.locator(f'tr[data-layer="{dead[0]["layer"]}"] [data-cell="dead"]')).to_have_text("100.00 %")
    snap(page, artifacts, "health-panel", docs=True, element=panel)


def test_confusion_matrix_slider_and_a_clicked_cell(page: Page, server: str, artifacts: Path) -> None:
    run = post_run(server, {"name": "digits, confusion", "model": {"hidden": [16]},
                            "training": {"max_epochs": 4}})
    done = wait_finished(server, run["id"])
    assert done["status"] == "succeeded", done["error"]
    api = f"{server}/api/runs/{run['id']}"
    returned = httpx.get(f"{api}/confusion").json()
    page.goto(f"/#/runs/{run['id']}")
    view = page.locator("confusion-view")
    sel = "confusion-view"
    expect(view).to_have_attribute("data-drawn", str(returned["epoch"]), timeout=30_000)
    shown = plot_data(page, sel)[0]
    assert shown["customdata"] == returned["matrix"]
    assert shown["x"] == shown["y"] == [str(i) for i in range(10)] == returned["classes"]

    # The slider goes back to epoch 1's matrix, as the API stores it, dragged there over
    # epochs[1] and epochs[2]: picks made while a request is out wait, the newest replacing the
    # older, so epochs[2] is never asked for, and an overtaken answer is never drawn.
    epochs = returned["epochs"]
    assert len(epochs) >= 3 and returned["epoch"] != epochs[0]
    first = httpx.get(f"{api}/confusion", params={"epoch": epochs[0]}).json()
    asked: list[int] = []
    page.on("request", lambda r: asked.extend(int(e) for e in parse_qs(urlparse(r.url).query).get("epoch", []))
            if "/confusion?" in r.url else None)
    view.get_by_label("matrix of epoch").evaluate("""(slider, picks) => {
        const host = slider.closest("confusion-view");
        window.drawnSeen = [];
        new MutationObserver(() => window.drawnSeen.push(host.dataset.drawn))
            .observe(host, { attributes: true, attributeFilter: ["data-drawn"] });
        for (const i of picks) {
            slider.value = String(i);
            slider.dispatchEvent(new Event("input"));
        }
    }""", [1, 2, 0])
    expect(view).to_have_attribute("data-drawn", str(first["epoch"]))
    assert plot_data(page, sel)[0]["customdata"] == first["matrix"]
    assert set(page.evaluate("window.drawnSeen")) == {str(first["epoch"])}
    assert asked[-1] == epochs[0] and epochs[2] not in asked and len(asked) <= 2, asked
    view.locator("input[type=range]").fill(str(returned["epochs"].index(returned["epoch"])))
    expect(view).to_have_attribute("data-drawn", str(returned["epoch"]))

    # The most confused cell: its examples are the API's, each an image with its bars.
    matrix = returned["matrix"]
    t, p = max(((t, p) for t in range(10) for p in range(10) if t != p),
               key=lambda c: matrix[c[0]][c[1]])
    assert matrix[t][p] > 0
    click_cell(page, sel, t, p)
    expect(view).to_have_attribute("data-cell", f"{t},{p}")
    expected = httpx.get(f"{api}/examples", params={
        "true": t, "pred": p, "epoch": returned["epoch"], "limit": 20}, timeout=60).json()
    expect(view).to_have_attribute("data-examples", str(len(expected)))
    assert len(expected) == min(20, matrix[t][p])
    items = view.locator(".confusion-example")
    assert [int(i) for i in items.evaluate_all("els => els.map((e) => e.dataset.index)")] == \
        [e["index"] for e in expected]
    first_item = items.first
    expect(first_item.locator("img.confusion-image")).to_have_count(1)
    expect(first_item.locator(".confusion-prob")).to_have_count(10)
    expect(first_item.locator(".confusion-prob.is-pred .confusion-prob-name")).to_have_text(returned["classes"][p])
    widths = first_item.locator(".confusion-prob-bar").evaluate_all(
        "els => els.map((e) => parseFloat(e.style.width))")
    assert widths == pytest.approx([100 * v for v in expected[0]["probabilities"]], abs=0.06)
    expect(view.locator(".confusion-cell-title")).to_contain_text(
        f"True {returned['classes'][t]}, predicted {returned['classes'][p]}: {matrix[t][p]} example")
    snap(page, artifacts, "confusion", docs=True, element=view)


def test_confusion_cell_of_a_2d_run_rings_its_points_on_the_boundary(page: Page, server: str) -> None:
    run = post_run(server, {"data": {"dataset": "moons"}, "model": {"hidden": [4]},
                            "training": {"max_epochs": 2}})
    assert wait_finished(server, run["id"])["status"] == "succeeded"
    api = f"{server}/api/runs/{run['id']}"
    returned = httpx.get(f"{api}/confusion").json()
    page.goto(f"/#/runs/{run['id']}")
    view = page.locator("confusion-view")
    expect(view).to_have_attribute("data-drawn", str(returned["epoch"]), timeout=30_000)
    expect(page.locator("boundary-plot")).to_have_attribute("data-epoch", str(returned["epoch"]),
                                                            timeout=30_000)
    click_cell(page, "confusion-view", 0, 0)
    expected = httpx.get(f"{api}/examples", params={"true": 0, "pred": 0, "limit": 20}, timeout=60).json()
    expect(view).to_have_attribute("data-cell", "0,0")
    expect(view).to_have_attribute("data-examples", str(len(expected)))
    expect(view.locator(".confusion-point").first).to_have_text(
        "(" + ", ".join(f"{v:.3f}" for v in expected[0]["input"]) + ")")
    expect(page.locator("boundary-plot")).to_have_attribute("data-highlighted", str(len(expected)))
    ring = next(t for t in plot_data(page, "boundary-plot") if t.get("name", "").startswith("true"))
    assert ring["x"] == pytest.approx([e["input"][0] for e in expected])
    assert ring["y"] == pytest.approx([e["input"][1] for e in expected])


def test_lr_range_test_from_the_launch_form_fills_eta(page: Page, server: str, artifacts: Path) -> None:
    page.goto("/#/launch")
    page.get_by_label("max_epochs", exact=True).fill("3")  # the launch form's spec goes along
    page.get_by_role("button", name="Find η (LR range test)").click()
    finder = page.locator("lr-range-finder")
    expect(finder).to_have_attribute("data-drawn", re.compile(r"\d+"), timeout=120_000)
    run_id = finder.get_attribute("data-run")
    run = httpx.get(f"{server}/api/runs/{run_id}").json()
    assert run["kind"] == "lr_range" and run["spec"]["training"]["max_epochs"] == 3
    assert run["options"] == {"start": 1e-6, "end": 10, "steps": 100, "seeds": 3}
    found = run["result"]["lr_range"]
    api = httpx.get(f"{server}/api/runs/{run_id}/metrics").json()["series"]
    traces = plot_data(page, "lr-range-finder")
    for trace in traces:
        assert trace["x"] == [x for x, _ in api[trace["meta"]]]
        assert trace["y"] == [y for _, y in api[trace["meta"]]]
    layout = plot_layout(page, "lr-range-finder")
    assert layout["xaxis"]["type"] == "log"
    marks = {s["name"]: s["x0"] for s in layout["shapes"]}
    assert marks == {"suggested": found["suggested_lr"], "alternative": found["alternative_lr"]}
    assert found["rule"] in layout["annotations"][0]["text"]
    expect(finder.locator(".lr-range-summary")).to_contain_text("Over 3 seeds")
    finder.get_by_role("button", name="use this η").click()
    expect(finder.locator(".lr-range-status")).to_contain_text("written into the form")
    lr = page.get_by_label("lr", exact=True).input_value()
    assert float(lr) == pytest.approx(float(f"{found['suggested_lr']:.3g}"), rel=1e-12)
    assert f'"lr": {lr}' in page.locator(".spec-json").text_content()
    snap(page, artifacts, "lr-range", docs=True, element=finder)
    # The test is a run of its own: its run view draws the same chart.
    finder.get_by_role("link", name=f"LR range test #{run_id}").click()
    shown = page.locator("run-view lr-range-finder")
    expect(shown).to_have_attribute("data-drawn", run_id, timeout=30_000)
    assert plot_data(page, "run-view lr-range-finder")[1]["y"] == [y for _, y in api["lr_range/smoothed_loss"]]


def test_loss_landscape_with_its_path(page: Page, server: str, artifacts: Path) -> None:
    run = post_run(server, {"name": "digits, momentum", "model": {"hidden": [32]},
                            "optim": {"momentum": 0.9, "lr": 0.05}, "training": {"max_epochs": 8}})
    assert wait_finished(server, run["id"])["status"] == "succeeded"
    page.goto(f"/#/runs/{run['id']}")
    view = page.locator("loss-landscape")
    view.get_by_role("button", name="Compute the loss landscape").click()
    expect(view).to_have_attribute("data-drawn", "21", timeout=120_000)
    found = httpx.get(f"{server}/api/runs/{run['id']}/landscape", params={"resolution": 21}).json()
    assert found["status"] == "done"
    traces = plot_data(page, "loss-landscape")
    assert traces[0]["z"] == found["loss"] and traces[0]["x"] == found["alphas"]
    path = next(t for t in traces if t.get("meta") == "path")
    assert path["x"] == [p[0] for p in found["path"]] and path["y"] == [p[1] for p in found["path"]]
    assert len(path["x"]) == 9  # z0 and 8 epochs
    expect(view.locator(".landscape-status")).to_contain_text("Loss at z*")
    view.scroll_into_view_if_needed()
    snap(page, artifacts, "landscape", docs=True, element=view)


def test_confusion_cell_of_mnist1d_draws_each_signal(page: Page, server: str) -> None:
    run = post_run(server, {"data": {"dataset": "mnist1d"}, "model": {"hidden": [16]},
                            "training": {"max_epochs": 2}})
    assert wait_finished(server, run["id"])["status"] == "succeeded"
    returned = httpx.get(f"{server}/api/runs/{run['id']}/confusion").json()
    page.goto(f"/#/runs/{run['id']}")
    view = page.locator("confusion-view")
    expect(view).to_have_attribute("data-drawn", str(returned["epoch"]), timeout=30_000)
    t = max(range(10), key=lambda c: returned["matrix"][c][c])
    click_cell(page, "confusion-view", t, t)
    expected = httpx.get(f"{server}/api/runs/{run['id']}/examples",
                         params={"true": t, "pred": t, "limit": 20}, timeout=60).json()
    expect(view).to_have_attribute("data-examples", str(len(expected)))
    first = expected[0]
    assert len(first["input"]) == 40 and first["png"] is None
    path = view.locator(".confusion-example").first.locator(".confusion-signal svg path")
    vertices = re.findall(r"[ML]([-\d.]+),([-\d.]+)", path.get_attribute("d"))
    assert len(vertices) == 40  # one vertex per sample of the signal
    highest = min(range(40), key=lambda i: float(vertices[i][1]))  # SVG y grows downwards
    top, span = max(first["input"]), max(first["input"]) - min(0, *first["input"])
    assert first["input"][highest] >= top - 0.01 * span  # within the drawing's rounding
