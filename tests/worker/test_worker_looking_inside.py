"""SPEC.md "Looking inside" through a real worker: the health diagnosis of stored runs."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backend.app import create_app
from backend.presets.catalog import BY_ID
from tests.conftest import wait_for


def lesson5(scheme: str) -> dict:
    """Lesson 5's base spec, shorter; with ReLU (the preset's tanh cannot have dead units)."""
    base = BY_ID["initialisation"]["study"]["base"]
    return {**base, "model": {**base["model"], "activation": "relu", "init": {"scheme": scheme}},
            "training": {"max_epochs": 4}}


def finished(client: TestClient, spec: dict) -> int:
    run_id = client.post("/api/runs", json=spec).json()["id"]
    wait_for(lambda: client.get(f"/api/runs/{run_id}").json()["status"]
             not in ("queued", "running"), timeout=120, what="the run to finish")
    run = client.get(f"/api/runs/{run_id}").json()
    assert run["status"] == "succeeded", run["error"]
    return run_id


def test_health_diagnoses_dead_units_of_a_constant_init_not_of_kaiming(configure, start_worker):
    start_worker(configure())
    with TestClient(create_app()) as client:
        dead, alive = finished(client, lesson5("constant")), finished(client, lesson5("kaiming_uniform"))
        health = client.get(f"/api/runs/{dead}/health").json()
        lines = [d for d in health["diagnoses"] if d["key"].startswith("dead_fraction/")]
        assert [d["layer"] for d in lines] == [f"fc{i}" for i in range(1, 6)]
        assert all(d["since"] == 1 and d["value"] > 0.5 for d in lines)
        assert lines[0]["message"].startswith("fc1: 100 % of units dead since epoch 1 — ")
        assert {r["metric"] for r in health["rules"]} >= {"dead_fraction", "update_ratio"}
        kaiming = client.get(f"/api/runs/{alive}/health").json()["diagnoses"]
        assert not [d for d in kaiming if d["key"].startswith("dead_fraction/")]
        series = client.get(f"/api/runs/{alive}/metrics").json()["series"]
        assert [x for x, _ in series["update_ratio/fc1"]] == [1, 2, 3, 4]
        assert client.get("/api/runs/987654/health").status_code == 404
