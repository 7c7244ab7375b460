"""Datasets kept on the device across the runs of one worker process, so that the runs of a
study pay loading, splitting and the host-to-device copy once.

A run's tensors depend on its data spec and its seed (synthetic sets are generated from it;
every split is drawn from it) and on the folder the files come from, so the key is (data spec,
seed, data root, device): the points of a grid study at one seed share one entry; a seed study's
runs are one entry per seed, reused by every other grid point at that seed (and by the runs of
a pack, which each load their own). Entries are evicted least recently used first to stay under
``max_bytes`` (the device bytes of their tensors); an entry larger than that is not kept.
Uploaded ``folder:`` datasets are never kept: an upload's files may be replaced under the same
id, and a stale copy would train on what is no longer there.

The cached tensors are shared by every run that gets them: the engine only reads its data
(minibatches are ``index_select`` copies, augmentation returns new tensors).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import replace
from os import PathLike
from pathlib import Path

import torch

from .datasets import Splits, load_dataset
from .datasets.catalog import is_folder
from .spec import Spec

DEFAULT_MAX_BYTES = 256 << 20
_TENSORS = ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test")


def splits_bytes(d: Splits) -> int:
    return sum(getattr(d, name).numel() * getattr(d, name).element_size() for name in _TENSORS)


class DataCache:
    """``splits(spec, data_root, device)``: ``load_dataset(spec, data_root)`` with its tensors
    on ``device``, loaded and copied once per key. ``loads`` counts the loads (and copies),
    ``hits`` the answers from the cache."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.loads = self.hits = 0
        self._entries: OrderedDict[tuple, tuple[Splits, int]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(spec: Spec, data_root: PathLike | str | None, device: torch.device) -> tuple:
        root = None if data_root is None else str(Path(data_root).expanduser().resolve())
        return (json.dumps(spec.data.model_dump(mode="json"), sort_keys=True), spec.seed, root,
                str(device))

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def splits(self, spec: Spec, data_root: PathLike | str | None,
               device: torch.device) -> Splits:
        cacheable = not is_folder(spec.data.dataset) and self.max_bytes > 0
        key = self.key(spec, data_root, device)
        if cacheable:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                    self.hits += 1
                    return entry[0]
        loaded = load_dataset(spec, data_root)
        on_device = replace(loaded, **{name: getattr(loaded, name).to(device)
                                       for name in _TENSORS})
        self.loads += 1
        size = splits_bytes(on_device)
        if cacheable and size <= self.max_bytes:
            with self._lock:
                self._entries[key] = (on_device, size)
                self._entries.move_to_end(key)
                while self.bytes > self.max_bytes:
                    self._entries.popitem(last=False)
        return on_device


# The worker process's cache (worker/tasks.py sets its size from EPOQUE_DATA_CACHE_MB).
DATA_CACHE = DataCache()

