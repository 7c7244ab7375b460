"""Public behaviour that needs a real worker process: uploads trained on, deletions that stop
training, η set while queued, CSV and boundaries of finished runs, queues and worker settings.

Every wait has a deadline (wait_for); assertions are on what is stored, never on durations.
"""

from __future__ import annotations

import io
import zipfile

import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import text
from starlette.websockets import WebSocketDisconnect

from backend.app import create_app
from backend.db import new_session
from backend.runs.models import RunBoundary
from tests.conftest import wait_for

# Trains until it is stopped (the lab's limit on epochs): whatever ends it is the test's doing.
ENDLESS = {"name": "endless", "model": {"hidden": [64]}, "training": {"max_epochs": 10_000}}
ONE_EPOCH = {"name": "short", "training": {"max_epochs": 1}}
ROW_TABLES = ("metric_points", "metric_rollups", "run_boundaries", "run_checkpoints", "run_models")


def _run(client: TestClient, run_id: int) -> dict:
    return client.get(f"/api/runs/{run_id}").json()


def _final(client: TestClient, run_id: int, timeout: float = 180) -> dict:
    return wait_for(lambda: (r := _run(client, run_id))["status"] not in ("queued", "running") and r,
                    timeout, f"run {run_id} to end")


def _workers(client: TestClient, count: int = 1) -> list[dict]:
    return wait_for(lambda: len(w := client.get("/api/health").json()["workers"]) >= count and w,
                    90, f"{count} worker(s) to register")


def _rows_of(run_ids: list[int]) -> dict[str, int]:
    """Rows any table still holds for these runs (0 everywhere once they are deleted)."""
    ids = ",".join(str(int(i)) for i in run_ids)
    with new_session() as session:
        counts = {t: session.scalar(text(f"SELECT count(*) FROM {t} WHERE run_id IN ({ids})"))
                  for t in ROW_TABLES}
        counts["runs"] = session.scalar(text(f"SELECT count(*) FROM runs WHERE id IN ({ids})"))
    return counts


def _succeeds(client: TestClient, run_id: int) -> dict:
    final = _final(client, run_id)
    assert final["status"] == "succeeded", final["error"]
    return final


def _sentinel(client: TestClient) -> int:
    """A short run queued behind the runs a test deletes: once it has trained, the worker (one
    task at a time) has let go of them. Created before the deletions, so that SQLite cannot
    give a deleted run's id to it (SQLite reuses the highest rowid once it is deleted)."""
    return client.post("/api/runs", json=ONE_EPOCH).json()["id"]


def _image_zip(per_class: int = 12) -> bytes:
    """Two classes a network tells apart (red and blue squares, a little noise)."""
    out = io.BytesIO()
    gen = torch.Generator().manual_seed(0)
    with zipfile.ZipFile(out, "w") as archive:
        for label, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
            for i in range(per_class):
                noise = torch.randint(-20, 21, (3,), generator=gen).tolist()
                image = Image.new("RGB", (16, 16), tuple(c + n for c, n in zip(colour, noise, strict=True)))
                blob = io.BytesIO()
                image.save(blob, format="PNG")
                archive.writestr(f"{label}/{i}.png", blob.getvalue())
    return out.getvalue()


