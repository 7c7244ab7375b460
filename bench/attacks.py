"""Bounded attacks on a running lab: does it keep answering /api/health, and lose nothing?

One API process (`epoque serve --no-worker`, the embedded default) on a data folder of its own,
holding a finished run with a small real model (for /predict), one with a 200 MB model blob
(for downloads) and one with 300,000 points (for /metrics and metrics.csv). Each attack runs
for a few seconds from several client threads while a sampler asks /api/health every 25 ms and
another reads the API's resident memory every 20 ms. A row per attack: the health p95 during it
against the same sampler's p95 on the idle lab, the answers the attack got and the API's peak
memory. A last row checks that no stored run, point or model changed.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import hashlib
import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Self

import httpx

from bench.api_process import launch, rss_mb, stop
from bench.common import Row

HEALTH_TARGET_S = 0.100
MODEL_MB = 200
POINTS = 300_000


# The health probe runs in a process of its own: in this one, the attack's client threads
# would hold the GIL and their waits would count as the lab's.
PROBE = """
import sys, time, httpx
with httpx.Client(base_url=sys.argv[1], timeout=30) as client, open(sys.argv[2], "w") as out:
    while True:
        t0 = time.monotonic()
        status = client.get("/api/health").status_code
        print(t0, time.monotonic() - t0, status, file=out, flush=True)
        time.sleep(0.025)
"""


class Sampler:
    """/api/health latency (from a probe process) and the API's memory, with timestamps."""

    def __init__(self, base: str, pid: int, log: Path) -> None:
        self.base, self.pid = base, pid
        self.memory: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._log = log

    def __enter__(self) -> Self:
        self._log.touch()
        self._probe = subprocess.Popen([sys.executable, "-c", PROBE, self.base, str(self._log)])
        self._watcher.start()
        deadline = time.monotonic() + 60
        while len(self.health()) < 3 and time.monotonic() < deadline:  # the probe has started
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._watcher.join()
        self._probe.kill()
        self._probe.wait()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.memory.append((time.monotonic(), rss_mb(self.pid)))
            self._stop.wait(0.02)

    def health(self) -> list[tuple[float, float, int]]:
        rows = self._log.read_text().splitlines()
        return [(float(t), float(s), int(c)) for t, s, c in
                (r.split() for r in rows) if c.isdigit()]  # a line being written is skipped

    def window(self, t0: float, t1: float) -> tuple[float, float, int, int]:
        """(health p95 s, peak RSS MB, health answers that were not 200, answers) in [t0, t1]:
        a probe that started before t1 counts, however late it ended."""
        during = [(s, c) for t, s, c in self.health() if t0 <= t <= t1]
        lat = [s for s, _ in during]
        mem = [m for t, m in self.memory if t0 <= t <= t1] or [rss_mb(self.pid)]
        p95 = statistics.quantiles(lat, n=20)[-1] if len(lat) >= 2 else max(lat, default=0.0)
        return p95, max(mem), sum(1 for _, c in during if c != 200), len(lat)


def _seed(data_dir: str, model_mb: int, points: int) -> dict[str, int]:
    """Finished runs written straight into the lab's database, as a worker would."""
    import torch

    from backend.config import get_settings
    from backend.db import new_session
    from backend.runs import service
    from backend.runs.lifecycle import claim_run, finish_run, record_epoch
    from worker.engine.models import build_model
    from worker.engine.spec import parse_spec

    os.environ["EPOQUE_DATA_DIR"] = data_dir
    get_settings.cache_clear()
    spec = parse_spec({"data": {"dataset": "moons"}, "model": {"hidden": [16]},
                       "training": {"max_epochs": 1}})
    buffer = io.BytesIO()
    torch.save({"spec": spec.model_dump(mode="json"),
                "state_dict": build_model(spec, (2,), 2).state_dict(),
                "classes": ["0", "1"], "input_shape": [2]}, buffer)
    models = {"predict": buffer.getvalue(), "big": os.urandom(model_mb * 2**20),
              "points": b"small"}
    ids: dict[str, int] = {}
    for name, model in models.items():
        with new_session() as session:
            run = service.create_run(session=session, spec=spec)
            ids[name] = run.id
        with new_session() as session:
            token = claim_run(session=session, run_id=ids[name], worker="bench").token
            if name == "points":
                for start in range(0, points, 50_000):
                    record_epoch(session=session, run_id=ids[name], token=token, epoch=start + 1,
                                 points=[("train_loss", x, 1 / (x + 1))
                                         for x in range(start, min(points, start + 50_000))])
            finish_run(session=session, run_id=ids[name], token=token, status="succeeded",
                       result={}, model=model)
    return ids


def _inventory(base: str, ids: dict[str, int]) -> dict[str, object]:
    """What the lab holds that an attack could lose: runs, point counts and model hashes."""
    with httpx.Client(base_url=base, timeout=120) as client:
        runs = client.get("/api/runs", params={"limit": 1000}).json()
        held: dict[str, object] = {"runs": sorted(r["id"] for r in runs)}
        for name, run_id in ids.items():
            digest = hashlib.sha256()
            with client.stream("GET", f"/api/runs/{run_id}/model") as answer:
                for piece in answer.iter_bytes():
                    digest.update(piece)
            held[f"model {name}"] = digest.hexdigest()
        rows = 0
        with client.stream("GET", f"/api/runs/{ids['points']}/metrics.csv") as answer:
            for line in answer.iter_lines():
                rows += bool(line)
        held["points"] = rows
    return held


