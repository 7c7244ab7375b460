"""bench/gpu.py beyond its smoke run (test_bench_smoke runs it on the CPU with tiny sizes): the
host-wait arithmetic, and where it is skipped rather than failing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench import gpu
from bench.__main__ import main
from tests.conftest import ROOT
from worker.engine.train import STEPS_REGION


def _x(cat: str, ts: float, dur: float, name: str = "k") -> dict:
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur}


def test_host_wait_share_is_the_idle_part_of_the_steps_region() -> None:
    events = [
        _x("user_annotation", 0, 100, STEPS_REGION),
        _x("kernel", 10, 20), _x("kernel", 20, 20),  # overlapping: 10–40 counts once
        _x("gpu_memcpy", 90, 30),  # runs past the region: 90–100 counts
        _x("kernel", 200, 50),  # outside the region
        _x("cpu_op", 0, 100), _x("user_annotation", 0, 100, "other"),  # not device work
        {"ph": "i", "cat": "kernel", "name": "instant", "ts": 50},
    ]
    assert gpu.host_wait_share(events, gpu.BUSY["cuda"]) == pytest.approx(1 - 40 / 100)
    # Two regions (two traced epochs): their lengths and busy times add up.
    events += [_x("user_annotation", 200, 100, STEPS_REGION)]
    assert gpu.host_wait_share(events, gpu.BUSY["cuda"]) == pytest.approx(1 - 90 / 200)
    # The CPU reading: time inside operators.
    assert gpu.host_wait_share(events, gpu.BUSY["cpu"]) == pytest.approx(1 - 100 / 200)
    with pytest.raises(RuntimeError, match="no 'epoque.train_steps' region"):
        gpu.host_wait_share(events[1:3], gpu.BUSY["cuda"])


def test_cifar10_files_are_read_by_the_engine(tmp_path) -> None:
    from worker.engine import load_dataset, parse_spec

    gpu.write_cifar10(tmp_path, per_batch=4, n_test=3)
    data = load_dataset(parse_spec({"data": {"dataset": "cifar10"}}), tmp_path)
    assert data.input_shape == (3, 32, 32) and data.classes == gpu.CLASSES
    assert data.sizes() == {"train": 16, "val": 4, "test": 3}


def test_cuda_asked_without_cuda_is_skipped_with_a_message(tmp_path) -> None:
    """In a process that sees no GPU (CUDA_VISIBLE_DEVICES empty): so it runs, and means the
    same, on a machine with CUDA too."""
    out = tmp_path / "BENCHMARKS.md"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", gpu.DEVICE_ENV: "cpu"}
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "gpu", "--device", "cuda", "--out", str(out)],
        check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "skipped: no CUDA device on this machine" in done.stderr
    table = [line for line in out.read_text().splitlines() if line.startswith("|")]
    assert len(table) == 2  # header and rule: no rows


def test_the_cpu_is_not_measured_as_a_gpu(monkeypatch, capsys) -> None:
    monkeypatch.delenv(gpu.DEVICE_ENV, raising=False)
    assert gpu.run(smoke=False) == []
    assert "make bench DEVICE=cuda" in capsys.readouterr().err


def test_a_bad_device_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--only", "gpu", "--device", "tpu"])
    assert e.value.code == 2 and "expected cpu, cuda or cuda:N" in capsys.readouterr().err
