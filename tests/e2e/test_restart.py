"""The server restarts under an open run view: the lab says so, reconnects by itself, and the
run (taken over from its last checkpoint) ends with every epoch drawn exactly once."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.conftest import free_port
from tests.e2e.conftest import serve
from tests.e2e.test_browser import wait_for_points

EPOCHS = 600
# A stopped worker's run is taken back once its heartbeat is this old (seconds), and goes on
# from a checkpoint taken at most half a second before the stop.
FAST_RECOVERY = {"EPOQUE_HEARTBEAT_SECONDS": "1", "EPOQUE_HEARTBEAT_TIMEOUT_SECONDS": "4",
                 "EPOQUE_CHECKPOINT_SECONDS": "0.5"}


@pytest.mark.browser
def test_the_run_view_rides_out_a_server_restart(browser, tmp_path: Path, artifacts: Path) -> None:
    port = free_port()
    log = artifacts / "server-restart.log"
    log.unlink(missing_ok=True)
    context = browser.new_context(base_url=f"http://127.0.0.1:{port}",
                                  viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    uncaught: list[str] = []
    page.on("pageerror", lambda exc: uncaught.append(str(exc)))
    view = page.locator("run-view")
    connection = view.locator(".connection")
    try:
        with serve(tmp_path, log, port=port, env=FAST_RECOVERY) as base:
            run = httpx.post(f"{base}/api/runs", json={
                "name": "restart", "training": {"max_epochs": EPOCHS},
                "diagnostics": {"layer_stats": False}}).json()
            page.goto(f"/#/runs/{run['id']}")
            expect(connection).to_have_text("● live", timeout=60_000)
            page.wait_for_function(
                "() => { const p = document.querySelector('metric-chart .js-plotly-plot');"
                " return p && p.data && p.data[0].x.length >= 100; }", timeout=60_000)
        # The server (and its worker) is gone: the page says so instead of failing.
        expect(connection).to_have_text("reconnecting…", timeout=15_000)
        expect(page.locator("#health")).to_have_text("server unreachable: retrying…",
                                                     timeout=15_000)
        page.screenshot(path=str(artifacts / "restart-offline.png"))
        time.sleep(1)

        with serve(tmp_path, log, port=port, env=FAST_RECOVERY) as base:
            # Nobody reloads the page: it finds the server again and follows the run to its end.
            expect(view).to_have_attribute("data-stream", "ended", timeout=180_000)
            expect(view).to_have_attribute("data-status", "succeeded")
            expect(page.locator("#health")).to_contain_text("ready", timeout=15_000)
            metrics = httpx.get(f"{base}/api/runs/{run['id']}/metrics").json()["series"]
            page.screenshot(path=str(artifacts / "restart-resumed.png"))
            drawn = wait_for_points(page, EPOCHS)
            shown = page.locator("body").inner_text()
    finally:
        context.close()

    assert [x for x, _ in metrics["train_loss"]] == list(range(1, EPOCHS + 1))
    assert drawn["train"] == drawn["val"] == EPOCHS, drawn
    assert metrics.get("events/resume"), "the run was not taken over after the restart"
    assert not uncaught, f"the page threw: {uncaught}"
    assert "Traceback" not in shown
