import math
import os
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import ROOT
from worker.engine import Callbacks, Spec, load_dataset, parse_spec, train
from worker.engine.diagnostics import distinct_units
from worker.engine.models import MLP
from worker.engine.optim import MomentumSGD, param_groups
from worker.engine.schedules import lr_at
from worker.engine.train import TIMING_KEYS, evaluate

SMALL = {"model": {"hidden": [32]}, "training": {"max_epochs": 3}}


def seed_free(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in metrics]


def record(spec: Spec, **callbacks):
    seen: list[tuple[int, dict]] = []
    out = train(spec, Callbacks(on_epoch=lambda e, m: seen.append((e, m)), **callbacks),
                device="cpu")
    return out, seen


def test_result_shape_and_epoch_keys():
    out, seen = record(parse_spec(SMALL))
    assert out.status == "succeeded"
    assert [e for e, _ in seen] == [1, 2, 3]
    keys = {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "weight_norm",
            "epoch_seconds", "examples_per_second", "act_std/fc1", "grad_std/fc1",
            "grad_std/out", "heldout/test_loss", "heldout/test_accuracy",
            "update_ratio/fc1", "update_ratio/out", "dead_fraction/fc1"}
    assert set(seen[0][1]) == keys
    r = out.result
    assert set(r) >= {"best_epoch", "stopped_epoch", "epochs_run", "test_loss", "test_accuracy",
                      "test_accuracy_mc", "distinct_units", "ensemble", "diverged_epoch"}
    assert r["stopped_epoch"] == r["epochs_run"] == 3
    assert r["test_accuracy_mc"] is None and r["ensemble"] is None and r["diverged_epoch"] is None
    assert r["distinct_units"] == [32]
    assert out.classes == [str(i) for i in range(10)]
    assert out.input_shape == (1, 8, 8)
    assert set(out.state_dict) == {"fc1.weight", "fc1.bias", "out.weight", "out.bias"}
    assert all(t.device.type == "cpu" for t in out.state_dict.values())


def test_layer_stats_off_emits_only_the_cheap_keys():
    _, seen = record(parse_spec({**SMALL, "diagnostics": {"layer_stats": False}}))
    assert not any("/" in k for k in seen[0][1] if not k.startswith("heldout/"))


def test_same_seed_same_metrics_other_seed_other_metrics():
    a, _ = record(parse_spec(SMALL))
    b, _ = record(parse_spec(SMALL))
    c, _ = record(parse_spec({**SMALL, "seed": 1}))
    assert seed_free(a.metrics) == seed_free(b.metrics)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert seed_free(a.metrics) != seed_free(c.metrics)
    assert a.metrics[0]["train_loss"] != c.metrics[0]["train_loss"]


def test_default_spec_reaches_95_percent():
    start = time.perf_counter()
    out = train(Spec(), device="cpu")
    seconds = time.perf_counter() - start
    assert out.status == "succeeded" and out.result["epochs_run"] == 50
    assert max(m["val_accuracy"] for m in out.metrics) >= 0.95
    assert out.metrics[-1]["val_accuracy"] >= 0.95
    assert out.result["test_accuracy"] >= 0.95
    print(f"default spec: {seconds:.2f} s on 1 thread")


def test_z_star_is_the_best_validation_model():
    out = train(parse_spec({"model": {"hidden": [32]}, "optim": {"lr": 0.5},
                            "training": {"max_epochs": 8, "keep": "best"}}), device="cpu")
    assert out.result["kept"] == "best"
    accs = [m["val_accuracy"] for m in out.metrics]
    best = out.result["best_epoch"]
    # First epoch reaching the maximum (ties do not replace z*), unless the untrained model wins.
    assert best == accs.index(max(accs)) + 1
    model = MLP(64, [32], 10)
    model.load_state_dict(out.state_dict)
    data = load_dataset(parse_spec({}))
    val = evaluate(model, data.X_val, data.y_val)
    test = evaluate(model, data.X_test, data.y_test)
    assert val["accuracy"].item() == pytest.approx(accs[best - 1], abs=1e-6)
    assert test["accuracy"].item() == pytest.approx(out.result["test_accuracy"], abs=1e-6)
    assert test["loss"].item() == pytest.approx(out.result["test_loss"], rel=1e-5)
    assert out.result["best"] == {
        "epoch": best, "val_loss": pytest.approx(out.metrics[best - 1]["val_loss"], abs=1e-6),
        "val_accuracy": pytest.approx(accs[best - 1], abs=1e-7),
        "test_loss": out.result["test_loss"], "test_accuracy": out.result["test_accuracy"]}


