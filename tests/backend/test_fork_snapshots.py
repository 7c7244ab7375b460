"""Which epochs a run keeps snapshots of for forks, within its byte budget."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from backend.runs.snapshots import snapshot_epochs


def test_every_epoch_when_they_all_fit() -> None:
    assert snapshot_epochs(50, 1000, 50_000) == frozenset(range(1, 51))
    assert snapshot_epochs(50, 1000, 10**9) == frozenset(range(1, 51))


@pytest.mark.parametrize(("epochs", "slots"), [(300, 40), (10_000, 64), (1000, 12), (100, 99)])
def test_a_long_run_keeps_powers_of_two_and_an_even_spacing_within_the_budget(
        epochs: int, slots: int) -> None:
    kept = snapshot_epochs(epochs, 1000, slots * 1000 + 999)
    assert len(kept) <= slots
    assert {1, 2, 4, 8, 16} <= kept
    assert max(kept) <= epochs and min(kept) >= 1
    # replay from the nearest kept epoch below costs at most the spacing
    powers = epochs.bit_length()
    stride = math.ceil(epochs / (slots - powers))
    gaps = [b - a for a, b in pairwise(sorted(kept))]
    assert max(gaps) <= stride and epochs - max(kept) < stride


def test_too_small_a_budget() -> None:
    assert snapshot_epochs(300, 1000, 999) == frozenset()  # not even one
    assert snapshot_epochs(300, 1000, 3000) == frozenset({1, 2, 4})  # the earliest powers
    assert snapshot_epochs(300, 0, 0) == frozenset()
