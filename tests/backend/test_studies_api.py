"""Studies: one run per grid point, seeds shortcut, clear errors, summary table."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backend.app import create_app


def test_grid_makes_one_run_per_point(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        body = {"name": "m sweep", "base": {"training": {"max_epochs": 2}},
                "grid": {"optim.batch_size": [1, 32, 512], "optim.momentum": [0.0, 0.9]}}
        study = client.post("/api/studies", json=body)
        assert study.status_code == 201, study.text
        study = study.json()
        assert len(study["runs"]) == 6 and study["status"] == "queued"
        combos = {(r["spec"]["optim"]["batch_size"], r["spec"]["optim"]["momentum"])
                  for r in study["runs"]}
        assert combos == {(m, a) for m in (1, 32, 512) for a in (0.0, 0.9)}
        assert all(r["spec"]["training"]["max_epochs"] == 2 for r in study["runs"])
        assert {tuple(row["point"].items()) for row in study["summary"]} == {
            (("optim.batch_size", m), ("optim.momentum", a)) for m, a in combos}
        listed = client.get("/api/runs", params={"study_id": study["id"]}).json()
        assert len(listed) == 6
        assert client.get(f"/api/studies/{study['id']}").json()["id"] == study["id"]


def test_repeat_with_seeds(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        study = client.post("/api/studies", json={"base": {"seed": 10}, "seeds": 4}).json()
        assert sorted(r["spec"]["seed"] for r in study["runs"]) == [10, 11, 12, 13]


def test_bad_grid_names_the_field_and_creates_nothing(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        bad = client.post("/api/studies", json={"grid": {"optim.lr": [0.1, -1]}})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["field"] == "grid.optim.lr"
        bad = client.post("/api/studies", json={"base": {"optim": {"lr": "x"}}})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "base.optim.lr"
        bad = client.post("/api/studies", json={"grid": {"optim.lr": []}})
        assert bad.status_code == 422
        bad = client.post("/api/studies", json={"grid": {"optim.nope": [1]}})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "grid.optim.nope"
        assert client.get("/api/runs").json() == [] and client.get("/api/studies").json() == []


def test_a_huge_grid_is_refused_from_its_value_counts(configure) -> None:
    """A ~1 kB request whose grid has 25^12 ≈ 6·10^16 points: were the product built before the
    size check (the old code), this test could only end out of memory; it answers 422 naming
    max_grid_points and stores nothing."""
    configure()
    with TestClient(create_app()) as client:
        grid = {f"optim.k{i}": list(range(25)) for i in range(12)}
        bad = client.post("/api/studies", json={"grid": grid})
        assert bad.status_code == 422, bad.text
        detail = bad.json()["detail"][0]
        assert detail["field"] == "grid" and "max_grid_points" in detail["msg"]
        assert str(25 ** 12) in detail["msg"]
        assert client.get("/api/studies").json() == []


def test_summary_says_which_model_each_run_returned(configure) -> None:
    """The summary's figures are the returned model's: its row names that model's epoch."""
    from backend.db import new_session
    from backend.runs.lifecycle import claim_run, finish_run

    configure()
    with TestClient(create_app()) as client:
        study = client.post("/api/studies", json={"grid": {"training.keep": ["best", "last"]},
                                                  "pack": False}).json()
        for run in study["runs"]:
            kept = run["spec"]["training"]["keep"]
            figures = {"val_loss": 0.1, "val_accuracy": 0.9, "test_loss": 0.2}
            result = {"kept": kept, "best_epoch": 3, "test_accuracy": 0.5,
                      "best": {"epoch": 3, "test_accuracy": 0.5, **figures},
                      "final": {"epoch": 9, "test_accuracy": 0.4, **figures}}
            with new_session() as session:
                token = claim_run(session=session, run_id=run["id"], worker="test").token
                finish_run(session=session, run_id=run["id"], token=token, status="succeeded",
                           result=result)
        rows = client.get(f"/api/studies/{study['id']}").json()["summary"]
        returned = {row["point"]["training.keep"]: (row["kept"], row["kept_epoch"]) for row in rows}
        assert returned == {"best": ("best", 3), "last": ("last", 9)}


def test_grid_times_seeds_makes_every_pair(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        study = client.post("/api/studies", json={
            "base": {"seed": 3, "training": {"max_epochs": 1}},
            "grid": {"optim.lr": [0.1, 0.01]}, "seeds": 3})
        assert study.status_code == 201, study.text
        pairs = sorted((r["spec"]["optim"]["lr"], r["spec"]["seed"]) for r in study.json()["runs"])
        assert pairs == sorted((lr, s) for lr in (0.1, 0.01) for s in (3, 4, 5))


def test_a_dataset_this_lab_lacks_is_refused_at_submit(configure) -> None:
    configure()  # a fresh data dir: no MNIST files in it
    with TestClient(create_app()) as client:
        listed = {d["name"]: d for d in client.get("/api/datasets").json()}
        assert listed["mnist"]["available"] is False and listed["digits"]["available"] is True
        run = client.post("/api/runs", json={"data": {"dataset": "mnist"}})
        assert run.status_code == 422
        (detail,) = run.json()["detail"]
        assert detail["field"] == "data.dataset" and "not available on this lab" in detail["msg"]
        assert "/" not in detail["msg"]  # no server path
        in_grid = client.post("/api/studies", json={
            "grid": {"data.dataset": ["digits", "mnist"]}})
        assert in_grid.status_code == 422
        assert in_grid.json()["detail"][0]["field"] == "grid.data.dataset"
        in_base = client.post("/api/studies", json={"base": {"data": {"dataset": "cifar10"}},
                                                     "grid": {"optim.lr": [0.1, 0.2]}})
        assert in_base.status_code == 422
        assert in_base.json()["detail"][0]["field"] == "base.data.dataset"
        assert client.get("/api/runs").json() == [] and client.get("/api/studies").json() == []
        assert client.post("/api/runs", json={"data": {"dataset": "digits"}}).status_code == 201
