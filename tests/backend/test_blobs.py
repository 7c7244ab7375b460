"""Models and checkpoints of any size the limits admit are stored, on SQLite and PostgreSQL:
in pieces, so no single value meets a database's per-value limit (SQLite's 1 GB once failed a
4096 × 6 MLP's checkpoint with "string or blob too big", and the run's error showed the SQL)."""

from __future__ import annotations

import os
import sqlite3

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import DataError

from backend.app import create_app
from backend.db import engine_for, new_session
from backend.migrate import alembic_config
from backend.runs import blobs
from backend.runs.lifecycle import claim_run, finish_run, load_checkpoint, record_epoch


def _train_and_store(client: TestClient, checkpoint: bytes, model: bytes) -> int:
    run_id = client.post("/api/runs", json={"training": {"max_epochs": 1}}).json()["id"]
    with new_session() as session:
        token = claim_run(session=session, run_id=run_id, worker="test").token
        record_epoch(session=session, run_id=run_id, token=token, epoch=1,
                     points=[("train_loss", 1, 0.5)], checkpoint=checkpoint)
        assert load_checkpoint(session=session, run_id=run_id) == (1, checkpoint)
        finish_run(session=session, run_id=run_id, token=token, status="succeeded",
                   result={}, model=model)
        assert load_checkpoint(session=session, run_id=run_id) is None
    return run_id


def test_blobs_larger_than_a_piece_round_trip_byte_exact(configure, db_url) -> None:
    configure(database_url=db_url)
    checkpoint = os.urandom(2 * blobs.CHUNK_BYTES + 123)
    model = os.urandom(blobs.CHUNK_BYTES + 1)
    with TestClient(create_app()) as client:
        run_id = _train_and_store(client, checkpoint, model)
        download = client.get(f"/api/runs/{run_id}/model")
        assert download.status_code == 200 and download.content == model
        assert int(download.headers["content-length"]) == len(model)
        with new_session() as session:
            assert b"".join(blobs.stream_blob("model", run_id)) == model
            blobs.write_blob(session, "model", run_id, b"")  # empty blobs too
            session.commit()
            assert blobs.read_blob(session, "model", run_id) == b""
        assert client.delete(f"/api/runs/{run_id}").status_code == 204
        with new_session() as session:  # its pieces went with it
            assert blobs.read_blob(session, "model", run_id) == b""


def test_a_blob_over_the_databases_value_limit_is_stored(configure, tmp_path) -> None:
    # SQLite's per-value limit lowered to just over one piece: a blob three pieces long is
    # what a 4096 × 6 MLP's checkpoint is against the default 1 GB.
    url = f"sqlite:///{tmp_path / 'limited.sqlite'}"
    configure(database_url=url)
    engine_for(url).dispose()

    @event.listens_for(engine_for(url), "connect")
    def _limit(dbapi_connection, _record) -> None:
        dbapi_connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, blobs.CHUNK_BYTES + 4096)

    big = os.urandom(3 * blobs.CHUNK_BYTES)
    with TestClient(create_app()) as client:
        run_id = _train_and_store(client, big, big)
        assert client.get(f"/api/runs/{run_id}/model").content == big
        with new_session() as session, pytest.raises(DataError, match="too big"):
            blobs.write_blob(session, "model", run_id, big, chunk_bytes=len(big))  # whole: no
    event.remove(engine_for(url), "connect", _limit)
    engine_for(url).dispose()


def test_models_stored_whole_before_are_kept_by_the_migration(configure, tmp_path) -> None:
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    command.upgrade(alembic_config(url), "0007")
    with engine_for(url).begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (id, status, spec, queue, created_at, epoch, max_epochs, attempt, "
            "cancel_requested) VALUES (1, 'succeeded', '{}', 'cpu', '2026-01-01', 1, 1, 1, 0)")
        conn.exec_driver_sql("INSERT INTO run_models (run_id, blob, created_at) "
                             "VALUES (1, X'00FF10', '2026-01-01')")
    configure(database_url=url)  # upgrades to head
    with new_session() as session:
        assert blobs.read_blob(session, "model", 1) == b"\x00\xff\x10"
    engine_for(url).dispose()
