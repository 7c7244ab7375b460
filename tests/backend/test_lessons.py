"""Each lesson's preset, launched through the API and trained by real worker processes, shows
the slide's claim in its own figures (COURSE.md, lesson by lesson; the guides in docs/lessons
say what each preset chose and why).

One lab serves the whole module: every preset is launched at once, two workers (one torch
thread each) train them, and each test asserts one lesson's claim on the numbers the API gives
back. The runs are seeded and on the CPU, so the figures are the same from one run of the tests
to the next; the margins leave room for the float round-off of another machine.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from backend.presets.catalog import BY_ID, PRESETS
from tests.conftest import ROOT, _clear_cached_settings, wait_for

# Series each lesson's claim reads, fetched for every run of its preset.
KEYS = {
    "sgd-momentum": ["step_loss"],
    "minibatch-size": None,  # grad_var/m=… : every key, filtered below
    "weight-decay": ["weight_norm", "train_accuracy", "val_accuracy", "train_loss", "val_loss"],
    "batchnorm": ["train_loss"],
    "initialisation": ["train_loss"],
}
WORKERS = 2


def _runs_of(client: TestClient, launched: dict) -> list[dict]:
    if launched["kind"] == "run":
        return [client.get(f"/api/runs/{launched['run']['id']}").json()]
    study = client.get(f"/api/studies/{launched['study']['id']}").json()
    return study["runs"]


def _finished(client: TestClient, launched: dict) -> bool:
    return all(r["status"] not in ("queued", "running") for r in _runs_of(client, launched))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[dict]]]:
    """{preset id: [run, ...]}, each run as GET /api/runs/{id} gives it plus ``series`` (the
    keys its lesson reads), once every preset has been trained by real workers."""
    from backend.app import create_app
    from backend.migrate import upgrade

    tmp = tmp_path_factory.mktemp("lessons")
    env = {"EPOQUE_DATA_DIR": str(tmp / "data"),
           "EPOQUE_ALLOWED_HOSTS": "testserver,127.0.0.1,localhost,::1",
           # One thread per worker: two workers share this machine's cores without fighting.
           "EPOQUE_TORCH_THREADS": "1"}
    procs: list[subprocess.Popen[bytes]] = []
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("EPOQUE_")]:
            mp.delenv(key)
        for key, value in env.items():
            mp.setenv(key, value)
        _clear_cached_settings()
        upgrade()
        try:
            for i in range(WORKERS):
                log = open(tmp / f"worker-{i}.log", "wb")  # noqa: SIM115
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "backend.cli", "worker", "--loglevel", "INFO"],
                    cwd=ROOT, env={**os.environ, "EPOQUE_DEVICE": "cpu"}, stdout=log,
                    stderr=subprocess.STDOUT))
            with TestClient(create_app()) as client:
                wait_for(lambda: len(client.get("/api/health").json()["workers"]) == WORKERS,
                         120, "the workers to register")
                launched = {}
                for preset in PRESETS:
                    answer = client.post(f"/api/presets/{preset['id']}/launch")
                    assert answer.status_code == 201, answer.text[:300]
                    launched[preset["id"]] = answer.json()
                wait_for(lambda: all(_finished(client, x) for x in launched.values()), 900,
                         "every preset to finish", every=1.0)
                out: dict[str, list[dict]] = {}
                for pid, x in launched.items():
                    runs = _runs_of(client, x)
                    for run in runs:
                        assert run["status"] == "succeeded", (pid, run["error"])
                        keys = KEYS.get(pid, [])
                        if keys is None or keys:
                            params = {"keys": ",".join(keys)} if keys else {}
                            run["series"] = client.get(f"/api/runs/{run['id']}/metrics",
                                                       params=params).json()["series"]
                    out[pid] = runs
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(timeout=10)
            _clear_cached_settings()
    yield out


def _by(runs: list[dict], path: str) -> dict[Any, dict]:
    """The runs keyed by the value of one spec field (a dotted path), e.g. optim.momentum."""
    def get(spec: dict) -> Any:
        node: Any = spec
        for part in path.split("."):
            node = node[part]
        return node if not isinstance(node, list) else tuple(
            tuple(sorted(v.items())) if isinstance(v, dict) else v for v in node)
    return {get(r["spec"]): r for r in runs}


def _saw(lesson: int, **figures: Any) -> None:
    """The figures a claim was checked on, in the test's output (pytest -rP shows them)."""
    print(f"lesson {lesson}:", {k: np.round(v, 4).tolist() if isinstance(v, list | float)
                                else v for k, v in figures.items()})


def _values(run: dict, key: str) -> list[float]:
    return [v for _, v in run["series"][key]]


