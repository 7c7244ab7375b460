"""The dataset catalog is the one table of dataset facts: what its rows say is what the loaders
produce, and what the spec accepts."""

import numpy as np
import pytest
from pydantic import ValidationError

from worker.engine import parse_spec
from worker.engine.datasets import CATALOG, load_raw
from worker.engine.datasets.catalog import dataset_info, image_shape

IN_PROCESS = [name for name, info in CATALOG.items() if not info.from_files]


@pytest.mark.parametrize("name", IN_PROCESS)
def test_a_row_says_what_its_loader_produces(name):
    info = CATALOG[name]
    raw = load_raw(name, seed=3)
    assert raw.X.shape[1:] == info.input_shape and raw.X.dtype == np.float32
    assert set(np.unique(raw.y)) == set(range(len(info.classes)))
    assert len(raw.X) + (0 if raw.X_test is None else len(raw.X_test)) == sum(
        c or 0 for c in info.default_counts)
    assert image_shape(name) == (info.input_shape if info.kind == "image" else None)


def test_the_spec_reads_the_catalog():
    for name, info in CATALOG.items():
        parse_spec({"data": {"dataset": name}})
        if info.synthetic:
            parse_spec({"data": {"dataset": name, "n_samples": 100}})
        else:
            with pytest.raises(ValidationError, match="n_samples applies to synthetic"):
                parse_spec({"data": {"dataset": name, "n_samples": 100}})
        if info.kind == "2d":
            with pytest.raises(ValidationError, match="arch 'cnn' needs images"):
                parse_spec({"data": {"dataset": name}, "model": {"arch": "cnn"}})
            with pytest.raises(ValidationError, match="image datasets only"):
                parse_spec({"data": {"dataset": name}, "augment": [{"op": "random_crop"}]})
        if info.kind == "image":
            parse_spec({"data": {"dataset": name}, "augment": [{"op": "random_crop"}]})
    with pytest.raises(ValidationError, match="unknown dataset"):
        parse_spec({"data": {"dataset": "imagenet"}})


def test_an_uploaded_folder_is_a_row_too():
    info = dataset_info("folder:abc")
    assert info.kind == "image" and info.input_shape == (3, 32, 32) == image_shape("folder:abc")
    with pytest.raises(ValueError, match="not available"):
        dataset_info("imagenet")
