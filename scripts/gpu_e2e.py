"""The lab end to end on the worker's device: `epoque serve` (embedded SQLite database and
broker) with its worker on ``EPOQUE_BENCH_DEVICE`` (cuda on a GPU machine; cpu to check this
script anywhere), a run and a seed study launched through the REST API, their results read
back and the run's points read from its WebSocket stream. Writes ``gpu_e2e.json`` (figures)
and ``gpu_e2e_server.log`` (the server's output) to the folder given, and exits non-zero if any
check fails.

Usage: PYTHONPATH=. python scripts/gpu_e2e.py OUT_DIR [--seeds N] [--epochs N]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(what: str, check, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")


def stream_points(base: str, run_id: int) -> dict[str, Any]:
    """Every point of the run's stream from the start, and its final message."""
    from websockets.sync.client import connect

    url = base.replace("http://", "ws://") + f"/api/runs/{run_id}/stream?after=0"
    points, cursor, end = 0, 0, None
    keys: set[str] = set()
    with connect(url, max_size=None, open_timeout=30) as ws:
        while True:
            message = json.loads(ws.recv(timeout=300))
            if message["cursor"] < cursor:
                raise AssertionError("the stream's cursor went back")
            cursor = message["cursor"]
            if message["type"] == "points":
                for key, series in message["series"].items():
                    keys.add(key)
                    points += len(series)
            if message["type"] == "end":
                end = message
                break
    return {"points": points, "keys": len(keys), "cursor": cursor,
            "final_status": (end or {}).get("run", {}).get("status")}


def finished(client: httpx.Client, run_id: int) -> dict | None:
    run = client.get(f"/api/runs/{run_id}").json()
    return run if run["status"] in ("succeeded", "failed", "cancelled", "diverged") else None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    device = (os.environ.get("EPOQUE_BENCH_DEVICE") or "cuda").strip()
    figures: dict[str, Any] = {"device": device, "checks": {}}
    failures: list[str] = []

    def check(name: str, ok: bool, detail: Any = None) -> None:
        figures["checks"][name] = {"ok": bool(ok), "detail": detail}
        if not ok:
            failures.append(f"{name}: {detail}")

    log_path = args.out / "gpu_e2e_server.log"
    with tempfile.TemporaryDirectory() as data, open(log_path, "wb") as log:
        port = free_port()
        env = {**os.environ, "EPOQUE_DATA_DIR": data, "EPOQUE_DEVICE": device,
               "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get(
                   "PYTHONPATH", "")) if p)}
        for key in ("EPOQUE_DATABASE_URL", "EPOQUE_BROKER_URL", "EPOQUE_API_TOKEN"):
            env.pop(key, None)
        started = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
            cwd=data, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                def worker_up() -> dict | None:
                    if server.poll() is not None:
                        raise RuntimeError(f"epoque serve exited with {server.returncode}")
                    try:
                        health = client.get("/api/health").json()
                    except httpx.HTTPError:
                        return None
                    return health if health.get("workers") else None

                health = wait("the server and its worker", worker_up, 180)
                figures["start_seconds"] = round(time.perf_counter() - started, 2)
                figures["health"] = health

                # One run: the digits MLP, speed.auto left at its default.
                t0 = time.perf_counter()
                run = client.post("/api/runs", json={
                    "name": "gpu e2e run", "training": {"max_epochs": args.epochs}}).json()
                stream = stream_points(base, run["id"])
                run = wait("the run", lambda: finished(client, run["id"]), 600)
                figures["run"] = {
                    "seconds": round(time.perf_counter() - t0, 2), "status": run["status"],
                    "test_accuracy": (run["result"] or {}).get("test_accuracy"),
                    "speed": (run["result"] or {}).get("speed"),
                    "epoch_seconds": None, "stream": stream}
                metrics = client.get(f"/api/runs/{run['id']}/metrics",
                                     params={"keys": "val_accuracy,epoch_seconds"}).json()
                series = metrics["series"]
                figures["run"]["epoch_seconds"] = [v for _, v in series.get("epoch_seconds", [])]
                check("run succeeded", run["status"] == "succeeded", run.get("error"))
                check("run learned", (figures["run"]["test_accuracy"] or 0) > 0.8,
                      figures["run"]["test_accuracy"])
                check("every epoch stored", len(series.get("val_accuracy", [])) == args.epochs,
                      len(series.get("val_accuracy", [])))
                check("stream ended with the status", stream["final_status"] == "succeeded",
                      stream)
                check("stream carried the points", stream["points"] >= args.epochs, stream)

                # A seed study: its runs stacked as packs by the worker.
                t0 = time.perf_counter()
                study = client.post("/api/studies", json={
                    "name": "gpu e2e seeds", "seeds": args.seeds,
                    "base": {"training": {"max_epochs": args.epochs},
                             "model": {"dropout": {"p_inc_hidden": 0.8}}}}).json()
                ids = [r["id"] for r in study["runs"]]
                runs = [wait(f"run {i}", lambda i=i: finished(client, i), 900) for i in ids]
                results = [r["result"] or {} for r in runs]
                figures["study"] = {
                    "seconds": round(time.perf_counter() - t0, 2), "runs": len(ids),
                    "statuses": sorted({r["status"] for r in runs}),
                    "packs": sorted({r["pack"] for r in runs if r["pack"] is not None}),
                    "pack_notes": sorted({json.dumps(res.get("pack"), sort_keys=True)
                                          for res in results})[:4],
                    "test_accuracy": [res.get("test_accuracy") for res in results],
                }
                check("study succeeded", figures["study"]["statuses"] == ["succeeded"],
                      figures["study"]["statuses"])
                check("seeds differ", len(set(figures["study"]["test_accuracy"])) > 1,
                      figures["study"]["test_accuracy"])
                summary = client.get(f"/api/studies/{study['id']}").json()
                check("study summary", bool(summary.get("summary")), None)
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    figures["failures"] = failures
    (args.out / "gpu_e2e.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
