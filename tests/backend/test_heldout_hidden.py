"""Held-out test figures per epoch (``heldout/…``) are shown only once a run has ended: not in
/metrics (raw, downsampled, CSV) nor in the stream before, all of them after."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backend.app import create_app
from backend.db import new_session
from backend.runs.service import log_batch


def test_heldout_series_appear_only_after_the_run_ends(configure) -> None:
    configure()  # no worker: the run stays queued until cancelled
    with TestClient(create_app()) as client:
        run = client.post("/api/runs", json={"training": {"max_epochs": 3}}).json()
        rid = run["id"]
        with new_session() as session:
            log_batch(session=session, run_id=rid, points=[
                (key, e, 0.1 * e) for e in (1, 2, 3)
                for key in ("val_accuracy", "heldout/test_accuracy", "heldout/test_loss")])
            session.commit()

        def shown() -> list[set[str]]:
            raw = client.get(f"/api/runs/{rid}/metrics").json()["series"]
            named = client.get(f"/api/runs/{rid}/metrics",
                               params={"keys": "heldout/test_accuracy"}).json()["series"]
            reduced = client.get(f"/api/runs/{rid}/metrics", params={"points": 10}).json()
            named_reduced = client.get(f"/api/runs/{rid}/metrics", params={
                "points": 10, "keys": "heldout/test_loss,val_accuracy"}).json()["series"]
            csv_keys = {line.split(",")[0] for line in
                        client.get(f"/api/runs/{rid}/metrics.csv").text.splitlines()[1:]}
            return [set(raw), set(named), set(reduced["series"]), set(named_reduced), csv_keys]

        assert shown() == [{"val_accuracy"}, set(), {"val_accuracy"}, {"val_accuracy"},
                           {"val_accuracy"}]
        with client.websocket_connect(f"/api/runs/{rid}/stream") as ws:
            first = ws.receive_json()
            assert first["type"] == "points" and set(first["series"]) == {"val_accuracy"}
            assert first["cursor"] == client.get(f"/api/runs/{rid}/metrics").json()["cursor"]
        early = client.get(f"/api/runs/{rid}/early-stopping")
        assert early.status_code == 409 and "has not ended" in early.json()["detail"]

        assert client.post(f"/api/runs/{rid}/cancel").json()["status"] == "cancelled"
        both = {"val_accuracy", "heldout/test_accuracy", "heldout/test_loss"}
        assert shown() == [both, {"heldout/test_accuracy"}, both,
                           {"val_accuracy", "heldout/test_loss"}, both]
        with client.websocket_connect(f"/api/runs/{rid}/stream") as ws:
            messages = [ws.receive_json()]
            while messages[-1]["type"] != "end":
                messages.append(ws.receive_json())
        # as it goes, never the held-out series; then all of them at once, just before the end
        points = [m["series"] for m in messages if m["type"] == "points"]
        assert [set(s) for s in points] == [{"val_accuracy"},
                                            {"heldout/test_accuracy", "heldout/test_loss"}]
        assert messages[-2]["series"] == points[-1]
        assert client.get(f"/api/runs/{rid}/metrics").json()["series"][
            "heldout/test_accuracy"] == [[1, 0.1], [2, 0.2], [3, 0.30000000000000004]]


def test_early_stopping_refuses_bad_patience(configure) -> None:
    configure()
    with TestClient(create_app()) as client:
        rid = client.post("/api/runs", json={}).json()["id"]
        for bad in ("x", "0", "1,,2", "", "5,-1", "10001"):
            answer = client.get(f"/api/runs/{rid}/early-stopping", params={"patience": bad})
            assert answer.status_code == 422, bad
            assert answer.json()["detail"][0]["field"] == "patience"
        assert client.get("/api/runs/999999/early-stopping").status_code == 404