def test_epoch_figures_match_the_model():
    # One epoch: z* is the model after epoch 1, so its activations, ‖w‖ can be recomputed.
    out = train(parse_spec({"model": {"hidden": [16, 8]}, "training": {"max_epochs": 1}}),
                device="cpu")
    assert out.result["best_epoch"] == 1
    m = out.metrics[0]
    model = MLP(64, [16, 8], 10)
    model.load_state_dict(out.state_dict)
    _, acts = model.forward_with_activations(load_dataset(parse_spec({})).X_val)
    for name in ("fc1", "fc2"):
        assert m[f"act_std/{name}"] == pytest.approx(acts[name].std(correction=0).item(),
                                                      rel=1e-4)
    w = [out.state_dict[f"{n}.weight"] for n in ("fc1", "fc2", "out")]
    assert m["weight_norm"] == pytest.approx(math.sqrt(sum((x * x).sum().item() for x in w)),
                                             rel=1e-5)
    assert all(m[f"grad_std/{n}"] > 0 for n in ("fc1", "fc2", "out"))


def count_minibatches(monkeypatch, spec: Spec) -> list[int]:
    """Batch sizes of every training forward (grad enabled); evaluation runs under no_grad."""
    sizes: list[int] = []
    original = MLP.forward

    def counting(self, x):
        if torch.is_grad_enabled():
            sizes.append(x.shape[0])
        return original(self, x)

    monkeypatch.setattr(MLP, "forward", counting)
    train(spec, device="cpu")
    return sizes


def test_minibatch_count_is_floor_n_over_m(monkeypatch):
    # n = 1149 training digits, m = 100: ⌊1149/100⌋ = 11 minibatches, 49 examples skipped.
    spec = parse_spec({"model": {"hidden": [8]}, "optim": {"batch_size": 100},
                       "training": {"max_epochs": 2}})
    assert count_minibatches(monkeypatch, spec) == [100] * 11 * 2


def test_full_batch(monkeypatch):
    spec = parse_spec({"model": {"hidden": [8]}, "optim": {"batch_size": "full"},
                       "training": {"max_epochs": 3}})
    assert count_minibatches(monkeypatch, spec) == [1149] * 3


def test_batch_larger_than_the_training_set_is_full_batch(monkeypatch):
    # moons, 50 points: 10 test, 8 validation, 32 for training.
    spec = parse_spec({"data": {"dataset": "moons", "n_samples": 50}, "model": {"hidden": [8]},
                       "optim": {"batch_size": 64}, "training": {"max_epochs": 2}})
    assert count_minibatches(monkeypatch, spec) == [32, 32]


def test_moons_trains():
    out = train(parse_spec({"data": {"dataset": "moons"}, "model": {"hidden": [16, 16]},
                            "training": {"max_epochs": 10}}), device="cpu")
    assert out.result["test_accuracy"] > 0.9
    assert out.classes == ["0", "1"]


def test_divergence_stops_with_the_epoch():
    # Leaky ReLU units cannot die, so η = 50 blows the loss up to NaN in the first epoch.
    spec = parse_spec({"model": {"activation": "leaky_relu"}, "optim": {"lr": 50},
                       "training": {"max_epochs": 10}})
    out, seen = record(spec)
    assert out.status == "diverged"
    assert out.result["diverged_epoch"] == out.result["epochs_run"] == 1
    assert not math.isfinite(seen[-1][1]["train_loss"])
    assert out.result["best_epoch"] == 0  # z* stays the initial model


