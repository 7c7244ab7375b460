"""The API process alone (`epoque serve --no-worker`): its memory and how fast it starts.

The API validates specs and serves stored figures; it trains nothing, so it has no use for
torch. Each repetition starts a fresh `python -m backend.cli serve --no-worker` on its own
embedded data folder and times launch → first 200 on /api/health (the first launch only warms
the disk cache and is not counted: the target is for a warm start). The resident memory of
the last one is read from /proc after start and after 20 requests to the endpoints that do
not compute (health, schema, presets, runs, studies, datasets, guides).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import Row
from bench.stream import _port

ROOT = Path(__file__).resolve().parent.parent
RSS_TARGET_MB = 300.0
START_TARGET_S = 3.0


def launch(data_dir: str) -> tuple[subprocess.Popen[bytes], str, float]:
    """A fresh API process on ``data_dir``: (process, base URL, seconds to the first 200)."""
    port = _port()
    env = {**os.environ, "EPOQUE_DATA_DIR": data_dir}
    for key in ("EPOQUE_DATABASE_URL", "EPOQUE_BROKER_URL"):
        env.pop(key, None)
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve", "--no-worker",
                             "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/api/health", timeout=1).status_code == 200:
                return proc, base, time.perf_counter() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    stop(proc)
    raise RuntimeError("the API did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: what its start costs on an idle machine,
    whatever else the (shared) machine is doing."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def twenty_requests(base: str) -> None:
    """Twenty requests a lab page makes, none of which trains or draws."""
    with httpx.Client(base_url=base, timeout=30) as c:
        run = c.post("/api/runs", json={"name": "bench"}).json()
        c.post("/api/studies", json={"base": {"training": {"max_epochs": 2}},
                                     "grid": {"optim.lr": [0.05, 0.1]}}).raise_for_status()
        for path in ("/api/health", "/api/spec/schema", "/api/presets", "/api/runs",
                     f"/api/runs/{run['id']}", f"/api/runs/{run['id']}/metrics",
                     "/api/studies", "/api/datasets", "/api/guides", "/api/guides/1",
                     "/api/health", "/api/runs", "/api/datasets", "/api/studies",
                     "/api/presets", "/api/spec/schema", "/api/guides/2", "/api/health"):
            c.get(path).raise_for_status()


def run(smoke: bool = False) -> list[Row]:
    repeats = 1 if smoke else 5
    starts: list[float] = []
    cpu: list[float] = []
    rss_start = rss_after = 0.0
    for i in range(repeats + 1):
        proc, base, seconds = launch(tempfile.mkdtemp(prefix="epoque-bench-api-"))
        try:
            if i:
                starts.append(seconds)
                cpu.append(cpu_seconds(proc.pid))
            if i == repeats:
                rss_start = rss_mb(proc.pid)
                twenty_requests(base)
                rss_after = rss_mb(proc.pid)
        finally:
            stop(proc)
    start = statistics.median(starts)
    return [
        Row("API process (`epoque serve --no-worker`) resident memory after start and 20 "
            "requests", "target", RSS_TARGET_MB, "Époque", rss_after, "MB",
            f"≤ {RSS_TARGET_MB:.0f} MB", rss_after <= RSS_TARGET_MB,
            note=f"{rss_start:.0f} MB after start"),
        Row("API process start: launch to the first 200 on /api/health (warm)", "target",
            START_TARGET_S, "Époque", start, "s", f"≤ {START_TARGET_S:.0f} s",
            start <= START_TARGET_S,
            note=f"median of {len(starts)}; CPU time {statistics.median(cpu):.2f} s"),
    ]
