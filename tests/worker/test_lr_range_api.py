"""POST /api/lr-range-tests through a real worker: the run, its series with x = η, its result."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from tests.conftest import wait_for
from worker.engine.lr_range import lr_range_test, lr_schedule, smooth
from worker.engine.spec import parse_spec

SPEC = {"model": {"hidden": [32]}, "optim": {"batch_size": 32}}


def test_lr_range_test_run_series_and_suggestion(configure, start_worker):
    start_worker(configure())
    with TestClient(create_app()) as client:
        answer = client.post("/api/lr-range-tests",
                             json={"spec": SPEC, "start": 1e-4, "end": 1000, "steps": 100})
        assert answer.status_code == 201, answer.text
        run = answer.json()
        assert run["kind"] == "lr_range" and run["options"]["steps"] == 100
        wait_for(lambda: client.get(f"/api/runs/{run['id']}").json()["status"]
                 not in ("queued", "running"), timeout=120, what="the LR range test")
        run = client.get(f"/api/runs/{run['id']}").json()
        assert run["status"] == "succeeded", run["error"]
        assert run["progress"] == {"epoch": 3, "max_epochs": 3}
        found = run["result"]["lr_range"]
        series = client.get(f"/api/runs/{run['id']}/metrics").json()["series"]
        loss, smoothed = series["lr_range/loss"], series["lr_range/smoothed_loss"]
        n = len(loss)
        assert 10 < n < 100  # diverged before η reached 1000, and stopped
        assert [x for x, _ in loss] == [x for x, _ in smoothed] == lr_schedule(1e-4, 1000, 100)[:n]
        assert [v for _, v in smoothed] == pytest.approx(smooth([v for _, v in loss]), rel=1e-9)
        # The worker's sweep is the engine's for the same spec and seed.
        spec = parse_spec(SPEC)
        local = lr_range_test(spec, start=1e-4, end=1000, steps=100)
        assert [v for _, v in loss] == pytest.approx(local["loss"], rel=1e-4)
        assert found["suggested_lr"] == pytest.approx(local["suggested_lr"])
        assert "steepest descent" in found["rule"]
        assert found["alternative_lr"] == pytest.approx(found["min_lr"] / 10)
        assert [s["seed"] for s in found["seeds"]] == [0, 1, 2]
        suggestions = [s["suggested_lr"] for s in found["seeds"]]
        assert found["spread"]["min"] == min(suggestions) and found["spread"]["max"] == max(suggestions)
        assert 1e-4 < found["suggested_lr"] < found["min_lr"] < 1000
        # The points list and the downsampled view agree on x = η.
        reduced = client.get(f"/api/runs/{run['id']}/metrics",
                             params={"points": 10, "keys": "lr_range/loss"}).json()["series"]
        assert {x for x, _ in reduced["lr_range/loss"]} <= {x for x, _ in loss}


@pytest.mark.parametrize(("body", "field"), [
    ({"start": 1.0, "end": 0.1}, "end"),
    ({"steps": 0}, "steps"),
    ({"start": -1}, "start"),
    ({"spec": {"model": {"hidden": "x"}}}, "hidden"),
    ({"stepz": 10}, "stepz"),
])
def test_bad_lr_range_tests_are_refused(configure, body, field):
    configure()
    with TestClient(create_app()) as client:
        answer = client.post("/api/lr-range-tests", json=body)
        assert answer.status_code == 422 and field in answer.text, answer.text
