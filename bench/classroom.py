"""A classroom under load: 30 simulated students join a class and each launch a lesson's runs
within one minute, against the real API process and two worker processes on the embedded
database and broker (the lab as a teacher starts it), while they and the teacher's board poll.

Reported: whether every run completed, the API's p95 latency over every request the students
made (join, launch, listing their class's runs, the board), and the queue's fairness: for each
run, from the moment it was its student's next one until a worker took it, the most runs any
single classmate got dispatched ahead of it (fair: at most 1; backend/classes/fairqueue.py).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import httpx

from bench.api_process import launch, stop
from bench.common import Row

ROOT = Path(__file__).resolve().parent.parent
P95_TARGET_MS = 200.0
LESSON = "minibatch-size"  # digits, a 128-unit MLP; the class lets students set η and epochs


def _workers(data_dir: str, n: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "EPOQUE_DATA_DIR": data_dir, "EPOQUE_TORCH_THREADS": "1"}
    for key in ("EPOQUE_DATABASE_URL", "EPOQUE_BROKER_URL"):
        env.pop(key, None)
    return [subprocess.Popen([sys.executable, "-m", "backend.cli", "worker", "--loglevel",
                              "WARNING"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL) for _ in range(n)]


class Timed:
    """An httpx client that records each request's latency."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        self.latencies: list[float] = []
        self.lock = threading.Lock()

    def request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        t0 = time.perf_counter()
        response = self.client.request(method, path, **kwargs)
        with self.lock:
            self.latencies.append(time.perf_counter() - t0)
        return response


def _student(api: Timed, code: str, k: int, offset: float, runs: int, epochs: int,
             class_id: int, errors: list[str]) -> None:
    time.sleep(offset)
    joined = api.request("POST", "/api/classes/join", json={"join_code": code,
                                                            "name": f"student {k:02d}"})
    if joined.status_code != 201:
        errors.append(f"join {joined.status_code}")
        return
    auth = {"Authorization": f"Bearer {joined.json()['student_token']}"}
    mine = set()
    for i in range(runs):
        made = api.request("POST", f"/api/runs?preset={LESSON}", headers=auth, json={
            "optim": {"lr": 0.02 * (i + 1)}, "training": {"max_epochs": epochs}})
        if made.status_code != 201:
            errors.append(f"launch {made.status_code}: {made.text[:200]}")
            continue
        mine.add(made.json()["id"])
    polls = 0
    while True:  # as the student's page does: the class's runs every 2 s, the board now and then
        listed = api.request("GET", "/api/runs", headers=auth).json()
        if polls % 3 == 0:
            api.request("GET", f"/api/classes/{class_id}/board", headers=auth)
        polls += 1
        if all(r["status"] not in ("queued", "running") for r in listed if r["id"] in mine):
            return
        time.sleep(2)


def worst_overtaking(runs: list[dict[str, object]]) -> int:
    """The most runs of one classmate dispatched while a run was its student's next one."""
    by_student: dict[object, list[dict[str, object]]] = defaultdict(list)
    for run in sorted(runs, key=lambda r: r["id"]):
        by_student[run["student"]].append(run)
    at = {r["id"]: datetime.fromisoformat(str(r["started_at"])) for r in runs}
    worst = 0
    for student, mine in by_student.items():
        for i, run in enumerate(mine):
            head = datetime.fromisoformat(str(run["created_at"]))
            if i:
                head = max(head, at[mine[i - 1]["id"]])
            for other, theirs in by_student.items():
                if other != student:
                    ahead = sum(1 for r in theirs if head < at[r["id"]] < at[run["id"]])
                    worst = max(worst, ahead)
    return worst


def run(smoke: bool = False) -> list[Row]:
    students, runs_each, epochs, spread = (3, 1, 1, 2.0) if smoke else (30, 2, 3, 60.0)
    data_dir = tempfile.mkdtemp(prefix="epoque-bench-classroom-")
    proc, base, _ = launch(data_dir)
    workers = _workers(data_dir, 2)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(httpx.get(
                f"{base}/api/health").json().get("workers") or []) < 2:
            time.sleep(0.25)
        api = Timed(base)
        created = api.request("POST", "/api/classes", json={
            "name": "bench", "presets": [LESSON], "locked": ["data.dataset", "model.hidden"],
            "max_runs_per_student": runs_each, "max_queued_per_student": runs_each}).json()
        teacher = {"Authorization": f"Bearer {created['teacher_token']}"}
        errors: list[str] = []
        threads = [threading.Thread(target=_student, args=(
            api, created["join_code"], k, spread * k / students, runs_each, epochs,
            created["id"], errors)) for k in range(students)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=1800)
        board = api.request("GET", f"/api/classes/{created['id']}/board", headers=teacher).json()
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
        stop(proc)
    runs = [{**r, "student": s["id"]} for s in board["students"] for r in s["runs"]]
    launched = students * runs_each
    done = sum(1 for r in runs if r["status"] == "succeeded")
    latencies = sorted(api.latencies)
    p95 = 1000 * latencies[int(0.95 * (len(latencies) - 1))]
    median = 1000 * statistics.median(latencies)
    worst = worst_overtaking([r for r in runs if r["started_at"]])
    note = f"{students} students × {runs_each} runs, 2 workers, {len(latencies)} requests"
    return [
        Row(f"classroom: runs completed ({note})", "launched", launched, "succeeded", done,
            "runs", "every run completes", done == launched and not errors,
            "; ".join(errors[:3])),
        Row("classroom: API latency p95 (join, launch, list, board)", "target", P95_TARGET_MS,
            "p95", p95, "ms", f"p95 ≤ {P95_TARGET_MS:.0f} ms", p95 <= P95_TARGET_MS,
            f"median {median:.0f} ms"),
        Row("classroom: fair queue, most runs of one classmate dispatched ahead of a "
            "student's next run", "allowed", 1, "worst", worst, "runs", "≤ 1", worst <= 1),
    ]
