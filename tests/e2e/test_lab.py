"""Every view of the lab, driven as a user would in Debian's Chromium against the real server.

Each test clicks and types, reads what the page shows, checks it against the API's own
numbers (or a formula of COURSE.md), and saves a screenshot under tests/e2e/artifacts/;
the ones the README shows are copied to docs/img/.
"""

from __future__ import annotations

import io
import math
import re
import shutil
import time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.e2e.conftest import DOCS_SHOTS, serve

# Seeds of a study train stacked whatever timed steps would say (worker/timing.py decides by
# timing; its decisions are tested with a fake clock): what a page shows must not hang on it.
SERVER_ENV = {"EPOQUE_PACKS": "always"}

pytestmark = pytest.mark.browser

FINISHED = {"succeeded", "failed", "cancelled", "diverged"}

# The Plotly figure inside one chart element, as the page holds it.
PLOT = "document.querySelector('{sel} .js-plotly-plot')"


def percent(value: float) -> str:
    """The lab's accuracy format: JavaScript's (value * 100).toFixed(2), rounding half up."""
    return f"{Decimal(value * 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)} %"


def snap(page: Page, artifacts: Path, name: str, *, docs: bool = False,
         element: Locator | None = None) -> None:
    """A screenshot under the test output folder; `docs` also keeps it for the README (copied
    to docs/img by `make screenshots`, never by the test)."""
    page.mouse.move(1, 1)  # no hover toolbar in the picture
    page.wait_for_timeout(400)  # Plotly's last redraw
    path = artifacts / f"{name}.png"
    if element is not None:
        element.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=True)
    if docs:
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SHOTS / f"{name}.png")


def post_run(server: str, spec: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{server}/api/runs", json=spec)
    assert response.status_code == 201, response.text
    return response.json()


def wait_finished(server: str, run_id: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = httpx.get(f"{server}/api/runs/{run_id}").json()
        if run["status"] in FINISHED:
            return run
        time.sleep(0.2)
    pytest.fail(f"run {run_id} did not finish in {timeout} s")


def series(server: str, run_id: int, *keys: str) -> dict[str, list[list[float]]]:
    params = {"keys": ",".join(keys)} if keys else {}
    return httpx.get(f"{server}/api/runs/{run_id}/metrics", params=params).json()["series"]


def plot_data(page: Page, selector: str) -> list[dict[str, Any]]:
    return page.evaluate(f"() => {PLOT.format(sel=selector)}.data")


def plot_layout(page: Page, selector: str) -> dict[str, Any]:
    return page.evaluate(f"() => {PLOT.format(sel=selector)}.layout")


def shape(page: Page, selector: str, name: str) -> dict[str, Any] | None:
    shapes = plot_layout(page, selector).get("shapes") or []
    return next((s for s in shapes if s.get("name") == name), None)


def wait_for_shape(page: Page, selector: str, name: str, x0: float | None = None) -> dict[str, Any]:
    """The chart's vertical mark ``name`` (at ``x0`` if given), once drawn; a timeout fails with
    what the chart shows instead (a missing mark and a chart never drawn look alike otherwise)."""
    at = "" if x0 is None else f" && s.x0 === {x0}"
    try:
        page.wait_for_function(f"() => ({PLOT.format(sel=selector)}?.layout?.shapes || [])"
                               f".some((s) => s.name === '{name}'{at})")
    except PlaywrightTimeout:
        state = page.evaluate(f"""() => {{
            const chart = document.querySelector('{selector}');
            const plot = {PLOT.format(sel=selector)};
            return {{drawnWith: chart?.dataset.drawnWith, points: chart?.dataset.points, marks: chart?.marks,
                     shapes: (plot?.layout?.shapes || []).map((s) => [s.name, s.x0])}};
        }}""")
        pytest.fail(f"{selector}: no {name!r} mark{'' if x0 is None else f' at {x0}'}; the chart shows {state}")
    found = shape(page, selector, name)
    assert found is not None
    return found


def ema(values: list[float], beta: float) -> list[float]:
    """COURSE-free reference of the lab's smoothing: the debiased EMA (Adam's correction)."""
    out, s = [], 0.0
    for t, v in enumerate(values, start=1):
        s = beta * s + (1 - beta) * v
        out.append(s / (1 - beta**t))
    return out


def loglog_slope(points: list[tuple[float, float]]) -> float:
    lx = [math.log10(m) for m, _ in points]
    ly = [math.log10(v) for _, v in points]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly, strict=True)) / sum((a - mx) ** 2 for a in lx)


# --- Home ------------------------------------------------------------------------------------


