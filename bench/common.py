"""Timing helpers and the row every benchmark reports."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Row:
    benchmark: str
    baseline: str
    baseline_value: float
    epoque: str
    epoque_value: float
    unit: str
    target: str  # e.g. "ratio ≤ 1.05"
    ok: bool | None  # None: informative only
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.epoque_value / self.baseline_value if self.baseline_value else float("nan")


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs (these machines are shared and noisy)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Medians of several candidates timed in alternation, so drift hits them all alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(values) for name, values in times.items()}


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