def _hammer(base: str, threads: int, seconds: float, request: Callable[[httpx.Client], int],
            each: int | None = None) -> collections.Counter[str]:
    """``request`` from ``threads`` clients for ``seconds`` (or ``each`` times per client): how
    many answers of each status."""
    answers: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def client_loop() -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            done = 0
            while (done < each) if each is not None else (time.monotonic() < end):
                done += 1
                try:
                    code = str(request(client))
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                with lock:
                    answers[code] += 1

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(client_loop) for _ in range(threads)]:
            future.result()
    return answers


def _png(side: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (120, 30, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip_bomb(mib: int) -> bytes:
    """``mib`` MiB of zeros in one member (1 GiB: about 1 MB compressed)."""
    buffer = io.BytesIO()
    with (zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive,
          archive.open("a/zeros.png", "w", force_zip64=True) as member):
        chunk = bytes(2**24)
        for _ in range(mib // 16):
            member.write(chunk)
    return buffer.getvalue()


def _live_run(data_dir: str) -> tuple[int, str]:
    """A run claimed as a worker would and left running: (its id, the claim's token)."""
    from backend.db import new_session
    from backend.runs import service
    from backend.runs.lifecycle import claim_run
    from worker.engine.spec import parse_spec

    spec = parse_spec({"data": {"dataset": "moons"}, "training": {"max_epochs": 10_000}})
    with new_session() as session:
        run_id = service.create_run(session=session, spec=spec).id
        session.commit()
    with new_session() as session:
        return run_id, claim_run(session=session, run_id=run_id, worker="bench").token


def _held_streams(base: str, live: tuple[int, str], viewers: int,
                  seconds: float) -> collections.Counter[str]:
    """``viewers`` WebSockets on a running run, each with a cursor far past its end, held open
    while a writer adds an epoch of points every 0.1 s: does every viewer get every new point?"""
    import websockets

    from backend.db import new_session
    from backend.runs.lifecycle import record_epoch

    run_id, token = live
    joined = threading.Semaphore(0)
    epochs = itertools.count(1)
    end = time.monotonic() + seconds

    def writer() -> None:
        for _ in range(viewers):  # every viewer is in (it got the run's state) before epoch 1
            joined.acquire(timeout=max(end - time.monotonic(), 0))
        while time.monotonic() < end - 0.5:  # the last epoch has time to reach everyone
            epoch = next(epochs)
            with new_session() as session:
                record_epoch(session=session, run_id=run_id, token=token, epoch=epoch,
                             points=[("train_loss", epoch, 1 / epoch), ("val_acc", epoch, 0.5)])
            time.sleep(0.1)

    async def one() -> tuple[int, str]:
        url = base.replace("http", "ws") + f"/api/runs/{run_id}/stream?after=1000000000000000"
        got, first = 0, True
        try:
            async with websockets.connect(url, origin=base) as ws:
                while (left := end - time.monotonic()) > 0:  # held open the whole time
                    try:
                        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=left))
                    except TimeoutError:
                        break
                    got += sum(len(p) for p in message.get("series", {}).values())
                    if first:
                        joined.release()
                        first = False
                return got, "held open"
        except websockets.ConnectionClosed as exc:
            return got, f"closed {exc.rcvd.code if exc.rcvd else '?'}"
        except websockets.InvalidStatus as exc:
            return got, f"refused {exc.response.status_code}"

    async def all_of_them() -> list[tuple[int, str]]:
        return await asyncio.gather(*(one() for _ in range(viewers)))

    thread = threading.Thread(target=writer)
    thread.start()
    seen = asyncio.run(all_of_them())
    thread.join()
    sent = 2 * (next(epochs) - 1)
    return collections.Counter(
        f"{how}, {'every' if got == sent else f'{got} of the'} {sent} new points"
        for got, how in seen)


def attacks(ids: dict[str, int], live: tuple[int, str],
            smoke: bool) -> dict[str, Callable[[str], collections.Counter]]:
    seconds = 1.0 if smoke else 4.0
    points = 5_000 if smoke else POINTS
    grid = {"name": "grid bomb", "base": {}, "grid": {
        f"optim.{k}": [0.1 * (i + 1) for i in range(25)]
        for k in ("lr", "momentum", "weight_decay")} | {
        "training.max_epochs": list(range(1, 26)), "seed": list(range(25)),
        "optim.batch_size": list(range(1, 26))}}
    huge = {"data": {"dataset": "digits"}, "optim": {"batch_size": 10**15},
            "model": {"hidden": [4096] * 32}, "ensemble": {"members": 64}}
    picture, bomb = _png(64 if smoke else 4096), _zip_bomb(32 if smoke else 1024)
    turns = itertools.count()
    return {
        "grid of 25⁶ points, 4 clients": lambda b: _hammer(
            b, 4, seconds, lambda c: c.post("/api/studies", json=grid).status_code),
        "specs at every maximum and batch 10¹⁵, 4 clients": lambda b: _hammer(
            b, 4, seconds, lambda c: c.post("/api/runs", json=huge).status_code),
        "50 WebSockets on a running run, cursor 10¹⁵, held": lambda b: _held_streams(
            b, live, 50, max(seconds, 3.0)),  # time to join, then get epochs
        f"32 concurrent previews of a {'64' if smoke else '4096'}² image": lambda b: _hammer(
            b, 32, seconds, lambda c: c.post("/api/previews/image", files={
                "file": ("big.png", picture, "image/png")},
                data={"augment": json.dumps([{"op": "random_horizontal_flip", "p": 1.0}]), "n": "2"}
            ).status_code),
        "/predict, 8 clients": lambda b: _hammer(
            b, 8, seconds, lambda c: c.post(f"/api/runs/{ids['predict']}/predict",
                                            json={"inputs": [[0.1, 0.2]] * 100}).status_code),
        f"6 concurrent downloads of a {MODEL_MB if not smoke else 1} MB model": lambda b: _hammer(
            b, 6, seconds, lambda c: _download(c, f"/api/runs/{ids['big']}/model")),
        f"/metrics without points and metrics.csv of {points:,} points, 6 clients": (
            lambda b: _hammer(b, 6, seconds, lambda c: (
                c.get(f"/api/runs/{ids['points']}/metrics").status_code
                if next(turns) % 2 else
                _download(c, f"/api/runs/{ids['points']}/metrics.csv")))),
        f"zip bomb uploads ({'32 MiB' if smoke else '1 GiB'} of zeros), 3 clients": lambda b: _hammer(
            b, 3, seconds, lambda c: c.post("/api/datasets", files={
                "file": ("bomb.zip", bomb, "application/zip")}).status_code),
        "cross-site form posts, 4 clients": lambda b: _hammer(
            b, 4, seconds, lambda c: c.post(f"/api/runs/{ids['predict']}/cancel", headers={
                "Origin": "https://evil.example"}).status_code),
        "300 run creations, 30 clients": lambda b: _hammer(
            b, 30, seconds, lambda c: c.post("/api/runs", json={"name": "x"}).status_code,
            each=10),
    }


def _failed(answer: str) -> bool:
    """An answer no attack may get: a 5xx, a client error (a timeout, a reset), a stream that
    was closed or refused, or one that missed points."""
    return answer.startswith("5") or (not answer[:1].isdigit()
                                      and not answer.startswith("held open, every"))


def _download(client: httpx.Client, path: str) -> int:
    with client.stream("GET", path) as answer:
        for _ in answer.iter_bytes():
            pass
        return answer.status_code


def run(smoke: bool = False) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="epoque-attacks-") as data_dir:
        proc, base, _ = launch(data_dir)
        try:
            ids = _seed(data_dir, 1 if smoke else MODEL_MB, 5_000 if smoke else POINTS)
            live = _live_run(data_dir)
            before = _inventory(base, ids)
            with Sampler(base, proc.pid, Path(data_dir) / "health.txt") as sampler:
                t0 = time.monotonic()
                time.sleep(1.0 if smoke else 3.0)
                quiet, quiet_mb, _, _ = sampler.window(t0, time.monotonic())
                for name, attack in attacks(ids, live, smoke).items():
                    t0 = time.monotonic()
                    answers = attack(base)
                    time.sleep(0.1)  # the probe that started last has ended
                    p95, peak, bad, probes = sampler.window(t0, time.monotonic() - 0.1)
                    said = ", ".join(f"{code}×{n}" for code, n in sorted(answers.items()))
                    rows.append(Row(
                        f"attack: {name}: /api/health p95", "idle lab", quiet,
                        "under attack", p95, "s", f"≤ {HEALTH_TARGET_S * 1000:.0f} ms",
                        p95 <= HEALTH_TARGET_S and not bad and not any(map(_failed, answers)),
                        f"answers {said}; API peak {peak:.0f} MB (idle {quiet_mb:.0f} MB); "
                        f"{probes} health probes"
                        + (f"; {bad} health answers not 200" if bad else "")))
            after = _inventory(base, ids)
        finally:
            stop(proc)
    lost = [key for key in before if key != "runs" and before[key] != after[key]]
    lost += [f"run {r}" for r in set(before["runs"]) - set(after["runs"])]  # type: ignore[arg-type]
    rows.append(Row("attacks: stored runs, points and models lost", "held before",
                    len(before), "changed after", len(lost), "items", "0 lost", not lost,
                    ", ".join(lost) or f"{before['points']:,} CSV rows, 3 models, "
                    f"{len(before['runs'])} runs unchanged"))  # type: ignore[arg-type]
    return rows


if __name__ == "__main__":
    for row in run(smoke=bool(os.environ.get("SMOKE"))):
        print(f"{row.benchmark}: {row.epoque_value * 1000:.0f} vs {row.baseline_value * 1000:.0f}"
              f" ms ({row.note})" if row.unit == "s" else f"{row.benchmark}: {row.note}")
