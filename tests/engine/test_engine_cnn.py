"""The CNN: conv blocks (3×3 conv → batchnorm → activation → 2×2 max-pool → dropout), a linear
head; 2-D convolutions for images, 1-D for signals."""

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from worker.engine import parse_spec, train
from worker.engine.models import CNN, build_model


def test_block_structure_against_plain_torch_ops():
    torch.manual_seed(0)
    model = CNN((1, 8, 8), [4, 6], 10, "tanh").eval()
    assert model.layer_names == ["conv1", "conv2", "out"]
    x = torch.rand(5, 1, 8, 8)
    h = F.max_pool2d(torch.tanh(F.conv2d(x, model.conv1.weight, model.conv1.bias, padding=1)), 2)
    h = F.max_pool2d(torch.tanh(F.conv2d(h, model.conv2.weight, model.conv2.bias, padding=1)), 2)
    assert h.shape == (5, 6, 2, 2) and model.features == 24
    expected = F.linear(h.flatten(1), model.out.weight, model.out.bias)
    torch.testing.assert_close(model(x), expected)
    assert model.conv1.weight.shape == (4, 1, 3, 3)


def test_signals_use_1d_convolutions():
    torch.manual_seed(0)
    model = CNN((1, 40), [8, 8, 8], 10, batchnorm=True)
    assert isinstance(model.conv1, torch.nn.Conv1d)
    assert model.features == 8 * 5  # 40 → 20 → 10 → 5
    logits, acts = model.forward_with_activations(torch.randn(7, 1, 40))
    assert logits.shape == (7, 10)
    assert acts["conv1"].shape == (7, 8, 40) and acts["conv3"].shape == (7, 8, 10)


def test_pooling_stops_at_width_one():
    model = CNN((1, 8, 8), [2, 2, 2, 2, 2], 3)
    assert model.features == 2  # 8 → 4 → 2 → 1, then no more pooling
    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 3)


def test_flat_inputs_are_a_clear_error():
    with pytest.raises(ValueError, match="arch 'mlp'"):
        CNN((2,), [4], 2)
    with pytest.raises(ValidationError, match="cnn"):
        parse_spec({"data": {"dataset": "moons"}, "model": {"arch": "cnn"}})


def test_digits_cnn_trains_with_stable_layer_names():
    spec = parse_spec({"model": {"arch": "cnn", "hidden": [16, 32], "batchnorm": True,
                                 "dropout": {"p_inc_hidden": 0.8}},
                       "training": {"max_epochs": 3}})
    out = train(spec, device="cpu")
    assert out.status == "succeeded" and out.result["test_accuracy"] > 0.9
    keys = set(out.metrics[0])
    assert {"act_std/conv1", "act_std/conv2", "grad_std/conv1", "grad_std/conv2",
            "grad_std/out"} <= keys
    assert out.result["distinct_units"] == [16, 32]
    assert set(out.result["init"]) == {"conv1", "conv2", "out"}
    model = build_model(spec, out.input_shape, 10)
    model.load_state_dict(out.state_dict)  # the saved z* rebuilds from its spec
    assert out.state_dict["conv2.weight"].shape == (32, 16, 3, 3)
