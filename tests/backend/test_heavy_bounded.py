"""Heavy answers are bounded: predictors are cached per run, CSV and model downloads stream,
/metrics without downsampling is capped, studies are listed a page at a time, previews run in
threads under a small limit."""

from __future__ import annotations

import csv
import io
import itertools
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import anyio
import torch
from fastapi.testclient import TestClient

from backend import heavy
from backend.app import create_app
from backend.config import get_settings
from backend.db import new_session
from backend.runs import service
from backend.runs.lifecycle import claim_run, finish_run, record_epoch
from backend.runs.predictors import predictors
from tests.own_loop import on_own_loop
from worker.engine.models import build_model
from worker.engine.spec import parse_spec


def _finished_run(client: TestClient, points: list[tuple[str, int, float | None]]) -> int:
    spec = parse_spec({"data": {"dataset": "moons"}, "model": {"hidden": [8]},
                       "training": {"max_epochs": 1}})
    run_id = client.post("/api/runs", json=spec.model_dump(mode="json")).json()["id"]
    buffer = io.BytesIO()
    torch.save({"spec": spec.model_dump(mode="json"),
                "state_dict": build_model(spec, (2,), 2).state_dict(),
                "classes": ["0", "1"], "input_shape": [2]}, buffer)
    with new_session() as session:
        token = claim_run(session=session, run_id=run_id, worker="test").token
        record_epoch(session=session, run_id=run_id, token=token, epoch=1, points=points)
        finish_run(session=session, run_id=run_id, token=token, status="succeeded", result={},
                   model=buffer.getvalue())
    return run_id


def test_predict_builds_each_runs_model_once(configure, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_PREDICTOR_CACHE", "1")
    configure()
    predictors.clear()
    with TestClient(create_app()) as client:
        first, second = (_finished_run(client, []) for _ in range(2))
        builds = predictors.builds
        for _ in range(3):
            answer = client.post(f"/api/runs/{first}/predict", json={"inputs": [[0.1, 0.2]]})
            assert answer.status_code == 200 and len(answer.json()["probabilities"]) == 1
        assert predictors.builds == builds + 1
        client.post(f"/api/runs/{second}/predict", json={"inputs": [[0.1, 0.2]]})
        client.post(f"/api/runs/{first}/predict", json={"inputs": [[0.1, 0.2]]})
        assert predictors.builds == builds + 3  # one model kept: the other was evicted


def test_csv_streams_the_same_rows_as_the_points(db_url, configure) -> None:
    """Every point once, pages and series in order, floats exact (repr round-trips), NaN as an
    empty cell and a key that needs CSV quoting quoted: on SQLite and PostgreSQL."""
    configure(database_url=db_url)
    many = 2 * service.CSV_PAGE + 5
    odd = 'loss, "smoothed"'
    points = [("b_loss", x, x / 7) for x in range(many)] + [
        ("a_acc", 1, None), ("b_loss", -1, 2.0), (odd, 3, 0.1 + 0.2), (odd, 4, -1e-300)]
    with TestClient(create_app()) as client:
        run_id = _finished_run(client, points)
        with new_session() as session:
            series, _ = service.get_points(session=session, run_id=run_id)
        expected = [["key", "x", "value"]] + [[key, str(x), "" if v is None else repr(v)]
                                              for key, pts in series.items() for x, v in pts]
        answer = client.get(f"/api/runs/{run_id}/metrics.csv")
        assert "content-length" not in answer.headers  # streamed, never built whole
        body = list(csv.reader(io.StringIO(answer.text)))
        assert body == expected and len(body) == many + 5
        assert [float(v) for k, _, v in body if k == odd] == [0.1 + 0.2, -1e-300]
        assert f'"loss, ""smoothed""",3,{0.1 + 0.2!r}' in answer.text
        only = client.get(f"/api/runs/{run_id}/metrics.csv", params={"keys": "a_acc"})
        assert only.text.splitlines() == ["key,x,value", "a_acc,1,"]


def test_metrics_without_points_are_capped_with_a_422(configure, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_MAX_METRIC_POINTS", "10")
    configure()
    with TestClient(create_app()) as client:
        run_id = _finished_run(client, [("loss", x, 1.0 / (x + 1)) for x in range(20)])
        whole = client.get(f"/api/runs/{run_id}/metrics")
        assert whole.status_code == 422 and whole.json()["detail"][0]["field"] == "points"
        assert "max_metric_points" in whole.json()["detail"][0]["msg"]
        reduced = client.get(f"/api/runs/{run_id}/metrics", params={"points": 10})
        assert reduced.status_code == 200 and len(reduced.json()["series"]["loss"]) <= 10
        cursor = reduced.json()["cursor"]
        tail = client.get(f"/api/runs/{run_id}/metrics", params={"after": cursor - 5})
        assert tail.status_code == 200 and len(tail.json()["series"]["loss"]) == 5


def test_studies_are_listed_a_page_at_a_time(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        ids = [client.post("/api/studies", json={"name": f"s{i}"}).json()["id"] for i in range(3)]
        page = client.get("/api/studies", params={"limit": 2}).json()
        assert [s["id"] for s in page] == ids[::-1][:2]
        rest = client.get("/api/studies", params={"limit": 2, "offset": 2}).json()
        assert [s["id"] for s in rest] == ids[:1]
        assert client.get("/api/studies", params={"limit": 0}).status_code == 422


def test_previews_share_a_small_limiter(configure, monkeypatch) -> None:
    monkeypatch.setenv("EPOQUE_PREVIEW_CONCURRENCY", "1")
    configure()
    app = create_app()
    with TestClient(app) as client:
        body = {"dataset": "shapes", "n": 2, "augment": [{"op": "random_rotation", "degrees": 9}]}
        assert client.post("/api/previews/augment", json=body).status_code == 200
        limiter = app.state.preview_limiter
        assert limiter.total_tokens == 1 and limiter.borrowed_tokens == 0


def test_heavy_pieces_take_turns_in_a_bounded_number_of_threads(monkeypatch) -> None:
    """Four streams and two predictions at once, EPOQUE_HEAVY_CONCURRENCY=2: never more than two
    pieces are computed at the same moment, and every stream still gets all its pieces in order."""
    monkeypatch.setenv("EPOQUE_HEAVY_CONCURRENCY", "2")
    get_settings.cache_clear()
    busy, most, lock = [0], [0], threading.Lock()
    # The first two pieces wait for each other: proof that two run at once, whatever the
    # machine's load (a bound of one would break the barrier), where a sleep only made it likely.
    pair = threading.Barrier(2, timeout=30)
    started = itertools.count()

    def work(value: int) -> int:
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        if next(started) < 2:
            pair.wait()
        time.sleep(0.005)  # room for unbounded threads to overlap a third; nothing is timed
        with lock:
            busy[0] -= 1
        return value

    def pieces(n: int) -> Iterator[int]:
        for i in range(n):
            yield work(i)

    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace()))

    async def main() -> list[list[int]]:
        async def drain(n: int) -> list[int]:
            return [piece async for piece in heavy.stream(request, pieces(n))]

        results: list[list[int]] = [[] for _ in range(6)]

        async def one(k: int) -> None:
            results[k] = await drain(5) if k < 4 else [await heavy.run(request, work, k)]

        async with anyio.create_task_group() as group:
            for k in range(6):
                group.start_soon(one, k)
        return results

    results = on_own_loop(anyio.run, main)
    assert results == [list(range(5))] * 4 + [[4], [5]]
    assert most[0] == 2  # the pair met, and no third piece ever ran beside them
