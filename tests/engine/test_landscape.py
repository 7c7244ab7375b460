"""The loss landscape (worker/engine/landscape.py): filter-normalised directions, the path's
projection against numpy's least squares on the full vectors, and the centre value against
the returned model's training loss recomputed with plain torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from worker.engine import load_dataset, parse_spec, train
from worker.engine.landscape import (
    direction_names,
    filter_normalise,
    landscape,
    path_sketch,
    project_path,
    raw_directions,
)
from worker.engine.loop import Callbacks
from worker.engine.models import build_model


def trained(spec_data: dict) -> tuple[object, torch.nn.Module, list[tuple[int, list]]]:
    spec = parse_spec(spec_data)
    states: list[tuple[int, dict]] = []
    out = train(spec, Callbacks(on_weights=lambda e, w: states.append(
        (e, {k: v.clone() for k, v in w().items()}))), device="cpu")
    net = build_model(spec, out.input_shape, len(out.classes))
    net.load_state_dict(out.state_dict)
    return out, net, states


def flat(state: dict, names: list[str]) -> np.ndarray:
    return np.concatenate([state[k].double().flatten().numpy() for k in names])


def test_directions_are_filter_normalised_and_leave_biases_and_batchnorm_alone():
    spec = {"model": {"arch": "cnn", "hidden": [4, 6], "batchnorm": True}, "training": {"max_epochs": 1}}
    _, net, _ = trained(spec)
    centre = net.state_dict()
    names = direction_names(centre)
    assert names == [k for k, v in centre.items() if k.endswith("weight") and v.dim() >= 2]
    assert all(centre[k].dim() == 1 for k in centre if k not in names and centre[k].dim())
    for raw in raw_directions(centre, 0):
        d = filter_normalise(centre, raw)
        assert set(d) == set(names)
        for k in names:  # each filter / neuron row has the norm of z*'s row
            rows = centre[k].double().flatten(1).norm(dim=1)
            assert d[k].flatten(1).norm(dim=1) == pytest.approx(rows.tolist(), rel=1e-10)
            assert d[k].shape == centre[k].shape
    a, b = raw_directions(centre, 0), raw_directions(centre, 0)
    assert all(torch.equal(a[0][k], b[0][k]) for k in names)  # drawn again from the seed


def test_path_projection_is_least_squares_on_the_plane():
    _, net, states = trained({"model": {"hidden": [12, 8]}, "training": {"max_epochs": 4}})
    centre = {k: v.clone() for k, v in net.state_dict().items()}
    names = direction_names(centre)
    raw = raw_directions(centre, 0)
    d1, d2 = (filter_normalise(centre, r) for r in raw)
    # A point on the plane projects to its own coordinates; z* to the origin.
    on_plane = {k: centre[k] + (0.3 * d1[k] - 0.7 * d2[k]).float() for k in names}
    got = project_path(centre, raw, [path_sketch(on_plane, raw), path_sketch(centre, raw)])
    assert got[0] == pytest.approx([0.3, -0.7], abs=1e-5)
    assert got[1] == pytest.approx([0.0, 0.0], abs=1e-9)
    # Every epoch's weights: numpy's least squares on the full vectors.
    A = np.stack([flat(d1, names), flat(d2, names)], axis=1)
    sketches = [path_sketch(s, raw) for _, s in states]
    for (_, state), point in zip(states, project_path(centre, raw, sketches), strict=True):
        expected = np.linalg.lstsq(A, flat(state, names) - flat(centre, names), rcond=None)[0]
        assert point == pytest.approx(expected.tolist(), rel=1e-6, abs=1e-9)


def test_centre_is_the_returned_models_training_loss_and_the_path_reaches_it():
    spec = parse_spec({"model": {"hidden": [16]}, "training": {"max_epochs": 5}})
    out, net, states = trained(spec.model_dump())
    data = load_dataset(spec)
    with torch.no_grad():  # independent: plain torch on S_t, eval mode
        expected = F.cross_entropy(net.eval()(data.X_train), data.y_train).item()
    raw = raw_directions(net.state_dict(), spec.seed)
    sketches = [(e, path_sketch(s, raw)) for e, s in states]
    progress: list[float] = []
    found = landscape(net, spec.seed, data.X_train, data.y_train, resolution=5,
                      sketches=sketches, on_progress=progress.append)
    assert found["centre_loss"] == pytest.approx(expected, rel=1e-6)
    assert found["alphas"][2] == 0 == found["betas"][2] and len(found["loss"]) == 5
    assert all(len(row) == 5 for row in found["loss"])
    assert progress == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert found["path_epochs"] == [e for e, _ in states] == list(range(6))
    kept = out.result["best"]["epoch"] if out.result["kept"] == "best" else out.result["final"]["epoch"]
    assert found["path"][kept] == pytest.approx([0, 0], abs=1e-6)  # z* is the centre
    assert found["path"][0] != pytest.approx([0, 0], abs=1e-3)  # z0 is not
    reach = max(abs(v) for p in found["path"] for v in p)
    assert found["alphas"][-1] == pytest.approx(max(1.0, 1.1 * reach))
    # One corner of the grid, recomputed by hand.
    d1, d2 = (filter_normalise(net.state_dict(), r) for r in raw)
    moved = build_model(spec, out.input_shape, len(out.classes))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    a, b = found["alphas"][0], found["betas"][4]
    for k in d1:
        state[k] = state[k] + (a * d1[k] + b * d2[k]).float()
    moved.load_state_dict(state)
    with torch.no_grad():
        corner = F.cross_entropy(moved.eval()(data.X_train), data.y_train).item()
    assert found["loss"][4][0] == pytest.approx(corner, rel=1e-5)
    assert net.state_dict()["fc1.weight"].equal(out.state_dict["fc1.weight"])  # put back
