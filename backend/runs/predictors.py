"""Trained models kept loaded for ``/predict``: building one from its stored bytes took 0.9 s
for every call. Bounded: at most EPOQUE_PREDICTOR_CACHE models, and none whose stored size
exceeds its share of the cache (CACHE_BYTES); the least recently used goes first."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the predictor needs torch: imported on the first build, not at API start
    from worker.engine.predict import Predictor

# All cached models' stored bytes together stay under this (a model's memory is about its
# stored size); a model larger than CACHE_BYTES / entries is built per call and not kept.
CACHE_BYTES = 1024 * 2**20

Key = tuple[int, datetime]  # (run id, when its model was stored): a new model is a new key


class PredictorCache:
    def __init__(self) -> None:
        self._entries: OrderedDict[Key, tuple[Predictor, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.builds = 0  # models built from bytes, for the lab's own checks

    def get(self, key: Key, size: int, load: Callable[[], bytes], entries: int) -> Predictor:
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                return hit[0]
        from worker.engine.predict import Predictor

        predictor = Predictor.from_bytes(load())
        with self._lock:
            self.builds += 1
            if entries > 0 and size <= CACHE_BYTES // entries:
                self._entries[key] = (predictor, size)
                while len(self._entries) > entries:
                    self._entries.popitem(last=False)
        return predictor

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


predictors = PredictorCache()