def test_training_on_an_uploaded_dataset(configure, start_worker, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_PACKS", "always")  # the study below trains as one pack
    env = configure()
    with TestClient(create_app()) as client:
        upload = client.post("/api/datasets", files={"file": ("colours.zip", _image_zip())})
        assert upload.status_code == 201, upload.text
        dataset = upload.json()
        gone = client.post("/api/datasets", files={"file": ("gone.zip", _image_zip(4))}).json()
        spec = {"data": {"dataset": dataset["name"]}, "training": {"max_epochs": 3}}
        run = client.post("/api/runs", json=spec).json()
        study = client.post("/api/studies", json={"base": {**spec, "training": {"max_epochs": 2}},
                                                  "seeds": 2}).json()
        assert len({r["pack"] for r in study["runs"]}) == 1 and study["runs"][0]["pack"]
        # A run whose dataset is deleted before a worker takes it: it fails, saying why.
        orphan = client.post("/api/runs", json={"data": {"dataset": gone["name"]}}).json()
        assert client.delete(f"/api/datasets/{gone['id']}").status_code == 204
        start_worker(env)

        final = _final(client, run["id"])
        assert final["status"] == "succeeded", final["error"]
        assert final["result"]["epochs_run"] == 3 and 0 <= final["result"]["test_accuracy"] <= 1
        series = client.get(f"/api/runs/{run['id']}/metrics", params={"keys": "val_loss"}).json()
        assert [x for x, _ in series["series"]["val_loss"]] == [1, 2, 3]
        model = torch.load(io.BytesIO(client.get(f"/api/runs/{run['id']}/model").content),
                           map_location="cpu", weights_only=True)
        assert model["classes"] == ["blue", "red"] and model["input_shape"] == [3, 32, 32]
        for member in study["runs"]:
            packed = _final(client, member["id"])
            assert packed["status"] == "succeeded", packed["error"]
            assert packed["result"]["pack"]["run_ids"] == [r["id"] for r in study["runs"]]

        failed = _final(client, orphan["id"])
        assert failed["status"] == "failed" and failed["result"] is None
        assert gone["id"] in failed["error"] and "does not exist" in failed["error"]
        assert "Traceback" not in failed["error"]


def test_lr_set_while_queued_applies_from_epoch_one_and_the_csv_shows_it(
    configure, start_worker
) -> None:
    env = configure()
    with TestClient(create_app()) as client:
        run = client.post("/api/runs", json={"optim": {"lr": 0.1}, "training": {"max_epochs": 3}})
        run = run.json()
        assert client.post(f"/api/runs/{run['id']}/lr", json={"lr": 0.025}).status_code == 200
        start_worker(env)
        final = _final(client, run["id"])
        assert final["status"] == "succeeded", final["error"]
        series = client.get(f"/api/runs/{run['id']}/metrics",
                            params={"keys": "lr,events/lr,val_loss"}).json()["series"]
        assert series["events/lr"] == [[1, pytest.approx(0.025)]]
        assert series["lr"] == [[x, pytest.approx(0.025)] for x in (1, 2, 3)]

        csv = client.get(f"/api/runs/{run['id']}/metrics.csv", params={"keys": "lr,events/lr"})
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        rows = [line.split(",") for line in csv.text.strip().splitlines()]
        assert rows[0] == ["key", "x", "value"]
        assert sorted((k, int(x), float(v)) for k, x, v in rows[1:]) == [
            ("events/lr", 1, 0.025), ("lr", 1, 0.025), ("lr", 2, 0.025), ("lr", 3, 0.025)]
        everything = client.get(f"/api/runs/{run['id']}/metrics.csv").text.strip().splitlines()
        stored = client.get(f"/api/runs/{run['id']}/metrics").json()["series"]
        assert len(everything) - 1 == sum(len(points) for points in stored.values())
        assert {line.split(",")[0] for line in everything[1:]} == set(stored)
        assert client.get("/api/runs/424242/metrics.csv").status_code == 404
        unknown_key = client.get(f"/api/runs/{run['id']}/metrics.csv", params={"keys": "nope"})
        assert unknown_key.text.strip() == "key,x,value"


def test_boundary_of_an_epoch(configure, start_worker) -> None:
    start_worker(configure())
    # Grids at epochs 1, 2, 4, 8, … and every 60 // 25 = 2: epoch 3 has none.
    spec = {"data": {"dataset": "moons"}, "model": {"hidden": [16]}, "training": {"max_epochs": 60}}
    with TestClient(create_app()) as client:
        run = client.post("/api/runs", json=spec).json()
        digits = client.post("/api/runs", json=ONE_EPOCH).json()
        assert _final(client, run["id"])["status"] == "succeeded"
        newest = client.get(f"/api/runs/{run['id']}/boundary").json()
        epochs = newest["epochs"]
        assert epochs[:4] == [1, 2, 4, 6] and epochs[-1] == 60 and newest["epoch"] == 60
        with new_session() as session:
            for epoch in (1, 6, 60):
                answer = client.get(f"/api/runs/{run['id']}/boundary", params={"epoch": epoch})
                assert answer.status_code == 200
                body = answer.json()
                assert body["epoch"] == epoch and body["epochs"] == epochs
                stored = session.get(RunBoundary, (run["id"], epoch)).grid
                assert {k: body[k] for k in stored} == stored  # that epoch's grid, as stored
        first = client.get(f"/api/runs/{run['id']}/boundary", params={"epoch": epochs[0]}).json()
        assert first["probs"] != newest["probs"]  # the network moved between the two
        absent = client.get(f"/api/runs/{run['id']}/boundary", params={"epoch": 3})
        assert absent.status_code == 404 and "epoch 3" in absent.json()["detail"]
        assert client.get("/api/runs/424242/boundary").status_code == 404
        assert client.get(f"/api/runs/{run['id']}/boundary", params={"epoch": -1}).status_code == 422
        assert _final(client, digits["id"])["status"] == "succeeded"
        assert client.get(f"/api/runs/{digits['id']}/boundary").status_code == 404


def test_deleting_a_running_run_stops_it_and_its_stream(configure, start_worker) -> None:
    start_worker(configure())
    with TestClient(create_app()) as client:
        run = client.post("/api/runs", json=ENDLESS).json()
        sentinel = _sentinel(client)
        with client.websocket_connect(f"/api/runs/{run['id']}/stream") as ws:
            while ws.receive_json()["type"] != "points":
                pass
            wait_for(lambda: _run(client, run["id"])["progress"]["epoch"] >= 2, 90, "two epochs")
            assert client.delete(f"/api/runs/{run['id']}").status_code == 204
            while (message := ws.receive_json())["type"] != "error":
                assert message["type"] in ("points", "run", "boundary")
            assert "not found" in message["message"]
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 4404
        assert client.get(f"/api/runs/{run['id']}").status_code == 404
        _succeeds(client, sentinel)
        assert _rows_of([run["id"]]) == dict.fromkeys((*ROW_TABLES, "runs"), 0)


def test_deleting_a_study_stops_and_removes_its_runs(configure, start_worker, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_PACKS", "always")
    start_worker(configure())
    with TestClient(create_app()) as client:
        packed = client.post("/api/studies", json={"base": ENDLESS, "seeds": 2}).json()
        alone = client.post("/api/studies", json={"base": ENDLESS, "seeds": 2, "pack": False}).json()
        sentinel = _sentinel(client)
        wait_for(lambda: all(_run(client, r["id"])["progress"]["epoch"] >= 2
                             for r in packed["runs"]), 90, "the pack to train")
        assert client.delete(f"/api/studies/{packed['id']}").status_code == 204
        first = alone["runs"][0]["id"]  # the worker takes the second study next
        wait_for(lambda: _run(client, first)["progress"]["epoch"] >= 2, 90, "the next study's run")
        assert client.delete(f"/api/studies/{alone['id']}").status_code == 204
        for study in (packed, alone):
            assert client.get(f"/api/studies/{study['id']}").status_code == 404
        assert [r["id"] for r in client.get("/api/runs").json()] == [sentinel]
        _succeeds(client, sentinel)
        ids = [r["id"] for s in (packed, alone) for r in s["runs"]]
        assert _rows_of(ids) == dict.fromkeys((*ROW_TABLES, "runs"), 0)


@pytest.mark.redis
def test_worker_queues_decide_which_runs_it_takes(
    configure, start_worker, pg_url, redis_url
) -> None:
    env = configure(database_url=pg_url, broker_url=redis_url)
    gpu_worker = start_worker(env, "--queues", "gpu")
    with TestClient(create_app()) as client:
        [registered] = _workers(client)
        assert registered["queues"] == ["gpu"]
        cpu_run = client.post("/api/runs", json=ONE_EPOCH).json()
        cuda_run = client.post("/api/runs", json={**ONE_EPOCH, "device": "cuda"}).json()
        cuda_final = _final(client, cuda_run["id"])
        assert cuda_final["worker"].endswith(f":{gpu_worker.pid}")
        if torch.cuda.is_available():
            assert cuda_final["status"] == "succeeded", cuda_final["error"]
        else:  # a real failure inside the worker ends the run, with its message
            assert cuda_final["status"] == "failed" and cuda_final["error"]
            assert "cuda" in cuda_final["error"].lower() or "nvidia" in cuda_final["error"].lower()
            assert "Traceback" not in cuda_final["error"]
        # The GPU-only worker is idle now and has left the CPU run alone.
        assert _run(client, cpu_run["id"])["status"] == "queued"
        cpu_worker = start_worker(env, "--queues", "cpu")
        cpu_final = _final(client, cpu_run["id"])
        assert cpu_final["status"] == "succeeded", cpu_final["error"]
        assert cpu_final["worker"].endswith(f":{cpu_worker.pid}")


def test_worker_settings_threads_and_device(configure, start_worker, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_TORCH_THREADS", "2")
    monkeypatch.setenv("EPOQUE_DEVICE", "cpu")
    env = configure()
    worker = start_worker(env)
    with TestClient(create_app()) as client:
        [registered] = _workers(client)
        assert (registered["device"], registered["threads"], registered["queues"]) == (
            "cpu", 2, ["cpu"])
        # The digits MLP: left to choose, the worker would take 1 thread.
        final = _succeeds(client, client.post("/api/runs", json=ONE_EPOCH).json()["id"])
        assert final["worker"].endswith(f":{worker.pid}")
        assert f"run {final['id']}: 2 torch thread(s) on cpu" in worker.log.read_text()
        # EPOQUE_DEVICE is what the worker announces, and its default queues follow it.
        cuda = start_worker({**env, "EPOQUE_DEVICE": "cuda:0", "EPOQUE_TORCH_THREADS": "1"})
        workers = _workers(client, 2)
        mine = next(w for w in workers if w["name"].endswith(f":{cuda.pid}"))
        assert (mine["device"], mine["threads"], sorted(mine["queues"])) == (
            "cuda:0", 1, ["cpu", "gpu"])
