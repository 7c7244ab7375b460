"""Training-health figures (SPEC.md "Looking inside"): update_ratio, dead_fraction and
saturation, against an independent numpy computation on hand-built networks and on weight
snapshots of real runs."""

import numpy as np
import pytest
import torch

from backend.presets.catalog import BY_ID
from worker.engine import Callbacks, parse_spec, train
from worker.engine.diagnostics import SATURATION_LEVEL
from worker.engine.evaluate import evaluate, evaluate_members
from worker.engine.models import MLP

W1 = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, -1.0], [2.0, 3.0]])
B1 = np.array([0.0, 0.0, -5.0, -1.0])
W2 = np.array([[1.0, -1.0, 0.5, 0.2], [0.3, 0.1, -0.2, 1.0]])


def hand_built(activation: str, scale: float = 1.0, members: int | None = None) -> MLP:
    """2 → 4 → 2 with the weights above (× scale); stacked: member k's first layer × (k + 1)."""
    net = MLP(2, [4], 2, activation, members=members)
    k = members or 1
    w1 = torch.stack([torch.tensor(W1 * scale * (i + 1)) for i in range(k)]).float()
    b1 = torch.stack([torch.tensor(B1 * scale * (i + 1)) for i in range(k)]).float()
    state = {"fc1.weight": w1, "fc1.bias": b1, "out.weight": torch.tensor(W2).float().expand(k, 2, 4),
             "out.bias": torch.zeros(k, 2)}
    net.load_state_dict(state if members else {n: v[0] for n, v in state.items()})
    return net


def points(seed: int = 0, n: int = 300) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    X = rng.uniform([0, -2], [3, 2], size=(n, 2))  # x0 ≥ 0: unit 1 (−x0) is never positive
    return torch.tensor(X).float(), torch.tensor(rng.integers(0, 2, n))


def numpy_layer(X: torch.Tensor, scale: float, activation: str) -> np.ndarray:
    pre = X.double().numpy() @ (W1 * scale).T + B1 * scale
    return {"relu": np.maximum(pre, 0), "leaky_relu": np.where(pre > 0, pre, 0.01 * pre),
            "tanh": np.tanh(pre), "sigmoid": 1 / (1 + np.exp(-pre))}[activation]


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
def test_dead_fraction_is_the_share_of_units_never_positive(activation):
    X, y = points()
    a = numpy_layer(X, 1.0, activation)
    dead = 1 - (a > 0).any(axis=0).mean()
    assert dead == 0.5  # units 1 (−x0 with x0 ≥ 0) and 2 (−x1 − 5 with |x1| ≤ 2)
    out = evaluate(hand_built(activation), X, y, act_stats=True)
    assert out["dead_fraction/fc1"].item() == pytest.approx(dead)
    assert not any(k.startswith("saturation/") for k in out)
    # In chunks: a unit positive on one example only is alive (any chunk).
    few = torch.tensor([[0.0, 0.0]] * 9 + [[3.0, 2.0]])
    lone = evaluate(hand_built(activation), few, torch.zeros(10, dtype=torch.int64),
                    act_stats=True)
    expected = 1 - (numpy_layer(few, 1.0, activation) > 0).any(axis=0).mean()
    assert lone["dead_fraction/fc1"].item() == pytest.approx(expected) == 0.5


@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_saturation_is_the_share_of_outputs_past_the_level(activation):
    X, y = points(1)
    a = numpy_layer(X, 4.0, activation)
    expected = (np.abs(a) > SATURATION_LEVEL).mean()
    assert 0.2 < expected < 0.9  # the figure is not trivially 0 or 1 here
    out = evaluate(hand_built(activation, 4.0), X, y, act_stats=True)
    assert out["saturation/fc1"].item() == pytest.approx(expected)
    assert not any(k.startswith("dead_fraction/") for k in out)


def test_stacked_members_pooled_in_an_ensemble_and_each_their_own_in_a_pack():
    X, y = points(2)
    per_member = [(np.abs(numpy_layer(X, 1.5 * (k + 1), "tanh")) > SATURATION_LEVEL).mean()
                  for k in range(2)]
    net = hand_built("tanh", 1.5, members=2)
    pooled = evaluate(net, X, y, act_stats=True)["saturation/fc1"].item()
    assert pooled == pytest.approx(np.mean(per_member))
    own = evaluate_members(net, X.expand(2, -1, -1), y.expand(2, -1), act_stats=True)
    assert own["saturation/fc1"].tolist() == pytest.approx(per_member)


def weights_each_epoch(spec) -> tuple[list[dict[str, torch.Tensor]], list[dict[str, float]]]:
    snaps = []
    out = train(spec, Callbacks(on_checkpoint=lambda e, snap: snaps.append(snap()["model"])),
                device="cpu")
    return snaps, out.metrics


