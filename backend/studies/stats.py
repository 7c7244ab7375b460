"""Seed statistics of a study (SPEC.md "Seeds and significance"): per grid point the mean and a
95 % t interval of one result figure over seeds, and for each pair of points a t-test with a
verdict in words. Pure: numbers in, plain dicts out; the distributions are scipy.stats's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8  # the usual 80 % chance of seeing a difference that is really there


def describe(values: Sequence[float]) -> dict[str, Any]:
    """n, mean, sample std (n − 1) and the 95 % interval of the mean from the t distribution;
    std and the interval are None below two values (nothing to say about spread)."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "ci95": None}
    mean = float(x.mean())
    if n < 2:
        return {"n": 1, "mean": mean, "std": None, "ci95": None}
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half]}


MAX_SEEDS = 100_000  # beyond this "about N seeds" says nothing useful: None


def t_power(n: int, sd: float, d: float, paired: bool) -> float:
    """Power of the two-sided t-test at 5 % with ``n`` seeds per point to see a true
    difference ``d`` when the spread is ``sd``: P(|T| > t₀.₉₇₅) for T noncentral t.
    Paired: df = n − 1, noncentrality d/(s_d/√n) with s_d the sd of per-seed differences;
    unpaired (equal n, common sd s, which Welch's test has too when the variances are equal):
    df = 2n − 2, noncentrality d/(s·√(2/n))."""
    df = n - 1 if paired else 2 * n - 2
    ncp = abs(d) / (sd / math.sqrt(n)) if paired else abs(d) / (sd * math.sqrt(2 / n))
    crit = float(stats.t.ppf(1 - ALPHA / 2, df))
    return float(stats.nct.sf(crit, df, ncp) + stats.nct.cdf(-crit, df, ncp))


def seeds_needed(sd: float, d: float, paired: bool) -> int | None:
    """About how many seeds per point a two-sided t-test at 5 % needs to see a difference
    ``d`` with 80 % power, given the observed spread ``sd`` (paired: of the per-seed
    differences; else the two points' pooled sd): the smallest n whose ``t_power`` reaches
    80 %, the standard calculation (statsmodels' solve_power). It starts from the normal
    approximation n ≈ k·((z₀.₉₇₅ + z₀.₈)·sd/d)², k = 1 paired, 2 unpaired, which is never
    above it. None when no difference was observed (d = 0), or past MAX_SEEDS."""
    if d == 0 or not math.isfinite(sd) or not math.isfinite(d):
        return None
    if sd == 0:
        return 2
    z = float(stats.norm.ppf(1 - ALPHA / 2) + stats.norm.ppf(POWER))
    n = max(2, math.floor((1 if paired else 2) * (z * sd / abs(d)) ** 2))
    while n <= MAX_SEEDS:
        if t_power(n, sd, d, paired) >= POWER:
            return n
        n += 1
    return None


def compare(a: dict[int, float], b: dict[int, float], *, higher_is_better: bool,
            metric: str = "the metric") -> dict[str, Any]:
    """Point a against point b, each {seed: value}. Paired by seed (``ttest_rel``) when both
    have the same seeds, else Welch's t-test (``ttest_ind``, unequal variances). ``diff`` is
    mean(a) − mean(b), ``ci95`` its 95 % interval; the verdict is "a better", "b better" or
    "not distinguishable" at 5 %, and ``says`` puts it in words."""
    paired = len(a) >= 2 and set(a) == set(b)
    if paired:
        seeds = sorted(a)
        xa = np.array([a[s] for s in seeds], dtype=float)
        xb = np.array([b[s] for s in seeds], dtype=float)
    else:
        xa, xb = np.array(list(a.values()), dtype=float), np.array(list(b.values()), dtype=float)
    out: dict[str, Any] = {"diff": None, "ci95": None, "p_value": None,
                           "test": "paired t" if paired else "welch t", "paired": paired,
                           "verdict": "not distinguishable"}
    if len(xa) < 2 or len(xb) < 2:
        out["says"] = (f"not distinguishable: each point needs at least 2 finished seeds "
                       f"(now {len(xa)} and {len(xb)})")
        return out
    diff = float(xa.mean() - xb.mean())
    if paired:
        d = xa - xb
        sd = float(d.std(ddof=1))
        if sd == 0:  # every seed differs by the same amount: t is ±∞, or 0/0 if by nothing
            p, lo, hi = (1.0 if diff == 0 else 0.0), diff, diff
        else:
            res = stats.ttest_rel(xa, xb)
            p = float(res.pvalue)
            lo, hi = (float(v) for v in res.confidence_interval(1 - ALPHA))
    else:
        sd = math.sqrt((xa.var(ddof=1) + xb.var(ddof=1)) / 2)
        if sd == 0:
            p, lo, hi = (1.0 if diff == 0 else 0.0), diff, diff
        else:
            res = stats.ttest_ind(xa, xb, equal_var=False)
            p = float(res.pvalue)
            lo, hi = (float(v) for v in res.confidence_interval(1 - ALPHA))
    verdict = "not distinguishable"
    if p < ALPHA and diff != 0:
        verdict = "a better" if (diff > 0) == higher_is_better else "b better"
    n = len(xa) if paired else min(len(xa), len(xb))
    how = "paired by seed" if paired else "Welch"
    if verdict != "not distinguishable":
        says = (f"{verdict}: {metric} differs by {diff:+.4g} (95 % interval {lo:+.4g} to "
                f"{hi:+.4g}), p = {p:.2g} with {n} seeds, {how}")
    else:
        need = seeds_needed(sd, diff, paired)
        says = f"not distinguishable with {n} seeds (p = {p:.2g}, {how})"
        if need is None:
            says += ": no difference at all was observed"
        else:
            says += (f" — about {need} seeds would be needed to see a difference of "
                     f"{abs(diff):.3g}")
    out.update(diff=diff, ci95=[lo, hi], p_value=p, verdict=verdict, says=says)
    return out
