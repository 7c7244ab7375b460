"""The training-health diagnosis rules (backend/runs/health.py) on synthetic series."""

from __future__ import annotations

import math

from backend.runs.health import diagnose, rules


def test_dead_units_since_the_streak_began():
    series = {"dead_fraction/fc1": [[1, 0.2], [2, 0.6], [3, 0.4], [4, 0.55], [5, 0.73]],
              "dead_fraction/fc2": [[1, 0.9], [2, 0.9], [3, 0.1]]}  # recovered: no line
    [line] = diagnose(series)
    assert line["layer"] == "fc1" and line["since"] == 4 and line["value"] == 0.73
    assert line["message"] == ("fc1: 73 % of units dead since epoch 4 — try a smaller η or "
                               "Kaiming init")
    assert line["rule"].startswith("dead_fraction > 0.5")


def test_exactly_half_is_not_most():
    assert diagnose({"dead_fraction/fc1": [[1, 0.5]], "saturation/fc1": [[1, 0.5]]}) == []


def test_saturation():
    [line] = diagnose({"saturation/conv2": [[1, 0.7], [2, 0.8]]})
    assert line["since"] == 1 and line["message"].startswith("conv2: 80 % of outputs saturated")
    [almost] = diagnose({"saturation/fc1": [[1, 0.996]]})
    assert almost["message"].startswith("fc1: 99 % of outputs")  # not "100 %": not all


def test_update_ratio_outside_the_band_either_way():
    series = {"update_ratio/fc1": [[1, 0.05], [2, 0.02]],
              "update_ratio/fc2": [[1, 1e-3], [2, 2e-5]],
              "update_ratio/out": [[1, 1e-2], [2, 1e-4]]}  # on the bounds: inside
    lines = {d["layer"]: d for d in diagnose(series)}
    assert set(lines) == {"fc1", "fc2"}
    assert lines["fc1"]["since"] == 1 and "above 10^-2" in lines["fc1"]["message"]
    assert "10^-1.7" in lines["fc1"]["message"] and "smaller η" in lines["fc1"]["message"]
    assert lines["fc2"]["since"] == 2 and "below 10^-4" in lines["fc2"]["message"]
    assert "larger η" in lines["fc2"]["message"]


def test_missing_values_break_nothing():
    series = {"update_ratio/fc1": [[1, 0.5], [2, None]], "dead_fraction/fc1": [[1, math.nan]],
              "update_ratio/fc2": [[1, 0.0]], "act_std/fc1": [[1, 99.0]]}
    # fc1's latest known ratio (epoch 1) still breaks the rule; a ratio of 0 (‖w‖ = 0) is
    # not measured, and other series are not read.
    assert [d["key"] for d in diagnose(series)] == ["update_ratio/fc1"]


def test_rules_are_listed_with_their_text():
    assert {r["metric"] for r in rules()} == {"dead_fraction", "saturation", "update_ratio"}
    assert any("10^-4 ≤ update_ratio ≤ 10^-2" in r["rule"] for r in rules())
