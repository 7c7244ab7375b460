"""COURSE.md §7: L2 as (λ/2)‖w‖² on weights only, in the course's SGD and in Adam."""

import math

import pytest
import torch
import torch.nn.functional as F

from worker.engine import parse_spec, train
from worker.engine.models import CNN, MLP
from worker.engine.optim import MomentumSGD, build_optimizer, param_groups
from worker.engine.spec import OptimSpec

LAM, ETA, ALPHA = 0.3, 0.1, 0.9


def tiny(seed: int = 0) -> tuple[MLP, torch.Tensor, torch.Tensor]:
    torch.manual_seed(seed)
    return MLP(4, [3], 2), torch.randn(8, 4), torch.randint(0, 2, (8,))


def loss_grads(model, X, y) -> dict[str, torch.Tensor]:
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    return {n: p.grad.clone() for n, p in model.named_parameters()}


def test_sgd_weight_step_is_hand_math_and_biases_ignore_lambda():
    model, X, y = tiny()
    opt = MomentumSGD(param_groups(model, LAM), lr=ETA, momentum=ALPHA)
    z0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    # t = 1: v = −η (g + λ w) for weights, −η g for biases.
    g1 = loss_grads(model, X, y)
    opt.step()
    v1 = {}
    for n, p in model.named_parameters():
        decay = LAM * z0[n] if n.endswith("weight") else 0
        v1[n] = -ETA * (g1[n] + decay)
        torch.testing.assert_close(p.detach(), z0[n] + v1[n])
        torch.testing.assert_close(p.grad, g1[n])  # .grad keeps the loss gradient
    # t = 2: v = α v − η (g + λ w).
    z1 = {n: p.detach().clone() for n, p in model.named_parameters()}
    g2 = loss_grads(model, X, y)
    opt.step()
    for n, p in model.named_parameters():
        decay = LAM * z1[n] if n.endswith("weight") else 0
        torch.testing.assert_close(p.detach(), z1[n] + ALPHA * v1[n] - ETA * (g2[n] + decay))


def test_lambda_changes_weights_only():
    runs = {}
    for lam in (0.0, LAM):
        model, X, y = tiny()
        opt = MomentumSGD(param_groups(model, lam), lr=ETA, momentum=ALPHA)
        loss_grads(model, X, y)
        opt.step()
        runs[lam] = dict(model.named_parameters())
    a, b = runs[0.0], runs[LAM]
    assert torch.equal(a["fc1.bias"], b["fc1.bias"]) and torch.equal(a["out.bias"], b["out.bias"])
    model, _, _ = tiny()
    for n in ("fc1.weight", "out.weight"):  # the difference is exactly −η λ w0
        torch.testing.assert_close(b[n] - a[n], -ETA * LAM * getattr(model, n.split(".")[0]).weight)


def test_adam_step_is_hand_math_with_coupled_l2_on_weights_only():
    model, X, y = tiny()
    opt = build_optimizer(OptimSpec(method="adam", lr=0.01, weight_decay=LAM), model)
    assert isinstance(opt, torch.optim.Adam)
    assert [(g["kind"], g["weight_decay"]) for g in opt.param_groups] == [
        ("weights", LAM), ("biases", 0.0)]
    z0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    g = loss_grads(model, X, y)
    opt.step()
    # First Adam step: m̂ = g', v̂ = g'², step = −η g' / (|g'| + ε), with g' = g + λ w (weights).
    for n, p in model.named_parameters():
        gp = g[n] + (LAM * z0[n] if n.endswith("weight") else 0)
        torch.testing.assert_close(p.detach(), z0[n] - 0.01 * gp / (gp.abs() + 1e-8))


def test_groups_exclude_biases_and_batchnorm_whatever_their_shape():
    cnn = CNN((1, 8, 8), [4], 10, batchnorm=True)
    groups = param_groups(cnn, 0.1)
    names = {id(p): n for n, p in cnn.named_parameters()}
    assert sorted(names[id(p)] for p in groups[0]["params"]) == ["conv1.weight", "out.weight"]
    # No conv bias before batchnorm; γ, β are in the undecayed group.
    assert sorted(names[id(p)] for p in groups[1]["params"]) == [
        "bn1.bias", "bn1.weight", "out.bias"]
    # A stacked ensemble's biases are (K, out) matrices: still biases.
    stacked = MLP(64, [8], 10, members=3, batchnorm=True)
    groups = param_groups(stacked, 0.1)
    names = {id(p): n for n, p in stacked.named_parameters()}
    assert sorted(names[id(p)] for p in groups[0]["params"]) == ["fc1.weight", "out.weight"]
    assert groups[1]["weight_decay"] == 0.0


def test_weight_decay_shrinks_the_weight_norm_in_training():
    def final_norm(lam: float) -> tuple[float, dict]:
        out = train(parse_spec({"model": {"hidden": [32]}, "training": {"max_epochs": 4},
                                "optim": {"weight_decay": lam}}), device="cpu")
        # ‖w‖ of z*, the model whose state is returned.
        return out.metrics[out.result["best_epoch"] - 1]["weight_norm"], out.state_dict

    n0, _ = final_norm(0.0)
    n1, s1 = final_norm(0.01)
    assert n1 < 0.9 * n0
    w = [s1[k] for k in ("fc1.weight", "out.weight")]
    assert n1 == pytest.approx(math.sqrt(sum((x * x).sum().item() for x in w)), rel=1e-5)


def test_adam_trains_digits():
    out = train(parse_spec({"model": {"hidden": [64]}, "training": {"max_epochs": 5},
                            "optim": {"method": "adam", "lr": 0.003}}), device="cpu")
    assert out.status == "succeeded" and out.result["test_accuracy"] > 0.9
