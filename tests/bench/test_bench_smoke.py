"""The benchmarks run in smoke mode (tiny sizes) so that they cannot rot."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_every_benchmark_runs_in_smoke_mode(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "bench", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False,
                          env={"PATH": "/usr/bin:/bin", "EPOQUE_DATA_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert len(table) >= 2 + 6  # header, rule, and a row per measured comparison
    for name in ("bare loop", "DataLoader", "sequential", "one pack", "packed", "downsampled",
                 "stored", "loss curves drawn", "resident memory", "under attack",
                 "stored runs, points and models lost"):
        assert name in done.stdout, name
    # bench/gpu.py on the CPU: every variant, and its tracing code path.
    for variant in ("float32", "bfloat16", "compiled"):
        assert f"engine vs bare loop, {variant}: CNN" in done.stdout, variant
        assert f"share outside aten ops of the steps, {variant}" in done.stdout, variant
