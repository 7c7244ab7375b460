"""Datasets: the catalog (one table of facts), their loaders, splits and description.

- ``catalog``: name, kind, input shape, classes and loader of every dataset (no torch, no numpy);
- ``synthetic``: the sets generated from the seed, MNIST-1D and digits;
- ``files``: torchvision's file formats and uploaded folders;
- ``splits``: load, split by seed, normalise with training statistics → ``Splits``;
- ``describe``: what ``/api/datasets`` lists.

The catalog's names are imported here; every other name is imported from its module on first
use (PEP 562), so that the spec, which reads the catalog, costs no numpy, scikit-learn or torch.
"""

from __future__ import annotations

from ..lazy import lazy_names
from .catalog import (
    BUILTIN_DATASETS,
    CATALOG,
    FOLDER_ID,
    FOLDER_IMAGE_SHAPE,
    IMAGE_SHAPES,
    SHAPE_CLASSES,
    SYNTHETIC_DATASETS,
    TWO_D_DATASETS,
    DatasetInfo,
    DatasetUnavailable,
    Kind,
    RawData,
    dataset_info,
    folder_info,
    image_shape,
)

# torchvision may try to download MNIST/FashionMNIST/CIFAR-10 when their files are absent
# (only then, and only if the host answers within a few seconds). The API and the tests turn
# it off here (``worker.engine.datasets.ALLOW_DOWNLOAD = False``); files.py reads it when a
# download would start.
ALLOW_DOWNLOAD = True

_LAZY = {
    "synthetic": ("MNIST1D_CACHE_NAME", "SHAPES_MAX_SAMPLES", "SHAPES_SIZE", "SPIRAL_ARMS",
                  "SPIRAL_TURNS", "render_shapes"),
    "files": ("folder_path",),
    "splits": ("PathLike", "Splits", "derive_seed", "load_dataset", "load_raw", "split_sizes"),
    "describe": ("describe_datasets",),
}
# The spec's models, as the single datasets.py used to import them.
_MODULE_OF = {name: f".{module}" for module, names in _LAZY.items() for name in names} | {
    "DataSpec": "..spec", "Spec": "..spec"}

__all__ = [
    "ALLOW_DOWNLOAD",
    "BUILTIN_DATASETS",
    "CATALOG",
    "FOLDER_ID",
    "FOLDER_IMAGE_SHAPE",
    "IMAGE_SHAPES",
    "MNIST1D_CACHE_NAME",
    "SHAPES_MAX_SAMPLES",
    "SHAPES_SIZE",
    "SHAPE_CLASSES",
    "SPIRAL_ARMS",
    "SPIRAL_TURNS",
    "SYNTHETIC_DATASETS",
    "TWO_D_DATASETS",
    "DatasetInfo",
    "DatasetUnavailable",
    "Kind",
    "PathLike",
    "RawData",
    "Splits",
    "dataset_info",
    "derive_seed",
    "describe_datasets",
    "folder_info",
    "folder_path",
    "image_shape",
    "load_dataset",
    "load_raw",
    "render_shapes",
    "split_sizes",
]


__getattr__ = lazy_names(globals(), _MODULE_OF)
