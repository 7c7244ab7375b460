"""Diagnostics: gradient noise against m (COURSE.md §2), decision boundary, step loss."""

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from worker.engine import Callbacks, load_dataset, parse_spec, train
from worker.engine.boundary import GRID, grid_points, wants_boundary
from worker.engine.gradnoise import grad_variance, sizes_for
from worker.engine.models import MLP, build_model


def per_example_variance(model, X, y) -> float:
    """σ² = (1/n) Σ_i ‖∇F_i − ḡ‖², one plain backward per example."""
    grads = []
    for i in range(len(y)):
        model.zero_grad()
        F.cross_entropy(model(X[i:i + 1]), y[i:i + 1]).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    G = torch.stack(grads).double()
    return (G - G.mean(0)).pow(2).sum(1).mean().item()


def test_gradient_variance_falls_as_one_over_m():
    data = load_dataset(parse_spec({}))
    X, y = data.X_train, data.y_train
    n = len(y)
    torch.manual_seed(0)
    model = MLP(64, [32], 10)
    gv = grad_variance(model, X, y, generator=torch.Generator().manual_seed(0), draws=64)
    ms = [int(k.split("=")[1]) for k in gv]
    assert ms == [1, 4, 16, 64, 256]
    # Log-log slope ≈ −1 (least squares over the five sizes).
    lx = torch.tensor([math.log(m) for m in ms])
    ly = torch.tensor([math.log(v.item()) for v in gv.values()])
    slope = (((lx - lx.mean()) * (ly - ly.mean())).sum() / ((lx - lx.mean()) ** 2).sum()).item()
    assert -1.2 < slope < -0.9
    # And the value itself: sampling m of n without replacement, tr Cov = σ²/m · (n−m)/(n−1).
    s2 = per_example_variance(model, X, y)
    for m, v in zip(ms, gv.values(), strict=True):
        assert v.item() == pytest.approx(s2 / m * (n - m) / (n - 1), rel=0.25), m
    assert all(p.grad is not None for p in model.parameters())  # untouched: still ours


def test_gradient_noise_sizes():
    assert sizes_for(1149, batchnorm=False) == [1, 4, 16, 64, 256]
    assert sizes_for(1149, batchnorm=True) == [4, 16, 64, 256]  # one example: β, no noise
    assert sizes_for(100, batchnorm=False) == [1, 4, 16]


def test_grad_noise_in_training_every_few_epochs():
    spec = parse_spec({"model": {"hidden": [16], "batchnorm": True},
                       "diagnostics": {"grad_noise": True}, "training": {"max_epochs": 20}})
    out = train(spec, device="cpu")
    have = [e for e, m in enumerate(out.metrics, start=1) if "grad_var/m=4" in m]
    assert have == [1, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20]  # epoch 1, then every 20 // 10
    m = out.metrics[0]
    assert "grad_var/m=1" not in m
    assert m["grad_var/m=4"] > m["grad_var/m=16"] > m["grad_var/m=64"] > m["grad_var/m=256"] > 0
    off = train(parse_spec({"model": {"hidden": [16]}, "training": {"max_epochs": 2}}),
                device="cpu")
    assert not any(k.startswith("grad_var/") for k in off.metrics[0])


def test_grad_noise_of_an_ensemble_is_member_zeros():
    spec = parse_spec({"model": {"hidden": [16]}, "diagnostics": {"grad_noise": True},
                       "training": {"max_epochs": 1}, "ensemble": {"members": 2}})
    assert train(spec, device="cpu").metrics[0]["grad_var/m=1"] > 0


def record_boundaries(spec):
    seen = []
    out = train(spec, Callbacks(on_boundary=lambda e, g: seen.append((e, g))), device="cpu")
    return out, seen


