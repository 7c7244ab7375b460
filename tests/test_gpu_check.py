"""scripts/gpu_check.sh, the GPU session's one prepared script, checked where there is no GPU:
with EPOQUE_BENCH_DEVICE=cpu its lab part starts `epoque serve` with the worker on the CPU,
launches a run and a seed study through the REST API and reads results and streamed points."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_runs_its_lab_part_on_the_cpu(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPOQUE_")}
    env.update({"EPOQUE_BENCH_DEVICE": "cpu", "OUT": str(tmp_path), "PY": sys.executable,
                "E2E_SEEDS": "2", "E2E_EPOCHS": "2", "T_E2E": "300"})
    done = subprocess.run([str(ROOT / "scripts" / "gpu_check.sh"), "tests", "e2e"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (tmp_path / "summary.txt").read_text()
    assert "ok tests" in summary and "ok e2e" in summary
    assert "skipped: the CUDA tests need a GPU" in (tmp_path / "test_cuda.log").read_text()
    figures = json.loads((tmp_path / "gpu_e2e.json").read_text())
    assert figures["device"] == "cpu" and figures["failures"] == []
    assert figures["health"]["workers"][0]["device"] == "cpu"
    run = figures["run"]
    assert run["status"] == "succeeded" and run["stream"]["final_status"] == "succeeded"
    assert run["stream"]["points"] >= 2 and len(run["epoch_seconds"]) == 2
    assert run["speed"]["chosen_by"] == "spec"  # on the CPU speed.auto times nothing
    assert figures["study"]["runs"] == 2 and figures["study"]["statuses"] == ["succeeded"]
