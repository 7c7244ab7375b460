"""The cheap questions about a run's points (how many past a cursor, which keys) give exactly
what reading every point would: on runs whose ids interleave, with NaN points, key filters and
cursors, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import math

from backend.db import new_session
from backend.runs import service
from backend.runs.lifecycle import claim_run, finish_run, record_epoch
from worker.engine.spec import parse_spec


def _two_interleaved_runs() -> tuple[int, int]:
    spec = parse_spec({"data": {"dataset": "moons"}, "training": {"max_epochs": 1}})
    with new_session() as session:
        ids = [service.create_run(session=session, spec=spec).id for _ in range(2)]
        session.commit()
    with new_session() as session:
        tokens = [claim_run(session=session, run_id=i, worker="test").token for i in ids]
        for epoch in range(1, 7):  # the runs' points alternate, so their ids interleave
            for run_id, token in zip(ids, tokens, strict=True):
                record_epoch(session=session, run_id=run_id, token=token, epoch=epoch, points=[
                    ("loss", epoch, 1.0 / epoch), ("acc", epoch, math.nan if epoch == 3 else 0.5),
                    ("heldout/test_acc", epoch, 0.4)])
        finish_run(session=session, run_id=ids[0], token=tokens[0], status="succeeded",
                   result={}, model=b"m")
    return ids[0], ids[1]


def test_more_points_than_matches_a_full_read(db_url, configure) -> None:
    configure(database_url=db_url)
    ended, running = _two_interleaved_runs()
    with new_session() as session:
        for run_id in (ended, running):
            cursors = [0, *sorted({c for c in range(service.last_cursor(
                session=session, run_id=run_id) + 2) if c % 5 == 0})]
            for after, keys in itertools.product(cursors, [None, ["loss"], ["acc", "loss"]]):
                series, _ = service.get_points(session=session, run_id=run_id, after=after,
                                               keys=keys, held_out=True)
                count = sum(len(points) for points in series.values())
                for cap in {0, 1, count - 1, count, count + 1, 2 * count + 3} - {-1}:
                    assert service.more_points_than(
                        session=session, run_id=run_id, cap=cap, after=after, keys=keys
                    ) == (count > cap), (run_id, after, keys, cap, count)


def test_series_keys_are_the_distinct_keys_held_out_once_ended(db_url, configure) -> None:
    configure(database_url=db_url)
    ended, running = _two_interleaved_runs()
    with new_session() as session:
        assert service.series_keys(session=session, run_id=ended) == [
            "acc", "heldout/test_acc", "loss"]
        assert service.series_keys(session=session, run_id=running) == ["acc", "loss"]
        assert service.series_keys(session=session, run_id=10**6) == []