def test_boundary_grid_for_2d_data():
    spec = parse_spec({"data": {"dataset": "moons"}, "model": {"hidden": [16]},
                       "training": {"max_epochs": 1}})
    out, seen = record_boundaries(spec)
    assert [e for e, _ in seen] == [1]
    grid = seen[0][1]
    assert set(grid) == {"x", "y", "labels", "probs", "probs_of", "points"}
    assert len(grid["x"]) == len(grid["y"]) == GRID
    assert len(grid["labels"]) == GRID and all(len(r) == GRID for r in grid["labels"])
    assert grid["probs_of"] == "class_1"
    # The grid covers the training data with a margin.
    data = load_dataset(spec)
    xs, _ = grid_points(data.X_train)
    assert grid["x"][0] < data.X_train[:, 0].min().item() < data.X_train[:, 0].max().item() < \
        grid["x"][-1]
    assert grid["x"] == pytest.approx(xs.tolist(), abs=1e-5)
    # The training points drawn over the map are real training examples with their labels.
    shown = grid["points"]
    assert 100 <= len(shown["label"]) <= 400
    first = torch.tensor([shown["x"][0], shown["y"][0]])
    assert torch.allclose(first, data.X_train[0], atol=1e-3)
    assert shown["label"][0] == int(data.y_train[0])
    # Row i is y[i], column j is x[j]; after one epoch z* is that model (or the initial one).
    model = build_model(spec, (2,), 2)
    model.load_state_dict(out.state_dict)
    model.eval()
    if out.result["best_epoch"] == 1:
        for i, j in ((0, 0), (10, 50), (59, 3), (30, 30)):
            with torch.no_grad():
                p = torch.softmax(model(torch.tensor([[grid["x"][j], grid["y"][i]]])), -1)[0]
            assert grid["probs"][i][j] == pytest.approx(p[1].item(), abs=1e-3)
            assert grid["labels"][i][j] == int(p.argmax())


def test_boundary_cadence_and_final_epoch():
    spec = parse_spec({"data": {"dataset": "moons"}, "model": {"hidden": [8]},
                       "training": {"max_epochs": 60}, "ensemble": {"members": 2}})
    _, seen = record_boundaries(spec)
    assert [e for e, _ in seen] == [1, *range(2, 61, 2)]
    spec = parse_spec({"data": {"dataset": "moons"}, "model": {"hidden": [8]},
                       "training": {"max_epochs": 7}, "diagnostics": {"boundary": "off"}})
    assert record_boundaries(spec)[1] == []


def test_boundary_only_for_2d_inputs():
    assert wants_boundary("auto", (2,)) and not wants_boundary("auto", (1, 8, 8))
    assert not wants_boundary(False, (2,)) and wants_boundary(True, (2,))
    with pytest.raises(ValueError, match="2-D"):
        wants_boundary("on", (64,))
    with pytest.raises(ValidationError, match="2-D dataset"):
        parse_spec({"diagnostics": {"boundary": "on"}})
    _, seen = record_boundaries(parse_spec({"model": {"hidden": [8]},
                                            "training": {"max_epochs": 1}}))
    assert seen == []  # digits, boundary auto


def test_step_loss_every_n_steps():
    steps = []
    spec = parse_spec({"model": {"hidden": [16]}, "training": {"max_epochs": 2,
                                                               "log_every_steps": 1}})
    out = train(spec, Callbacks(on_step=lambda s, m: steps.append((s, m))), device="cpu")
    n_batches = 1149 // 32
    assert [s for s, _ in steps] == list(range(1, 2 * n_batches + 1))  # global step from 1
    assert set(steps[0][1]) == {"step_loss"}
    for e in range(2):  # the epoch's train_loss is the mean of its minibatch losses
        losses = [m["step_loss"] for _, m in steps[e * n_batches:(e + 1) * n_batches]]
        assert sum(losses) / n_batches == pytest.approx(out.metrics[e]["train_loss"], rel=1e-5)
    steps.clear()
    spec = parse_spec({"model": {"hidden": [16]}, "ensemble": {"members": 2},
                       "training": {"max_epochs": 2, "log_every_steps": 10}})
    train(spec, Callbacks(on_step=lambda s, m: steps.append((s, m))), device="cpu")
    assert [s for s, _ in steps] == [10, 20, 30, 40, 50, 60, 70]
    steps.clear()
    train(parse_spec({"model": {"hidden": [16]}, "training": {"max_epochs": 1}}),
          Callbacks(on_step=lambda s, m: steps.append(s)), device="cpu")
    assert steps == []


def test_default_callbacks_accept_the_new_reports():
    cb = Callbacks()
    cb.on_step(1, {"step_loss": 0.5})
    cb.on_boundary(1, {"x": [], "y": [], "labels": [], "probs": []})


def test_layer_stats_for_an_ensemble():
    spec = parse_spec({"model": {"hidden": [16, 8]}, "training": {"max_epochs": 1},
                       "ensemble": {"members": 3}})
    m = train(spec, device="cpu").metrics[0]
    assert {"act_std/fc1", "act_std/fc2", "grad_std/fc1", "grad_std/out"} <= set(m)
    assert {f"member/{k}/{name}" for k in range(3) for name in ("val_loss", "val_accuracy")} \
        <= set(m)
    assert m["weight_norm"] > 0 and m["examples_per_second"] > 0
