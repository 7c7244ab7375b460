"""The landscape's states as the API answers them (backend/runs/landscape.py), on SQLite and
PostgreSQL: queued on the first request, 202 while pending, 200 once done, a failure told
once (409) and then started again; no model or an ensemble: 409."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from backend.db import new_session, utcnow
from backend.errors import Conflict
from backend.runs import blobs, landscape, service, trajectory
from backend.runs.models import RunLandscape, RunModel
from worker.engine.spec import parse_spec


def with_model(session, spec: dict) -> int:
    run_id = service.create_run(session=session, spec=parse_spec(spec)).id
    size = blobs.write_blob(session, "model", run_id, b"not read here")
    session.add(RunModel(run_id=run_id, size=size, created_at=utcnow()))
    session.commit()
    return run_id


def test_landscape_states(configure, db_url) -> None:
    configure(database_url=db_url)
    with new_session() as session:
        bare = service.create_run(session=session, spec=parse_spec({})).id
        with pytest.raises(Conflict, match="no model yet"):
            landscape.get_or_start(session=session, run_id=bare, resolution=21)
        ensemble = with_model(session, {"ensemble": {"members": 2}})
        with pytest.raises(Conflict, match="single network"):
            landscape.get_or_start(session=session, run_id=ensemble, resolution=21)

        run_id = with_model(session, {})
        assert landscape.get_or_start(session=session, run_id=run_id, resolution=21) == (
            202, {"status": "queued", "progress": 0.0, "resolution": 21})
        session.execute(update(RunLandscape).values(status="running", progress=0.4))
        session.commit()
        session.expire_all()
        assert landscape.get_or_start(session=session, run_id=run_id, resolution=21)[1][
            "progress"] == pytest.approx(0.4)
        # Untouched for longer than STALE_SECONDS: its worker is gone, it is queued again.
        later = utcnow() + timedelta(seconds=landscape.STALE_SECONDS + 1)
        assert landscape.get_or_start(session=session, run_id=run_id, resolution=21,
                                      now=later)[1] == {"status": "queued", "progress": 0.0,
                                                        "resolution": 21}
        session.execute(update(RunLandscape).values(status="running", progress=0.4))
        session.commit()
        session.expire_all()
        soon = utcnow() + timedelta(seconds=landscape.STALE_SECONDS - 60)
        assert landscape.get_or_start(session=session, run_id=run_id, resolution=21,
                                      now=soon)[1]["status"] == "running"
        session.execute(update(RunLandscape).values(status="failed", error="out of memory"))
        session.commit()
        session.expire_all()
        with pytest.raises(Conflict, match="could not be computed: out of memory"):
            landscape.get_or_start(session=session, run_id=run_id, resolution=21)
        code, body = landscape.get_or_start(session=session, run_id=run_id, resolution=21)
        assert (code, body["status"]) == (202, "queued")  # asked again: started again
        session.execute(update(RunLandscape).values(status="done", progress=1.0,
                                                     result={"alphas": [0.0], "loss": [[1.5]]}))
        session.commit()
        session.expire_all()
        assert landscape.get_or_start(session=session, run_id=run_id, resolution=21) == (
            200, {"alphas": [0.0], "loss": [[1.5]], "status": "done", "progress": 1.0})
        other = landscape.get_or_start(session=session, run_id=run_id, resolution=11)
        assert other[0] == 202  # each resolution is its own landscape
        trajectory.log_trajectory(session=session, run_id=run_id,
                                 sketches=[(0, [[1.0], [2.0]]), (1, [[3.0], [4.0]])])
        trajectory.log_trajectory(session=session, run_id=run_id, sketches=[(1, [[9.0], [9.0]])])
        session.commit()
        assert trajectory.trajectory(session=session, run_id=run_id) == [
            (0, [[1.0], [2.0]]), (1, [[3.0], [4.0]])]  # a resumed epoch keeps the first sketch
        service.delete_run(session=session, run_id=run_id)
        assert session.query(RunLandscape).count() == 0
        assert trajectory.trajectory(session=session, run_id=run_id) == []
