"""Training-health diagnosis: one line per layer that breaks a rule, from the run's per-layer
health series (SPEC.md "Looking inside": update_ratio, dead_fraction, saturation). Pure: series
in, messages out, so the rules can be tested on synthetic series and shown with their text.

A rule fires when the layer's latest recorded value breaks it; "since" is the first epoch of
that unbroken streak. The bounds are the usual rules of thumb: an update:parameter ratio near
10⁻³ (Deeplearning4j's training UI: −3 on a log₁₀ scale), and most units of a layer dead or
saturated meaning the layer has stopped learning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

RATIO_LOW, RATIO_HIGH = 1e-4, 1e-2
DEAD_SHARE = 0.5
SATURATED_SHARE = 0.5
# The series the rules read, by metric key prefix.
HEALTH_PREFIXES = ("update_ratio/", "dead_fraction/", "saturation/")


@dataclass(frozen=True)
class Rule:
    metric: str  # the key's prefix, before "/<layer>"
    text: str  # the rule as shown next to the diagnosis
    broken: Callable[[float], bool]
    message: Callable[[str, float, int], str]  # (layer, latest value, since epoch) → line


def _pct(v: float) -> str:
    # Rounded down, so that 99.6 % does not read as all of them.
    return f"{math.floor(100 * v + 1e-9)} %"


def _ratio_message(layer: str, v: float, since: int) -> str:
    # Below the band is also where a run that has converged (loss near 0) ends: the advice says so.
    where, advice = (("above", "try a smaller η") if v > RATIO_HIGH
                     else ("below", "try a larger η if the loss is still high"))
    bound = -2 if v > RATIO_HIGH else -4
    return (f"{layer}: update ratio 10^{math.log10(v):.1f}, {where} 10^{bound}, since epoch "
            f"{since} — {advice}")


RULES = (
    Rule("dead_fraction", f"dead_fraction > {DEAD_SHARE:g}: most ReLU units never positive on S_v",
         lambda v: v > DEAD_SHARE,
         lambda layer, v, since: (f"{layer}: {_pct(v)} of units dead since epoch {since} — "
                                  "try a smaller η or Kaiming init")),
    Rule("saturation", f"saturation > {SATURATED_SHARE:g}: most tanh/sigmoid outputs past |a| 0.99",
         lambda v: v > SATURATED_SHARE,
         lambda layer, v, since: (f"{layer}: {_pct(v)} of outputs saturated since epoch {since}"
                                  " — try a smaller η, Xavier init or batchnorm")),
    Rule("update_ratio", "10^-4 ≤ update_ratio ≤ 10^-2 (‖Δw‖/‖w‖ of the epoch's last step)",
         lambda v: v > 0 and not RATIO_LOW <= v <= RATIO_HIGH,
         _ratio_message),
)


def diagnose(series: Mapping[str, Sequence[Sequence[Any]]]) -> list[dict[str, Any]]:
    """Each broken rule: {layer, key, rule, since, value, message}, layer by layer in the
    order of ``RULES``. ``series``: {key: [[epoch, value or None], …]} in epoch order; a
    missing value (null: not finite) breaks no rule and ends no streak."""
    out = []
    for rule in RULES:
        for key in sorted(k for k in series if k.startswith(rule.metric + "/")):
            points = [(int(x), float(v)) for x, v in series[key]
                      if v is not None and math.isfinite(v)]
            if not points or not rule.broken(points[-1][1]):
                continue
            since = points[-1][0]
            for x, v in reversed(points):
                if not rule.broken(v):
                    break
                since = x
            layer, value = key.split("/", 1)[1], points[-1][1]
            out.append({"layer": layer, "key": key, "rule": rule.text, "since": since,
                        "value": value, "message": rule.message(layer, value, since)})
    return out


def rules() -> list[dict[str, str]]:
    """The rules as shown: {metric, rule}."""
    return [{"metric": r.metric, "rule": r.text} for r in RULES]
