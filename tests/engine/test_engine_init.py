"""COURSE.md §5: initialisation schemes, the bound or std each layer used, symmetry."""

import math

import pytest
import torch
from pydantic import ValidationError
from torch import nn

from worker.engine import parse_spec, train
from worker.engine.init import fans, initialise
from worker.engine.models import CNN, MLP, build_network
from worker.engine.spec import InitSpec

# MLP 64 → 32 → 16 → 10: (fan_in, fan_out) per layer.
FANS = {"fc1": (64, 32), "fc2": (32, 16), "out": (16, 10)}


def mlp_spec(scheme: str, **init) -> dict:
    return {"model": {"hidden": [32, 16], "init": {"scheme": scheme, **init}}}


@pytest.mark.parametrize("scheme, key, formula", [
    ("pytorch", "bound", lambda i, o: 1 / math.sqrt(i)),
    ("xavier_uniform", "bound", lambda i, o: math.sqrt(6) / math.sqrt(i + o)),  # not √(i+o+1)
    ("xavier_normal", "std", lambda i, o: math.sqrt(2 / (i + o))),
    ("kaiming_uniform", "bound", lambda i, o: math.sqrt(6 / i)),  # not the slide's 2/√d
    ("kaiming_normal", "std", lambda i, o: math.sqrt(2 / i)),
])
def test_reported_bound_or_std_follows_the_formula_and_the_draw(scheme, key, formula):
    spec = parse_spec(mlp_spec(scheme))
    net, report = build_network(spec, (1, 8, 8), 10, [3])
    assert list(report) == ["fc1", "fc2", "out"]
    for name, (fan_in, fan_out) in FANS.items():
        assert report[name] == {"scheme": scheme, key: pytest.approx(formula(fan_in, fan_out))}
        w = net.layer(name).weight.detach().double()
        if key == "bound":
            assert w.abs().max() <= report[name]["bound"]
            # U[−b, b]: the largest |w| of hundreds of draws nearly reaches b; std is b/√3.
            assert w.abs().max() > 0.9 * report[name]["bound"]
            assert w.std().item() == pytest.approx(report[name]["bound"] / math.sqrt(3), rel=0.2)
        else:
            assert w.std().item() == pytest.approx(report[name]["std"], rel=0.2)
            assert w.mean().abs().item() < 0.2 * report[name]["std"]


@pytest.mark.parametrize("ours, theirs", [
    ("xavier_uniform", lambda w: nn.init.xavier_uniform_(w)),
    ("xavier_normal", lambda w: nn.init.xavier_normal_(w)),
    ("kaiming_uniform", lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu")),
    ("kaiming_normal", lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu")),
])
@pytest.mark.parametrize("make", [lambda: nn.Linear(40, 24), lambda: nn.Conv2d(3, 8, 3)])
def test_same_generator_state_gives_torch_nn_init_tensor(ours, theirs, make):
    torch.manual_seed(0)
    a, b = make(), make()
    torch.manual_seed(7)
    report = initialise({"layer": a}, InitSpec(scheme=ours))
    torch.manual_seed(7)
    theirs(b.weight.data)
    assert torch.equal(a.weight, b.weight)
    assert torch.equal(a.bias, torch.zeros_like(a.bias))  # biases start at 0 except "pytorch"
    fan_in, fan_out = fans(a.weight)
    assert (fan_in, fan_out) == ((40, 24) if isinstance(a, nn.Linear) else (27, 72))
    assert set(report["layer"]) == {"scheme", "bound" if "uniform" in ours else "std"}


def test_pytorch_scheme_keeps_torch_default_draws():
    spec = parse_spec({"model": {"hidden": [32]}})
    net, report = build_network(spec, (1, 8, 8), 10, [5])
    torch.manual_seed(5)
    plain = MLP(64, [32], 10)
    for k, v in plain.state_dict().items():
        assert torch.equal(net.state_dict()[k], v), k
    assert report["fc1"] == {"scheme": "pytorch", "bound": pytest.approx(1 / 8)}
    assert net.fc1.bias.abs().max() <= 1 / 8 and net.fc1.bias.abs().max() > 0


def test_normal_constant_and_zeros():
    net, report = build_network(parse_spec(mlp_spec("normal", std=0.3)), (64,), 10, [0])
    assert report["fc2"] == {"scheme": "normal", "std": 0.3}
    assert net.fc1.weight.std().item() == pytest.approx(0.3, rel=0.1)
    net, report = build_network(parse_spec(mlp_spec("constant", value=0.05)), (64,), 10, [0])
    assert report["out"] == {"scheme": "constant", "value": 0.05}
    assert torch.all(net.fc2.weight == 0.05) and torch.all(net.fc2.bias == 0)
    net, report = build_network(parse_spec(mlp_spec("zeros")), (64,), 10, [0])
    assert report["fc1"] == {"scheme": "zeros", "value": 0.0}
    assert all(torch.all(p == 0) for p in net.parameters())


def test_cnn_fans_count_the_kernel():
    spec = parse_spec({"model": {"arch": "cnn", "hidden": [8, 16],
                                 "init": {"scheme": "kaiming_uniform"}}})
    net, report = build_network(spec, (1, 8, 8), 10, [0])
    assert isinstance(net, CNN)
    assert report["conv1"]["bound"] == pytest.approx(math.sqrt(6 / (1 * 9)))
    assert report["conv2"]["bound"] == pytest.approx(math.sqrt(6 / (8 * 9)))
    assert report["out"]["bound"] == pytest.approx(math.sqrt(6 / (16 * 2 * 2)))


def test_constant_init_units_stay_identical_forever():
    # COURSE.md §5: every unit of a layer computes the same function, gets the same gradient.
    out = train(parse_spec({**mlp_spec("constant", value=0.05),
                            "training": {"max_epochs": 3}}), device="cpu")
    assert out.result["distinct_units"] == [1, 1]
    assert out.result["init"]["fc1"] == {"scheme": "constant", "value": 0.05}
    w = out.state_dict["fc1.weight"]
    assert not torch.all(w == 0.05)  # it trained
    assert torch.allclose(w, w[0].expand_as(w), atol=1e-6)


def test_random_schemes_give_distinct_units_and_report_in_result():
    out = train(parse_spec({**mlp_spec("xavier_uniform"), "training": {"max_epochs": 1}}),
                device="cpu")
    assert out.result["distinct_units"] == [32, 16]
    assert out.result["init"]["fc2"]["bound"] == pytest.approx(math.sqrt(6 / 48))


def test_unknown_scheme_is_rejected():
    with pytest.raises(ValidationError):
        parse_spec({"model": {"init": {"scheme": "glorot"}}})
