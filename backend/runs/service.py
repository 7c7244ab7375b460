"""Runs and their metric points: create, read, delete, and the one write path ``log_batch``."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import case, delete, func, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.broker import enqueue_run
from backend.config import get_settings
from backend.db import new_session, utcnow
from backend.errors import Conflict, NotFound, TooMany, Unavailable
from backend.runs import blobs, health
from backend.runs.models import (
    FINAL_STATUSES,
    ROLLUP_BLOCK,
    MetricPoint,
    MetricRollup,
    Run,
    RunBoundary,
    RunConfusion,
    RunModel,
)
from backend.spec_errors import SpecInvalid
from backend.spec_limits import check_spec_limits
from worker.engine.datasets.catalog import dataset_info
from worker.engine.spec import Spec, parse_spec

Point = tuple[str, int, float | None]  # (key, x, value)

# Series a run shows only once it has ended: the test figures per epoch (SPEC.md, early-stopping
# what-ifs). Seen during training, the test set would become one more thing to choose by.
HELD_OUT = "heldout/"


def shows_held_out(*, session: Session, run_id: int) -> bool:
    run = session.get(Run, run_id)
    return run is not None and run.status in FINAL_STATUSES


def visible(keys: Iterable[str], held_out: bool) -> list[str]:
    return [k for k in keys if held_out or not k.startswith(HELD_OUT)]


def queue_for(spec: Spec) -> str:
    """Runs that ask for CUDA go to GPU workers; everything else to the CPU queue."""
    return "gpu" if spec.device.startswith("cuda") else "cpu"


def new_run(spec: Spec, study_id: int | None = None) -> Run:
    return Run(
        name=spec.name,
        status="queued",
        spec=spec.model_dump(mode="json"),
        study_id=study_id,
        queue=queue_for(spec),
        created_at=utcnow(),
        epoch=0,
        max_epochs=spec.training.max_epochs,
        attempt=0,
        cancel_requested=False,
    )


def create_run(
    *, session: Session, spec: Spec, study_id: int | None = None, queue_limit: int | None = None
) -> Run:
    lock_queue(session)
    run = new_run(spec, study_id)
    session.add(run)
    session.flush()
    if queue_limit is not None:
        check_queue_room(session=session, limit=queue_limit)
    session.commit()
    return run


def lock_queue(session: Session) -> None:
    """Serialise run creation so the queue limit is exact. SQLite already lets one writer in
    at a time (from the first INSERT to the commit); PostgreSQL takes a transaction lock."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(4242)"))


def check_queue_room(*, session: Session, limit: int) -> None:
    """After this transaction's INSERTs, before its commit: more than ``limit`` queued runs
    means refusing cleanly (rolled back, nothing written)."""
    queued = session.scalar(select(func.count()).select_from(Run).where(Run.status == "queued"))
    if (queued or 0) > limit:
        session.rollback()
        raise TooMany(f"too many runs waiting; the limit max_queued_runs is {limit}")


def queued_counts(*, session: Session) -> dict[str, int]:
    """{queue: number of queued runs}, for the queues that have any."""
    return dict(session.execute(
        select(Run.queue, func.count()).where(Run.status == "queued").group_by(Run.queue)).all())


def submit_run(*, session: Session, spec_data: dict[str, Any], study_id: int | None = None) -> Run:
    """Validate, store and enqueue a run; a run the broker refuses is removed again."""
    try:
        spec = parse_spec(spec_data)
    except ValidationError as exc:
        raise SpecInvalid.from_validation(exc) from None
    check_spec_limits(spec, get_settings())
    run = create_run(session=session, spec=spec, study_id=study_id,
                     queue_limit=get_settings().max_queued_runs)
    try:
        enqueue_run(run.id, run.queue)
    except Exception as exc:
        delete_run(session=session, run_id=run.id)
        raise Unavailable(f"the broker could not take the run: {type(exc).__name__}") from exc
    return run


