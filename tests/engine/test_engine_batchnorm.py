"""COURSE.md §6: our batchnorm against the formula and torch.nn.BatchNorm; full-pass statistics."""

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from worker.engine import load_dataset, parse_spec, train
from worker.engine.layers import BatchNorm, full_pass_statistics
from worker.engine.models import MLP, build_model

EPS, MOMENTUM = 1e-5, 0.1


def test_train_mode_is_the_course_formula_with_the_sum():
    torch.manual_seed(0)
    bn = BatchNorm(5).double()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2)
        bn.bias.normal_()
    a = torch.randn(16, 5, dtype=torch.float64) * 3 + 1
    m = a.shape[0]
    mu = a.sum(0) / m
    sigma = torch.sqrt(EPS + ((a - mu) ** 2).sum(0) / m)  # σ = √(ε + (1/m) Σ (a_i − μ)²)
    expected = bn.weight * (a - mu) / sigma + bn.bias
    torch.testing.assert_close(bn(a), expected)


def paired(ours: nn.Module, ref: nn.Module) -> None:
    with torch.no_grad():
        ref.weight.copy_(torch.rand_like(ref.weight) + 0.5)
        ref.bias.copy_(torch.randn_like(ref.bias))
        ours.weight.copy_(ref.weight)
        ours.bias.copy_(ref.bias)


@pytest.mark.parametrize("shape, ours, ref", [
    ((32, 6), lambda: BatchNorm(6), lambda: nn.BatchNorm1d(6, EPS, MOMENTUM)),
    ((8, 6, 10), lambda: BatchNorm(6, spatial=True), lambda: nn.BatchNorm1d(6, EPS, MOMENTUM)),
    ((8, 6, 5, 5), lambda: BatchNorm(6, spatial=True), lambda: nn.BatchNorm2d(6, EPS, MOMENTUM)),
])
def test_matches_torch_batchnorm_in_train_and_eval(shape, ours, ref):
    torch.manual_seed(1)
    a, b = ours(), ref()
    paired(a, b)
    for step in range(3):  # three training minibatches: outputs, gradients, running stats
        x = (torch.randn(shape) * (step + 1) + step).requires_grad_()
        x2 = x.detach().clone().requires_grad_()
        ya, yb = a(x), b(x2)
        torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
        w = torch.randn(shape)
        (ya * w).sum().backward()
        (yb * w).sum().backward()
        torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.weight.grad, b.weight.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.bias.grad, b.bias.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a.running_mean, b.running_mean)
        torch.testing.assert_close(a.running_var, b.running_var)
    a.eval(), b.eval()
    x = torch.randn(shape)
    torch.testing.assert_close(a(x), b(x), rtol=1e-5, atol=1e-5)


def test_stacked_members_each_match_their_own_batchnorm():
    torch.manual_seed(2)
    k, d, batch = 3, 4, 10
    stacked = BatchNorm(d, members=k)
    refs = [nn.BatchNorm1d(d, EPS, MOMENTUM) for _ in range(k)]
    for i, r in enumerate(refs):
        paired(r, nn.BatchNorm1d(d))
        with torch.no_grad():
            stacked.weight[i].copy_(r.weight)
            stacked.bias[i].copy_(r.bias)
    x = torch.randn(k, batch, d)
    out = stacked(x.transpose(1, 2))  # a stacked MLP's layout: (K, d, B)
    for i, r in enumerate(refs):
        torch.testing.assert_close(out[i].T, r(x[i]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(stacked.running_var[i], r.running_var)


def bn_net(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(64, [16, 8], 10, batchnorm=True)


def test_full_pass_statistics_are_the_training_set_mean_and_variance():
    X = load_dataset(parse_spec({})).X_train
    model = bn_net()
    full_pass_statistics(model, X, chunk=100)  # chunked: the figures must not depend on it
    with torch.no_grad():
        a1 = model.fc1(X.flatten(1)).double()
        torch.testing.assert_close(model.bn1.running_mean.double(), a1.mean(0), rtol=0, atol=1e-5)
        torch.testing.assert_close(model.bn1.running_var.double(), a1.var(0, correction=0),
                                   rtol=1e-5, atol=1e-6)
        # Layer 2 sees layer 1 normalised with the whole set's statistics: exactly one train-mode
        # forward of the whole training set as a single minibatch.
        ref = bn_net()
        for bn in (ref.bn1, ref.bn2):
            bn.update_running = False
        seen = {}

        def keep_input(mod, inp, out) -> None:
            seen["a2"] = inp[0]

        ref.bn2.register_forward_hook(keep_input)
        ref_out = ref(X)
        a2 = seen["a2"].double()
        torch.testing.assert_close(model.bn2.running_mean.double(), a2.mean(0), rtol=0, atol=1e-5)
        torch.testing.assert_close(model.bn2.running_var.double(), a2.var(0, correction=0),
                                   rtol=1e-5, atol=1e-6)
        model.eval()
        torch.testing.assert_close(model(X), ref_out, rtol=1e-4, atol=1e-4)
    assert model.training is False  # left as it was before full_pass_statistics was called
    model.train()
    full_pass_statistics(model, X)
    assert model.training


def test_training_with_full_pass_stores_exact_statistics_for_z_star():
    spec = parse_spec({"model": {"hidden": [16, 8], "batchnorm": True,
                                 "batchnorm_eval": "full_pass"},
                       "training": {"max_epochs": 3}})
    out = train(spec, device="cpu")
    assert out.status == "succeeded" and out.result["test_accuracy"] > 0.8
    model = build_model(spec, out.input_shape, 10)
    model.load_state_dict(out.state_dict)
    saved = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    full_pass_statistics(model, load_dataset(spec).X_train)
    for k, v in saved.items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=1e-4, atol=1e-5)


def test_running_and_full_pass_differ_at_prediction_only():
    base = {"model": {"hidden": [16], "batchnorm": True}, "training": {"max_epochs": 2}}
    run = train(parse_spec(base), device="cpu")
    full = train(parse_spec({**base, "model": {**base["model"], "batchnorm_eval": "full_pass"}}),
                 device="cpu")
    # Same training steps (train mode never uses the prediction statistics) ...
    assert [m["train_loss"] for m in run.metrics] == [m["train_loss"] for m in full.metrics]
    # ... but other statistics for prediction.
    assert not torch.equal(run.state_dict["bn1.running_mean"], full.state_dict["bn1.running_mean"])
    assert set(run.state_dict) >= {"bn1.weight", "bn1.bias", "bn1.running_mean",
                                   "bn1.running_var"}


def test_batchnorm_with_one_example_per_minibatch_is_refused():
    with pytest.raises(ValidationError, match="batch_size of at least 2"):
        parse_spec({"model": {"batchnorm": True}, "optim": {"batch_size": 1}})
    parse_spec({"model": {"batchnorm": True}, "optim": {"batch_size": "full"}})
