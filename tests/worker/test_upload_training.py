"""Runs on an uploaded dataset, on a real worker: the MLP, the CNN with augmentation, an
ensemble and a pack learn it; a missing or deleted upload is refused at submit, and one deleted
after submit fails its run at once with the reason."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.config import get_settings
from backend.datasets.service import chunk_count
from backend.db import new_session
from tests.conftest import wait_for
from tests.upload_zips import CLASSES, pattern_zip


def _upload(client: TestClient, data: bytes, **params) -> dict:
    response = client.post("/api/datasets", params=params,
                           files={"file": ("patterns.zip", data, "application/zip")})
    assert response.status_code in (201, 202), response.text
    return response.json()


def _final(client: TestClient, run_id: int, timeout: float = 300) -> dict:
    return wait_for(lambda: (r := client.get(f"/api/runs/{run_id}").json())["status"]
                    not in ("queued", "running") and r, timeout, f"run {run_id} to end")


@pytest.mark.timeout(900)
def test_runs_on_an_upload_learn_it(configure, start_worker, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_PACKS", "always")  # the seed study trains as one pack
    start_worker(configure())
    with TestClient(create_app()) as client:
        dataset = _upload(client, pattern_zip(per_class=30))
        assert dataset["status"] == "ready" and dataset["available"] is True
        assert dataset["classes"] == sorted(CLASSES) and dataset["input_shape"] == [3, 32, 32]
        assert dataset["counts"] == {c: 30 for c in CLASSES}
        listed = next(d for d in client.get("/api/datasets").json()
                      if d["name"] == dataset["name"])
        assert listed["available"] is True and listed["input_shape"] == [3, 32, 32]
        assert sum(listed["sizes"].values()) == 90

        data = {"dataset": dataset["name"]}
        specs = {
            "mlp": {"data": data, "model": {"hidden": [64]}, "optim": {"lr": 0.01},
                    "training": {"max_epochs": 15}},
            "cnn": {"data": data, "model": {"arch": "cnn", "hidden": [8, 16]},
                    "optim": {"lr": 0.05}, "training": {"max_epochs": 15},
                    "augment": [{"op": "random_horizontal_flip", "p": 0.5},
                                {"op": "color_jitter", "brightness": 0.3, "hue": 0.1}]},
            "ensemble": {"data": data, "model": {"hidden": [32]}, "optim": {"lr": 0.01},
                         "training": {"max_epochs": 15},
                         "ensemble": {"members": 2}},
        }
        runs = {}
        for label, spec in specs.items():
            response = client.post("/api/runs", json=spec)
            assert response.status_code == 201, response.text
            runs[label] = response.json()["id"]
        study = client.post("/api/studies", json={"name": "upload seeds", "seeds": 2,
                                                  "base": specs["mlp"]})
        assert study.status_code == 201, study.text
        pack_ids = [r["id"] for r in study.json()["runs"]]
        for label, run_id in [*runs.items(), *(("pack", i) for i in pack_ids)]:
            run = _final(client, run_id)
            assert run["status"] == "succeeded", (label, run["error"])
            assert run["result"]["test_accuracy"] >= 0.9, (label, run["result"])
        assert all(_final(client, i)["result"]["pack"] == {"run_ids": pack_ids}
                   for i in pack_ids)
        ensemble = _final(client, runs["ensemble"])["result"]["ensemble"]
        assert len(ensemble["member_test_accuracy"]) == 2
        # The class names are the upload's (confusion matrix of the returned model).
        confusion = client.get(f"/api/runs/{runs['cnn']}/confusion").json()
        assert confusion["classes"] == sorted(CLASSES)


def test_missing_or_deleted_upload_is_refused_at_submit(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        for dataset in ("folder:doesnotexist",):
            response = client.post("/api/runs", json={"data": {"dataset": dataset}})
            assert response.status_code == 422
            [error] = response.json()["detail"]
            assert error["field"] == "data.dataset" and "does not exist" in error["msg"]
        dataset = _upload(client, pattern_zip(per_class=4))
        root = get_settings().data_dir / "datasets" / "uploads" / dataset["id"]
        assert (root / "data.npz").is_file() and (root / "meta.json").is_file()
        with new_session() as session:
            assert chunk_count(session=session, dataset_id=dataset["id"]) >= 1
        ok = client.post("/api/runs", json={"data": {"dataset": dataset["name"]},
                                            "training": {"max_epochs": 1}})
        assert ok.status_code == 201, ok.text
        assert client.delete(f"/api/datasets/{dataset['id']}").status_code == 204
        # Rows and files are gone...
        with new_session() as session:
            assert chunk_count(session=session, dataset_id=dataset["id"]) == 0
        assert not root.exists()
        assert client.get(f"/api/datasets/{dataset['id']}").status_code == 404
        # ...and it cannot train any more: runs and studies answer 422 naming the field.
        spec = {"data": {"dataset": dataset["name"]}}
        response = client.post("/api/runs", json=spec)
        assert response.status_code == 422 and response.json()["detail"][0]["field"] == "data.dataset"
        response = client.post("/api/studies", json={"base": spec, "seeds": 2})
        assert response.status_code == 422
        assert response.json()["detail"][0]["field"] == "base.data.dataset"


def test_upload_deleted_after_submit_fails_its_run_at_once(configure, start_worker) -> None:
    env = configure()
    with TestClient(create_app()) as client:
        dataset = _upload(client, pattern_zip(per_class=4))
        run = client.post("/api/runs", json={"data": {"dataset": dataset["name"]}}).json()
        assert client.delete(f"/api/datasets/{dataset['id']}").status_code == 204
        start_worker(env)  # only now: the worker finds the run's dataset gone
        final = _final(client, run["id"], timeout=120)
        assert final["status"] == "failed"
        assert final["error"] == (f"DatasetUnavailable: dataset '{dataset['name']}' does not "
                                  "exist (deleted, or never uploaded here)")
        assert final["attempt"] == 1  # failed by the worker itself, not by a lost heartbeat


def test_a_run_that_cannot_start_fails_at_once_with_its_reason(configure, start_worker) -> None:
    """A stored spec this worker cannot read (say, written by a newer lab): the claim fails the
    run with the reason, instead of leaving it 'running' until the heartbeat timeout."""
    from backend.runs.models import Run

    env = configure()
    with TestClient(create_app()) as client:
        run = client.post("/api/runs", json={"training": {"max_epochs": 1}}).json()
        with new_session() as session:
            stored = session.get(Run, run["id"])
            stored.spec = {**stored.spec, "model": {**stored.spec["model"], "arch": "transformer"}}
            session.commit()
        start_worker(env)
        final = _final(client, run["id"], timeout=120)
        assert final["status"] == "failed" and final["attempt"] == 1
        assert final["error"].startswith("ValidationError") and "model.arch" in final["error"]
