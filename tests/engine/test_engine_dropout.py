"""COURSE.md §8: dropout with inclusion probabilities; inference by B (scale) and A (masks)."""

import math

import pytest
import torch
from torch import nn

from worker.engine import parse_spec, train
from worker.engine.ensemble import mc_dropout, member_log_probs
from worker.engine.layers import Dropout
from worker.engine.models import MLP


def test_masks_keep_p_inc_of_the_units_and_scale_them():
    drop = Dropout(0.8)
    drop.generator = torch.Generator().manual_seed(0)
    x = torch.rand(200_000) + 0.5
    y = drop(x)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(0.8, abs=0.005)
    torch.testing.assert_close(y[kept], x[kept] / 0.8)
    drop.eval()
    assert torch.equal(drop(x), x)  # strategy B: every unit, unscaled


def test_expected_activation_equals_the_full_network():
    # Averaged over many masks, a layer fed dropped-out inputs gives the no-dropout activation.
    torch.manual_seed(0)
    model = MLP(6, [5], 3, p_inc_input=0.8, p_inc_hidden=0.5).double()
    model.set_dropout(generator=torch.Generator().manual_seed(1))
    x = torch.randn(4, 6, dtype=torch.float64)
    masks = 200_000
    with torch.no_grad():
        xs = x.repeat(masks, 1)
        pre = model.fc1(model.drop_in(xs)).reshape(masks, 4, 5).mean(0)
        torch.testing.assert_close(pre, model.fc1(x), rtol=0, atol=0.01)
        h = torch.relu(model.fc1(x))
        logits = model.out(model.drop1(h.repeat(masks, 1))).reshape(masks, 4, 3).mean(0)
        torch.testing.assert_close(logits, model.out(h), rtol=0, atol=0.01)


def test_strategy_b_is_the_course_weight_scaling():
    # A net trained the course's way (masks, no 1/p scaling) predicts with weights × p_inc;
    # ours scales by 1/p in training and predicts unscaled: the same function of the weights.
    torch.manual_seed(0)
    p, w = 0.5, torch.randn(3, 5, dtype=torch.float64)
    h = torch.rand(5, dtype=torch.float64)
    masks = torch.bernoulli(torch.full((100_000, 5), p, dtype=torch.float64))
    course_mean = ((masks * h) @ w.T).mean(0)  # course: E[W (m ⊙ h)] = (p W) h
    torch.testing.assert_close(course_mean, (p * w) @ h, rtol=0, atol=0.02)
    ours_mean = ((masks * h / p) @ w.T).mean(0)  # ours: E[W (m ⊙ h / p)] = W h
    torch.testing.assert_close(ours_mean * p, course_mean)


def test_more_masks_bring_strategy_a_closer_to_its_limit():
    # A's estimate with K masks scatters around the K → ∞ prediction by ∝ 1/K (in squared
    # distance): the trend the lab plots as accuracy against the number of masks.
    torch.manual_seed(0)
    model = MLP(8, [32], 4, p_inc_input=0.8, p_inc_hidden=0.5).eval()
    x = torch.randn(16, 8)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        limit = member_log_probs(model, x, mc_samples=20_000, generator=gen).exp()[0]
        scale = torch.softmax(model(x), -1)
        dist = {}
        for k in (1, 4, 16, 64):
            d = [(member_log_probs(model, x, mc_samples=k, generator=gen).exp()[0] - limit)
                 .pow(2).sum().item() for _ in range(30)]
            dist[k] = sum(d) / len(d)
    slope = (math.log(dist[64]) - math.log(dist[1])) / math.log(64)
    assert -1.25 < slope < -0.75, dist
    # The limit is close to B's prediction, not equal to it (softmax is not linear).
    assert (limit - scale).abs().max() < 0.05
    assert model.training is False
    with mc_dropout(model, gen):  # masks on in eval mode, then back off
        assert not torch.equal(model(x), model(x))
    assert torch.equal(model(x), model(x))