@pytest.mark.parametrize("members", [1, 2])
def test_update_ratio_is_the_last_steps_relative_change(members):
    # Full batch: one update per epoch, so the last step's Δw is the change between epochs.
    spec = parse_spec({"model": {"hidden": [16, 8]}, "ensemble": {"members": members},
                       "optim": {"batch_size": "full", "lr": 0.3, "momentum": 0.9},
                       "training": {"max_epochs": 3}})
    snaps, metrics = weights_each_epoch(spec)
    for epoch in (2, 3):
        for layer in ("fc1", "fc2", "out"):
            w0 = snaps[epoch - 2][f"{layer}.weight"].double().reshape(members, -1).numpy()
            w1 = snaps[epoch - 1][f"{layer}.weight"].double().reshape(members, -1).numpy()
            ratios = np.linalg.norm(w1 - w0, axis=1) / np.linalg.norm(w0, axis=1)
            got = metrics[epoch - 1][f"update_ratio/{layer}"]
            assert got == pytest.approx(ratios.mean(), rel=1e-4), (epoch, layer)


def test_update_ratio_of_the_last_of_several_steps():
    """Minibatches: the figure is the epoch's last update only, not the epoch's whole change."""
    spec = parse_spec({"model": {"hidden": [16]}, "optim": {"batch_size": 64, "lr": 0.1},
                       "training": {"max_epochs": 2}})
    snaps, metrics = weights_each_epoch(spec)
    w0, w1 = (s["fc1.weight"].double().numpy() for s in snaps)
    whole_epoch = np.linalg.norm(w1 - w0) / np.linalg.norm(w0)
    assert 0 < metrics[1]["update_ratio/fc1"] < whole_epoch / 3


def test_no_health_figures_without_layer_stats():
    spec = parse_spec({"model": {"hidden": [8]}, "diagnostics": {"layer_stats": False},
                       "training": {"max_epochs": 1}})
    keys = train(spec, device="cpu").metrics[0]
    assert not [k for k in keys if k.split("/")[0] in
                ("update_ratio", "dead_fraction", "saturation")]


def lesson5(scheme: str, **model) -> dict:
    base = BY_ID["initialisation"]["study"]["base"]
    spec = {**base, "model": {**base["model"], **model, "init": {"scheme": scheme}},
            "training": {"max_epochs": 8}}
    return spec


def test_constant_init_kills_units_and_kaiming_does_not():
    # Lesson 5's preset uses tanh; ReLU is where units die, so both runs use it here.
    dead = parse_spec(lesson5("constant", activation="relu"))
    alive = parse_spec(lesson5("kaiming_uniform", activation="relu"))
    for m in train(dead, device="cpu").metrics:
        assert all(m[f"dead_fraction/fc{i}"] > 0.5 for i in range(1, 6))
    for m in train(alive, device="cpu").metrics:
        assert all(m[f"dead_fraction/fc{i}"] < 0.5 for i in range(1, 6))


def returned_epoch(result: dict) -> int:
    """The epoch of the returned model: result.kept is best (z*) or last (result.final)."""
    return result["best" if result["kept"] == "best" else "final"]["epoch"]


def confusions_of(spec, **cb):
    seen = {}
    out = train(spec, Callbacks(on_confusion=lambda e, m: seen.__setitem__(e, m), **cb),
                device="cpu")
    return out, seen


def sklearn_confusion(spec, state: dict, classes: int) -> np.ndarray:
    """The returned model's predictions on S_v, rebuilt from the spec as the engine splits it."""
    from sklearn.metrics import confusion_matrix

    from worker.engine import load_dataset
    from worker.engine.ensemble import probabilities
    from worker.engine.models import build_model

    data = load_dataset(spec)
    model = build_model(spec, data.input_shape, classes)
    model.load_state_dict(state)
    model.eval()
    pred = probabilities(model, data.X_val).argmax(1)
    return confusion_matrix(data.y_val.numpy(), pred.numpy(), labels=list(range(classes)))


@pytest.mark.parametrize("extra", [{}, {"ensemble": {"members": 3}}])
def test_confusion_each_epoch_matches_sklearn_on_the_returned_model(extra):
    spec = parse_spec({"model": {"hidden": [16]}, "training": {"max_epochs": 4}, **extra})
    out, seen = confusions_of(spec)
    assert sorted(seen) == [0, 1, 2, 3, 4]  # z0's too: a run may return it (best epoch 0)
    epoch = returned_epoch(out.result)
    expected = sklearn_confusion(spec, out.state_dict, len(out.classes))
    assert seen[epoch] == expected.tolist()
    for e, matrix in seen.items():  # every epoch: its accuracy is the trace's share
        if e == 0:
            assert np.sum(matrix) == expected.sum()  # every validation example, once
            continue
        acc = np.trace(np.array(matrix)) / np.sum(matrix)
        assert acc == pytest.approx(out.metrics[e - 1]["val_accuracy"]), e


def test_pack_members_each_their_own_confusion():
    from worker.engine.pack import train_pack

    specs = [parse_spec({"model": {"hidden": [16]}, "training": {"max_epochs": 2}, "seed": s})
             for s in (1, 2)]
    seen = [{}, {}]
    outs = train_pack(specs, [Callbacks(on_confusion=lambda e, m, d=d: d.__setitem__(e, m))
                              for d in seen])
    for spec, out, mine in zip(specs, outs, seen):
        epoch = returned_epoch(out.result)
        assert mine[epoch] == sklearn_confusion(spec, out.state_dict, len(out.classes)).tolist()
    assert seen[0][2] != seen[1][2]  # each on its own split and network


