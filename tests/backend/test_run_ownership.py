"""Ids are never reused, and a stale worker (its run deleted, recovered or re-claimed) writes
nothing anywhere: every write of the worker must name its claim's token. On SQLite and on this
machine's PostgreSQL, through the lifecycle functions the worker calls."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from backend.db import new_session, utcnow
from backend.migrate import alembic_config
from backend.runs import lifecycle, service
from backend.runs.lifecycle import EpochUpdate, LeaseLost, RunGone
from backend.runs.models import MetricPoint, Run, RunBoundary, RunCheckpoint, RunModel
from backend.runs.recovery import recover_stale_runs
from backend.studies.service import create_study, delete_study
from worker.engine.spec import parse_spec


def _new_run(epochs: int = 5) -> int:
    with new_session() as session:
        return service.create_run(session=session, spec=parse_spec(
            {"training": {"max_epochs": epochs}})).id


def _claim(run_id: int) -> str:
    with new_session() as session:
        run = lifecycle.claim_run(session=session, run_id=run_id, worker="test")
        assert run is not None and run.token
        return run.token


def _claimed_with_an_epoch(checkpoint: bytes | None = None) -> tuple[int, str]:
    """A new run, claimed, with its first epoch written: (run id, token)."""
    run_id = _new_run()
    token = _claim(run_id)
    with new_session() as session:
        lifecycle.record_epoch(session=session, run_id=run_id, token=token, epoch=1,
                               points=[("train_loss", 1, 0.9)], checkpoint=checkpoint)
    return run_id, token


def _stored(run_id: int) -> dict[str, object]:
    """Everything a worker can write for a run, as stored."""
    with new_session() as session:
        run = session.get(Run, run_id)
        return {
            "points": sorted(session.execute(
                select(MetricPoint.key, MetricPoint.x, MetricPoint.value)
                .where(MetricPoint.run_id == run_id)).all()),
            "boundaries": list(session.scalars(
                select(RunBoundary.epoch).where(RunBoundary.run_id == run_id))),
            "checkpoint": lifecycle.load_checkpoint(session=session, run_id=run_id),
            "model": session.scalar(select(func.count()).select_from(RunModel)
                                    .where(RunModel.run_id == run_id)),
            "run": (run.status, run.epoch, run.heartbeat_at, run.result, run.error, run.pack),
        }


def _write_everything(run_id: int, token: str, epoch: int, value: float) -> None:
    """Each write the worker makes, as a stale attempt would make it; each must refuse."""
    with new_session() as session, pytest.raises((LeaseLost, RunGone)):
        lifecycle.record_epoch(
            session=session, run_id=run_id, token=token, epoch=epoch,
            points=[("train_loss", epoch, value)], boundaries=[(epoch, {"z": [value]})],
            checkpoint=b"stale snapshot")
    with new_session() as session:
        assert lifecycle.record_epochs(session=session, updates=[EpochUpdate(
            run_id, token, epoch, [("val_loss", epoch, value)], [], b"stale")]) == {}
    with new_session() as session:
        assert lifecycle.beat_run(session=session, run_id=run_id, token=token) is False
    with new_session() as session:
        lifecycle.unpack_runs(session=session, leases=[(run_id, token)])
    with new_session() as session, pytest.raises((LeaseLost, RunGone)):
        lifecycle.finish_run(session=session, run_id=run_id, token=token,
                             status="succeeded", result={"stale": True}, model=b"stale")


def test_a_deleted_runs_id_is_not_reused_and_its_old_worker_writes_nothing(
        configure, db_url: str) -> None:
    configure(database_url=db_url)
    old, old_token = _claimed_with_an_epoch()
    with new_session() as session:
        service.delete_run(session=session, run_id=old)

    new = _new_run(epochs=3)
    assert new != old and new > old  # the highest id was deleted: still not handed out again
    new_token = _claim(new)
    assert new_token != old_token
    with new_session() as session:
        lifecycle.record_epoch(session=session, run_id=new, token=new_token, epoch=1,
                               points=[("train_loss", 1, 0.5)])
        session.execute(update(Run).where(Run.id == new).values(pack=new))
        session.commit()
    before = _stored(new)

    # The old worker goes on: under its own id (gone), and even were it to address the new
    # run's id (as it did when ids were reused), its token owns nothing.
    _write_everything(old, old_token, epoch=3, value=123.0)
    _write_everything(new, old_token, epoch=3, value=123.0)
    assert _stored(new) == before
    with new_session() as session:
        assert session.get(Run, old) is None

    # The new run's own worker still writes.
    with new_session() as session:
        lifecycle.finish_run(session=session, run_id=new, token=new_token, status="succeeded",
                             result={"ok": 1})
    assert _stored(new)["run"][0] == "succeeded"


def test_a_recovered_runs_first_attempt_writes_nothing_after_the_takeover(
        configure, db_url: str) -> None:
    configure(database_url=db_url)
    run_id, first = _claimed_with_an_epoch(checkpoint=b"first's")
    with new_session() as session:
        session.execute(update(Run).where(Run.id == run_id)
                        .values(heartbeat_at=utcnow() - timedelta(hours=1)))
        session.commit()
        assert recover_stale_runs(session=session, timeout_seconds=60, max_attempts=3) == [
            (run_id, "cpu", "requeued")]
    second = _claim(run_id)
    assert second != first
    before = _stored(run_id)
    _write_everything(run_id, first, epoch=2, value=7.0)
    assert _stored(run_id) == before
    with new_session() as session:  # the checkpoint the second attempt writes is its own
        lifecycle.record_epoch(session=session, run_id=run_id, token=second, epoch=2,
                               points=[("train_loss", 2, 0.7)], checkpoint=b"second's")
        assert session.scalar(select(RunCheckpoint.attempt)) == 2


def test_study_ids_are_not_reused(configure, db_url: str) -> None:
    configure(database_url=db_url)
    with new_session() as session:
        first, _ = create_study(session=session, name="a", base={}, grid={"seed": [1, 2]})
        delete_study(session=session, study_id=first.id)
        second, _ = create_study(session=session, name="b", base={}, grid={"seed": [1]})
    assert second.id > first.id


def test_the_migration_keeps_every_row_and_stops_reuse_on_an_existing_sqlite_lab(
        configure, tmp_path: Path) -> None:
    """A lab created before AUTOINCREMENT: the tables are rebuilt, no row that referenced them
    is lost (the drop must not cascade), and the highest id is not reused after a delete."""
    from alembic import command

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    command.upgrade(alembic_config(url), "0007")
    db = sqlite3.connect(tmp_path / "old.sqlite")
    db.execute("INSERT INTO runs (id, status, spec, queue, created_at, epoch, max_epochs, "
               "attempt, cancel_requested) VALUES (1, 'succeeded', '{}', 'cpu', "
               "'2026-01-01 00:00:00', 1, 1, 1, 0), (2, 'succeeded', '{}', 'cpu', "
               "'2026-01-01 00:00:00', 1, 1, 1, 0)")
    db.execute("INSERT INTO metric_points (run_id, key, x, value) VALUES (1, 'k', 1, 0.5), "
               "(2, 'k', 1, 0.25)")
    db.execute("INSERT INTO run_models (run_id, blob, created_at) VALUES "
               "(2, x'00', '2026-01-01 00:00:00')")
    db.commit()
    db.close()

    configure(database_url=url)  # upgrades to head
    with new_session() as session:
        assert session.scalar(select(func.count()).select_from(MetricPoint)) == 2
        assert session.scalar(select(func.count()).select_from(RunModel)) == 2 - 1
        service.delete_run(session=session, run_id=2)
        assert session.scalar(select(func.count()).select_from(MetricPoint)) == 1  # cascades
    assert _new_run() == 3
