"""Each lesson's preset as a student meets it: `epoque serve` (API + one embedded worker, the
lab's defaults), the preset launched through the API, timed from the launch to the moment every
one of its runs has ended, while another preset trains beside it on the same machine.

The neighbour is a classmate's run on another worker: a second process training the next
preset's runs with the engine itself, in a loop, on the threads a worker would choose
(worker/timing.py), until the timed preset is done. The budget is 60 s per preset (issue 15);
the row is met when the preset finishes inside it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.api_process import stop
from bench.common import Row
from bench.stream import _port

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S = 60.0
_FINAL = ("succeeded", "failed", "cancelled", "diverged")

NEIGHBOUR = """
import sys, torch
from backend.presets.catalog import BY_ID
from backend.studies.grid import expand
from worker.engine import parse_spec, train
from worker.timing import choose_threads
preset = BY_ID[sys.argv[1]]
if "spec" in preset:
    specs = [parse_spec(preset["spec"])]
else:
    base = parse_spec(preset["study"]["base"]).model_dump(mode="json")
    specs = [spec for _, spec in expand(base, preset["study"]["grid"], 256)]
while True:  # until the bench stops us
    for spec in specs:
        torch.set_num_threads(choose_threads(spec))
        train(spec)
"""


def _serve(data_dir: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    env = {**os.environ, "EPOQUE_DATA_DIR": data_dir}
    for key in [k for k in env if k.startswith("EPOQUE_") and k != "EPOQUE_DATA_DIR"]:
        env.pop(key)
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            health = httpx.get(f"{base}/api/health", timeout=2).json()
            if health.get("workers"):  # the embedded worker is up: nothing waits on its start
                return proc, base
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.25)
    stop(proc)
    raise RuntimeError("the lab or its embedded worker did not start")


def _run_ids(launched: dict) -> tuple[str, int]:
    if launched["kind"] == "run":
        return "run", launched["run"]["id"]
    return "study", launched["study"]["id"]


def _done(c: httpx.Client, kind: str, ident: int) -> bool:
    if kind == "run":
        return c.get(f"/api/runs/{ident}").json()["status"] in _FINAL
    runs = c.get(f"/api/studies/{ident}").json()["runs"]
    return all(r["status"] in _FINAL for r in runs)


def preset_seconds(c: httpx.Client, preset_id: str, neighbour: str | None) -> float:
    """Launch → every run ended, with ``neighbour``'s runs training in a process beside it."""
    side = None
    if neighbour is not None:
        side = subprocess.Popen([sys.executable, "-c", NEIGHBOUR, neighbour], cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(3.0)  # its imports and data done: it is training when the clock starts
    try:
        t0 = time.perf_counter()
        launched = c.post(f"/api/presets/{preset_id}/launch")
        launched.raise_for_status()
        kind, ident = _run_ids(launched.json())
        while not _done(c, kind, ident):
            time.sleep(0.25)
        seconds = time.perf_counter() - t0
    finally:
        if side is not None:
            side.kill()
            side.wait()
    return seconds


def run(smoke: bool = False) -> list[Row]:
    from backend.presets.catalog import PRESETS

    ids = [p["id"] for p in PRESETS]
    # EPOQUE_BENCH_PRESETS=id,id: only those (a partial run prints rows; see bench/__main__.py)
    only = [x for x in os.environ.get("EPOQUE_BENCH_PRESETS", "").split(",") if x]
    chosen = ids[:1] if smoke else [i for i in ids if not only or i in only]
    rows = []
    data_dir = tempfile.mkdtemp(prefix="epoque-bench-presets-")
    proc, base = _serve(data_dir)
    try:
        with httpx.Client(base_url=base, timeout=60) as c:
            for pid in chosen:
                neighbour = None if smoke else ids[(ids.index(pid) + 1) % len(ids)]
                seconds = preset_seconds(c, pid, neighbour)
                lesson = PRESETS[ids.index(pid)]["lesson"]
                beside = f", {neighbour} training beside it" if neighbour else ""
                rows.append(Row(
                    f"preset {pid} (lesson {lesson}): launch → every run ended, embedded "
                    f"worker{beside}", "budget", BUDGET_S, "wall time", seconds, "s",
                    f"≤ {BUDGET_S:.0f} s", None if smoke else seconds <= BUDGET_S))
                print(f"[bench]     {pid}: {seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        stop(proc)
    return rows
