"""A seed study's runs train as packs (one stacked network per pack) on a real worker: each run
ends with its own figures, equal to the run trained alone; losing one run stops only it; a
killed worker's pack members go on alone from their own checkpoints; a pack that timed steps
show slower stacked trains one run after the other (worker/timing.py)."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
from fastapi.testclient import TestClient

from backend.app import create_app
from backend.studies.service import plan_packs
from tests.conftest import wait_for
from tests.worker.test_crash_recovery import _kill_worker_of, two_workers_recovering_fast
from worker import reporting, tasks
from worker.engine import parse_spec, train
from worker.timing import PACK_STEPS, TIMING_SECONDS, pack_pays


@pytest.fixture
def packs_always(monkeypatch) -> None:
    """Workers stack every pack: these tests are about packs, not about when they pay
    (test_a_pack_that_would_be_slower_trains_one_by_one is)."""
    monkeypatch.setenv("EPOQUE_PACKS", "always")


def _finished(client: TestClient, study_id: int, timeout: float = 180) -> dict:
    return wait_for(lambda: (s := client.get(f"/api/studies/{study_id}").json())["status"]
                    == "finished" and s, timeout, "the study")


def test_seed_study_trains_as_one_pack_equal_to_the_runs_alone(
    configure, start_worker, packs_always
) -> None:
    start_worker(configure())
    base = {"model": {"hidden": [32]}, "training": {"max_epochs": 4}}
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker")
        study = client.post("/api/studies", json={"name": "seeds", "base": base, "seeds": 3}).json()
        ids = [r["id"] for r in study["runs"]]
        assert [r["pack"] for r in study["runs"]] == [ids[0]] * 3
        # One stacked network has one η: a hand-set η is refused, with the way out.
        refused = client.post(f"/api/runs/{ids[1]}/lr", json={"lr": 0.01})
        assert refused.status_code == 409 and '"pack": false' in refused.json()["detail"]
        done = _finished(client, study["id"])
        for run in done["runs"]:
            assert run["status"] == "succeeded", run["error"]
            assert run["result"]["pack"] == {"run_ids": ids}
            alone = train(parse_spec(run["spec"]), device="cpu")
            assert math.isclose(run["result"]["test_loss"], alone.result["test_loss"],
                                rel_tol=1e-4)
            series = client.get(f"/api/runs/{run['id']}/metrics").json()["series"]
            assert [x for x, _ in series["val_loss"]] == [1, 2, 3, 4]
            for (_, stored), expected in zip(series["val_loss"], alone.metrics, strict=True):
                assert math.isclose(stored, expected["val_loss"], rel_tol=1e-4)
        assert len({r["result"]["test_loss"] for r in done["runs"]}) == 3  # three real runs

        unpacked = client.post("/api/studies", json={"base": base, "seeds": 2,
                                                     "pack": False}).json()
        assert [r["pack"] for r in unpacked["runs"]] == [None, None]
        assert all(r["status"] == "succeeded" and "pack" not in r["result"]
                   for r in _finished(client, unpacked["id"])["runs"])


def test_deleting_or_cancelling_one_run_of_a_pack_leaves_the_others(
    configure, start_worker, packs_always, hold
) -> None:
    start_worker(configure())
    base = {"model": {"hidden": [64]}, "optim": {"batch_size": 8},
            "training": {"max_epochs": 12}}
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker")
        # The pack waits at its epochs' ends in its first member (worker/testhold.py).
        hold.every_run_at(2)
        study = client.post("/api/studies", json={"base": base, "seeds": 4}).json()
        ids = [r["id"] for r in study["runs"]]
        hold.held_at(ids[0], 2)
        for other in ids[1:]:
            hold.release(other)
        assert client.delete(f"/api/runs/{ids[1]}").status_code == 204
        assert client.post(f"/api/runs/{ids[2]}/cancel").status_code == 200
        # The cancelled member ends, while the rest of its pack trains on: epoch by epoch
        # until it is, the pack still held (so still running) each time.
        epoch = 2
        while client.get(f"/api/runs/{ids[2]}").json()["status"] != "cancelled":
            epoch += 1
            assert epoch < 12, "the cancelled member trained on to the end"
            hold.run_until(ids[0], epoch)
            hold.held_at(ids[0], epoch)
        assert client.get(f"/api/runs/{ids[0]}").json()["status"] == "running"
        assert client.get(f"/api/runs/{ids[3]}").json()["status"] == "running"
        hold.release(ids[0])
        done = _finished(client, study["id"])
    assert [r["id"] for r in done["runs"]] == [ids[0], ids[2], ids[3]]
    assert [r["status"] for r in done["runs"]] == ["succeeded", "cancelled", "succeeded"]
    assert [r["result"]["epochs_run"] for r in done["runs"]][::2] == [12, 12]
    assert done["runs"][1]["result"]["epochs_run"] < 12


@pytest.mark.redis
def test_killed_worker_pack_members_resume_alone(
    configure, start_worker, pg_url, redis_url, monkeypatch, packs_always, hold
) -> None:
    procs = two_workers_recovering_fast(configure, start_worker, pg_url, redis_url, monkeypatch)
    # The kill lands mid-run: the test holds the pack at an epoch's end (worker/testhold.py).
    # Timed, this pack would train one by one (0.4-0.5× as fast stacked): packs_always.
    base = {"model": {"hidden": [512, 512]}, "optim": {"batch_size": 8, "lr": 0.01},
            "training": {"max_epochs": 10}}
    with TestClient(create_app()) as client:
        wait_for(lambda: len(client.get("/api/health").json()["workers"]) == 2, 60, "two workers")
        # Two seeds make one pack of two, even with a second worker idle.
        hold.every_run_at(3)
        study = client.post("/api/studies", json={"base": base, "seeds": 2}).json()
        ids = [r["id"] for r in study["runs"]]
        _kill_worker_of(client, ids[0], procs, hold, others=tuple(ids[1:]))
        done = _finished(client, study["id"])
        for run in done["runs"]:
            assert run["status"] == "succeeded" and run["attempt"] == 2, run["error"]
            assert "pack" not in run["result"]  # the second attempt trained it alone
            series = client.get(f"/api/runs/{run['id']}/metrics").json()["series"]
            [[resumed_at, attempt]] = series["events/resume"]
            assert attempt == 2 and resumed_at > 1
            counts = Counter(x for x, _ in series["val_loss"])
            assert sorted(counts) == list(range(1, 11)) and set(counts.values()) == {1}
            # The pack's epochs are the run's own up to float round-off, which SGD amplifies
            # (143 steps an epoch: 7e-4 of the loss by epoch 2, 1 % by epoch 10, measured).
            alone = train(parse_spec(run["spec"]), device="cpu")
            for (_, stored), expected in zip(series["val_loss"][:2], alone.metrics[:2], strict=True):
                assert math.isclose(stored, expected["val_loss"], rel_tol=3e-3)
            assert math.isclose(run["result"]["test_loss"], alone.result["test_loss"],
                                rel_tol=0.05)


class _Run:
    def __init__(self, run_id: int) -> None:
        self.id = run_id


def test_a_declined_pack_trains_one_by_one(configure, start_worker, monkeypatch) -> None:
    """EPOQUE_PACKS=never (as when timed steps show a pack slower): the runs train one by one,
    each exactly the run alone and steerable, and the result says why."""
    monkeypatch.setenv("EPOQUE_PACKS", "never")
    start_worker(configure())
    base = {"model": {"hidden": [16]}, "training": {"max_epochs": 2}}
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker")
        study = client.post("/api/studies", json={"base": base, "seeds": 2}).json()
        assert [r["pack"] for r in study["runs"]] == [study["runs"][0]["id"]] * 2  # planned
        done = _finished(client, study["id"])
    for run in done["runs"]:
        assert run["status"] == "succeeded" and run["pack"] is None
        assert run["result"]["pack"] == {"declined": "EPOQUE_PACKS=never"}
        alone = _on_one_thread(train, parse_spec(run["spec"]))  # as the worker did
        assert math.isclose(run["result"]["test_loss"], alone.result["test_loss"], rel_tol=1e-6)


def _on_one_thread(work, *args):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return work(*args)
    finally:
        torch.set_num_threads(before)


class ScriptedClock:
    """Readings advance by the stated seconds, one after the other; reading past the script
    fails. timing.step_seconds reads once before the timed steps and once after each."""

    def __init__(self, advances: list[float]) -> None:
        self.advances, self.now = list(advances), 0.0

    def __call__(self) -> float:
        self.now += self.advances.pop(0)
        return self.now


def _phases(*step_seconds: float) -> ScriptedClock:
    """Each phase: its start, then PACK_STEPS steps (none stops early within the budget)."""
    assert all(PACK_STEPS * s <= TIMING_SECONDS for s in step_seconds)
    return ScriptedClock([a for s in step_seconds for a in [0.0] + [s] * PACK_STEPS])


@pytest.mark.parametrize(("single", "stacked", "pays", "speedup"), [
    (0.002, 0.004, True, "2.00"),  # 4 members in twice one's time: twice as fast
    (0.003, 0.012, False, "1.00"),  # 4 members in four times one's time: nothing gained
    (0.003, 0.0105, False, "1.14"),  # faster, but short of the 1.2 bar
])
def test_a_pack_pays_when_its_stacked_step_is_fast_enough(single, stacked, pays, speedup) -> None:
    clock = _phases(single, stacked)
    spec = parse_spec({"model": {"hidden": [32]}})
    got, why = pack_pays(spec, 16, "cpu", clock=clock)  # timed: a stack of TIMED_MEMBERS = 4
    assert (got, why) == (pays, f"4 runs stacked stepped {speedup}× as fast as one by one")
    assert clock.advances == []  # both phases timed in full


def test_pack_pays_skips_timing_a_stack_of_compute_bound_steps() -> None:
    clock = ScriptedClock([0.0, 0.5, 0.5, 0.5])  # three steps: past the budget, a stop
    pays, why = pack_pays(parse_spec({}), 8, "cpu", clock=clock)
    assert not pays and "500 ms" in why and clock.advances == []  # the stack never timed


def test_a_gpu_and_the_packs_setting_decide_without_timing() -> None:
    untimed = ScriptedClock([])  # any reading fails
    spec = parse_spec({})
    assert pack_pays(spec, 16, "cuda", clock=untimed)[0]
    assert pack_pays(spec, 16, "cpu", mode="always", clock=untimed) == (True, "EPOQUE_PACKS=always")
    assert pack_pays(spec, 16, "cpu", mode="never", clock=untimed) == (False, "EPOQUE_PACKS=never")


def test_pack_pays_times_an_uploaded_folder_dataset() -> None:
    """Its classes are unknown until the folder is loaded (the registry says none)."""
    spec = parse_spec({"data": {"dataset": "folder:3"}, "model": {"arch": "cnn", "hidden": [8]}})
    pays, why = _on_one_thread(pack_pays, spec, 4, "cpu")
    assert isinstance(pays, bool) and "stepped" in why


def test_plan_packs_groups_seeds_splits_for_workers_and_limits() -> None:
    seeds = [parse_spec({"seed": s}) for s in range(6)]
    lrs = [parse_spec({"seed": s, "optim": {"lr": lr}}) for lr in (0.1, 0.2) for s in range(3)]
    dropout = [parse_spec({"seed": s, "model": {"dropout": {"p_inc_hidden": 0.5}}})
               for s in range(2)]
    ensembles = [parse_spec({"seed": s, "ensemble": {"members": 2}}) for s in range(2)]
    # A study mixing shapes: the runs of each shape stack together, one pack per shape.
    shapes = [parse_spec({"seed": s, "model": {"hidden": h}})
              for h in ([16], [32, 32], [16]) for s in range(2)]

    def plan(specs, workers=1, max_members=64):
        runs = [_Run(i) for i in range(len(specs))]
        return [[r.id for r in group] for group in
                plan_packs(runs, specs, workers=workers, max_members=max_members)]

    assert plan(seeds) == [[0, 1, 2, 3, 4, 5]]
    assert plan(seeds, workers=2) == [[0, 2, 4], [1, 3, 5]]  # no idle worker
    assert plan(seeds, max_members=4) == [[0, 2, 4], [1, 3, 5]]
    assert plan(seeds, workers=8) == [[0, 3], [1, 4], [2, 5]]  # two runs or more per pack
    assert plan(lrs, workers=2) == [[0, 1, 2], [3, 4, 5]]  # one pack per learning rate
    assert plan(dropout) == [[0, 1]]  # per-member masks: dropout runs pack
    assert plan(ensembles) == [[0], [1]]  # not packable: each alone
    assert plan(shapes) == [[0, 1, 4, 5], [2, 3]]


class _Clock:
    """The reporters' clock: each reading is ``tick`` seconds after the last, so a flush (two
    readings) costs exactly ``tick``."""

    def __init__(self, tick: float) -> None:
        self.now, self.tick = 1000.0, tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


def test_pack_flushes_are_spaced_by_the_points_cost_not_the_checkpoints(configure) -> None:
    """A flush of points spaces the next WRITE_SHARE × its cost later; a flush that carries
    checkpoints does not (it is charged to the checkpoints), so progress keeps coming. Real
    runs in a real SQLite database; only the clock is the test's."""
    configure()  # no worker: the test claims the runs itself, as a worker would
    with TestClient(create_app()) as client:
        ids = [client.post("/api/runs", json={"seed": i}).json()["id"] for i in (1, 2)]
    claimed = [tasks._claim(run_id) for run_id in ids]
    pack = reporting.PackReporter([(r.run_id, r.token) for r in claimed], clock=_Clock(0.05))
    pack.members[0].checkpoint = b"snapshot"
    pack.flush()
    assert pack.flush_every == reporting.FLUSH_SECONDS
    assert pack.members[0].checkpoint_cost == pytest.approx(0.05)
    assert pack.members[1].checkpoint_cost == 0
    assert not any(m.lost for m in pack.members)  # both written: the database knows them
    pack.flush()
    assert pack.flush_every == pytest.approx(reporting.WRITE_SHARE * 0.05)
