"""The stream: catch-up by cursor, live points, final status; a reconnect is exact."""

from __future__ import annotations

from collections import Counter

import pytest
from fastapi.testclient import TestClient

from backend.app import create_app
from tests.conftest import wait_for

SPEC = {"name": "stream test", "training": {"max_epochs": 30}}


def _collect(ws, points: list[tuple[str, int, float | None]], stop_after_points: int | None):
    """Read messages into ``points``; return (last cursor, last message type)."""
    cursor, kind = 0, None
    while True:
        message = ws.receive_json()
        assert "cursor" in message and message["cursor"] >= cursor
        cursor, kind = message["cursor"], message["type"]
        if kind == "points":
            for key, series in message["series"].items():
                points.extend((key, x, v) for x, v in series)
        if kind == "end" or (stop_after_points is not None and len(points) >= stop_after_points):
            return cursor, kind, message


# Its stream reads block until a message comes: this deadline ends them if none does.
@pytest.mark.timeout(300)
def test_reconnect_with_cursor_gets_every_point_exactly_once(configure, start_worker,
                                                             hold) -> None:
    env = configure()
    start_worker(env)
    with TestClient(create_app()) as client:
        wait_for(lambda: client.get("/api/health").json()["workers"], 60, "the worker")
        hold.every_run_at(3)  # mid-run for as long as the first client reads (worker/testhold.py)
        run = client.post("/api/runs", json=SPEC).json()
        hold.held_at(run["id"], 3)
        so_far = client.get(f"/api/runs/{run['id']}/metrics").json()["series"]
        points: list[tuple[str, int, float | None]] = []
        with client.websocket_connect(f"/api/runs/{run['id']}/stream") as ws:
            cursor, kind, _ = _collect(ws, points, stop_after_points=sum(map(len, so_far.values())))
        assert kind == "points"
        assert {x for k, x, _ in points if k == "val_accuracy"} == {1, 2, 3}
        assert client.get(f"/api/runs/{run['id']}").json()["status"] == "running"
        hold.release(run["id"])

        with client.websocket_connect(f"/api/runs/{run['id']}/stream?after={cursor}") as ws:
            _, kind, end = _collect(ws, points, stop_after_points=None)
        assert kind == "end" and end["run"]["status"] == "succeeded"

        counts = Counter((key, x) for key, x, _ in points)
        assert max(counts.values()) == 1, "a point arrived twice"
        stored = client.get(f"/api/runs/{run['id']}/metrics").json()["series"]
        stored_points = sorted((k, x, v) for k, s in stored.items() for x, v in s)
        assert sorted(points) == stored_points  # none missing, none extra
        assert {x for k, x, _ in points if k == "val_accuracy"} == set(range(1, 31))

        # A late client replays everything, then gets the final status and the socket closes.
        replay: list[tuple[str, int, float | None]] = []
        with client.websocket_connect(f"/api/runs/{run['id']}/stream") as ws:
            _, kind, _ = _collect(ws, replay, stop_after_points=None)
        assert kind == "end" and sorted(replay) == stored_points


def test_stream_of_unknown_run_says_so(configure) -> None:
    configure()
    with TestClient(create_app()) as client, client.websocket_connect("/api/runs/424242/stream") as ws:
        message = ws.receive_json()
        assert message["type"] == "error" and "not found" in message["message"]


def test_a_viewer_far_ahead_does_not_stop_the_others(configure) -> None:
    """A client holding ``?after=10**15`` joined first used to start the run's shared feed at its
    cursor: every later viewer got the catch-up, then nothing. Now each viewer's cursor is its
    own and one past the run's newest point is clamped to it. Points are written here through
    the worker's own lifecycle calls, one flush at a time, each awaited by the viewers."""
    from backend.db import new_session
    from backend.runs.lifecycle import claim_run, finish_run, record_epoch

    configure()
    with TestClient(create_app()) as client:
        run_id = client.post("/api/runs", json=SPEC).json()["id"]
        with new_session() as session:
            token = claim_run(session=session, run_id=run_id, worker="test").token

        def flush(epoch: int) -> None:
            with new_session() as session:
                record_epoch(session=session, run_id=run_id, token=token, epoch=epoch,
                             points=[("train_loss", epoch, 1 / epoch), ("val_loss", epoch, 2 / epoch)])

        def receive_epoch(ws, points, epoch: int) -> None:
            while ("val_loss", epoch, 2 / epoch) not in points:
                _collect(ws, points, stop_after_points=len(points) + 1)

        flush(1)
        with client.websocket_connect(f"/api/runs/{run_id}/stream?after={10**15}") as ahead:
            first = ahead.receive_json()  # it has joined (and, before, started) the feed
            newest = client.get(f"/api/runs/{run_id}/metrics").json()["cursor"]
            assert first["cursor"] == newest  # clamped to the run's newest point
            with client.websocket_connect(f"/api/runs/{run_id}/stream") as viewer:
                seen: list[tuple[str, int, float | None]] = []
                ahead_seen: list[tuple[str, int, float | None]] = []
                receive_epoch(viewer, seen, 1)
                for epoch in (2, 3, 4):  # several flushes: the old feed lost all but the first
                    flush(epoch)
                    receive_epoch(viewer, seen, epoch)
                    receive_epoch(ahead, ahead_seen, epoch)
                with new_session() as session:
                    finish_run(session=session, run_id=run_id, token=token, status="succeeded",
                               result={})
                _, kind, _ = _collect(viewer, seen, stop_after_points=None)
                assert kind == "end"
                _, kind, _ = _collect(ahead, ahead_seen, stop_after_points=None)
                assert kind == "end"
        stored = client.get(f"/api/runs/{run_id}/metrics").json()["series"]
        stored_points = sorted((k, x, v) for k, s in stored.items() for x, v in s)
        assert sorted(seen) == stored_points and len(stored_points) == 8
        # The client far ahead gets what came after it joined, once each.
        assert sorted(ahead_seen) == [p for p in stored_points if p[1] > 1]
