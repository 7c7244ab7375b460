"""POST /api/runs/{id}/fork with a real worker: a fork's points up to its epoch are its
parent's, exactly; after it, they are those of a fresh run given the changed knobs from epoch
e+1 on (a run whose schedule switches there)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.db import new_session
from backend.runs import snapshots
from tests.conftest import wait_for
from worker.engine import parse_spec
from worker.engine.fork import steps_per_epoch
from worker.engine.forkspec import merged
from worker.engine.train import TIMING_KEYS

BASE = {"seed": 3, "model": {"hidden": [8]}, "optim": {"batch_size": 64},
        "training": {"max_epochs": 6}}
E = 3  # the fork's epoch


def _finished(client: TestClient, rid: int) -> dict:
    wait_for(lambda: client.get(f"/api/runs/{rid}").json()["status"] not in ("queued", "running"),
             timeout=180, what=f"run {rid} to finish", every=0.1)
    run = client.get(f"/api/runs/{rid}").json()
    assert run["status"] == "succeeded", run["error"]
    return run


def _series(client: TestClient, rid: int) -> dict[str, list]:
    return client.get(f"/api/runs/{rid}/metrics").json()["series"]


def _after(series: dict[str, list], e: int) -> dict[str, list]:
    return {k: [p for p in v if p[0] > e] for k, v in series.items() if k not in TIMING_KEYS}


CASES = {
    # (parent's optim, the fork's change, the fresh run's optim that switches at epoch E + 1)
    "plain": ({"momentum": 0.0, "lr": 0.3}, {"optim": {"lr": 0.05}},
              {"momentum": 0.0, "lr": 0.3, "schedule": {"kind": "piecewise",
                                                        "table": [[E, 0.05]]}}),
    "momentum": ({"momentum": 0.9, "lr": 0.05}, {"optim": {"lr": 0.01}},
                 {"momentum": 0.9, "lr": 0.05, "schedule": {"kind": "piecewise",
                                                            "table": [[E, 0.01]]}}),
    "step": ({"lr": 0.1, "schedule": {"kind": "step", "milestones": [2], "gamma": 0.5}},
             {"optim": {"schedule": {"milestones": [2, 4]}}},
             {"lr": 0.1, "schedule": {"kind": "step", "milestones": [2, 4], "gamma": 0.5}}),
}


@pytest.mark.parametrize(("case", "snapshot_mb"), [
    ("plain", "0"), ("momentum", "0"), ("step", "0"),  # replayed from z0
    ("momentum", "32"), ("step", "32"),  # from the parent's nearest snapshot
])
def test_a_fork_holds_its_parents_points_then_trains_as_the_switched_run(
        case: str, snapshot_mb: str, configure, start_worker) -> None:
    parent_optim, change, fresh_optim = CASES[case]
    start_worker({**configure(), "EPOQUE_FORK_SNAPSHOT_MB": snapshot_mb})
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker to register")
        parent_spec = merged(BASE, {"optim": parent_optim})
        parent = client.post("/api/runs", json=parent_spec).json()["id"]
        fresh = client.post("/api/runs", json=merged(BASE, {"optim": fresh_optim})).json()["id"]
        _finished(client, parent)
        answer = client.post(f"/api/runs/{parent}/fork", json={"epoch": E, "spec": change})
        assert answer.status_code == 201, answer.text
        fork = answer.json()
        assert fork["forked_from"] == {"run": parent, "epoch": E}
        full = client.get(f"/api/runs/{parent}").json()["spec"]
        assert fork["spec"] == merged(full, change)
        # Copied at once: the parent's points up to E, before the fork trains any further.
        before = {k: [p for p in v if p[0] <= E] for k, v in _series(client, parent).items()}
        before = {k: v for k, v in before.items() if v}
        _finished(client, fork["id"])
        fresh_run = _finished(client, fresh)
        forked = _series(client, fork["id"])
        assert {k: [p for p in v if p[0] <= E] for k, v in forked.items()
                if any(p[0] <= E for p in v)} == before  # every key, timings too: exactly
        assert "heldout/test_accuracy" in before
        later, fresh_later = _after(forked, E), _after(_series(client, fresh), E)
        assert later == fresh_later and len(later["val_loss"]) == 6 - E
        assert _after(_series(client, parent), E)["val_loss"] != later["val_loss"]
        assert client.get(f"/api/runs/{fork['id']}").json()["result"]["test_accuracy"] == \
            fresh_run["result"]["test_accuracy"]


def test_what_a_fork_refuses(configure, start_worker, hold) -> None:
    start_worker({**configure(), "EPOQUE_FORK_SNAPSHOT_MB": "0"})  # forks replay from z0
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker to register")
        parent = client.post("/api/runs", json=BASE).json()["id"]
        _finished(client, parent)
        url = f"/api/runs/{parent}/fork"
        for body, field in [({"epoch": 0}, "epoch"), ({"epoch": "x"}, "epoch"), ({}, "epoch"),
                            ({"epoch": 2, "spec": {"optim": {"lr": -1}}}, "spec.optim.lr"),
                            ({"epoch": 2, "spec": {"optim": {"bogus": 1}}}, "spec.optim.bogus"),
                            ({"epoch": 2, "extra": 1}, "extra"),
                            ({"epoch": 99}, "epoch")]:
            answer = client.post(url, json=body)
            assert answer.status_code == 422, (body, answer.text)
            assert field in [d["field"] for d in answer.json()["detail"]], (body, answer.text)
        for body, words in [({"epoch": 2, "spec": {"seed": 4}}, "seed"),
                            ({"epoch": 2, "spec": {"optim": {"batch_size": 8}}},
                             "optim.batch_size"),
                            ({"epoch": 2, "spec": {"model": {"hidden": [4]}}}, "model.hidden")]:
            answer = client.post(url, json=body)
            assert answer.status_code == 409, (body, answer.text)
            assert words in answer.json()["detail"]
        assert client.post("/api/runs/999999/fork", json={"epoch": 1}).status_code == 404
        # η set by hand before the epoch: no replay can reproduce it.
        hold.every_run_at(1)
        held = client.post("/api/runs", json=merged(BASE, {"training": {"max_epochs": 3}})).json()
        hold.held_at(held["id"], 1)
        client.post(f"/api/runs/{held['id']}/lr", json={"lr": 0.02})
        hold.release_all()
        hold.release(held["id"])
        _finished(client, held["id"])
        assert [x for x, _ in _series(client, held["id"])["events/lr"]] == [2]
        answer = client.post(f"/api/runs/{held['id']}/fork", json={"epoch": 3})
        assert answer.status_code == 409 and "by hand" in answer.json()["detail"]
        assert client.post(f"/api/runs/{held['id']}/fork", json={"epoch": 1}).status_code == 201
        # A fork of a fork replays both: its first points are still the grandparent's.
        child = client.post(url, json={"epoch": 4, "spec": {"optim": {"lr": 0.02}}}).json()
        _finished(client, child["id"])
        grandchild = client.post(f"/api/runs/{child['id']}/fork",
                                 json={"epoch": 5, "spec": {"optim": {"lr": 0.01}}}).json()
        assert grandchild["forked_from"] == {"run": child["id"], "epoch": 5}
        _finished(client, grandchild["id"])
        g, c = _series(client, grandchild["id"]), _series(client, child["id"])
        assert [p for p in g["val_loss"] if p[0] <= 5] == [p for p in c["val_loss"] if p[0] <= 5]
        assert [p[1] for p in g["lr"]] == [0.1] * 4 + [0.02, 0.01]


def test_a_snapshot_reaches_an_epoch_after_eta_set_by_hand(configure, start_worker,
                                                           hold) -> None:
    """η set by hand is in no spec, so no replay reproduces it; the parent's stored snapshot
    of the fork's epoch does: a fork whose spec has that η goes on exactly as the parent."""
    # Snapshots kept for every epoch (a short run; no pacing by time).
    start_worker({**configure(), "EPOQUE_FORK_SNAPSHOT_SHARE": "1"})
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker to register")
        hold.every_run_at(1)
        parent = client.post("/api/runs", json=BASE).json()["id"]
        hold.held_at(parent, 1)
        client.post(f"/api/runs/{parent}/lr", json={"lr": 0.03})
        hold.release_all()
        hold.release(parent)
        _finished(client, parent)
        with new_session() as session:
            assert snapshots.stored_epochs(session=session, run_id=parent) == list(range(1, 7))
        answer = client.post(f"/api/runs/{parent}/fork",
                             json={"epoch": E, "spec": {"optim": {"lr": 0.03}}})
        assert answer.status_code == 201, answer.text
        fork = _finished(client, answer.json()["id"])
        mine, theirs = _series(client, fork["id"]), _series(client, parent)
        assert mine["events/lr"] == theirs["events/lr"] == [[2, 0.03]]  # copied with the rest
        later = _after(mine, E)
        assert later == _after(theirs, E) and len(later["val_loss"]) == 6 - E
        assert fork["result"]["test_accuracy"] == _finished(client, parent)["result"][
            "test_accuracy"]


def test_a_forks_step_series_are_its_parents_up_to_the_fork(configure, start_worker) -> None:
    """Step-level series count minibatch steps: the fork holds the parent's up to the last step
    of its epoch, then its own."""
    start_worker({**configure(), "EPOQUE_FORK_SNAPSHOT_MB": "0"})
    spec = merged(BASE, {"training": {"log_every_steps": 3}})
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker to register")
        parent = client.post("/api/runs", json=spec).json()["id"]
        _finished(client, parent)
        fork = client.post(f"/api/runs/{parent}/fork",
                           json={"epoch": E, "spec": {"optim": {"lr": 0.01}}}).json()["id"]
        _finished(client, fork)
        mine, theirs = _series(client, fork)["step_loss"], _series(client, parent)["step_loss"]
        end = E * steps_per_epoch(parse_spec(spec))
        assert theirs[-1][0] == 6 * steps_per_epoch(parse_spec(spec)) // 3 * 3
        assert [p for p in mine if p[0] <= end] == [p for p in theirs if p[0] <= end]
        assert [p[0] for p in mine] == [p[0] for p in theirs]  # every step logged, once
        assert [p for p in mine if p[0] > end] != [p for p in theirs if p[0] > end]
