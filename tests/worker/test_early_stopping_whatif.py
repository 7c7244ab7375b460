"""Early-stopping what-ifs: what GET /api/runs/{id}/early-stopping says a patience p would have
returned is what a real run trained with that p returns (runs of one seed share z0 and the
minibatch order, so patience changes only where they stop)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backend.app import create_app
from tests.conftest import wait_for

SPEC = {"seed": 5, "model": {"hidden": [8]}, "optim": {"lr": 0.3, "batch_size": 64},
        "training": {"max_epochs": 12}}


def _finished(client: TestClient, spec: dict) -> dict:
    rid = client.post("/api/runs", json=spec).json()["id"]
    wait_for(lambda: client.get(f"/api/runs/{rid}").json()["status"] not in ("queued", "running"),
             timeout=180, what="the run to finish", every=0.1)
    run = client.get(f"/api/runs/{rid}").json()
    assert run["status"] == "succeeded", run["error"]
    return run


def test_what_if_equals_a_run_trained_with_that_patience(configure, start_worker) -> None:
    start_worker(configure())
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker to register")
        base = _finished(client, SPEC)  # no early stopping: all 12 epochs
        series = client.get(f"/api/runs/{base['id']}/metrics").json()["series"]
        assert [x for x, _ in series["heldout/test_accuracy"]] == list(range(1, 13))
        # the last epoch's z is what a run without early stopping returns (keep auto: last)
        assert series["heldout/test_accuracy"][-1][1] == base["result"]["test_accuracy"]
        patiences = [1, 3, 40]  # 40: longer than the run
        got = client.get(f"/api/runs/{base['id']}/early-stopping",
                         params={"patience": ",".join(map(str, patiences))})
        assert got.status_code == 200, got.text
        got = got.json()
        assert [g["patience"] for g in got] == patiences and all(g["complete"] for g in got)
        stops = set()
        for p, what_if in zip(patiences, got):
            real = _finished(client, {**SPEC, "training": {
                **SPEC["training"], "early_stopping": {"patience": p}}})["result"]
            assert real["kept"] == "best"  # keep auto with early stopping: z*
            assert (what_if["best_epoch"], what_if["stopped_epoch"]) == (
                real["best_epoch"], real["stopped_epoch"]), p
            assert what_if["test_accuracy"] == real["test_accuracy"], p
            assert what_if["val_accuracy"] == real["best"]["val_accuracy"], p
            stops.add(what_if["stopped_epoch"])
        assert len(stops) > 1  # the patiences really stop at different epochs
        assert got[-1]["stopped_epoch"] == 12
