"""optim.sampling (SPEC.md "Version 2"): shuffle's disjoint minibatches against slide 1's SGD,
where each step draws its m indices uniformly from 1..n."""

from __future__ import annotations

import torch

from worker.engine import parse_spec, train
from worker.engine.step import epoch_rows
from worker.engine.train import TIMING_KEYS


def test_shuffle_is_a_permutation_each_epoch() -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        rows = epoch_rows("shuffle", 50, 8, 6, [g])[0]
        assert sorted(rows.tolist()) == list(range(50))  # every row once, no duplicate


def test_with_replacement_draws_each_index_uniformly() -> None:
    n, m, n_b, epochs = 20, 5, 4, 2000
    g = torch.Generator().manual_seed(1)
    counts = torch.zeros(n)
    duplicated_epochs = 0
    for _ in range(epochs):
        rows = epoch_rows("with_replacement", n, m, n_b, [g])[0]
        assert rows.shape == (n_b * m,) and 0 <= rows.min() and rows.max() < n
        counts += torch.bincount(rows, minlength=n)
        duplicated_epochs += len(set(rows.tolist())) < len(rows)
    # Pearson's χ² against uniform, n − 1 = 19 degrees of freedom: the 0.999 quantile is 43.8.
    expected = epochs * n_b * m / n
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 43.8
    # 20 draws from 20 rows repeat one with probability 1 − 20!/20^20 ≈ 1: nearly every epoch.
    assert duplicated_epochs > 0.99 * epochs


def test_each_member_draws_from_its_own_generator() -> None:
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(4)
    rows = epoch_rows("with_replacement", 30, 4, 7, [a, b])
    alone = epoch_rows("with_replacement", 30, 4, 7, [torch.Generator().manual_seed(4)])
    assert rows.shape == (2, 28) and torch.equal(rows[1], alone[0])


def test_a_run_with_replacement_is_reproducible_and_differs_from_shuffle() -> None:
    spec = {"model": {"hidden": [16]}, "training": {"max_epochs": 2},
            "optim": {"sampling": "with_replacement"}}

    def figures(data: dict) -> list[dict]:
        out = train(parse_spec(data), device="cpu")
        return [{k: v for k, v in m.items() if k not in TIMING_KEYS} for m in out.metrics]

    once = figures(spec)
    assert once == figures(spec)
    assert once != figures({**spec, "optim": {"sampling": "shuffle"}})
    assert once[-1]["val_accuracy"] > 0.8
