"""Comparisons a student can trust (issue 17), in Debian's Chromium against the real server:
a fork from a clicked point, the early-stopping p slider, and a seeded study's forest plot and
verdicts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_lab import (
    PLOT,
    plot_data,
    post_run,
    series,
    shape,
    snap,
    wait_finished,
    wait_for_shape,
)

SERVER_ENV = {"EPOQUE_PACKS": "always"}

pytestmark = pytest.mark.browser

LOSS = 'metric-chart[data-metric="loss"]'


def click_point(page: Page, chart: str, key: str, epoch: int) -> None:
    """A real mouse click on the point (epoch, value) of series ``key`` in the chart."""
    page.locator(chart).scroll_into_view_if_needed()
    where = page.evaluate("""([sel, key, epoch]) => {
      const gd = document.querySelector(sel + ' .js-plotly-plot');
      const trace = gd.data.find((t) => t.meta === key);
      const i = trace.x.indexOf(epoch);
      const fl = gd._fullLayout;
      const box = gd.getBoundingClientRect();
      return { x: box.left + fl._size.l + fl.xaxis.l2p(epoch),
               y: box.top + fl._size.t + fl.yaxis.l2p(trace.y[i]) };
    }""", [chart, key, epoch])
    page.mouse.move(where["x"] - 3, where["y"])
    page.mouse.click(where["x"], where["y"])


def test_fork_from_a_clicked_point(page: Page, server: str, artifacts: Path) -> None:
    parent = post_run(server, {"name": "digits, η 0.1", "seed": 2, "model": {"hidden": [32]},
                               "optim": {"lr": 0.1, "momentum": 0.9},
                               "training": {"max_epochs": 12}})
    wait_finished(server, parent["id"])
    page.goto(f"/#/runs/{parent['id']}")
    view = page.locator("run-view")
    expect(view).to_have_attribute("data-stream", "ended", timeout=60_000)
    page.wait_for_function(f"() => {PLOT.format(sel=LOSS)}?.data?.length >= 2")
    expect(page.locator(".fork-hint")).to_be_visible()

    click_point(page, LOSS, "val_loss", 5)
    form = page.get_by_role("form", name="Fork from here")
    expect(form).to_be_visible()
    expect(form.locator(".fork-title")).to_have_text("Fork from epoch 5")
    expect(form.get_by_label("η")).to_have_value("0.1")
    form.get_by_label("η").fill("0.01")
    form.get_by_label("momentum α").fill("0.5")
    form.get_by_role("button", name="Fork from here").click()
    link = page.locator(".fork-link")
    expect(link).to_be_visible()
    fork_id = int(link.get_attribute("href").rsplit("/", 1)[1])
    fork = httpx.get(f"{server}/api/runs/{fork_id}").json()
    assert fork["forked_from"] == {"run": parent["id"], "epoch": 5}
    assert (fork["spec"]["optim"]["lr"], fork["spec"]["optim"]["momentum"]) == (0.01, 0.5)
    assert fork["name"] == "digits, η 0.1 · fork at 5"
    wait_finished(server, fork_id)

    # The fork is drawn dashed on the parent's loss chart, from its fork point on.
    page.wait_for_function(f"""() => {PLOT.format(sel=LOSS)}.data.some(
        (t) => t.meta === 'overlay:val_loss' && t.x.length === 8)""", timeout=30_000)
    overlay = next(t for t in plot_data(page, LOSS) if t["meta"] == "overlay:val_loss")
    shown = series(server, fork_id, "val_loss")["val_loss"]
    assert overlay["x"] == [x for x, _ in shown if x >= 5] == list(range(5, 13))
    assert overlay["y"] == [v for x, v in shown if x >= 5]
    parent_loss = dict(series(server, parent["id"], "val_loss")["val_loss"])
    assert overlay["y"][0] == parent_loss[5]  # it starts on the parent's point
    assert overlay["y"][-1] != parent_loss[12]
    snap(page, artifacts, "fork", docs=True)

    # The fork's own view links to its parent.
    page.goto(f"/#/runs/{fork_id}")
    back = page.locator(".fork-parent-link")
    expect(back).to_have_text(f"run #{parent['id']}")
    expect(page.locator(".fork-parent")).to_contain_text("after epoch 5")
    back.click()
    expect(page.locator("run-view")).to_have_attribute("run-id", str(parent["id"]))


def test_the_p_slider_moves_the_stop_marker(page: Page, server: str, artifacts: Path) -> None:
    run = post_run(server, {"name": "moons, what if p", "seed": 1, "data": {"dataset": "moons"},
                            "model": {"hidden": [16]}, "optim": {"lr": 0.5},
                            "training": {"max_epochs": 40}})
    run = wait_finished(server, run["id"])
    page.goto(f"/#/runs/{run['id']}")
    expect(page.locator("run-view")).to_have_attribute("data-stream", "ended", timeout=60_000)
    slider = page.get_by_label("What if the patience p had been…")
    expect(slider).to_be_visible()
    answers = httpx.get(f"{server}/api/runs/{run['id']}/early-stopping",
                        params={"patience": "2,5"}).json()
    for answer in answers:
        p = answer["patience"]
        slider.fill(str(p))
        expect(page.locator("run-view")).to_have_attribute("data-what-if-patience", str(p))
        expect(page.locator(".what-if-text")).to_contain_text(
            f"p = {p}: z* at epoch {answer['best_epoch']}, stopping at epoch "
            f"{answer['stopped_epoch']}")
        assert answer["stopped_epoch"] > answer["best_epoch"]
        wait_for_shape(page, LOSS, "stop", x0=answer["stopped_epoch"])
        if answer["best_epoch"] > 0:
            assert shape(page, LOSS, "best")["x0"] == answer["best_epoch"]
    assert answers[0]["stopped_epoch"] < answers[1]["stopped_epoch"]  # the marker really moved
    snap(page, artifacts, "p-slider", docs=True)


def test_a_seeded_studys_forest_plot_verdicts_and_interval_bands(
        page: Page, server: str, artifacts: Path) -> None:
    from scipy import stats as sps

    body = {"name": "η, 3 seeds", "base": {"model": {"hidden": [16]},
                                             "training": {"max_epochs": 6}},
            "grid": {"optim.lr": [0.1, 0.09, 1e-5]}, "seeds": 3}
    answer = httpx.post(f"{server}/api/studies", json=body)
    assert answer.status_code == 201, answer.text
    sid = answer.json()["id"]
    page.goto(f"/#/studies/{sid}")
    view = page.locator("study-view")
    expect(view).to_have_attribute("data-status", "finished", timeout=180_000)
    forest = page.locator("forest-plot")
    expect(forest).to_have_attribute("data-drawn", "3", timeout=30_000)
    got = httpx.get(f"{server}/api/studies/{sid}/stats").json()
    trace = plot_data(page, "forest-plot")[0]
    assert trace["x"] == [g["mean"] for g in got["groups"]]
    assert trace["error_x"]["array"] == pytest.approx(
        [g["ci95"][1] - g["mean"] for g in got["groups"]], abs=1e-12)
    assert [y.split("  ")[0] for y in trace["y"]] == ["optim.lr=0.1", "optim.lr=0.09",
                                                       "optim.lr=0.00001"]

    # The verdicts, in words, as the API says them; η = 0.1 clearly beats η = 10⁻⁵.
    rows = page.locator(".stats-comparisons tbody tr")
    expect(rows).to_have_count(3)
    for i, c in enumerate(got["comparisons"]):
        expect(rows.nth(i).locator(".verdict")).to_have_text(c["says"])
    clear = next(c for c in got["comparisons"] if (c["a"], c["b"]) == (0, 2))
    assert clear["verdict"] == "a better"
    expect(page.locator('.stats-comparisons tr[data-verdict="a better"]').first).to_be_visible()
    unclear = [c for c in got["comparisons"] if c["verdict"] == "not distinguishable"]
    for c in unclear:
        assert "with 3 seeds" in c["says"]

    # Learning curves: each point's mean and 95 % t interval over its seeds, epoch by epoch.
    curves = page.locator("seed-curves")
    expect(curves).to_have_attribute("data-groups", "3", timeout=30_000)
    expect(curves).to_have_attribute("data-drawn", "3", timeout=30_000)  # Plotly drew them
    study = httpx.get(f"{server}/api/studies/{sid}").json()
    first = [r["run_id"] for r in study["summary"] if r["point"]["optim.lr"] == 0.1]
    values = [dict(series(server, rid, "val_accuracy")["val_accuracy"])[4] for rid in first]
    mean = sum(values) / 3
    half = sps.t.ppf(0.975, 2) * sps.tstd(values) / 3**0.5
    traces = {t["meta"]: t for t in plot_data(page, "seed-curves")}
    i = traces["mean|0"]["x"].index(4)
    assert traces["mean|0"]["y"][i] == pytest.approx(mean, abs=1e-12)
    assert traces["lo|0"]["y"][i] == pytest.approx(mean - half, rel=1e-4)
    assert traces["hi|0"]["y"][i] == pytest.approx(mean + half, rel=1e-4)
    page.locator(".study-stats").scroll_into_view_if_needed()
    snap(page, artifacts, "forest-plot", docs=True, element=page.locator(".study-stats"))


def test_compare_says_same_start_and_order_and_draws_b_minus_a(
        page: Page, server: str, artifacts: Path) -> None:
    base = {"seed": 7, "model": {"hidden": [16]}, "training": {"max_epochs": 8}}
    a = post_run(server, {**base, "name": "A: η 0.1", "optim": {"lr": 0.1}})
    b = post_run(server, {**base, "name": "B: η 0.02", "optim": {"lr": 0.02}})
    c = post_run(server, {**base, "seed": 8, "name": "C: seed 8"})
    for run in (a, b, c):
        assert wait_finished(server, run["id"])["status"] == "succeeded"
    page.goto(f"/#/compare?runs={a['id']},{b['id']}")
    ab = page.locator("ab-difference")
    expect(ab).to_have_attribute("data-same-start", "true", timeout=30_000)
    expect(ab.locator(".ab-verdict")).to_contain_text("Same start and order")
    expect(ab.locator(".ab-verdict")).to_contain_text("differ only in optim.lr")
    expect(ab).to_have_attribute("data-points", "8")
    page.wait_for_function(f"() => {PLOT.format(sel='ab-difference')}?.data?.length === 1")
    trace = plot_data(page, "ab-difference")[0]
    va = dict(series(server, a["id"], "val_accuracy")["val_accuracy"])
    vb = dict(series(server, b["id"], "val_accuracy")["val_accuracy"])
    assert trace["x"] == list(range(1, 9))
    assert trace["y"] == pytest.approx([vb[x] - va[x] for x in range(1, 9)], abs=1e-12)
    # Another metric: the difference follows the chosen one.
    page.get_by_label("metric").select_option("val_loss")
    la = dict(series(server, a["id"], "val_loss")["val_loss"])
    lb = dict(series(server, b["id"], "val_loss")["val_loss"])
    page.wait_for_function(f"""() => {PLOT.format(sel='ab-difference')}?.data?.[0]?.name
        === 'B − A val loss'""")
    trace = plot_data(page, "ab-difference")[0]
    assert trace["y"] == pytest.approx([lb[x] - la[x] for x in range(1, 9)], abs=1e-12)
    snap(page, artifacts, "controlled-ab", element=page.locator("compare-view"))

    page.goto(f"/#/compare?runs={a['id']},{c['id']}")
    expect(ab).to_have_attribute("data-same-start", "false", timeout=30_000)
    expect(ab.locator(".ab-verdict")).to_contain_text("Not the same start and order")
    expect(ab.locator(".ab-verdict")).to_contain_text("differ in seed")
    expect(ab.locator(".plot")).to_be_hidden()
