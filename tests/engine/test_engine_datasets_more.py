"""The datasets beyond digits and moons: synthetic 2-D sets, shapes, MNIST-1D, torchvision's
MNIST / Fashion-MNIST / CIFAR-10 read from small files in their real formats, uploaded
folders, and describe_datasets()."""

import gzip
import pickle
import random
import struct

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from worker.engine import datasets as ds
from worker.engine import describe_datasets, load_dataset, parse_spec
from worker.engine.datasets import files, synthetic
from worker.engine.datasets.catalog import BUILTIN_DATASETS


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    monkeypatch.setattr(ds, "ALLOW_DOWNLOAD", False)


def spec(dataset, seed=0, **data):
    return parse_spec({"seed": seed, "data": {"dataset": dataset, **data}})


# --- 2-D sets --------------------------------------------------------------------------------


@pytest.mark.parametrize("name,n_classes", [("circles", 2), ("spirals", 3), ("xor", 2)])
def test_2d_sets_are_standardised_balanced_and_seeded(name, n_classes):
    d = load_dataset(spec(name, n_samples=600, noise=0.1))
    assert d.kind == "2d" and d.input_shape == (2,) and len(d.classes) == n_classes
    assert d.sizes() == ds.split_sizes(600, None, 0.2, 0.2)
    assert d.X_train.mean(0).abs().max() < 1e-5
    assert (d.X_train.std(0, unbiased=False) - 1).abs().max() < 1e-4
    counts = torch.bincount(torch.cat([d.y_train, d.y_val, d.y_test]), minlength=n_classes)
    assert counts.max() - counts.min() <= 1
    again = load_dataset(spec(name, n_samples=600, noise=0.1))
    assert torch.equal(d.X_train, again.X_train)
    assert not torch.equal(d.X_train, load_dataset(spec(name, seed=1, n_samples=600, noise=0.1)).X_train)
    assert not torch.equal(d.X_train, load_dataset(spec(name, n_samples=600, noise=0.3)).X_train)


def test_xor_labels_follow_the_quadrants():
    raw = ds.load_raw(ds.DataSpec(dataset="xor", noise=0.05))
    x, y = raw.X[:, 0], raw.X[:, 1]
    assert ((np.sign(x) != np.sign(y)).astype(int) == raw.y).mean() > 0.99


def test_spirals_arms_wind_around_the_centre():
    raw = ds.load_raw(ds.DataSpec(dataset="spirals", noise=0.0))
    r = np.hypot(raw.X[:, 0], raw.X[:, 1])
    assert r.max() <= 1.0 + 1e-6 and np.bincount(raw.y).tolist() == [334, 333, 333]
    # Without noise, the angle of an arm's point is fixed by its radius: arms never cross.
    t = (r - 0.05) / 0.95
    theta = np.arctan2(raw.X[:, 1], raw.X[:, 0])
    expected = 2 * np.pi * raw.y / 3 + 2 * np.pi * 1.25 * t
    assert np.allclose(np.cos(theta - expected), 1, atol=1e-4)


# --- shapes ----------------------------------------------------------------------------------


def test_shapes_images_classes_and_determinism():
    d = load_dataset(spec("shapes", n_samples=600))
    assert d.kind == "image" and d.input_shape == (3, 16, 16)
    assert d.classes == ["circle", "square", "triangle", "cross", "arrow_left", "arrow_right"]
    assert d.X_train.shape[1:] == (3, 16, 16) and d.sizes() == ds.split_sizes(600, None, 0.2, 0.2)
    assert d.X_train.min() >= 0 and d.X_train.max() <= 1
    assert torch.equal(d.X_train, load_dataset(spec("shapes", n_samples=600)).X_train)
    assert not torch.equal(d.X_train, load_dataset(spec("shapes", seed=3, n_samples=600)).X_train)
    y = torch.cat([d.y_train, d.y_val, d.y_test])
    assert torch.bincount(y).tolist() == [100] * 6


def test_a_flipped_left_arrow_is_a_right_arrow():
    """The harmful-flip pair is real: mirroring a left arrow gives exactly the right arrow
    drawn at the mirrored position; the other shapes stay themselves."""
    rng = np.random.default_rng(0)
    n = 50
    s = ds.SHAPES_SIZE
    radius = rng.uniform(3.5, 7.0, n)
    cx = np.round(rng.uniform(radius - 0.5, s - 0.5 - radius) * 4) / 4
    cy = np.round(rng.uniform(radius - 0.5, s - 0.5 - radius) * 4) / 4
    fg, bg = rng.uniform(0, 1, (n, 3)), rng.uniform(0, 1, (n, 3))

    def draw(name, x):
        labels = np.full(n, ds.SHAPE_CLASSES.index(name))
        return ds.render_shapes(labels, x, cy, radius, fg, bg)

    mirrored = (s - 1) - cx
    left = draw("arrow_left", cx)
    assert np.array_equal(left[..., ::-1], draw("arrow_right", mirrored))
    assert not np.allclose(left, draw("arrow_right", cx))  # and it is not a right arrow as is
    for name in ("circle", "square", "triangle", "cross"):
        assert np.array_equal(draw(name, cx)[..., ::-1], draw(name, mirrored))
    # A vertical flip, though, turns the triangle upside down: no triangle looks like that.
    tri = draw("triangle", cx)
    assert not np.allclose(tri[..., ::-1, :], draw("triangle", cx))