def test_pack_members_health_figures_are_their_own():
    """A pack member's figures are those of its run trained alone (per member, not pooled)."""
    from worker.engine.pack import train_pack

    specs = [parse_spec({"model": {"hidden": [32, 16]}, "training": {"max_epochs": 2},
                         "seed": s}) for s in (3, 4)]
    packed = train_pack(specs)
    keys = ["update_ratio/fc1", "update_ratio/out", "dead_fraction/fc1", "dead_fraction/fc2"]
    alone = [train(s, device="cpu").metrics for s in specs]
    for out, solo in zip(packed, alone):
        for key in keys:
            assert [m[key] for m in out.metrics] == pytest.approx(
                [m[key] for m in solo], rel=1e-3), key
    assert packed[0].metrics[1]["update_ratio/fc1"] != packed[1].metrics[1]["update_ratio/fc1"]


def test_cnn_units_are_channels_and_members_their_own_blocks():
    """A CNN unit is a channel (every position of its map); stacked members' channels are
    blocks of the stacked layer: each member's own dead share, against F.conv2d directly."""
    import torch.nn.functional as F

    from worker.engine.models import CNN

    X = torch.rand(50, 1, 4, 4, generator=torch.Generator().manual_seed(0))  # pixels ≥ 0
    y = torch.zeros(50, dtype=torch.int64)
    kernels = [torch.stack([torch.ones(1, 3, 3), -torch.ones(1, 3, 3), torch.zeros(1, 3, 3)]),
               torch.stack([torch.ones(1, 3, 3), torch.ones(1, 3, 3), -torch.ones(1, 3, 3)])]
    biases = [torch.tensor([0.0, 0.0, -1.0]), torch.tensor([0.0, 0.1, 0.0])]
    expected = []
    for w, b in zip(kernels, biases):
        a = F.relu(F.conv2d(X, w, b, padding=1))
        expected.append(1 - (a > 0).any(0).any(-1).any(-1).double().mean().item())
    assert expected == pytest.approx([2 / 3, 1 / 3])
    net = CNN((1, 4, 4), [3], 2, members=2)
    state = net.state_dict()
    state["conv1.weight"], state["conv1.bias"] = torch.stack(kernels), torch.stack(biases)
    net.load_state_dict(state)
    own = evaluate_members(net, X.expand(2, *X.shape), y.expand(2, -1), act_stats=True)
    assert own["dead_fraction/conv1"].tolist() == pytest.approx(expected)
    pooled = evaluate(net, X, y, act_stats=True)["dead_fraction/conv1"].item()
    assert pooled == pytest.approx(sum(expected) / 2)
    single = CNN((1, 4, 4), [3], 2)
    single.load_state_dict({k: v[0] for k, v in state.items()})
    assert evaluate(single, X, y, act_stats=True)["dead_fraction/conv1"].item() == \
        pytest.approx(expected[0])


def test_cell_examples_with_their_spread_across_members_or_masks():
    from worker.engine import load_dataset
    from worker.engine.examples import cell_examples
    from worker.engine.models import build_model

    def returned(spec):
        out = train(spec, device="cpu")
        net = build_model(spec, out.input_shape, len(out.classes))
        net.load_state_dict(out.state_dict)
        return net

    ensemble = parse_spec({"model": {"hidden": [16]}, "ensemble": {"members": 3},
                           "training": {"max_epochs": 2}})
    net = returned(ensemble)
    found = cell_examples(net, ensemble, true=4, pred=None, limit=6)
    X_val = load_dataset(ensemble).X_val
    assert len(found) == 6 and all(e["label"] == 4 for e in found)
    for e in found:
        members = torch.stack([net.member(k).eval()(X_val[e["index"]][None]).softmax(-1)[0]
                               for k in range(3)]).detach().double().numpy()
        assert e["spread"] == pytest.approx(members.std(0).tolist(), abs=1e-6)
        assert e["probabilities"] == pytest.approx(members.mean(0).tolist(), abs=1e-6)
        assert e["png"].startswith(b"\x89PNG")
    dropout = parse_spec({"model": {"hidden": [16], "dropout": {
        "p_inc_hidden": 0.5, "inference": "mc", "mc_samples": 8}}, "training": {"max_epochs": 1}})
    masks = cell_examples(returned(dropout), dropout, true=None, pred=None, limit=3)
    assert all(len(e["spread"]) == 10 and max(e["spread"]) > 0 for e in masks)
    plain = parse_spec({"model": {"hidden": [8]}, "data": {"dataset": "moons"},
                        "training": {"max_epochs": 1}})
    points = cell_examples(returned(plain), plain, true=None, pred=None, limit=2)
    assert [(e["spread"], e["png"]) for e in points] == [(None, None)] * 2  # 2-D: no image
    X_moons = load_dataset(plain).X_val
    assert [e["input"] for e in points] == [X_moons[e["index"]].tolist() for e in points]
    assert all(len(e["input"]) == 2 for e in points) and found[0]["input"] is None