def small(**dropout) -> dict:
    return {"model": {"hidden": [64], "dropout": dropout}, "training": {"max_epochs": 3}}


def test_training_reports_both_inferences():
    out = train(parse_spec(small(p_inc_input=0.8, p_inc_hidden=0.5, mc_samples=10)),
                device="cpu")
    r = out.result
    assert set(r["dropout"]) == {"inference", "scale", "mc", "mc_samples", "mc_curve"}
    assert r["dropout"]["mc_samples"] == 10 and r["dropout"]["inference"] == "scale"
    assert r["test_accuracy"] == r["dropout"]["scale"]
    assert r["test_accuracy_mc"] == r["dropout"]["mc"]
    assert r["test_accuracy"] > 0.85 and r["test_accuracy_mc"] > 0.85
    mc = train(parse_spec(small(p_inc_input=0.8, p_inc_hidden=0.5, mc_samples=10,
                                inference="mc")), device="cpu").result
    assert mc["test_accuracy"] == mc["dropout"]["mc"] == r["dropout"]["mc"]
    assert mc["dropout"]["scale"] == r["dropout"]["scale"]


def test_dropout_runs_are_reproducible_and_leave_the_global_rng_alone():
    spec = parse_spec(small(p_inc_hidden=0.5))
    state = torch.get_rng_state()
    a = train(spec, device="cpu")
    assert torch.equal(torch.get_rng_state(), state)
    b = train(spec, device="cpu")
    assert [m["train_loss"] for m in a.metrics] == [m["train_loss"] for m in b.metrics]
    assert a.result["test_accuracy_mc"] == b.result["test_accuracy_mc"]
    plain = train(parse_spec(small()), device="cpu")
    assert plain.result["dropout"] is None and plain.result["test_accuracy_mc"] is None
    assert plain.metrics[0]["train_loss"] != a.metrics[0]["train_loss"]
    # Dropout has no parameters: the state dict is the plain network's.
    assert set(a.state_dict) == set(plain.state_dict)


def test_p_inc_one_adds_no_layer():
    model = MLP(4, [3], 2, p_inc_input=1.0, p_inc_hidden=1.0)
    assert not any(isinstance(m, Dropout) for m in model.modules())
    assert isinstance(MLP(4, [3], 2, p_inc_hidden=0.5).drop1, nn.Module)


def test_each_ensemble_member_draws_its_own_masks():
    # Identical members fed the same input still get different masks (input and hidden).
    torch.manual_seed(0)
    single = MLP(6, [5], 3, p_inc_input=0.5, p_inc_hidden=0.5)
    stacked = MLP(6, [5], 3, p_inc_input=0.5, p_inc_hidden=0.5, members=2)
    stacked.load_state_dict({k: torch.stack([v, v]) for k, v in single.state_dict().items()})
    x = torch.randn(4, 6)
    stacked.eval()
    torch.testing.assert_close(stacked(x)[0], stacked(x)[1])  # B: the same network twice
    with mc_dropout(stacked, torch.Generator().manual_seed(0)):
        out = stacked(x)
    assert not torch.allclose(out[0], out[1])


def test_strategy_a_against_the_number_of_masks_approaches_b():
    """COURSE.md §8: A (average of masks) against the number of masks, next to B (scaling)."""
    from worker.engine import parse_spec, train

    spec = parse_spec({"model": {"hidden": [64], "dropout": {"p_inc_hidden": 0.5,
                                                             "mc_samples": 200}},
                       "training": {"max_epochs": 8}})
    result = train(spec, device="cpu").result["dropout"]
    curve = result["mc_curve"]
    assert [k for k, _ in curve] == [1, 2, 3, 5, 10, 20, 50, 100, 200]
    assert all(0 <= acc <= 1 for _, acc in curve)
    # One mask is a noisy thinned network; many masks average out to (nearly) the full one.
    assert abs(curve[-1][1] - result["scale"]) < abs(curve[0][1] - result["scale"]) + 1e-9
    assert abs(curve[-1][1] - result["scale"]) <= 0.02
