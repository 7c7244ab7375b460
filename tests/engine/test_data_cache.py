"""Datasets kept on the device across runs (data_cache.py): a second run of the same data and
seed reuses the first one's tensors, and trains exactly as without the cache."""

from __future__ import annotations

import torch

from worker.engine import parse_spec, train
from worker.engine.data_cache import DataCache, splits_bytes
from worker.engine.loop import Callbacks, Stack, make_members, run
from worker.engine.train import TIMING_KEYS

CPU = torch.device("cpu")


def _strip(metrics: list[dict]) -> list[dict]:
    return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in metrics]


def test_a_second_run_reuses_the_cached_tensors_and_trains_the_same() -> None:
    cache = DataCache()
    spec = parse_spec({"model": {"hidden": [16]}, "training": {"max_epochs": 2}, "seed": 5})
    first = Stack([spec], [spec.seed], CPU, None, own_data=False, cache=cache)
    # Another point of a grid study at the same seed: same data, another learning rate.
    other = parse_spec({**spec.model_dump(), "optim": {"lr": 0.05}})
    second = Stack([other], [other.seed], CPU, None, own_data=False, cache=cache)
    assert (cache.loads, cache.hits) == (1, 1)
    assert second.X_train is first.X_train and second.y_test is first.y_test
    # Another seed is another split: loaded on its own.
    third = Stack([parse_spec({"seed": 6})], [6], CPU, None, own_data=False, cache=cache)
    assert cache.loads == 2 and third.X_train is not first.X_train
    assert cache.bytes == splits_bytes(first.splits[0]) + splits_bytes(third.splits[0])


def test_results_with_the_cache_equal_those_without() -> None:
    spec = parse_spec({"model": {"hidden": [16]}, "training": {"max_epochs": 2}, "seed": 2})
    cache = DataCache()
    runs = []
    for _ in range(2):  # the second run trains on the cached tensors
        stack = Stack([spec], [spec.seed], CPU, None, own_data=False, cache=cache)
        members = make_members(stack, [spec], [Callbacks()], stack.start())
        runs.append(run(stack, members)[0])
    assert cache.hits == 1
    plain = Stack([spec], [spec.seed], CPU, None, own_data=False, cache=None)
    assert plain.X_train is not stack.X_train and torch.equal(plain.X_train, stack.X_train)
    alone = train(spec, device="cpu")  # the process cache, a fresh entry or not
    for outcome in runs:
        assert _strip(outcome.metrics) == _strip(alone.metrics)
        assert outcome.result == alone.result
        for name, value in alone.state_dict.items():
            assert torch.equal(outcome.state_dict[name], value), name


def test_the_cache_stays_under_its_bytes_least_recently_used_first() -> None:
    one = splits_bytes(DataCache().splits(parse_spec({"seed": 0}), None, CPU))
    cache = DataCache(max_bytes=2 * one + one // 2)  # room for two digits splits
    for seed in (0, 1, 0, 2):  # 0 is used again before 2 comes: 1 is the one evicted
        cache.splits(parse_spec({"seed": seed}), None, CPU)
    assert len(cache) == 2 and cache.bytes <= cache.max_bytes
    cache.splits(parse_spec({"seed": 0}), None, CPU)
    cache.splits(parse_spec({"seed": 2}), None, CPU)
    assert (cache.loads, cache.hits) == (3, 3)
    cache.splits(parse_spec({"seed": 1}), None, CPU)
    assert cache.loads == 4
    tiny = DataCache(max_bytes=one - 1)  # an entry larger than the cache is not kept
    tiny.splits(parse_spec({}), None, CPU)
    assert len(tiny) == 0 and tiny.bytes == 0


def test_uploaded_folders_are_never_kept(tmp_path) -> None:
    """An upload's files may be replaced under the same id: every run reads them afresh."""
    from tests.engine.test_engine_datasets_more import make_upload

    make_upload(tmp_path)
    cache = DataCache()
    spec = parse_spec({"data": {"dataset": "folder:abc"}, "model": {"arch": "cnn"}})
    first = cache.splits(spec, tmp_path, CPU)
    second = cache.splits(spec, tmp_path, CPU)
    assert (cache.loads, cache.hits, len(cache)) == (2, 0, 0)
    assert torch.equal(first.X_train, second.X_train) and first.X_train is not second.X_train


def test_the_worker_sizes_its_cache_from_the_setting(monkeypatch) -> None:
    from backend.config import get_settings
    from worker.engine.data_cache import DATA_CACHE, DEFAULT_MAX_BYTES
    from worker.tasks import configure_data_cache

    monkeypatch.setattr(DATA_CACHE, "max_bytes", DATA_CACHE.max_bytes)  # restored after
    assert configure_data_cache() == DEFAULT_MAX_BYTES == 256 << 20  # the default: 256 MiB
    monkeypatch.setenv("EPOQUE_DATA_CACHE_MB", "0")
    get_settings.cache_clear()
    assert configure_data_cache() == 0
    cache_off = DataCache(max_bytes=0)  # 0 keeps nothing
    cache_off.splits(parse_spec({}), None, CPU)
    assert len(cache_off) == 0 and cache_off.loads == 1