def test_lesson_1_plain_sgd_is_noisy_momentum_smooths_it(lab) -> None:
    runs = _by(lab["sgd-momentum"], "optim.momentum")
    spread = {}
    for alpha, run in runs.items():
        # The slide's SGD: one example a step, drawn with replacement, η/√t with t the step.
        assert run["spec"]["optim"]["batch_size"] == 1
        assert run["spec"]["optim"]["schedule"] == {**run["spec"]["optim"]["schedule"],
                                                    "kind": "inv_sqrt", "per": "step"}
        losses = np.array(_values(run, "step_loss"))
        assert len(losses) >= 500  # a step curve, not an epoch curve
        spread[alpha] = float(np.std(losses[len(losses) // 2:]))  # the second half's spread
    acc = {a: r["result"]["test_accuracy"] for a, r in runs.items()}
    _saw(1, step_loss_std=spread, test_accuracy=acc)
    # plain SGD's step loss spreads at least twice as wide as momentum's
    assert spread[0.0] > 2 * spread[0.9], spread
    assert acc[0.9] > acc[0.0], acc  # and momentum gets further in as many steps


def test_lesson_2_gradient_variance_falls_like_one_over_m(lab) -> None:
    runs = _by(lab["minibatch-size"], "optim.batch_size")
    assert set(runs) == {1, 32, 512}
    for m, run in runs.items():
        last = {int(k.split("=")[1]): run["series"][k][-1][1]
                for k in run["series"] if k.startswith("grad_var/m=")}
        assert len(last) >= 4, last
        sizes = sorted(last)
        slope = np.polyfit(np.log(sizes), np.log([last[s] for s in sizes]), 1)[0]
        _saw(2, m=m, slope=float(slope), test_accuracy=run["result"]["test_accuracy"])
        assert -1.4 < slope < -0.7, (m, slope, last)  # log-log slope ≈ −1
    # m changes the solution reached: the three test accuracies differ
    acc = sorted(r["result"]["test_accuracy"] for r in runs.values())
    assert acc[-1] - acc[0] > 0.05, acc


def test_lesson_3_early_stopping_returns_z_star(lab) -> None:
    runs = _by(lab["early-stopping"], "training.early_stopping.patience")
    epochs = []
    for p, run in sorted(runs.items()):
        r = run["result"]
        _saw(3, p=p, best=r["best_epoch"], stopped=r["stopped_epoch"],
             best_val=r["best"]["val_accuracy"], final_val=r["final"]["val_accuracy"],
             test=r["test_accuracy"])
        assert r["kept"] == "best"
        # The slide's loop, taken literally: p − 1 more epochs after the best one.
        assert r["stopped_epoch"] == r["best_epoch"] + p - 1, (p, r["best_epoch"], r["stopped_epoch"])
        assert r["stopped_epoch"] < run["spec"]["training"]["max_epochs"]
        # The returned model is z*, not the last one: its test figures are the best epoch's.
        assert r["test_accuracy"] == r["best"]["test_accuracy"]
        assert r["best"]["epoch"] == r["best_epoch"]
        assert r["best"]["val_accuracy"] > r["final"]["val_accuracy"] - 1e-9
        epochs.append(r["epochs_run"])
    assert epochs == sorted(epochs) and len(set(epochs)) == len(epochs), epochs


def test_lesson_4_each_stage_improves_the_final_model(lab) -> None:
    runs = _by(lab["step-schedule"], "optim.schedule.milestones")
    stages = sorted(runs, key=len)
    assert [len(s) for s in stages] == [0, 1, 2, 3]
    final = [runs[s]["result"]["final"] for s in stages]
    for run in runs.values():
        assert run["result"]["kept"] == "last"
    acc = [f["test_accuracy"] for f in final]
    loss = [f["test_loss"] for f in final]
    _saw(4, final_test_accuracy=acc, final_test_loss=loss)
    # More stages, a better final model: the test loss falls with every stage added, the
    # accuracy never falls (by more than one test example in a thousand) and gains overall.
    assert all(b < a for a, b in pairwise(loss)), loss
    assert all(b >= a - 0.0015 for a, b in pairwise(acc)), acc
    assert acc[-1] - acc[0] >= 0.03, acc


def test_lesson_5_constant_init_keeps_one_unit_per_layer_and_still_moves(lab) -> None:
    runs = _by(lab["initialisation"], "model.init.scheme")
    depth = len(runs["constant"]["spec"]["model"]["hidden"])
    const = runs["constant"]
    assert const["spec"]["model"]["init"]["value"] != 0  # a constant, not zeros
    assert const["result"]["distinct_units"] == [1] * depth
    losses = _values(const, "train_loss")
    _saw(5, **{s: (r["result"]["distinct_units"], r["result"]["test_accuracy"])
               for s, r in runs.items()}, constant_train_loss=[losses[0], losses[-1]])
    assert losses[-1] < losses[0] - 0.3, losses  # it learns, as one unit per layer
    assert const["result"]["test_accuracy"] > 0.2  # above chance (0.1), below the random inits
    # normal(std 0.01): distinct units but a vanishing signal through five tanh layers: chance
    normal = runs["normal"]["result"]
    assert normal["distinct_units"] == runs["normal"]["spec"]["model"]["hidden"]
    assert normal["test_accuracy"] < 0.2
    for scheme in ("pytorch", "xavier_uniform", "kaiming_uniform"):
        r = runs[scheme]["result"]
        assert r["test_accuracy"] > 0.9, (scheme, r["test_accuracy"])
        assert r["test_accuracy"] > const["result"]["test_accuracy"] + 0.3


def test_lesson_6_batchnorm_makes_a_deep_sigmoid_net_train(lab) -> None:
    runs = _by(lab["batchnorm"], "model.batchnorm")
    without, with_bn = runs[False]["result"], runs[True]["result"]
    _saw(6, test_without=without["test_accuracy"], test_with=with_bn["test_accuracy"])
    assert without["test_accuracy"] < 0.2, without["test_accuracy"]  # barely trains: chance
    assert with_bn["test_accuracy"] > 0.9, with_bn["test_accuracy"]
    assert _values(runs[True], "train_loss")[-1] < 0.5 * _values(runs[False], "train_loss")[-1]


def test_lesson_7_weight_decay_shrinks_w_and_the_gap(lab) -> None:
    runs = _by(lab["weight-decay"], "optim.weight_decay")
    lams = sorted(runs)
    norms = [_values(runs[lam], "weight_norm")[-1] for lam in lams]
    assert all(b < a for a, b in pairwise(norms)), dict(zip(lams, norms))
    gap = {lam: _values(runs[lam], "train_accuracy")[-1] - _values(runs[lam], "val_accuracy")[-1]
           for lam in lams}
    _saw(7, lams=lams, weight_norm=norms, gap=[gap[lam] for lam in lams])
    assert gap[lams[-1]] < gap[lams[0]] - 0.05, gap


def test_lesson_8_dropout_inference_a_and_b(lab) -> None:
    for run in lab["dropout"]:
        d = run["result"]["dropout"]
        curve = dict(d["mc_curve"])
        masks = sorted(curve)
        _saw(8, inference=d["inference"], scale=d["scale"], mc=d["mc"], curve=d["mc_curve"])
        assert masks[0] == 1 and masks[-1] == d["mc_samples"] >= 10
        # A: the average of K masks gets better with K; with 10–20 masks it is as good as B.
        assert curve[masks[-1]] > curve[1] + 0.03, curve
        assert abs(d["mc"] - d["scale"]) < 0.02, d
        assert d["mc"] == pytest.approx(curve[masks[-1]], abs=1e-6)
        assert d["scale"] > 0.9


def test_lesson_9_a_harmful_flip_and_a_harmless_crop(lab) -> None:
    runs = lab["augmentation"]
    acc = {}
    for run in runs:
        ops = [op["op"] for op in run["spec"]["augment"]]
        acc[ops[0] if ops else "none"] = run["result"]["test_accuracy"]
    _saw(9, **acc)
    assert set(acc) == {"none", "random_horizontal_flip", "random_crop"}
    assert acc["none"] - acc["random_horizontal_flip"] >= 0.03, acc  # turns ← into →
    assert acc["none"] - acc["random_crop"] < 0.01, acc  # keeps every label


def test_lesson_10_the_ensemble_beats_its_members(lab) -> None:
    (run,) = lab["ensemble"]
    e = run["result"]["ensemble"]
    members = e["member_test_accuracy"]
    _saw(10, members=members, average=e["ensemble_test_accuracy"], vote=e["vote_test_accuracy"],
         best_member=e["best_member_accuracy"])
    assert len(members) == run["spec"]["ensemble"]["members"]
    assert e["mean_member_accuracy"] == pytest.approx(sum(members) / len(members), abs=1e-6)
    # Often a 1–2 % gain on ImageNet; here the average beats the best member by at least 1 point.
    assert e["ensemble_test_accuracy"] - e["best_member_accuracy"] >= 0.01, e
    assert e["gain"] == pytest.approx(e["ensemble_test_accuracy"] - e["mean_member_accuracy"],
                                      abs=1e-6)
    assert e["vote_test_accuracy"] > e["mean_member_accuracy"], e
    assert math.isclose(run["result"]["test_accuracy"], e["ensemble_test_accuracy"], abs_tol=1e-6)


def test_every_preset_has_a_claim_test() -> None:
    """A preset added to the catalog fails here until a test above checks its claim."""
    tested = {"sgd-momentum", "minibatch-size", "early-stopping", "step-schedule",
              "initialisation", "batchnorm", "weight-decay", "dropout", "augmentation",
              "ensemble"}
    assert tested == set(BY_ID)
