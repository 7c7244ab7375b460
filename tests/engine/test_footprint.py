"""The memory estimate against what torch really builds and holds: parameter counts of the
networks models.py builds, activation sizes of a real forward pass, the dataset's tensors."""

import math

import pytest
import torch

from worker.engine import load_dataset, parse_spec
from worker.engine.datasets import dataset_info
from worker.engine.footprint import estimate_bytes, parameter_count
from worker.engine.models import build_network

SPECS = {
    "digits MLP": {},
    "digits MLP, batchnorm, 3 members, adam": {
        "model": {"hidden": [50, 20, 7], "batchnorm": True}, "ensemble": {"members": 3},
        "optim": {"method": "adam", "batch_size": 16}},
    "moons MLP, 200 samples, full batch": {
        "data": {"dataset": "moons", "n_samples": 200}, "model": {"hidden": [16]},
        "optim": {"batch_size": "full"}},
    "shapes CNN": {"data": {"dataset": "shapes"}, "model": {"arch": "cnn", "hidden": [8, 16]}},
    "digits CNN, batchnorm, 2 members, pooling down to 1": {
        "model": {"arch": "cnn", "hidden": [4, 6, 8, 5], "batchnorm": True},
        "ensemble": {"members": 2}},
    "mnist1d 1-D CNN": {"data": {"dataset": "mnist1d"}, "model": {"arch": "cnn", "hidden": [12]}},
}


def _network(spec):
    info = dataset_info(spec.data.dataset)
    k = spec.ensemble.members
    model, _ = build_network(spec, info.input_shape, len(info.classes), list(range(k)))
    return model, info


@pytest.mark.parametrize("name", SPECS)
def test_parameters_are_torchs(name):
    spec = parse_spec(SPECS[name])
    model, _ = _network(spec)
    est = estimate_bytes(spec)
    assert est["parameters"] == parameter_count(spec)
    assert est["parameters"] * est["members"] == sum(p.numel() for p in model.parameters())
    buffers = 1 if spec.optim.method == "sgd" else 2
    assert est["model"] == sum(p.numel() for p in model.parameters()) * 4 * (2 + buffers)


@pytest.mark.parametrize("name", SPECS)
def test_activations_and_data_are_the_tensors_training_holds(name):
    spec = parse_spec(SPECS[name])
    splits = load_dataset(spec)
    est = estimate_bytes(spec)
    tensors = [splits.X_train, splits.X_val, splits.X_test, splits.y_train, splits.y_val,
               splits.y_test]
    assert est["data"] == sum(t.numel() * t.element_size() for t in tensors)

    model, _ = _network(spec)
    m = len(splits.y_train) if spec.optim.batch_size == "full" else spec.optim.batch_size
    x = splits.X_train[:m]
    with torch.no_grad():
        logits, acts = model.forward_with_activations(x)
    k = spec.ensemble.members
    values = x.numel() * k + logits.numel() + sum(a.numel() for a in acts.values())
    assert est["activations"] == values * 4
    assert est["total"] == est["model"] + est["activations"] + est["data"]


def test_an_uploaded_folder_needs_its_size_and_classes():
    spec = parse_spec({"data": {"dataset": "folder:pets"}})
    with pytest.raises(ValueError, match="n_classes"):
        estimate_bytes(spec)
    with pytest.raises(ValueError, match="n_examples"):
        estimate_bytes(spec, n_classes=2)
    est = estimate_bytes(spec, n_examples=100, n_classes=2)
    assert est["data"] == 100 * (math.prod((3, 32, 32)) * 4 + 8)