# --- MNIST-1D --------------------------------------------------------------------------------


def test_mnist1d_official_split_generated_offline(monkeypatch, tmp_path):
    # Generating must never go to the network (mnist1d's get_dataset would download).
    import requests

    def no_network(*a, **k):
        raise AssertionError("mnist1d tried the network")

    monkeypatch.setattr(requests, "get", no_network)
    synthetic._mnist1d_generated.cache_clear()
    synthetic._mnist1d_arrays.cache_clear()
    np_state, py_state = np.random.get_state(), random.getstate()

    d = load_dataset(spec("mnist1d"), data_root=tmp_path)
    assert d.kind == "signal" and d.input_shape == (1, 40) and d.X_train.shape[1:] == (1, 40)
    # The official 4000 / 1000 split; S_v carved from the 4000 (test_fraction is ignored).
    assert d.sizes() == {"train": 3200, "val": 800, "test": 1000}
    assert load_dataset(spec("mnist1d", test_fraction=0.5), data_root=tmp_path).sizes()["test"] == 1000
    # The global RNGs make_dataset seeds are put back.
    assert np.array_equal(np.random.get_state()[1], np_state[1]) and random.getstate() == py_state

    # Cached as .npz under the data root, and read back from there by a fresh process.
    cached = tmp_path / "mnist1d" / ds.MNIST1D_CACHE_NAME
    assert cached.is_file()
    synthetic._mnist1d_arrays.cache_clear()
    monkeypatch.setattr(synthetic, "_mnist1d_generated", no_network)
    again = load_dataset(spec("mnist1d"), data_root=tmp_path)
    assert torch.equal(d.X_test, again.X_test) and torch.equal(d.y_train, again.y_train)


# --- torchvision sets from files in their real formats ---------------------------------------


def write_idx(path, array, gz):
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | array.ndim) + b"".join(
        struct.pack(">I", s) for s in array.shape
    )
    data = header + array.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def make_mnist(root, folder="MNIST", n_train=50, n_test=20, gz_train=True):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = {k: rng.integers(0, 256, (n, 28, 28)) for k, n in (("train", n_train), ("t10k", n_test))}
    labels = {k: np.arange(len(v)) % 10 for k, v in images.items()}
    for k in ("train", "t10k"):
        gz = gz_train and k == "train"  # both forms: .gz (train) and uncompressed (test)
        write_idx(raw / f"{k}-images-idx3-ubyte", images[k], gz)
        write_idx(raw / f"{k}-labels-idx1-ubyte", labels[k], gz)
    return images, labels


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_family_from_idx_files(tmp_path, name, folder):
    images, labels = make_mnist(tmp_path, folder)
    d = load_dataset(spec(name), data_root=tmp_path)
    assert d.kind == "image" and d.input_shape == (1, 28, 28)
    assert d.X_train.dtype == torch.float32 and d.X_train.shape[1:] == (1, 28, 28)
    # The official test split is the t10k files, in order; S_v carved from the training files.
    assert d.sizes() == {"train": 40, "val": 10, "test": 20}
    assert torch.allclose(d.X_test[:, 0], torch.from_numpy(images["t10k"] / 255).float())
    assert torch.equal(d.y_test, torch.from_numpy(labels["t10k"]).long())
    # Every training image is one of the files' images, scaled to [0, 1].
    train_rows = {tuple(r) for r in images["train"].reshape(50, -1).tolist()}
    got = {
        tuple(r) for X in (d.X_train, d.X_val) for r in (X * 255).round().long().flatten(1).tolist()
    }
    assert got == train_rows
    assert len(d.classes) == 10
    info = {e["name"]: e for e in describe_datasets(tmp_path)}[name]
    assert info["available"] and info["sizes"] == d.sizes()


def test_cifar10_from_pickles_without_the_md5_check(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batches = {}
    for i, name in enumerate([*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]):
        data = rng.integers(0, 256, (4, 3 * 32 * 32), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(4)]
        batches[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "data": data, "labels": labels}, f)
    names = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": 4}, f)

    d = load_dataset(spec("cifar10"), data_root=tmp_path)
    assert d.input_shape == (3, 32, 32) and d.classes == names
    assert d.sizes() == {"train": 16, "val": 4, "test": 4}
    # CIFAR rows are channel-major 3×32×32: the test images come back exactly in CHW order.
    test_data, test_labels = batches["test_batch"]
    expected = torch.from_numpy(test_data.reshape(4, 3, 32, 32) / 255).float()
    assert torch.allclose(d.X_test, expected) and d.y_test.tolist() == test_labels
    info = {e["name"]: e for e in describe_datasets(tmp_path)}["cifar10"]
    assert info["available"] and info["sizes"] == d.sizes() and info["classes"] == names