def get_run(*, session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


def list_runs(
    *, session: Session, status: str | None = None, study_id: int | None = None,
    limit: int = 500, offset: int = 0, class_id: int | None = None, student: int | None = None,
) -> Sequence[Run]:
    query = select(Run).order_by(Run.id.desc()).limit(limit).offset(offset)
    if class_id is not None:
        query = query.where(Run.class_id == class_id)
    if student is not None:
        query = query.where(Run.student == student)
    if status is not None:
        query = query.where(Run.status == status)
    if study_id is not None:
        query = query.where(Run.study_id == study_id)
    return session.scalars(query).all()


def delete_run(*, session: Session, run_id: int) -> None:
    get_run(session=session, run_id=run_id)
    # Points, boundaries and the model go with it: ON DELETE CASCADE (SQLite: foreign_keys on).
    session.execute(delete(Run).where(Run.id == run_id))
    session.commit()


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def insert_for(session: Session) -> Any:
    """The dialect's INSERT, which has ON CONFLICT (PostgreSQL and SQLite alike)."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def log_batch(*, session: Session, run_id: int, points: Iterable[Point]) -> None:
    """Insert points in one statement; a point already stored (a resumed epoch) is kept as is.
    The rollups are updated from the rows really inserted (RETURNING skips the kept ones)."""
    log_points(session=session, points={run_id: points})


def log_points(*, session: Session, points: Mapping[int, Iterable[Point]]) -> None:
    """``log_batch`` for several runs at once ({run id: points}): still one statement for the
    points and one for the rollups, however many runs (a pack's members)."""
    rows = [
        {"run_id": run_id, "key": key, "x": int(x), "value": _finite_or_none(value)}
        for run_id, run_points in points.items() for key, x, value in run_points
    ]
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        # Four arrays, whatever the number of rows: psycopg parses a multi-row VALUES
        # statement's placeholders in Python, ~0.1 ms a row (0.2 s for a 16-run pack's flush).
        inserted = session.execute(_UNNEST_POINTS, {
            name: [row[name] for row in rows] for name in ("run_id", "key", "x", "value")
        }).all()
    else:
        table = MetricPoint.__table__
        inserted = session.execute(
            insert_for(session)(table).on_conflict_do_nothing()
            .returning(table.c.run_id, table.c.key, table.c.x, table.c.value), rows
        ).all()
    _roll_up(session, inserted)


_UNNEST_POINTS = text(
    "INSERT INTO metric_points (run_id, key, x, value) "
    "SELECT * FROM unnest(CAST(:run_id AS integer[]), CAST(:key AS varchar[]), "
    "CAST(:x AS bigint[]), CAST(:value AS double precision[])) "
    "ON CONFLICT DO NOTHING RETURNING run_id, key, x, value"
)


def _roll_up(session: Session, inserted: Sequence[Any]) -> None:
    blocks: dict[tuple[int, str, int], list[Any]] = {}
    for run_id, key, x, value in inserted:
        if value is None:
            continue
        b = blocks.setdefault((run_id, key, x // ROLLUP_BLOCK), [0, x, value, x, value])
        b[0] += 1
        if value < b[2]:
            b[1], b[2] = x, value
        if value > b[4]:
            b[3], b[4] = x, value
    if not blocks:
        return
    stmt = insert_for(session)(MetricRollup.__table__)
    old, new = MetricRollup.__table__.c, stmt.excluded
    lower, higher = new.min_v < old.min_v, new.max_v > old.max_v
    session.execute(stmt.on_conflict_do_update(
        index_elements=["run_id", "key", "block"],
        set_={"n": old.n + new.n,
              "min_x": case((lower, new.min_x), else_=old.min_x),
              "min_v": case((lower, new.min_v), else_=old.min_v),
              "max_x": case((higher, new.max_x), else_=old.max_x),
              "max_v": case((higher, new.max_v), else_=old.max_v)},
    ), [{"run_id": run_id, "key": key, "block": block, "n": n, "min_x": lo_x, "min_v": lo_v,
         "max_x": hi_x, "max_v": hi_v}
        for (run_id, key, block), (n, lo_x, lo_v, hi_x, hi_v) in blocks.items()])


def get_points(
    *, session: Session, run_id: int, after: int = 0, keys: Sequence[str] | None = None,
    limit: int | None = None, until: int | None = None, held_out: bool | None = None,
) -> tuple[dict[str, list[list[Any]]], int]:
    """Points with after < id (≤ until), grouped by key, and the cursor that follows them.
    ``heldout/…`` points are left out (the cursor still passes them) unless ``held_out``,
    which by default is whether the run has ended."""
    if held_out is None:
        held_out = shows_held_out(session=session, run_id=run_id)
    query = (
        select(MetricPoint.id, MetricPoint.key, MetricPoint.x, MetricPoint.value)
        .where(MetricPoint.run_id == run_id, MetricPoint.id > after)
        .order_by(MetricPoint.id)
    )
    if keys:
        query = query.where(MetricPoint.key.in_(keys))
    if until is not None:
        query = query.where(MetricPoint.id <= until)
    if limit is not None:
        query = query.limit(limit)
    series: dict[str, list[list[Any]]] = {}
    cursor = after
    for point_id, key, x, value in session.execute(query):
        if held_out or not key.startswith(HELD_OUT):
            series.setdefault(key, []).append([x, value])
        cursor = point_id
    return series, cursor


def more_points_than(*, session: Session, run_id: int, cap: int, after: int = 0,
                     keys: Sequence[str] | None = None) -> bool:
    """Whether ``get_points`` would return more than ``cap`` points, settled by a cheap bound
    where one does: ids are unique across runs, so the run's newest id less the cursor bounds
    the count from above; from the start, the rollups' counts (every non-null point) bound it
    from below. Only in between are the points counted, and then only up to cap + 1: counting
    a 300,000-point run on every request kept both cores busy under a flood of them."""
    if last_cursor(session=session, run_id=run_id) - after <= cap:
        return False
    if after == 0:
        rolled = select(func.coalesce(func.sum(MetricRollup.n), 0)).where(
            MetricRollup.run_id == run_id)
        if keys:
            rolled = rolled.where(MetricRollup.key.in_(keys))
        if (session.scalar(rolled) or 0) > cap:
            return True
    query = select(MetricPoint.id).where(MetricPoint.run_id == run_id, MetricPoint.id > after)
    if keys:
        query = query.where(MetricPoint.key.in_(keys))
    counted = select(func.count()).select_from(query.limit(cap + 1).subquery())
    return (session.scalar(counted) or 0) > cap


CSV_PAGE = 2_000
_CSV_PAGE_SQL = ("SELECT id, x, value FROM metric_points WHERE run_id = {0} AND key = {0} "
                 "AND id > {0} ORDER BY id LIMIT {0}")


def stream_points_csv(*, run_id: int, keys: Sequence[str] | None = None) -> Iterator[str]:
    """The run's points as CSV text: a header, then each series (in the order series first
    appeared) in x's write order; read CSV_PAGE points at a time in a session of its own.

    The pages come straight from the driver's cursor as tuples, and each row is one f-string
    (a float's repr, as the csv module writes it): SQLAlchemy's rows and csv.writer took 3×
    as long, and a class downloading a 300,000-point run held the API's GIL for seconds. Small
    pages keep every uninterrupted stretch of C code short, so /api/health keeps its turns."""
    yield "key,x,value\r\n"
    with new_session() as session:
        held_out = shows_held_out(session=session, run_id=run_id)
        first = (select(MetricPoint.key).where(MetricPoint.run_id == run_id)
                 .group_by(MetricPoint.key).order_by(func.min(MetricPoint.id)))
        if keys:
            first = first.where(MetricPoint.key.in_(keys))
        series = visible(session.scalars(first).all(), held_out)
        mark = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
        cursor = session.connection().connection.cursor()
        try:
            for key in series:
                out = io.StringIO()
                csv.writer(out).writerow([key])  # quoted as the csv module would, once
                prefix, after = out.getvalue().removesuffix("\r\n") + ",", 0
                while True:
                    cursor.execute(_CSV_PAGE_SQL.format(mark), (run_id, key, after, CSV_PAGE))
                    page = cursor.fetchall()
                    if not page:
                        break
                    yield "".join([f"{prefix}{x},{'' if v is None else repr(v)}\r\n"
                                   for _, x, v in page])
                    after = page[-1][0]
        finally:
            cursor.close()


# Series whose x is not the epoch: the step-level ones (x = global step) and the LR range
# test's (x = η). The wide CSV, one row per epoch, leaves them out.
NOT_PER_EPOCH = ("step_loss", "step_lr")
NOT_PER_EPOCH_PREFIXES = ("lr_range/",)


def per_epoch(key: str) -> bool:
    return key not in NOT_PER_EPOCH and not key.startswith(NOT_PER_EPOCH_PREFIXES)


def points_csv_wide(*, session: Session, run_id: int, keys: Sequence[str] | None = None) -> str:
    """The run's epoch-level points as CSV, one row per epoch and a column per key (in the
    order the series first appeared); a cell is empty where that key has no point at that
    epoch (or its value is NaN). Epoch-level series are small (epochs × keys), so the table
    is built whole, unlike the long format's pages."""
    first = (select(MetricPoint.key).where(MetricPoint.run_id == run_id)
             .group_by(MetricPoint.key).order_by(func.min(MetricPoint.id)))
    if keys:
        first = first.where(MetricPoint.key.in_(keys))
    held_out = shows_held_out(session=session, run_id=run_id)
    columns = [k for k in visible(session.scalars(first).all(), held_out) if per_epoch(k)]
    rows: dict[int, dict[str, float | None]] = {}
    if columns:
        for key, x, value in session.execute(
                select(MetricPoint.key, MetricPoint.x, MetricPoint.value)
                .where(MetricPoint.run_id == run_id, MetricPoint.key.in_(columns))
                .order_by(MetricPoint.id)):
            rows.setdefault(int(x), {})[key] = value
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["epoch", *columns])
    for epoch in sorted(rows):
        row = rows[epoch]
        writer.writerow([epoch, *("" if row.get(k) is None else row[k] for k in columns)])
    return out.getvalue()


def last_cursor(*, session: Session, run_id: int) -> int:
    return session.scalar(
        select(func.coalesce(func.max(MetricPoint.id), 0)).where(MetricPoint.run_id == run_id)
    ) or 0


def model_info(*, session: Session, run_id: int) -> RunModel:
    """The stored model's row (size, time); NotFound while the run has none."""
    run = get_run(session=session, run_id=run_id)
    stored = session.get(RunModel, run_id)
    if stored is None:  # the run exists: a conflict with its state, not a missing resource
        raise Conflict(f"run {run_id} has no model yet (status {run.status})")
    return stored


def get_model(*, session: Session, run_id: int) -> bytes:
    model_info(session=session, run_id=run_id)
    return blobs.read_blob(session, "model", run_id)


# The run's distinct keys, one index probe per key (a loose index scan, written out because
# neither SQLite nor PostgreSQL does one for DISTINCT): a 300,000-point run's keys in well
# under a millisecond instead of reading every point.
_KEYS = text("""
WITH RECURSIVE k(key) AS (
    SELECT MIN(key) FROM metric_points WHERE run_id = :run_id
    UNION ALL
    SELECT (SELECT MIN(key) FROM metric_points WHERE run_id = :run_id AND key > k.key)
    FROM k WHERE k.key IS NOT NULL
)
SELECT key FROM k WHERE key IS NOT NULL
""")


def series_keys(*, session: Session, run_id: int) -> list[str]:
    """The run's series in key order (``heldout/…`` only once it has ended)."""
    return visible(session.scalars(_KEYS, {"run_id": run_id}),
                   shows_held_out(session=session, run_id=run_id))


def log_boundaries(*, session: Session, run_id: int, grids: Iterable[tuple[int, dict[str, Any]]]) -> None:
    rows = [{"run_id": run_id, "epoch": epoch, "grid": grid} for epoch, grid in grids]
    if not rows:
        return
    session.execute(insert_for(session)(RunBoundary).on_conflict_do_nothing(), rows)


def boundary_epochs(*, session: Session, run_id: int) -> list[int]:
    return list(session.scalars(
        select(RunBoundary.epoch).where(RunBoundary.run_id == run_id).order_by(RunBoundary.epoch)
    ))


def latest_boundary_epoch(*, session: Session, run_id: int) -> int | None:
    return session.scalar(select(func.max(RunBoundary.epoch)).where(RunBoundary.run_id == run_id))


def get_boundary(*, session: Session, run_id: int, epoch: int | None = None) -> dict[str, Any]:
    get_run(session=session, run_id=run_id)
    epochs = boundary_epochs(session=session, run_id=run_id)
    if not epochs:
        raise NotFound(f"run {run_id} has no decision boundary (2-D datasets only)")
    chosen = epochs[-1] if epoch is None else epoch
    stored = session.get(RunBoundary, (run_id, chosen))
    if stored is None:
        raise NotFound(f"run {run_id} has no decision boundary at epoch {chosen}")
    return {"epoch": chosen, "epochs": epochs, **stored.grid}


def run_health(*, session: Session, run_id: int) -> dict[str, Any]:
    """The run's training-health diagnosis (health.py) from its per-layer health series."""
    get_run(session=session, run_id=run_id)
    keys = [k for k in series_keys(session=session, run_id=run_id)
            if k.startswith(health.HEALTH_PREFIXES)]
    series = get_points(session=session, run_id=run_id, keys=keys)[0] if keys else {}
    return {"rules": health.rules(), "diagnoses": health.diagnose(series)}


# Confusion matrices stored per run, as JSON bytes: 10 classes take about 300 B an epoch, so
# about 7 000 epochs; 100 classes (about 21 kB each) about 100. Past it, later epochs are not
# stored (the endpoint then answers 404 for them).
CONFUSION_BUDGET = 2 << 20


def log_confusions(*, session: Session, run_id: int,
                   matrices: Iterable[tuple[int, list[list[int]]]],
                   budget: int = CONFUSION_BUDGET) -> None:
    """Store the epochs' confusion matrices while the run's stored ones, as compact JSON,
    stay within ``budget`` bytes (no commit)."""
    rows = [{"run_id": run_id, "epoch": epoch, "matrix": matrix,
             "size": len(json.dumps(matrix, separators=(",", ":")))}
            for epoch, matrix in matrices]
    if not rows:
        return
    used = session.scalar(select(func.coalesce(func.sum(RunConfusion.size), 0))
                          .where(RunConfusion.run_id == run_id)) or 0
    fitting = []
    for row in rows:
        if used + row["size"] <= budget:
            used += row["size"]
            fitting.append(row)
    if fitting:
        session.execute(insert_for(session)(RunConfusion).on_conflict_do_nothing(), fitting)


def returned_epoch(result: Mapping[str, Any] | None) -> int | None:
    """The epoch of the model a finished run returned: result.kept is "best" (z*) or "last"
    (result.final); None before the run has a result."""
    if not result or result.get("kept") not in ("best", "last"):
        return None
    return (result.get("best" if result["kept"] == "best" else "final") or {}).get("epoch")


def class_names(spec: Mapping[str, Any], count: int) -> list[str]:
    """The dataset's class names (the catalog's, an upload's folders where this machine has
    them); their indices as text when those are not known here."""
    try:
        names = list(dataset_info(spec["data"]["dataset"],
                                  get_settings().data_dir / "datasets").classes)
    except (KeyError, TypeError, ValueError):
        names = []
    return names if len(names) == count else [str(i) for i in range(count)]


def get_confusion(*, session: Session, run_id: int, epoch: int | None = None) -> dict[str, Any]:
    """{epoch, epochs, classes, matrix} on S_v: of ``epoch``, else of the returned model's
    epoch (a finished run), else the newest stored."""
    run = get_run(session=session, run_id=run_id)
    epochs = list(session.scalars(select(RunConfusion.epoch).where(RunConfusion.run_id == run_id)
                                  .order_by(RunConfusion.epoch)))
    chosen = epoch if epoch is not None else returned_epoch(run.result)
    if chosen is None:
        if not epochs:
            raise NotFound(f"run {run_id} has no confusion matrix yet (status {run.status})")
        chosen = epochs[-1]
    stored = session.get(RunConfusion, (run_id, chosen))
    if stored is None:
        raise NotFound(f"run {run_id} has no confusion matrix at epoch {chosen}")
    return {"epoch": chosen, "epochs": epochs,
            "classes": class_names(run.spec, len(stored.matrix)), "matrix": stored.matrix}
