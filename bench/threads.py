"""The thread count the worker chooses against 1 thread and all threads, for the digits MLP and
for CNNs: it must beat both or tie the better one."""

from __future__ import annotations

import statistics

import torch

from bench.common import Row, cores
from worker.engine import Callbacks, parse_spec, train
from worker.timing import choose_threads

CASES = {
    "digits MLP": {},
    "shapes CNN": {"data": {"dataset": "shapes"}, "model": {"arch": "cnn", "hidden": [16, 32]}},
    "mnist1d CNN": {"data": {"dataset": "mnist1d"},
                    "model": {"arch": "cnn", "hidden": [32, 64, 64]}},
}


def _epoch_seconds(spec_data: dict, threads: int) -> float:
    torch.set_num_threads(threads)
    out = train(parse_spec(spec_data), Callbacks())
    return statistics.median(m["epoch_seconds"] for m in out.metrics[1:])


def run(smoke: bool = False) -> list[Row]:
    rows = []
    all_threads = cores()
    for name, spec in list(CASES.items())[:1] if smoke else CASES.items():
        spec = {**spec, "training": {"max_epochs": 2 if smoke else 4},
                "diagnostics": {"layer_stats": False}}
        chosen = choose_threads(parse_spec(spec))
        times: dict[int, list[float]] = {1: [], all_threads: []}
        for _ in range(1 if smoke else 3):  # alternated, so drift hits every count alike
            for threads, seconds in times.items():
                seconds.append(_epoch_seconds(spec, threads))
        med = {t: statistics.median(v) for t, v in times.items()}
        best = min(med, key=med.get)  # type: ignore[arg-type]
        rows.append(Row(
            f"threads for the {name}: chosen {chosen} vs the better of 1 and {all_threads}",
            f"{best} thread(s)", med[best], f"chosen: {chosen}", med[chosen], "s/epoch",
            "ratio ≤ 1.03", None if smoke else med[chosen] <= 1.03 * med[best],
            note=f"1 thread {med[1] * 1000:.1f} ms, {all_threads} threads "
                 f"{med[all_threads] * 1000:.1f} ms"))
    torch.set_num_threads(1)
    return rows