def test_missing_torchvision_files_give_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ds.DatasetUnavailable, match=r"train-images-idx3-ubyte.*MNIST/raw/"):
        load_dataset(spec("mnist"), data_root=tmp_path)
    with pytest.raises(ds.DatasetUnavailable, match=r"cifar-10-batches-py"):
        load_dataset(spec("cifar10"), data_root=tmp_path)
    with pytest.raises(ds.DatasetUnavailable, match=r"data folder"):
        load_dataset(spec("fashion_mnist"))
    # With downloads allowed: an unreachable host, or a failing download, says so.
    monkeypatch.setattr(ds, "ALLOW_DOWNLOAD", True)
    monkeypatch.setattr(files, "_reachable", lambda host, timeout=3.0: False)
    with pytest.raises(ds.DatasetUnavailable, match=r"cannot be reached"):
        load_dataset(spec("mnist"), data_root=tmp_path)
    import torchvision

    def fail(self):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    monkeypatch.setattr(files, "_reachable", lambda host, timeout=3.0: True)
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", fail)
    with pytest.raises(ds.DatasetUnavailable, match=r"downloading them failed: Error downloading"):
        load_dataset(spec("mnist"), data_root=tmp_path)


# --- uploaded folders ------------------------------------------------------------------------


def make_upload(root, ident="abc", classes=("cat", "dog"), per_class=5):
    base = root / "uploads" / ident
    rng = np.random.default_rng(0)
    for c in classes:
        (base / c).mkdir(parents=True)
        for i in range(per_class):
            size = (20 + 7 * i, 40 - 3 * i)  # various sizes, all resized to 32×32
            mode = "L" if i % 2 else "RGB"
            arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(arr).convert(mode).save(base / c / f"{i}.png")
    (base / classes[0] / "notes.txt").write_text("not an image")  # skipped, as ImageFolder does
    return base


def test_folder_dataset(tmp_path):
    make_upload(tmp_path)
    d = load_dataset(spec("folder:abc"), data_root=tmp_path)
    assert d.kind == "image" and d.input_shape == (3, 32, 32) and d.classes == ["cat", "dog"]
    assert d.X_train.shape[1:] == (3, 32, 32) and sum(d.sizes().values()) == 10
    assert d.X_train.min() >= 0 and d.X_train.max() <= 1
    # Grey images become RGB with three equal channels.
    assert any(torch.equal(x[0], x[1]) and torch.equal(x[1], x[2]) for x in d.X_train)
    assert "folder:abc" not in {e["name"] for e in describe_datasets(tmp_path)}  # opt-in
    info = {e["name"]: e for e in describe_datasets(tmp_path, uploads=True)}["folder:abc"]
    assert info["available"] and info["classes"] == ["cat", "dog"] and info["sizes"] == d.sizes()


def test_folder_dataset_errors(tmp_path):
    with pytest.raises(ValidationError, match="folder:<uploaded-dataset-id>"):
        spec("folder:../etc")
    with pytest.raises(ds.DatasetUnavailable, match="no folder"):
        load_dataset(spec("folder:nothere"), data_root=tmp_path)
    with pytest.raises(ds.DatasetUnavailable, match="data folder"):
        load_dataset(spec("folder:abc"))
    make_upload(tmp_path, "one", classes=("only",))
    with pytest.raises(ds.DatasetUnavailable, match="two class folders"):
        load_dataset(spec("folder:one"), data_root=tmp_path)
    info = {e["name"]: e for e in describe_datasets(tmp_path, uploads=True)}["folder:one"]
    assert not info["available"] and info["reason"]


# --- describe_datasets -----------------------------------------------------------------------


def test_describe_lists_every_builtin_and_matches_load_sizes(tmp_path):
    info = {e["name"]: e for e in describe_datasets(tmp_path)}
    assert set(BUILTIN_DATASETS) == set(info)
    for name in ("mnist", "fashion_mnist", "cifar10"):
        assert info[name]["available"] is False and info[name]["sizes"] is None
        assert str(tmp_path) in info[name]["reason"]
    for name in ("digits", "mnist1d", "moons", "circles", "spirals", "xor", "shapes"):
        e = info[name]
        assert e["available"] and e["description"]
        d = load_dataset(spec(name))
        assert e["sizes"] == d.sizes(), name
        assert e["input_shape"] == list(d.input_shape) and e["classes"] == d.classes
        assert e["kind"] == d.kind


def test_describe_sees_new_files(tmp_path):
    # No wall-clock limit here (a busy machine would fail it): describe's speed is not a test.
    describe_datasets(tmp_path)
    assert not {e["name"]: e for e in describe_datasets(tmp_path)}["mnist"]["available"]
    make_mnist(tmp_path)
    assert {e["name"]: e for e in describe_datasets(tmp_path)}["mnist"]["available"]
