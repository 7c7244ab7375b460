"""SPEC.md "Looking inside" through a real worker: the health diagnosis and the confusion
matrices of stored runs."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sklearn.metrics import confusion_matrix

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


def returned_model_confusion(model_file: bytes) -> tuple[int, list[list[int]]]:
    """(classes, sklearn's confusion matrix of the downloaded model's predictions on S_v), the
    split rebuilt by the engine's own dataset code from the spec in the file (same seed)."""
    from worker.engine import load_dataset
    from worker.engine.modelfile import read_model
    from worker.engine.predict import Predictor

    saved = read_model(model_file)
    data = load_dataset(saved.spec)
    predictor = Predictor.from_bytes(model_file)
    pred = np.argmax(predictor.probabilities(data.X_val.tolist()), axis=1)
    classes = len(saved.classes)
    return classes, confusion_matrix(data.y_val.numpy(), pred, labels=list(range(classes))).tolist()


def test_confusion_matrix_of_every_epoch_and_of_the_returned_model(configure, start_worker):
    start_worker(configure())
    spec = {"model": {"hidden": [16]}, "training": {"max_epochs": 5,
                                                     "early_stopping": {"patience": 2}}}
    with TestClient(create_app()) as client:
        run_id = finished(client, spec)
        run = client.get(f"/api/runs/{run_id}").json()
        answer = client.get(f"/api/runs/{run_id}/confusion")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        kept = run["result"]["kept"]
        assert body["epoch"] == run["result"]["best" if kept == "best" else "final"]["epoch"]
        assert body["epochs"] == list(range(run["result"]["epochs_run"] + 1))
        assert body["classes"] == [str(d) for d in range(10)]
        classes, expected = returned_model_confusion(client.get(f"/api/runs/{run_id}/model").content)
        assert classes == 10 and body["matrix"] == expected
        series = client.get(f"/api/runs/{run_id}/metrics").json()["series"]
        val_accuracy = dict(series["val_accuracy"])
        for epoch in body["epochs"][1:]:  # each epoch's matrix is that epoch's model's (0: z0's)
            matrix = client.get(f"/api/runs/{run_id}/confusion", params={"epoch": epoch}).json()
            assert matrix["epoch"] == epoch
            accuracy = np.trace(matrix["matrix"]) / np.sum(matrix["matrix"])
            assert accuracy == pytest.approx(val_accuracy[epoch], rel=1e-6)
        missing = client.get(f"/api/runs/{run_id}/confusion", params={"epoch": 99})
        assert missing.status_code == 404 and "epoch 99" in missing.json()["detail"]
        for bad in ("-1", "x"):
            refused = client.get(f"/api/runs/{run_id}/confusion", params={"epoch": bad})
            assert refused.status_code == 422 and "epoch" in refused.text
        assert client.get("/api/runs/987654/confusion").status_code == 404
        queued = client.post("/api/runs", json={"training": {"max_epochs": 1}}).json()["id"]
        client.post(f"/api/runs/{queued}/cancel")
        assert client.get(f"/api/runs/{queued}/confusion").status_code == 404
        assert client.get(f"/api/runs/{queued}/examples").status_code == 409  # no model
        check_examples(client, run_id, body)


def check_examples(client: TestClient, run_id: int, confusion: dict) -> None:
    """Each cell's examples: as many as the returned model's matrix counts (up to the limit),
    each of that true class in the rebuilt S_v and predicted as that class."""
    import base64

    from worker.engine import load_dataset, parse_spec

    spec = parse_spec(client.get(f"/api/runs/{run_id}").json()["spec"])
    y_val = load_dataset(spec).y_val.tolist()
    matrix = confusion["matrix"]
    wrong = max(((t, p) for t in range(10) for p in range(10) if t != p),
                key=lambda cell: matrix[cell[0]][cell[1]])
    for t, p in (wrong, (3, 3)):
        answer = client.get(f"/api/runs/{run_id}/examples",
                            params={"split": "val", "true": t, "pred": p, "limit": 5,
                                    "epoch": confusion["epoch"]})
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert len(found) == min(5, matrix[t][p]) > 0
        for example in found:
            assert example["label"] == t == y_val[example["index"]] and example["pred"] == p
            probs = example["probabilities"]
            assert len(probs) == 10 and int(np.argmax(probs)) == p
            assert sum(probs) == pytest.approx(1, abs=1e-5)
            assert base64.b64decode(example["png"]).startswith(b"\x89PNG")  # digits: images
        indices = [e["index"] for e in found]
        assert indices == sorted(indices) and len(set(indices)) == len(indices)
    everything = client.get(f"/api/runs/{run_id}/examples", params={"true": 3, "limit": 100})
    assert len(everything.json()) == min(100, sum(matrix[3]))
    other = client.get(f"/api/runs/{run_id}/examples", params={"epoch": confusion["epoch"] + 1})
    assert other.status_code == 409 and "returned model" in other.json()["detail"]
    for bad in ({"true": 10}, {"pred": -1}, {"split": "test"}, {"limit": 0}):
        refused = client.get(f"/api/runs/{run_id}/examples", params=bad)
        assert refused.status_code == 422 and next(iter(bad)) in refused.text, bad