def test_divergence_after_a_hand_raised_rate_keeps_z_star():
    # η raised by hand to 50 from epoch 3 (the live "change the rate" control).
    spec = parse_spec({"model": {"activation": "leaky_relu", "hidden": [32]},
                       "training": {"max_epochs": 10}})
    asked = []

    def by_hand(epoch, scheduled):
        asked.append((epoch, scheduled))
        return 50.0 if epoch >= 3 else None

    out, seen = record(spec, current_lr=by_hand)
    assert asked == [(1, 0.1), (2, 0.1), (3, 0.1)]
    assert [m["lr"] for _, m in seen] == [0.1, 0.1, 50.0]
    assert out.status == "diverged" and out.result["diverged_epoch"] == 3
    assert out.result["epochs_run"] == out.result["stopped_epoch"] == 3
    assert out.result["best_epoch"] in (1, 2)
    assert out.result["test_accuracy"] > 0.8 and math.isfinite(out.result["test_loss"])
    assert all(torch.isfinite(t).all() for t in out.state_dict.values())


def test_should_stop_cancels_after_that_epoch():
    polls = []

    def stop_after_two():
        polls.append(1)
        return len(polls) >= 2

    out, seen = record(parse_spec({"model": {"hidden": [32]}, "training": {"max_epochs": 10}}),
                       should_stop=stop_after_two)
    assert out.status == "cancelled"
    assert [e for e, _ in seen] == [1, 2]
    assert out.result["epochs_run"] == out.result["stopped_epoch"] == 2
    assert out.result["best_epoch"] in (1, 2)
    assert 0.5 < out.result["test_accuracy"] <= 1 and math.isfinite(out.result["test_loss"])


def test_schedule_drives_the_rate():
    spec = parse_spec({"model": {"hidden": [8]}, "training": {"max_epochs": 4},
                       "optim": {"lr": 0.2, "schedule": {"kind": "inv_sqrt"}}})
    out = train(spec, device="cpu")
    assert [m["lr"] for m in out.metrics] == [lr_at(spec.optim.schedule, 0.2, e, 4)
                                              for e in range(1, 5)]


def test_early_stopping_follows_the_slide():
    spec = parse_spec({"model": {"hidden": [16]}, "optim": {"lr": 0.3},
                       "training": {"max_epochs": 60, "early_stopping": {"patience": 3}}})
    out = train(spec, device="cpu")
    r = out.result
    accs = [m["val_accuracy"] for m in out.metrics]
    assert r["stopped_epoch"] < 60  # it did stop early
    assert r["stopped_epoch"] == r["epochs_run"] == r["best_epoch"] + 3 - 1 == len(accs)
    assert r["best_epoch"] == accs.index(max(accs)) + 1  # first epoch at the maximum


def test_identical_units_stay_identical_and_count_once():
    # COURSE.md §5: units that start equal (incoming and outgoing weights) compute the same
    # function, get the same gradient and stay equal; distinct_units must count them once,
    # through float round-off.
    torch.manual_seed(0)
    model = MLP(64, [8, 4], 10)
    with torch.no_grad():
        model.fc2.weight.fill_(0.05)
        model.fc2.bias.fill_(0.01)
        model.out.weight.fill_(0.05)
    assert distinct_units(model) == [8, 1]
    data = load_dataset(parse_spec({}))
    opt = MomentumSGD(param_groups(model), lr=0.1, momentum=0.9)
    for i in range(0, 640, 32):
        opt.zero_grad()
        F.cross_entropy(model(data.X_train[i:i + 32]), data.y_train[i:i + 32]).backward()
        opt.step()
    assert not torch.equal(model.fc2.weight[0], torch.full((8,), 0.05))  # it did train
    assert distinct_units(model) == [8, 1]


def test_cuda_requested_without_cuda_is_a_clear_error():
    """In a process that sees no GPU (CUDA_VISIBLE_DEVICES empty): so it runs, and means the
    same, on a machine with CUDA too."""
    code = ("from worker.engine.train import resolve_device\n"
            "assert resolve_device('auto').type == 'cpu'\n"
            "resolve_device('cuda')\n")
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=ROOT, timeout=120,
                          capture_output=True, text=True,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 1, done.stderr
    assert "RuntimeError: device 'cuda' requested but CUDA is not available here" in done.stderr
