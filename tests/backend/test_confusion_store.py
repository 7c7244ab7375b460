"""Stored confusion matrices (service.log_confusions / get_confusion): the byte budget, the
default epoch, deletion with the run; on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from backend.db import new_session
from backend.errors import NotFound
from backend.runs import service
from backend.runs.models import Run, RunConfusion
from worker.engine.spec import parse_spec


def matrix(epoch: int) -> list[list[int]]:
    return [[epoch, 1], [2, 30 + epoch]]


def test_budget_default_epoch_and_deletion(configure, db_url) -> None:
    configure(database_url=db_url)
    size = len(json.dumps(matrix(1), separators=(",", ":")))  # "[[1,1],[2,31]]": 14 bytes
    with new_session() as session:
        run_id = service.create_run(session=session, spec=parse_spec({})).id
        session.commit()
        with pytest.raises(NotFound, match="no confusion matrix yet"):
            service.get_confusion(session=session, run_id=run_id)
        service.log_confusions(session=session, run_id=run_id,
                               matrices=[(e, matrix(e)) for e in (1, 2)], budget=3 * size)
        session.commit()
        # Two stored: the third fits, the fourth is over the budget and not stored.
        service.log_confusions(session=session, run_id=run_id,
                               matrices=[(e, matrix(e)) for e in (3, 4)], budget=3 * size)
        session.commit()
        newest = service.get_confusion(session=session, run_id=run_id)  # no result yet
        assert newest == {"epoch": 3, "epochs": [1, 2, 3], "matrix": matrix(3),
                          "classes": ["0", "1"]}  # not digits' 10 classes: their indices
        with pytest.raises(NotFound, match="epoch 4"):
            service.get_confusion(session=session, run_id=run_id, epoch=4)
        run = session.get(Run, run_id)
        run.result = {"kept": "best", "best": {"epoch": 2}, "final": {"epoch": 3}}
        session.commit()
        assert service.get_confusion(session=session, run_id=run_id)["epoch"] == 2
        run.result = {**run.result, "kept": "last"}
        session.commit()
        assert service.get_confusion(session=session, run_id=run_id)["epoch"] == 3
        assert service.get_confusion(session=session, run_id=run_id, epoch=1)["matrix"] == matrix(1)
        service.delete_run(session=session, run_id=run_id)
        session.commit()
        left = session.scalar(select(func.count()).select_from(RunConfusion)
                              .where(RunConfusion.run_id == run_id))
        assert left == 0


def test_returned_epoch():
    assert service.returned_epoch(None) is None
    assert service.returned_epoch({"kept": "best", "best": {"epoch": 0}}) == 0
    assert service.returned_epoch({"kept": "last", "final": {"epoch": 7}}) == 7
