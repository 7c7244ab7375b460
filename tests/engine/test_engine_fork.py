"""Forks: from epoch e+1 on, a fork trains as a run given the changed knobs from e+1 on."""

from __future__ import annotations

import pytest
import torch

from worker.engine import Callbacks, parse_spec, train
from worker.engine.fork import (
    ForkUnavailable,
    replay,
    start_of_fork,
    steps_per_epoch,
    with_knobs,
)
from worker.engine.forkspec import merged, not_knobs, same_start_and_order
from worker.engine.train import TIMING_KEYS

BASE = {"model": {"hidden": [16]}, "training": {"max_epochs": 6}}


def _strip(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in metrics]


def _fork(parent: dict, change: dict, epoch: int):
    p, c = parse_spec(parent), parse_spec(merged(parent, change))
    snapshot = start_of_fork([(p, epoch)], c, device="cpu")
    return train(c, resume=snapshot, device="cpu")


def test_a_plain_runs_fork_with_a_new_lr_is_a_run_whose_schedule_switches_there() -> None:
    plain = merged(BASE, {"optim": {"momentum": 0.0, "lr": 0.2}})
    fork = _fork(plain, {"optim": {"lr": 0.05}}, 3)
    # The table's entry at 3 completed epochs takes effect for epoch 4 (schedules.py).
    switched = train(parse_spec(merged(plain, {"optim": {"schedule": {
        "kind": "piecewise", "table": [[0, 0.2], [3, 0.05]]}}})), device="cpu")
    assert [m["lr"] for m in fork.metrics] == [0.05] * 3
    assert _strip(fork.metrics) == _strip(switched.metrics[3:])
    assert fork.result == switched.result
    for key, value in switched.state_dict.items():
        assert torch.equal(fork.state_dict[key], value), key


def test_a_step_schedule_runs_fork_with_a_later_milestone_is_that_run() -> None:
    stepped = merged(BASE, {"optim": {"schedule": {"kind": "step", "milestones": [2],
                                                    "gamma": 0.5}}})
    change = {"optim": {"schedule": {"milestones": [2, 4]}}}
    fork = _fork(stepped, change, 3)
    fresh = train(parse_spec(merged(stepped, change)), device="cpu")
    parent = train(parse_spec(stepped), device="cpu")
    assert _strip(parent.metrics[:4]) == _strip(fresh.metrics[:4])  # same until milestone 4
    assert _strip(fork.metrics) == _strip(fresh.metrics[3:])
    assert _strip(fork.metrics) != _strip(parent.metrics[3:])
    assert fork.result == fresh.result


def test_a_momentum_runs_fork_equals_the_run_continued_with_the_new_knobs() -> None:
    """Run the engine to e, change momentum and λ, continue: what a fork from replay does."""
    momentum = merged(BASE, {"optim": {"momentum": 0.9, "lr": 0.05}})
    change = {"optim": {"momentum": 0.5, "weight_decay": 0.01}}
    saved = {}
    parent = train(parse_spec(momentum), Callbacks(on_checkpoint=lambda e, snap: saved.update(
        {e: snap()})), device="cpu")
    child = parse_spec(merged(momentum, change))
    by_hand = with_knobs(saved[3], child)
    groups = by_hand["optimizer"]["param_groups"]
    assert [(g["momentum"], g["weight_decay"]) for g in groups] == [(0.5, 0.01), (0.5, 0.0)]
    continued = train(child, resume=by_hand, device="cpu")
    fork = _fork(momentum, change, 3)
    assert _strip(fork.metrics) == _strip(continued.metrics)
    assert _strip(fork.metrics) != _strip(parent.metrics[3:])
    assert fork.result["best"] == continued.result["best"]


def test_replay_lands_on_the_parents_state_exactly() -> None:
    spec = parse_spec(merged(BASE, {"model": {"dropout": {"p_inc_hidden": 0.5}},
                                    "augment": [{"op": "random_rotation", "degrees": 10}]}))
    saved = {}
    train(spec, Callbacks(on_checkpoint=lambda e, snap: saved.update({e: snap()})), device="cpu")
    replayed = replay(spec, 4, device="cpu")
    from_two = replay(spec, 4, device="cpu", start=saved[2])  # from a stored epoch
    for key, value in saved[4]["model"].items():
        assert torch.equal(from_two["model"][key], value), key
    for name in ("model", "best_state"):
        for key, value in saved[4][name].items():
            assert torch.equal(replayed[name][key], value), (name, key)
    for a, b in zip(saved[4]["orders"], replayed["orders"]):
        assert torch.equal(a, b)
    assert torch.equal(saved[4]["dropout_gen"], replayed["dropout_gen"])
    assert replayed["stoppers"] == saved[4]["stoppers"]


