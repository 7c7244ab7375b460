import numpy as np
import torch

from worker.engine import describe_datasets, load_dataset, parse_spec


def test_digits_split_sizes_shapes_and_scale():
    d = load_dataset(parse_spec({}))
    # 1797 examples: 20 % test first (360), then 20 % of the remaining 1437 for S_v (288).
    assert d.sizes() == {"train": 1149, "val": 288, "test": 360}
    assert d.input_shape == (1, 8, 8) and d.kind == "image"
    assert d.classes == [str(i) for i in range(10)]
    assert d.X_train.shape == (1149, 1, 8, 8) and d.X_train.dtype == torch.float32
    assert d.y_train.dtype == torch.int64
    for X in (d.X_train, d.X_val, d.X_test):
        assert X.min() >= 0 and X.max() <= 1
    assert d.X_train.max() == 1  # 16/16 occurs: pixels scaled, not standardised


def test_splits_partition_the_data_and_are_stratified():
    from sklearn.datasets import load_digits

    d = load_dataset(parse_spec({}))
    # Together the three parts are exactly the 1797 digits, each once (as a multiset of rows).
    raw = load_digits()
    original = sorted(tuple(r) + (int(c),) for r, c in zip((raw.data / 16).tolist(), raw.target, strict=True))
    parts = sorted(
        tuple(r) + (int(c),)
        for X, y in ((d.X_train, d.y_train), (d.X_val, d.y_val), (d.X_test, d.y_test))
        for r, c in zip(X.flatten(1).double().tolist(), y.tolist(), strict=True)
    )
    assert len(parts) == len(original)
    assert np.allclose(np.array(parts), np.array(original))
    for y in (d.y_train, d.y_val, d.y_test):
        share = torch.bincount(y, minlength=10).double() / len(y)
        assert share.min() > 0.08 and share.max() < 0.12  # every class ≈ 10 %


def test_split_follows_the_seed():
    a = load_dataset(parse_spec({"seed": 1}))
    b = load_dataset(parse_spec({"seed": 1}))
    c = load_dataset(parse_spec({"seed": 2}))
    assert torch.equal(a.X_train, b.X_train) and torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.X_train, c.X_train)


def test_moons_is_standardised_with_training_statistics():
    d = load_dataset(parse_spec({"data": {"dataset": "moons", "n_samples": 500, "noise": 0.1}}))
    assert d.kind == "2d" and d.input_shape == (2,) and d.classes == ["0", "1"]
    assert sum(d.sizes().values()) == 500
    assert d.X_train.mean(0).abs().max() < 1e-5
    assert (d.X_train.std(0, unbiased=False) - 1).abs().max() < 1e-4
    # S_v and the test set use the training mean/std, so they are only roughly standard.
    assert d.X_val.mean(0).abs().max() > 1e-5


def test_moons_noise_and_seed_change_the_points():
    base = {"dataset": "moons", "n_samples": 200}
    a = load_dataset(parse_spec({"data": {**base, "noise": 0.0}}))
    b = load_dataset(parse_spec({"data": {**base, "noise": 0.3}}))
    c = load_dataset(parse_spec({"seed": 5, "data": {**base, "noise": 0.0}}))
    assert not torch.equal(a.X_train, b.X_train)
    assert not torch.equal(a.X_train, c.X_train)


def test_describe_datasets():
    info = {d["name"]: d for d in describe_datasets()}
    assert {"digits", "moons"} <= set(info)  # the full list: test_engine_datasets_more.py
    assert info["digits"]["input_shape"] == [1, 8, 8]
    assert info["digits"]["sizes"] == {"train": 1149, "val": 288, "test": 360}
    assert info["moons"]["kind"] == "2d" and np.sum(list(info["moons"]["sizes"].values())) == 1000
