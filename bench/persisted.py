"""The default spec persisted through a real worker vs the same spec in process vs a bare loop:
what writing the metrics (in batches) adds to a run's wall time."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

import torch

from bench.common import Row
from bench.engine_speed import bare_epochs
from worker.engine import Callbacks, load_dataset, parse_spec, train

ROOT = Path(__file__).resolve().parent.parent


class _Worker:
    """A real `epoque worker` (embedded broker, 1 thread) and a way to time one run on it."""

    def __enter__(self) -> Self:
        tmp = tempfile.mkdtemp(prefix="epoque-bench-")
        env = {**os.environ, "EPOQUE_DATA_DIR": tmp, "EPOQUE_TORCH_THREADS": "1"}
        for key in ("EPOQUE_DATABASE_URL", "EPOQUE_BROKER_URL"):
            env.pop(key, None)
            os.environ.pop(key, None)
        os.environ.update({"EPOQUE_DATA_DIR": tmp})
        from backend.broker import celery_client
        from backend.config import get_settings
        from backend.migrate import upgrade

        get_settings.cache_clear()
        celery_client.cache_clear()
        upgrade()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "worker", "--loglevel", "WARNING"], cwd=ROOT,
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def run_seconds(self, spec_data: dict) -> float:
        """started_at → finished_at of one run, as the database records it."""
        from backend.db import new_session
        from backend.runs import service

        with new_session() as session:
            run_id = service.submit_run(session=session, spec_data=spec_data).id
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with new_session() as session:
                run = service.get_run(session=session, run_id=run_id)
                if run.status not in ("queued", "running"):
                    break
            time.sleep(0.05)
        assert run.status == "succeeded", run.error
        return (run.finished_at - run.started_at).total_seconds()

    def __exit__(self, *_: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def run(smoke: bool = False) -> list[Row]:
    torch.set_num_threads(1)
    epochs = 3 if smoke else 200
    repeats = 1 if smoke else 5
    spec = {"training": {"max_epochs": epochs}}  # the default spec: metrics and layer stats on
    parsed = parse_spec(spec)
    data = load_dataset(parsed)

    # The three are timed in turn, repeat after repeat, so the machine's drift hits them alike.
    in_process, bare, persisted = [], [], []
    with _Worker() as worker:
        worker.run_seconds(spec)  # warm-up: the worker's first run imports and loads more
        for _ in range(repeats):
            t0 = time.perf_counter()
            train(parsed, Callbacks())
            in_process.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            bare_epochs(data.X_train, data.y_train, parsed.model.hidden, 32, epochs)
            bare.append(time.perf_counter() - t0)
            persisted.append(worker.run_seconds(spec))
    med, med_bare, med_persisted = (statistics.median(v) for v in (in_process, bare, persisted))
    return [
        Row("metrics persisted by a real worker vs the same run in process (default spec)",
            "in process, nothing stored", med, "worker, metrics stored", med_persisted, "s/run",
            "ratio ≤ 1.05", med_persisted / med <= 1.05 if not smoke else None),
        Row("default spec persisted by a worker vs bare loop (same epochs)", "bare loop",
            med_bare, "worker, metrics stored", med_persisted, "s/run", "ratio ≤ 1.10",
            med_persisted / med_bare <= 1.10 if not smoke else None),
    ]
