"""First meaningful paint of the run view for a 10,000-epoch run, in Debian's Chromium.

A finished run with 10,000 epochs of the default series is written straight into a fresh
data folder, `epoque serve --no-worker` serves it, and each repetition opens the run view in a
new browser context (an empty HTTP cache: the cold first visit) and then once more in that
context (warm). The meaningful paint is the moment the loss chart has drawn its curves (the
chart stamps ``data-first-paint`` with ``performance.now()`` after the frame that shows them);
the baseline is the same page's first contentful paint (the top bar), as the browser reports it.
"""

from __future__ import annotations

import math
import signal
import statistics
import sys
import tempfile
from pathlib import Path

from bench.common import Row
from bench.stream import _configure, _port, _serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LAYERS = ("linear1", "linear2")


def _seed(epochs: int) -> int:
    """A finished run with ``epochs`` epochs of the series a default run logs."""
    from backend.db import new_session
    from backend.migrate import upgrade
    from backend.runs import lifecycle, service
    from worker.engine import parse_spec

    upgrade()
    with new_session() as session:
        run = service.create_run(session=session, spec=parse_spec(
            {"name": "10,000 epochs", "training": {"max_epochs": epochs}}))
        token = lifecycle.claim_run(session=session, run_id=run.id, worker="bench").token
        for start in range(1, epochs + 1, 1000):
            points = []
            for e in range(start, min(start + 1000, epochs + 1)):
                loss = 2.3 * math.exp(-e / 800) + 0.05 + 0.02 * math.sin(e / 7)
                points += [("train_loss", e, loss), ("val_loss", e, loss * 1.1 + 0.01),
                           ("train_accuracy", e, 1 - loss / 2.5), ("val_accuracy", e, 1 - loss / 2.3),
                           ("lr", e, 0.1), ("weight_norm", e, 5 + e / 1000),
                           ("examples_per_second", e, 90_000 + 1000 * math.sin(e)),
                           ("epoch_seconds", e, 0.015)]
                points += [(f"{kind}/{layer}", e, 0.5 + 0.1 * math.cos(e / 50))
                           for kind in ("act_std", "grad_std") for layer in LAYERS]
            lifecycle.record_epoch(session=session, run_id=run.id, token=token, epoch=e,
                                   points=points)
        lifecycle.finish_run(session=session, run_id=run.id, token=token, status="succeeded",
                             result={"best_epoch": epochs - 100, "stopped_epoch": epochs,
                                     "epochs_run": epochs, "test_loss": 0.06,
                                     "test_accuracy": 0.98})
        return run.id


PAINTED = """() => {
  const chart = document.querySelector('metric-chart[data-metric="loss"]');
  return chart && chart.dataset.firstPaint ? Number(chart.dataset.firstPaint) : null;
}"""
FCP = """() => {
  const e = performance.getEntriesByName("first-contentful-paint")[0];
  return e ? e.startTime : null;
}"""


def _open(page: object, url: str) -> tuple[float, float]:
    page.goto(url)
    page.wait_for_function(PAINTED, timeout=60_000)
    page.wait_for_function(FCP, timeout=10_000)
    return page.evaluate(FCP) / 1000, page.evaluate(PAINTED) / 1000


def run(smoke: bool = False) -> list[Row]:
    if not CHROMIUM.exists():
        print(f"[bench] first_paint skipped: no Chromium at {CHROMIUM}", file=sys.stderr)
        return []
    from playwright.sync_api import sync_playwright

    epochs, repeats = (300, 1) if smoke else (10_000, 5)
    data_dir = Path(tempfile.mkdtemp(prefix="epoque-bench-paint-"))
    env = {"EPOQUE_DATA_DIR": str(data_dir)}  # the embedded database, whatever the shell says
    _configure(env)
    run_id = _seed(epochs)
    port = _port()
    server = _serve(env, port)
    base = f"http://127.0.0.1:{port}"
    cold: list[tuple[float, float]] = []
    warm: list[tuple[float, float]] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for _ in range(repeats):
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = context.new_page()
                url = f"{base}/#/runs/{run_id}"
                cold.append(_open(page, url))
                page.goto("about:blank")  # a new document: performance.now() starts again
                warm.append(_open(page, url))
                context.close()
            browser.close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)
    rows = []
    for label, times in (("cold first visit", cold), ("warm cache", warm)):
        fcp = statistics.median(t[0] for t in times)
        painted = statistics.median(t[1] for t in times)
        rows.append(Row(
            f"run view of a {epochs:,}-epoch run, {label} (Chromium)",
            "first contentful paint", fcp, "loss curves drawn", painted, "s", "≤ 1.0 s",
            painted <= 1.0 if not smoke else None))
    return rows