def test_home_shows_every_lesson_and_launches_its_preset(
    page: Page, server: str, artifacts: Path
) -> None:
    presets = httpx.get(f"{server}/api/presets").json()
    assert {p["lesson"] for p in presets} == set(range(1, 11))
    page.goto("/")
    cards = page.locator(".lesson-card")
    expect(cards).to_have_count(len(presets))
    for preset in presets:
        card = page.locator(f'.lesson-card[data-preset="{preset["id"]}"]')
        expect(card.locator(".lesson-number")).to_contain_text(f"Lesson {preset['lesson']} ·")
        expect(card.locator(".lesson-title")).to_have_text(preset["title"])
        expect(card.locator(".formula")).to_have_text(preset["formula"])
        expect(card.get_by_role("button", name=f"Launch the preset “{preset['title']}”")).to_be_enabled()
    snap(page, artifacts, "home", docs=True)

    # One click launches lesson 5's study: one run per initialisation scheme.
    init = next(p for p in presets if p["id"] == "initialisation")
    schemes = init["study"]["grid"]["model.init.scheme"]
    page.get_by_role("button", name="Launch the preset “Constant vs random initialisation”").click()
    expect(page).to_have_url(re.compile(r"#/studies/\d+$"))
    expect(page.get_by_role("heading", name=init["title"], exact=True)).to_be_visible()
    rows = page.locator(".summary-table tbody tr")
    expect(rows).to_have_count(len(schemes))
    expect(page.locator("study-view")).to_have_attribute("data-status", "finished", timeout=120_000)
    expect(page.locator(".summary-table td[data-column='point:model.init.scheme']")).to_have_text(schemes)
    # The runs differ in exactly one field, and the compare table says which.
    expect(page.locator(".diff-table th.diff-field")).to_have_text(["model.init.scheme"])
    # One curve per run (each run's best and stop epochs are marked by marker traces beside it).
    page.wait_for_function("() => (document.querySelector('.compare-chart .js-plotly-plot')?.data || [])"
                           f".filter((t) => String(t.meta).startsWith('run|')).length === {len(schemes)}")
    snap(page, artifacts, "study-view", docs=True)

    # With every weight equal, each layer has one distinct unit (COURSE.md §5).
    constant = rows.filter(has=page.locator("td", has_text=re.compile(r"^constant$")))
    constant.get_by_role("link").click()
    expect(page).to_have_url(re.compile(r"#/runs/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("run-view")).to_have_attribute("data-stream", "ended")
    result = httpx.get(f"{server}/api/runs/{run_id}").json()["result"]
    assert result["distinct_units"] == [1] * 5
    cells = page.locator('[data-table="layers"] td[data-cell="distinct"]')
    expect(cells).to_have_text(["1"] * 5 + ["—"])
    expect(page.locator('[data-table="layers"] tr[data-layer="fc1"]')).to_contain_text("constant")


# --- Run view --------------------------------------------------------------------------------


def test_a_lesson_card_opens_its_guide_rendered_from_docs(page: Page, server: str, artifacts: Path) -> None:
    page.goto("/#/")
    page.get_by_role("link", name="Guide to lesson 4").click()
    expect(page).to_have_url(re.compile(r"#/guides/4$"))
    guide = page.locator("guide-view article.guide")
    expect(guide.get_by_role("heading", level=1)).to_have_text("Lesson 4 — Learning-rate schedules")
    expect(guide.get_by_role("heading", level=2).first).to_have_text("The slide's schedule")
    # The Markdown table, lists, emphasis and code are elements, not Markdown source.
    expect(guide.locator("table th")).to_have_text(["epoch", "0", "75", "125", "175"])
    expect(guide.locator("table td").nth(1)).to_have_text("0.1")
    expect(guide.locator("li strong").first).to_have_text("Before launching:")
    expect(guide.locator("p code").first).to_have_text("step-schedule")
    text = guide.inner_text()
    assert "**" not in text and "## " not in text and "|---" not in text
    snap(page, artifacts, "guide", docs=True)
    # The guide launches its lesson's preset.
    page.get_by_role("button", name=re.compile("Launch “Step schedule")).click()
    expect(page).to_have_url(re.compile(r"#/studies/\d+$"))
    # Four 200-epoch runs (80 s here) would hold the shared worker from the tests that follow.
    study_id = int(page.url.rsplit("/", 1)[1])
    assert httpx.delete(f"{server}/api/studies/{study_id}").status_code == 204
    page.expected_errors.append("status of 404")  # the guide that does not exist
    page.goto("/#/guides/42")
    expect(page.get_by_role("alert")).to_have_text("There is no guide for lesson 42.")


def test_run_view_live_lr_by_hand_smoothing_time_axis_and_cancel(
    page: Page, server: str, artifacts: Path
) -> None:
    run = post_run(server, {"name": "live controls", "model": {"hidden": [32]},
                            "training": {"max_epochs": 4000}})
    loss = 'metric-chart[data-metric="loss"]'
    lr_chart = 'metric-chart[data-metric="lr"]'
    page.goto(f"/#/runs/{run['id']}")
    view = page.locator("run-view")
    expect(view).to_have_attribute("data-status", "running", timeout=60_000)
    page.wait_for_function(f"() => {PLOT.format(sel=loss)}?.data?.[0]?.x.length >= 3")

    # A second tab on the same run streams too: its chart grows while the first one's does.
    other = page.context.new_page()
    other.goto(f"/#/runs/{run['id']}")
    count = f"() => {PLOT.format(sel=loss)}?.data?.[0]?.x.length || 0"
    other.wait_for_function(f"() => ({count})() >= 3")
    seen = other.evaluate(count)
    other.wait_for_function(f"() => ({count})() > {seen}")
    page.wait_for_function(f"() => ({count})() > {seen}")
    other.close()

    # η by hand: the η chart marks the epoch from which the new rate applies.
    lr_input = page.get_by_label("η from the next epoch", exact=True)
    lr_input.fill("0.02")
    page.get_by_role("button", name="Set η").click()
    expect(page.locator("run-view .lr-message")).to_contain_text("η = 0.02 from the next epoch")
    page.wait_for_function(
        f"() => ({PLOT.format(sel=lr_chart)}?.data || []).some((t) => t.meta === 'events/lr' && t.x.length)",
        timeout=30_000)
    events = series(server, run["id"], "events/lr")["events/lr"]
    marker = next(t for t in plot_data(page, lr_chart) if t["meta"] == "events/lr")
    assert marker["x"][0] == events[0][0] and marker["y"][0] == pytest.approx(0.02)
    applied = {x: v for x, v in series(server, run["id"], "lr")["lr"]}
    assert applied[events[0][0]] == pytest.approx(0.02)
    assert applied[events[0][0] - 1] == pytest.approx(0.1)

    # Smoothing: a debiased EMA over the raw curve, which stays underneath, faint.
    page.locator(f"{loss} input[type=range]").fill("0.9")
    page.wait_for_function(f"() => {PLOT.format(sel=loss)}?.data?.length === 4")
    data = plot_data(page, loss)
    raw, smooth = data[0], data[2]
    assert raw["opacity"] == pytest.approx(0.25) and smooth["meta"] == "train_loss (smoothed)"
    n = min(len(raw["y"]), len(smooth["y"]))
    assert smooth["y"][:n] == pytest.approx(ema(raw["y"][:n], 0.9))
    assert smooth["y"][0] == pytest.approx(raw["y"][0])  # debiased: starts on the first point

    # Log scale, and time instead of epochs on x: Σ epoch_seconds.
    page.locator(loss).get_by_label("log scale").check()
    page.wait_for_function(f"() => {PLOT.format(sel=loss)}?.layout?.yaxis?.type === 'log'")
    page.get_by_label("time (s, Σ epoch_seconds)").check()
    page.wait_for_function(f"() => {PLOT.format(sel=loss)}?.layout?.xaxis?.title?.text === 'time (s)'")
    seconds = [v for _, v in series(server, run["id"], "epoch_seconds")["epoch_seconds"]]
    shown = plot_data(page, loss)[0]["x"][:5]
    assert shown == pytest.approx([sum(seconds[: i + 1]) for i in range(5)])
    snap(page, artifacts, "run-view-controls", docs=True)

    # Cancel: the run stops within an epoch and the chart marks where.
    page.get_by_role("button", name="Cancel run").click()
    expect(view).to_have_attribute("data-status", "cancelled", timeout=30_000)
    result = httpx.get(f"{server}/api/runs/{run['id']}").json()["result"]
    page.get_by_label("epoch", exact=True).check()
    page.wait_for_function(f"() => {PLOT.format(sel=loss)}?.layout?.xaxis?.title?.text === 'epoch'")
    wait_for_shape(page, loss, "stop")
    stop = shape(page, loss, "stop")
    assert stop is not None and stop["x0"] == result["stopped_epoch"]


def test_run_view_marks_early_stopping_and_shows_diagnostics(
    page: Page, server: str, artifacts: Path
) -> None:
    patience = 6
    run = post_run(server, {
        "name": "moons, early stopping", "data": {"dataset": "moons"}, "model": {"hidden": [16, 16]},
        "training": {"max_epochs": 300, "early_stopping": {"patience": patience}},
        "diagnostics": {"grad_noise": True},
    })
    page.goto(f"/#/runs/{run['id']}")
    view = page.locator("run-view")
    expect(view).to_have_attribute("data-stream", "ended", timeout=120_000)
    run = httpx.get(f"{server}/api/runs/{run['id']}").json()
    assert run["status"] == "succeeded", run["error"]
    result = run["result"]
    best, stopped = result["best_epoch"], result["stopped_epoch"]
    assert stopped == best + patience - 1  # the slide's loop, taken literally

    for chart in ('metric-chart[data-metric="loss"]', 'metric-chart[data-metric="accuracy"]'):
        page.wait_for_function(f"() => ({PLOT.format(sel=chart)}?.layout?.shapes || []).length >= 3")
        assert shape(page, chart, "best")["x0"] == best
        assert shape(page, chart, "stop")["x0"] == stopped
        window = shape(page, chart, "patience")
        assert (window["x0"], window["x1"]) == (best, stopped)
    note = page.locator(".stopping-note")
    expect(note).to_contain_text(f"patience p = {patience}")
    expect(note).to_contain_text(f"Best epoch {best}")
    expect(note).to_contain_text(f"p − 1 = {patience - 1} epochs after the best one")
    expect(note).to_contain_text(f"stopped at epoch {stopped}")

    # Per-layer spread: one heatmap row per layer, one column per epoch.
    keys = series(server, run["id"])
    for prefix, metric in (("act_std/", "act_std"), ("grad_std/", "grad_std")):
        layers = [k for k in keys if k.startswith(prefix)]
        heat = page.locator(f'layer-heatmap[data-metric="{metric}"]')
        expect(heat).to_have_attribute("data-layers", str(len(layers)))
        expect(heat).to_have_attribute("data-columns", str(result["epochs_run"]))

    # Var[g] against m: the slope shown is the least-squares slope of the API's numbers.
    grad = {int(k.split("=")[1]): {x: v for x, v in pts}
            for k, pts in keys.items() if k.startswith("grad_var/m=")}
    last = int(max(max(d) for d in grad.values()))
    slope = loglog_slope(sorted((m, d[last]) for m, d in grad.items() if last in d))
    noise = page.locator("grad-noise")
    expect(noise).to_have_attribute("data-epoch", str(last))
    assert float(noise.get_attribute("data-slope")) == pytest.approx(slope, abs=1e-9)
    assert slope < -0.5
    expect(noise.locator(".grad-noise-slope")).to_contain_text(f"fitted slope {slope:.2f}")

    # The decision boundary shown is the API's newest grid.
    boundary = httpx.get(f"{server}/api/runs/{run['id']}/boundary").json()
    plot = page.locator("boundary-plot")
    expect(plot).to_have_attribute("data-epoch", str(boundary["epoch"]))
    expect(plot).to_have_attribute("data-drawn", str(boundary["epoch"]))
    traces = plot_data(page, "boundary-plot")
    shown = traces[0]
    assert shown["z"] == boundary["probs"] and shown["x"] == boundary["x"]
    # The training examples are drawn over the map, where the API says they are.
    examples = [t for t in traces if t.get("mode") == "markers"]
    assert examples and examples[0]["x"] == boundary["points"]["x"]
    # Its slider goes back to the first stored grid, and forward again to the newest.
    slider = plot.get_by_label("grid of epoch")
    first = httpx.get(f"{server}/api/runs/{run['id']}/boundary", params={"epoch": boundary["epochs"][0]}).json()
    assert first["epoch"] != boundary["epoch"]
    slider.fill("0")
    expect(plot).to_have_attribute("data-drawn", str(first["epoch"]))
    assert plot_data(page, "boundary-plot")[0]["z"] == first["probs"]
    slider.fill(str(len(boundary["epochs"]) - 1))
    expect(plot).to_have_attribute("data-drawn", str(boundary["epoch"]))

    # The returned model and the metrics download.
    model = page.get_by_role("link", name="Download model")
    response = httpx.get(server + model.get_attribute("href"))
    assert response.status_code == 200 and len(response.content) > 100
    snap(page, artifacts, "run-view-early-stopping", docs=True)


def test_a_diverged_run_shows_where_it_diverged(page: Page, server: str, artifacts: Path) -> None:
    # Momentum α = 0.99 at η = 0.1 blows up within a few epochs on digits (measured: epoch 6).
    run = post_run(server, {"name": "momentum 0.99 diverges", "model": {"activation": "leaky_relu"},
                            "optim": {"lr": 0.1, "momentum": 0.99}, "training": {"max_epochs": 30}})
    page.goto(f"/#/runs/{run['id']}")
    expect(page.locator("run-view")).to_have_attribute("data-stream", "ended", timeout=120_000)
    run = httpx.get(f"{server}/api/runs/{run['id']}").json()
    assert run["status"] == "diverged", run
    diverged = run["result"]["diverged_epoch"]
    assert 1 < diverged < 30

    # The non-finite loss travels as null, never as a bare NaN or Infinity token.
    raw = httpx.get(f"{server}/api/runs/{run['id']}/metrics").text
    assert "NaN" not in raw and "Infinity" not in raw
    loss = series(server, run["id"], "train_loss")["train_loss"]
    assert loss[-1] == [diverged, None] and all(v is not None for _, v in loss[:-1])

    # The chart marks the epoch, leaves the non-finite point out, and the page says why.
    chart = 'metric-chart[data-metric="loss"]'
    page.wait_for_function(f"() => ({PLOT.format(sel=chart)}?.layout?.shapes || []).length >= 1")
    assert shape(page, chart, "stop")["x0"] == diverged
    labels = [a["text"] for a in plot_layout(page, chart)["annotations"] if a.get("name") == "stop"]
    assert labels == [f"diverged {diverged}"]
    train = plot_data(page, chart)[0]
    assert train["x"][-1] == diverged and train["y"][-1] is None
    expect(page.locator("run-view .notice-error")).to_contain_text("The loss diverged")
    snap(page, artifacts, "run-view-diverged", docs=True)


def test_final_figures_show_dropout_a_vs_b_and_the_ensemble_table(
    page: Page, server: str, artifacts: Path
) -> None:
    run = post_run(server, {
        "name": "dropout and an ensemble of 3", "model": {"hidden": [64], "dropout": {
            "p_inc_input": 0.8, "p_inc_hidden": 0.5, "mc_samples": 10}},
        "training": {"max_epochs": 8}, "ensemble": {"members": 3, "combine": "mean"},
    })
    page.goto(f"/#/runs/{run['id']}")
    expect(page.locator("run-view")).to_have_attribute("data-stream", "ended", timeout=120_000)
    result = httpx.get(f"{server}/api/runs/{run['id']}").json()["result"]

    dropout = page.locator('[data-table="dropout"]')
    expect(dropout.locator('tr[data-row="A"] td.num')).to_have_text(percent(result["dropout"]["mc"]))
    expect(dropout.locator('tr[data-row="B"] td.num')).to_have_text(percent(result["dropout"]["scale"]))
    expect(dropout.locator('tr[data-row="A"]')).to_contain_text("10 dropout masks")
    # A against the number of masks, as the API measured it.
    for k, acc in result["dropout"]["mc_curve"][:-1]:
        expect(dropout.locator(f'tr[data-row="A-{k}"] td.num')).to_have_text(percent(acc))
    expect(dropout.locator('tr[data-row="B"]')).to_contain_text("reported as test accuracy")

    ens = result["ensemble"]
    table = page.locator('[data-table="ensemble"]')
    members = ens["member_test_accuracy"]
    expect(table.locator('tbody tr[data-row^="member-"]')).to_have_count(len(members))
    for i, acc in enumerate(members, start=1):
        row = table.locator(f'tr[data-row="member-{i}"]')
        expect(row.locator("td.num").nth(0)).to_have_text(percent(acc))
        expect(row.locator("td.num").nth(1)).to_have_text(percent(1 - acc))
    expect(table.locator('tr[data-row="mean"] td.num').first).to_have_text(percent(ens["mean_member_accuracy"]))
    expect(table.locator('tr[data-row="by-mean"] td.num').first).to_have_text(percent(ens["mean_test_accuracy"]))
    expect(table.locator('tr[data-row="by-vote"] td.num').first).to_have_text(percent(ens["vote_test_accuracy"]))
    gain = Decimal(ens["gain"] * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    expect(table.locator('tr[data-row="gain"] td.num').first).to_have_text(
        f"{'+' if ens['gain'] >= 0 else ''}{gain} points")
    snap(page, artifacts, "final-figures", docs=True, element=page.locator("section.figures"))


# --- Compare and studies ---------------------------------------------------------------------


def test_study_table_sorts_and_compare_overlays_with_a_seed_band(
    page: Page, server: str, artifacts: Path
) -> None:
    response = httpx.post(f"{server}/api/studies", json={
        "name": "η × 2 seeds", "base": {"model": {"hidden": [16]}, "training": {"max_epochs": 6}},
        "grid": {"optim.lr": [0.05, 0.3]}, "seeds": 2})
    assert response.status_code == 201, response.text
    study = response.json()
    runs = study["runs"]
    page.goto(f"/#/studies/{study['id']}")
    expect(page.locator("study-view")).to_have_attribute("data-status", "finished", timeout=120_000)
    summary = httpx.get(f"{server}/api/studies/{study['id']}").json()["summary"]
    accs = [row["test_accuracy"] for row in summary]

    # Sort by test accuracy with the mouse, then back with the keyboard.
    header = page.locator('.summary-table th[data-column="test_accuracy"]')
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    cells = page.locator('.summary-table td[data-column="test_accuracy"]')
    expect(cells).to_have_text([percent(a) for a in sorted(accs)])
    page.keyboard.press("Enter")  # the sort button keeps the focus
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(cells).to_have_text([percent(a) for a in sorted(accs, reverse=True)])

    # The overlay: each η is one mean curve with a ± std band over its 2 seeds.
    compare = 'study-view compare-view'
    expect(page.locator(".diff-table th.diff-field")).to_have_text(["seed", "optim.lr"])
    expect(page.locator(compare)).to_have_attribute("data-settled", "true")
    data = plot_data(page, compare)
    assert len([t for t in data if t["meta"].startswith("mean|")]) == 2
    val = {r["id"]: {x: v for x, v in series(server, r["id"], "val_accuracy")["val_accuracy"]} for r in runs}
    for lr in (0.05, 0.3):
        ids = [r["id"] for r in runs if r["spec"]["optim"]["lr"] == lr]
        mean = next(t for t in data if t["meta"].startswith("mean|") and f"optim.lr={lr} " in t["name"])
        upper = next(t for t in data if t["meta"] == mean["meta"].replace("mean|", "band-upper|"))
        for i, epoch in enumerate(mean["x"]):
            values = [val[r][epoch] for r in ids]
            m = sum(values) / 2
            sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
            assert mean["y"][i] == pytest.approx(m) and upper["y"][i] == pytest.approx(m + sd)
    snap(page, artifacts, "study-seeds", docs=False)

    # Compare any runs: pick two that differ only by η; the table names exactly that field.
    seed0 = sorted((r for r in runs if r["spec"]["seed"] == study["base"]["seed"]),
                   key=lambda r: r["spec"]["optim"]["lr"])
    page.get_by_role("link", name="Compare", exact=True).click()
    expect(page.get_by_role("heading", name="Compare runs")).to_be_visible()
    for r in seed0:
        page.locator(f"#pick-{r['id']}").check()
    expect(page).to_have_url(re.compile(rf"#/compare\?runs={seed0[0]['id']},{seed0[1]['id']}$"))
    expect(page.locator(".diff-table th.diff-field")).to_have_text(["optim.lr"])
    expect(page.locator(".diff-table tbody tr")).to_have_count(2)
    # Adding the whole study brings the seeds in: two differing fields, two bands.
    page.get_by_label("Add a study").select_option(str(study["id"]))
    expect(page.locator(".diff-table tbody tr")).to_have_count(4)
    expect(page.locator(".diff-table th.diff-field")).to_have_text(["seed", "optim.lr"])
    page.wait_for_function(
        "() => (document.querySelector('compare-view .js-plotly-plot').data || [])"
        ".filter((t) => String(t.meta).startsWith('band-upper|')).length === 2")
    snap(page, artifacts, "compare", docs=True)


# --- Augmentation lab ------------------------------------------------------------------------


def sample_sources(page: Page) -> list[str]:
    return page.locator(".aug-grid img").evaluate_all("(imgs) => imgs.map((i) => i.getAttribute('src'))")


@pytest.mark.console_422  # a bad op parameter, on purpose
def test_augmentation_lab_samples_are_seeded_and_jitter_shows_each_component(
    page: Page, server: str, artifacts: Path
) -> None:
    page.goto("/#/augment")
    lab = page.locator("augment-lab")
    # The default pipeline, straight away; the API loads torch on its first preview (it keeps
    # it out of its process until then), which on a busy machine takes more than 5 s.
    expect(lab).to_have_attribute("data-shown", "8", timeout=60_000)
    form = page.locator("form.aug-form")
    # Build the pipeline: the default crop and rotation, plus a brightness/contrast jitter.
    form.get_by_label("add", exact=True).select_option("color_jitter")
    form.get_by_role("button", name="Add op").click()
    # Each op's parameters are fields of their own, from the schema's x-op-params.
    op3 = form.get_by_role("group", name="parameters of op 3")
    op3.get_by_label("brightness", exact=True).fill("0.5")
    op3.get_by_label("contrast", exact=True).fill("0.5")
    form.get_by_label("samples N").fill("6")
    form.get_by_label("seed", exact=True).fill("3")
    page.get_by_role("button", name="Show samples").click()
    figures = page.locator(".aug-grid figure")
    expect(figures.locator("figcaption")).to_have_text([f"seed {s}" for s in range(3, 9)])
    expect(lab).not_to_have_attribute("data-busy", "true")
    first = sample_sources(page)
    assert len(first) == 6 and len(set(first)) == 6, "the 6 samples should all differ"
    # Same seed, same images; seed 4 starts where the sample of seed 4 was.
    page.get_by_role("button", name="Show samples").click()
    expect(lab).not_to_have_attribute("data-busy", "true")
    assert sample_sources(page) == first
    form.get_by_label("seed", exact=True).fill("4")
    page.get_by_role("button", name="Show samples").click()
    expect(figures.locator("figcaption").first).to_have_text("seed 4")
    expect(lab).not_to_have_attribute("data-busy", "true")
    assert sample_sources(page)[:5] == first[1:]

    # A bad parameter is explained next to its op.
    form.get_by_role("group", name="parameters of op 2").get_by_label("degrees", exact=True).fill("-5")
    page.get_by_role("button", name="Show samples").click()
    error = page.locator(".op-row").nth(1).locator(".op-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("degrees")
    expect(page.locator(".op-row").nth(0).locator(".op-error")).to_be_hidden()

    # The 6-vs-9 trap: a 180° rotation of digit #6 (a 6), every sample the same upside-down 6.
    page.get_by_role("button", name="6-vs-9 trap: 180° rotation").click()
    expect(page.locator(".recipe-note")).to_contain_text("9")
    expect(figures.locator("figcaption")).to_have_count(6)
    expect(lab).not_to_have_attribute("data-busy", "true")
    trap = sample_sources(page)
    original = page.locator(".aug-original img").get_attribute("src")
    assert len(set(trap)) == 1 and trap[0] != original
    expect(page.locator(".aug-original figcaption")).to_have_text("original: digits #6, label 6")
    snap(page, artifacts, "augment-lab", docs=True)

    # ColorJitter one component at a time, trials #0…#3.
    page.get_by_role("button", name="Show ColorJitter").click()
    rows = page.locator(".jitter-row[data-component]")
    expect(rows).to_have_count(4)
    for name in ("brightness", "contrast", "saturation", "hue"):
        row = page.locator(f'.jitter-row[data-component="{name}"]')
        expect(row.locator("figcaption")).to_have_text([f"trial #{t}" for t in range(4)])
        srcs = row.locator("img").evaluate_all("(imgs) => imgs.map((i) => i.getAttribute('src'))")
        assert len(set(srcs)) == 4, f"{name}: the 4 trials should differ"
    snap(page, artifacts, "augment-jitter", docs=True, element=page.locator(".jitter-panel"))

    # An image of one's own goes through the same pipeline.
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.new("RGB", (40, 30), (200, 40, 40))
    for x in range(20):
        for y in range(30):
            image.putpixel((x, y), (30, 60, 220))
    image.save(buffer, format="PNG")
    page.get_by_label("or an image of your own").set_input_files(
        files=[{"name": "mine.png", "mimeType": "image/png", "buffer": buffer.getvalue()}])
    expect(page.locator(".aug-file-note")).to_contain_text("mine.png")
    page.get_by_role("button", name="Show samples").click()
    expect(page.locator(".aug-original figcaption")).to_have_text("your image")
    expect(figures).to_have_count(6)


# --- Launch form: schedule editor, seeds and sweeps ------------------------------------------


@pytest.mark.console_422  # a bad sweep value, on purpose
def test_schedule_preview_matches_the_table_and_sweeps_make_studies(
    page: Page, server: str, artifacts: Path
) -> None:
    page.goto("/#/launch")
    page.get_by_label("max_epochs", exact=True).fill("200")
    page.get_by_label("kind", exact=True).select_option(label="piecewise")
    editor = page.locator("schedule-editor")
    editor.get_by_role("button", name="The slide's table").click()
    expect(page.get_by_label("table", exact=True)).to_have_value(
        "[[0,0.1],[75,0.01],[125,0.001],[175,0.0001]]")
    stages = editor.locator(".schedule-stages li")
    expect(stages).to_have_text(["epochs 1–75: η = 0.1", "epochs 76–125: η = 0.01",
                                 "epochs 126–175: η = 0.001", "epochs 176–200: η = 0.0001"])
    page.wait_for_function(
        "() => document.querySelector('schedule-editor .js-plotly-plot').data[0]?.x.length === 200")
    curve = plot_data(page, "schedule-editor")[0]
    table = [(0, 0.1), (75, 0.01), (125, 0.001), (175, 0.0001)]
    for epoch, lr in zip(curve["x"], curve["y"], strict=True):
        expected = [v for e, v in table if e <= epoch - 1][-1]  # an entry at k applies from k + 1
        assert lr == pytest.approx(expected), epoch
    # A row edited in the table redraws the curve.
    editor.get_by_label("row 2: η").fill("0.05")
    expect(stages.nth(1)).to_have_text("epochs 76–125: η = 0.05")
    editor.get_by_role("button", name="The slide's table").click()
    snap(page, artifacts, "launch-schedule", docs=True, element=page.locator('fieldset[data-path="optim.schedule"]'))
    # The step schedule with the slide's milestones draws the same curve.
    page.get_by_label("kind", exact=True).select_option(label="step")
    page.get_by_label("milestones", exact=True).fill("75, 125, 175")
    expect(editor).to_have_attribute("data-kind", "step")
    expect(stages).to_have_count(4)
    assert plot_data(page, "schedule-editor")[0]["y"] == pytest.approx(curve["y"])

    # Sweep a field: a bad value is explained next to the values, then a good sweep is a study.
    page.get_by_label("kind", exact=True).select_option(label="constant")
    page.get_by_label("max_epochs", exact=True).fill("4")
    page.get_by_label("hidden", exact=True).fill("16")
    page.get_by_label("sweep field").select_option("optim.lr")
    values = page.get_by_label("values", exact=True)
    values.fill("0.05, -1")
    before = len(httpx.get(f"{server}/api/studies").json())
    page.get_by_role("button", name="Sweep this field").click()
    error = page.locator("#sweep-values-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("greater than 0")
    expect(values).to_have_attribute("aria-invalid", "true")
    expect(values).to_be_focused()
    assert len(httpx.get(f"{server}/api/studies").json()) == before
    values.fill("0.05, 0.2")
    page.get_by_role("button", name="Sweep this field").click()
    expect(page).to_have_url(re.compile(r"#/studies/\d+$"))
    expect(page.locator(".summary-table td[data-column='point:optim.lr']")).to_have_text(["0.05", "0.2"])

    # Run with N seeds: the same spec, seeds 0, 1, 2.
    page.goto("/#/launch")
    page.get_by_label("max_epochs", exact=True).fill("4")
    page.get_by_label("seeds", exact=True).fill("3")
    expect(page.get_by_label("train the seeds together")).to_be_checked()  # packed by default
    page.get_by_role("button", name="Run with N seeds").click()
    expect(page).to_have_url(re.compile(r"#/studies/\d+$"))
    expect(page.locator(".summary-table td[data-column='point:seed']")).to_have_text(["0", "1", "2"])
    expect(page.locator("study-view")).to_have_attribute("data-status", "finished", timeout=120_000)
    # The three seeds trained as one stacked network; each run's view says so, without η control.
    ids = [r["id"] for r in httpx.get(f"{server}/api/studies").json()[0]["runs"]]
    page.goto(f"/#/runs/{ids[1]}")
    expect(page.locator(".pack-note")).to_have_text(
        f"Trained together with runs {', '.join(map(str, ids))} (seeds of one study) as one stacked network.")
    expect(page.locator(".lr-form")).to_be_hidden()



def test_a_pack_the_worker_declines_says_why_in_each_run_view(
    browser: Any, tmp_path: Path, artifacts: Path
) -> None:
    """A pack the worker decides not to stack (here by setting; by timing otherwise) trains its
    runs one by one, and each run's view says why."""
    log_path = artifacts / "server-declined-pack.log"
    log_path.unlink(missing_ok=True)
    with serve(tmp_path / "data", log_path, env={"EPOQUE_PACKS": "never"}) as base:
        study = httpx.post(f"{base}/api/studies", json={"seeds": 2, "base": {
            "training": {"max_epochs": 1}}}).json()
        for run in study["runs"]:
            wait_finished(base, run["id"])
        context = browser.new_context(base_url=base)
        try:
            page = context.new_page()
            page.goto(f"/#/runs/{study['runs'][0]['id']}")
            expect(page.locator(".pack-note")).to_have_text(
                "Trained on its own, not stacked with the other seeds of its study: "
                "EPOQUE_PACKS=never.")
            assert httpx.get(f"{base}/api/runs/{study['runs'][0]['id']}").json()["pack"] is None
        finally:
            context.close()
