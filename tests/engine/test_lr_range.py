"""The LR range test (worker/engine/lr_range.py) against hand computations and numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from worker.engine.lr_range import (
    BETA,
    STOP_FACTOR,
    lr_range_test,
    lr_schedule,
    smooth,
    spread,
    suggest,
)
from worker.engine.spec import parse_spec


def test_eta_grows_geometrically_from_start_to_end():
    start, end, steps = 1e-6, 10.0, 100
    lrs = lr_schedule(start, end, steps)
    assert lrs == [start * (end / start) ** (i / (steps - 1)) for i in range(steps)]
    assert lrs[0] == start and lrs[-1] == pytest.approx(end, rel=1e-12)
    ratios = np.array(lrs[1:]) / np.array(lrs[:-1])
    assert ratios == pytest.approx(np.full(steps - 1, (end / start) ** (1 / 99)), rel=1e-12)


def test_smoothing_is_the_bias_corrected_moving_average():
    losses = [2.0, 1.0, 4.0, 3.0]
    # By hand: s_i = Σ_j β^(i−j) (1 − β) ℓ_j / (1 − β^(i+1)).
    b = 0.98
    assert smooth(losses, b)[0] == pytest.approx(2.0)
    assert smooth(losses, b)[1] == pytest.approx((0.98 * 0.02 * 2 + 0.02 * 1) / (1 - 0.98**2))
    expected = [sum(b ** (i - j) * (1 - b) * losses[j] for j in range(i + 1)) / (1 - b ** (i + 1))
                for i in range(4)]
    assert smooth(losses, b) == pytest.approx(expected, rel=1e-12)
    assert BETA == 0.98


def test_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = list(10 ** np.linspace(-6, 1, 71))
    x = np.log10(lrs)
    curve = 2 - np.tanh(x + 3) + 5 * np.maximum(0, x + 1) ** 2  # steepest at 1e-3, min near 1e-1
    found = suggest(lrs, list(curve))
    slopes = np.diff(curve) / np.diff(np.log(lrs))
    best = int(np.argmin(curve))
    first = int(71 * 0.1)
    assert found["suggested_lr"] == lrs[first + int(np.argmin(slopes[first:best]))]
    assert 10 ** -3.15 < found["suggested_lr"] < 10 ** -2.85
    assert found["min_lr"] == lrs[best] and found["alternative_lr"] == lrs[best] / 10
    assert "steepest" in found["rule"] and "one tenth" in found["alternative_rule"]
    # The steepest descent after the minimum (the divergence) is never the suggestion.
    assert found["suggested_lr"] < found["min_lr"]
    assert spread([1e-3, 1e-2, 1e-1])["log10_std"] == pytest.approx(np.std([-3, -2, -1]))


def test_a_sweep_on_digits_stops_once_the_smoothed_loss_passes_four_times_its_minimum():
    spec = parse_spec({"model": {"hidden": [32]}, "optim": {"batch_size": 32}})
    seen = []
    out = lr_range_test(spec, start=1e-4, end=1e3, steps=100,
                        on_step=lambda i, lr, loss, s: seen.append((i, lr, loss, s)))
    n = len(out["lrs"])
    assert out["stopped_early"] and 10 < n < 100
    assert out["lrs"] == lr_schedule(1e-4, 1e3, 100)[:n]
    assert [s[1] for s in seen] == out["lrs"] and [s[2] for s in seen] == out["loss"]
    s = out["smoothed_loss"]
    assert s == pytest.approx(smooth(out["loss"]))
    assert all(s[i] <= STOP_FACTOR * min(s[:i + 1]) for i in range(n - 1))
    assert not math.isfinite(s[-1]) or s[-1] > STOP_FACTOR * min(s)
    assert out["suggested_lr"] < out["min_lr"] and out["seed"] == spec.seed
    # The same seed gives the same sweep; another seed another one.
    assert lr_range_test(spec, start=1e-4, end=1e3, steps=100)["loss"] == out["loss"]
    other = lr_range_test(spec, start=1e-4, end=1e3, steps=100, seed=spec.seed + 1)
    assert other["loss"][:5] != out["loss"][:5]
