"""GET /api/runs/{id}/landscape through a real worker: 202 with progress, then the stored
surface, whose centre is the returned model's training loss recomputed here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.db import new_session
from backend.runs.trajectory import trajectory
from tests.conftest import wait_for
from tests.worker.test_worker_looking_inside import finished
from worker.engine import load_dataset
from worker.engine.modelfile import read_model
from worker.engine.models import build_model


def test_landscape_is_computed_on_the_worker_and_centred_on_z_star(configure, start_worker):
    start_worker(configure())
    with TestClient(create_app()) as client:
        run_id = finished(client, {"model": {"hidden": [16]}, "training": {"max_epochs": 4}})
        run = client.get(f"/api/runs/{run_id}").json()
        with new_session() as session:
            stored = trajectory(session=session, run_id=run_id)
        assert [e for e, _ in stored] == list(range(run["result"]["epochs_run"] + 1))
        first = client.get(f"/api/runs/{run_id}/landscape", params={"resolution": 5})
        assert first.status_code == 202, first.text
        assert first.json()["status"] in ("queued", "running") and 0 <= first.json()["progress"] <= 1
        answer = wait_for(lambda: (r := client.get(f"/api/runs/{run_id}/landscape",
                                                   params={"resolution": 5})).status_code == 200
                          and r, timeout=120, what="the landscape")
        body = answer.json()
        assert len(body["alphas"]) == len(body["betas"]) == 5 and body["alphas"][2] == 0
        assert len(body["loss"]) == 5 and all(len(row) == 5 for row in body["loss"])
        assert body["path_epochs"] == [e for e, _ in stored]
        kept = run["result"]["best" if run["result"]["kept"] == "best" else "final"]["epoch"]
        assert body["path"][kept] == pytest.approx([0, 0], abs=1e-6)
        # The centre: the returned model's training loss, recomputed here from the download.
        saved = read_model(client.get(f"/api/runs/{run_id}/model").content)
        net = build_model(saved.spec, saved.input_shape, len(saved.classes))
        net.load_state_dict(saved.state_dict)
        data = load_dataset(saved.spec)
        with torch.no_grad():
            expected = F.cross_entropy(net.eval()(data.X_train), data.y_train).item()
        assert body["loss"][2][2] == body["centre_loss"] == pytest.approx(expected, rel=1e-5)
        assert body["examples"] == len(data.y_train)
        assert client.get(f"/api/runs/{run_id}/landscape",
                          params={"resolution": 5}).json()["loss"] == body["loss"]
        for bad in ("4", "3", "x", "53"):
            refused = client.get(f"/api/runs/{run_id}/landscape", params={"resolution": bad})
            assert refused.status_code == 422 and "resolution" in refused.text, bad
        assert client.get("/api/runs/987654/landscape").status_code == 404
        ensemble = finished(client, {"model": {"hidden": [8]}, "ensemble": {"members": 2},
                                     "training": {"max_epochs": 1}})
        refused = client.get(f"/api/runs/{ensemble}/landscape")
        assert refused.status_code == 409 and "single network" in refused.json()["detail"]
        with new_session() as session:
            assert trajectory(session=session, run_id=ensemble) == []
