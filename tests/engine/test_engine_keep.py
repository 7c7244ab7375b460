"""Which model a run returns (SPEC.md "Version 2"): training.keep, result.best/final/kept,
each ensemble member's own z*, and strategy A's figure from the curve's masks, each checked
against figures computed here, outside the engine."""

from __future__ import annotations

import pytest
import torch

from tests.engine.test_engine_early_stopping import slide_loop
from worker.engine import Callbacks, load_dataset, parse_spec, train
from worker.engine.evaluate import evaluate
from worker.engine.models import build_network

FIGURES = {"epoch", "val_loss", "val_accuracy", "test_loss", "test_accuracy"}


def _with_snapshots(spec_data: dict):
    spec = parse_spec(spec_data)
    models: dict[int, dict[str, torch.Tensor]] = {}
    out = train(spec, Callbacks(on_checkpoint=lambda e, snap: models.update({e: snap()["model"]})),
                device="cpu")
    return spec, out, models


def test_keep_last_returns_the_last_epochs_weights_bit_for_bit() -> None:
    _, out, models = _with_snapshots({"model": {"hidden": [16]}, "optim": {"lr": 0.5},
                                         "training": {"max_epochs": 6, "keep": "last"}})
    assert out.result["kept"] == "last"
    last = models[6]
    assert all(torch.equal(out.state_dict[k], last[k]) for k in last)
    final = out.result["final"]
    assert set(final) == FIGURES and final["epoch"] == 6
    assert final["val_accuracy"] == out.metrics[-1]["val_accuracy"]
    assert final["test_accuracy"] == out.result["test_accuracy"]
    assert final["test_loss"] == out.result["test_loss"]
    best = out.result["best"]
    accs = [m["val_accuracy"] for m in out.metrics]
    assert best["epoch"] == out.result["best_epoch"] == accs.index(max(accs)) + 1
    assert best["val_accuracy"] == max(accs)


def test_auto_keeps_the_last_model_without_early_stopping_and_z_star_with_it() -> None:
    base = {"model": {"hidden": [16]}, "optim": {"lr": 0.5}, "training": {"max_epochs": 8}}
    _, plain, models = _with_snapshots(base)
    assert plain.result["kept"] == "last"
    assert all(torch.equal(plain.state_dict[k], models[8][k]) for k in models[8])
    stopping = {**base, "training": {"max_epochs": 8, "early_stopping": {"patience": 20}}}
    _, es, models = _with_snapshots(stopping)
    assert es.result["kept"] == "best"
    best = es.result["best_epoch"]
    assert all(torch.equal(es.state_dict[k], models[best][k]) for k in models[best])
    assert es.result["test_accuracy"] == es.result["best"]["test_accuracy"]
    # Same run, same figures: only the returned model differs.
    assert es.result["best"] == plain.result["best"]
    assert es.result["final"] == plain.result["final"]


def test_each_ensemble_member_keeps_its_own_z_star_with_its_own_patience() -> None:
    """Member k's z* is what the slide's loop, run on member k's own validation curve with
    patience p, returns: its best epoch, and the weights it had then."""
    p, K = 2, 3
    spec, out, models = _with_snapshots({
        "model": {"hidden": [8]}, "optim": {"lr": 0.8}, "ensemble": {"members": K},
        "training": {"max_epochs": 40, "early_stopping": {"patience": p}}})
    data = load_dataset(spec)
    z0, _ = build_network(spec, data.input_shape, len(data.classes),
                          [spec.seed + k for k in range(K)])
    initial = evaluate(z0, data.X_val, data.y_val)["member_accuracy"].tolist()
    stops, bests = [], []
    for k in range(K):
        curve = [m[f"member/{k}/val_accuracy"] for m in out.metrics]
        run, best = slide_loop(initial[k], curve, p)
        stops.append(run)
        bests.append(best)
        for name, v in out.state_dict.items():
            assert torch.equal(v[k], models[best][name][k]), (k, name)
    assert out.result["ensemble"]["member_best_epochs"] == bests
    assert out.result["stopped_epoch"] == max(stops)  # the stack trains until the last stops
    assert out.result["best_epoch"] == max(bests)
    assert len(set(bests)) > 1  # the members really chose different epochs


def test_a_joint_ensemble_keeps_one_z_star_on_the_combined_prediction() -> None:
    p = 2
    spec, out, models = _with_snapshots({
        "model": {"hidden": [8]}, "optim": {"lr": 0.8},
        "ensemble": {"members": 3, "select": "joint"},
        "training": {"max_epochs": 40, "early_stopping": {"patience": p}}})
    data = load_dataset(spec)
    z0, _ = build_network(spec, data.input_shape, len(data.classes), [0, 1, 2])
    initial = evaluate(z0, data.X_val, data.y_val)["accuracy"].item()
    run, best = slide_loop(initial, [m["val_accuracy"] for m in out.metrics], p)
    assert (out.result["stopped_epoch"], out.result["best_epoch"]) == (run, best)
    assert out.result["ensemble"]["member_best_epochs"] == [best]
    assert all(torch.equal(v, models[best][k]) for k, v in out.state_dict.items())


def test_strategy_a_figure_is_the_curve_point_with_as_many_masks() -> None:
    for inference in ("scale", "mc"):
        out = train(parse_spec({
            "model": {"hidden": [32], "dropout": {"p_inc_hidden": 0.5, "mc_samples": 7,
                                                  "inference": inference}},
            "training": {"max_epochs": 2}}), device="cpu")
        d = out.result["dropout"]
        assert d["mc_curve"][-1] == [7, pytest.approx(d["mc"], abs=1e-7)]  # float32 vs 64
        figure = d["mc"] if inference == "mc" else d["scale"]
        assert out.result["test_accuracy"] == figure == out.result["final"]["test_accuracy"]