def test_a_fork_given_patience_stops_as_a_run_with_that_patience() -> None:
    spec = merged(BASE, {"optim": {"lr": 2.0}, "training": {"max_epochs": 20}})
    change = {"training": {"early_stopping": {"patience": 3}}}
    fresh = train(parse_spec(merged(spec, change)), device="cpu")
    stop = fresh.result["stopped_epoch"]
    assert 2 < stop < 20  # stops by patience, after the fork's epoch
    fork = _fork(spec, change, 2)
    assert _strip(fork.metrics) == _strip(fresh.metrics[2:])
    assert fork.result["best_epoch"] == fresh.result["best_epoch"]
    assert fork.result["stopped_epoch"] == stop


def test_no_fork_past_the_epoch_a_run_stops() -> None:
    spec = parse_spec({"model": {"hidden": [16]}, "optim": {"lr": 5.0},
                       "training": {"max_epochs": 30, "early_stopping": {"patience": 1}}})
    stopped = train(spec, device="cpu").result["stopped_epoch"]
    with pytest.raises(ForkUnavailable):
        replay(spec, stopped + 1, device="cpu")


def test_which_changes_are_knobs() -> None:
    a = parse_spec(BASE)
    knobs = parse_spec(merged(BASE, {"name": "b", "optim": {
        "lr": 0.3, "momentum": 0.1, "weight_decay": 1e-3, "schedule": {"kind": "cosine"}},
        "training": {"keep": "last", "early_stopping": {"patience": 4}}}))
    assert not_knobs(a, knobs) == [] and same_start_and_order(a, knobs)
    for change, path in [({"seed": 1}, "seed"), ({"optim": {"batch_size": 8}}, "optim.batch_size"),
                         ({"model": {"hidden": [8]}}, "model.hidden"),
                         ({"training": {"max_epochs": 9}}, "training.max_epochs"),
                         ({"data": {"val_fraction": 0.3}}, "data.val_fraction"),
                         ({"model": {"init": {"scheme": "xavier_uniform"}}}, "model.init.scheme")]:
        other = parse_spec(merged(BASE, change))
        assert not_knobs(a, other) == [path]
        assert not same_start_and_order(a, other)
    # Measured differently, trained the same: the same start and order, but no fork's knob.
    mc = parse_spec(merged(BASE, {"model": {"dropout": {"inference": "mc", "mc_samples": 5}}}))
    assert same_start_and_order(a, mc)
    assert not_knobs(a, mc) == ["model.dropout.inference", "model.dropout.mc_samples"]


def test_runs_measured_by_dropout_a_or_b_train_identically() -> None:
    """What makes inference a 'same start and order' difference: the training is the same."""
    spec = merged(BASE, {"model": {"dropout": {"p_inc_hidden": 0.5}}})
    scale = train(parse_spec(merged(spec, {"model": {"dropout": {"inference": "scale"}}})))
    mc = train(parse_spec(merged(spec, {"model": {"dropout": {"inference": "mc"}}})))
    assert _strip(scale.metrics) == _strip(mc.metrics)
    for key, value in scale.state_dict.items():
        assert torch.equal(mc.state_dict[key], value), key


def test_a_fork_of_a_fork_replays_both_segments() -> None:
    """Run A (η 0.2) forked at 2 to B (η 0.1), B forked at 4 to C (η 0.05): C is the run whose
    schedule is 0.2, 0.2, 0.1, 0.1, 0.05, 0.05."""
    a = merged(BASE, {"optim": {"momentum": 0.5, "lr": 0.2}})
    b, c = (parse_spec(merged(a, {"optim": {"lr": lr}})) for lr in (0.1, 0.05))
    snapshot = start_of_fork([(parse_spec(a), 2), (b, 4)], c, device="cpu")
    fork = train(c, resume=snapshot, device="cpu")
    fresh = train(parse_spec(merged(a, {"optim": {"schedule": {
        "kind": "piecewise", "table": [[0, 0.2], [2, 0.1], [4, 0.05]]}}})), device="cpu")
    assert _strip(fork.metrics) == _strip(fresh.metrics[4:])


def test_steps_per_epoch_is_where_an_epochs_step_series_ends() -> None:
    spec = parse_spec(merged(BASE, {"optim": {"batch_size": 50},
                                    "training": {"max_epochs": 2, "log_every_steps": 1}}))
    steps = []
    train(spec, Callbacks(on_step=lambda t, m: steps.append(t)), device="cpu")
    assert steps[-1] == 2 * steps_per_epoch(spec) and len(steps) == 2 * steps_per_epoch(spec)
    full = parse_spec(merged(BASE, {"optim": {"batch_size": "full"}}))
    assert steps_per_epoch(full) == 1
