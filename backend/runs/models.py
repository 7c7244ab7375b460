"""Tables of the runs domain: a run, and its metric points (mlflow-style rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from backend.db import Base, UTCDateTime

# Consecutive x values summarised by one metric_rollups row.
ROLLUP_BLOCK = 256

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "diverged")
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled", "diverged"})


class Run(Base):
    __tablename__ = "runs"
    # AUTOINCREMENT: SQLite would otherwise hand a deleted run's id to the next run, and
    # anything still holding the old id (a worker, a viewer, a link) would reach the new run.
    __table_args__: ClassVar[dict[str, Any]] = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    study_id: Mapped[int | None] = mapped_column(Integer, index=True)
    queue: Mapped[str] = mapped_column(String(32), default="cpu")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    max_epochs: Mapped[int] = mapped_column(Integer)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Live control, written by the API and read by the worker once per epoch (any broker).
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    requested_lr: Mapped[float | None] = mapped_column(Float)
    # The id of the first run of the pack this run trains in (a study's runs that differ only
    # in seed, trained as one stacked network: worker/engine/pack.py), or None.
    pack: Mapped[int | None] = mapped_column(Integer)
    # A random token drawn by each claim (backend/runs/lifecycle.py): every write of the
    # worker must name it, so a stale attempt writes nothing. Never shown by the API.
    token: Mapped[str | None] = mapped_column(String(32))
    # Classrooms (backend/classes): the class and student a run was launched for (student None:
    # the teacher's run), and its place in the class's dispatch order, set when it is claimed
    # (backend/classes/fairqueue.py).
    class_id: Mapped[int | None] = mapped_column(Integer, index=True)
    student: Mapped[int | None] = mapped_column(Integer)
    class_seq: Mapped[int | None] = mapped_column(Integer)
    class_preset: Mapped[str | None] = mapped_column(String(64))  # the lesson it was launched for
    # "train", or "lr_range": an LR range test (worker/engine/lr_range.py) whose start, end,
    # steps and seeds are ``options``.
    kind: Mapped[str] = mapped_column(String(16), default="train", server_default="train")
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A fork's origin (backend/runs/fork.py): {run, epoch, path}; ``path`` is how to replay
    # the parent to that epoch, [[spec, until epoch], ...]. The API shows {run, epoch}.
    forked_from: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class MetricPoint(Base):
    """One value of one series; ``id`` is the stream cursor (one writer per run keeps it ordered)."""

    __tablename__ = "metric_points"
    __table_args__ = (
        UniqueConstraint("run_id", "key", "x", name="uq_metric_point"),
        Index("ix_metric_points_run_cursor", "run_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    x: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float | None] = mapped_column(Float)


class RunModel(Base):
    """The returned model z* (torch.save bytes, in ``BlobChunk`` rows of kind "model"), kept in
    the database so every API can serve it."""

    __tablename__ = "run_models"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RunBoundary(Base):
    """A decision-boundary grid of a 2-D run at one epoch (the lab redraws the newest)."""

    __tablename__ = "run_boundaries"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    grid: Mapped[dict[str, Any]] = mapped_column(JSON)


class RunConfusion(Base):
    """The validation-set confusion matrix of a run's model after one epoch: rows the true
    class, columns the predicted one (the run's classes in order), within a byte budget per
    run (service.CONFUSION_BUDGET)."""

    __tablename__ = "run_confusion"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    matrix: Mapped[list[list[int]]] = mapped_column(JSON)
    size: Mapped[int] = mapped_column(Integer)  # bytes of the matrix as JSON, for the budget


class RunCheckpoint(Base):
    """The newest resumable snapshot of a running run (torch.save bytes), kept in the database
    so that whichever worker takes the run over after a crash can go on from it."""

    __tablename__ = "run_checkpoints"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)  # bytes, in BlobChunk rows of kind "checkpoint"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RunSnapshot(Base):
    """A run's resumable state after one epoch, kept for forks (backend/runs/snapshots.py)."""

    __tablename__ = "run_snapshots"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class BlobChunk(Base):
    """One piece of a large blob (a model, a checkpoint). One column value holds at most
    1 GB on PostgreSQL and 1 GB (SQLITE_MAX_LENGTH) on SQLite, and a 4096 × 6 MLP's checkpoint
    is larger: blobs are stored in pieces of blobs.CHUNK_BYTES, in the database still, which
    every worker shares (DESIGN.md)."""

    __tablename__ = "blob_chunks"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class MetricRollup(Base):
    """Minimum and maximum of a series over a block of ROLLUP_BLOCK consecutive x, kept up to
    date as points are written, so a million-point series is downsampled from a few thousand
    rows instead of being read whole."""

    __tablename__ = "metric_rollups"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    min_x: Mapped[int] = mapped_column(BigInteger)
    min_v: Mapped[float] = mapped_column(Float)
    max_x: Mapped[int] = mapped_column(BigInteger)
    max_v: Mapped[float] = mapped_column(Float)



class RunTrajectory(Base):
    """Per epoch of a single-network run (epoch 0: z0), a sketch of its weights: for two
    seeded random directions, each row's dot product with the weights' row
    (worker/engine/landscape.py), from which the loss landscape projects the path exactly."""

    __tablename__ = "run_trajectory"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)  # float64 bytes (backend/runs/trajectory.py)


class RunLandscape(Base):
    """A loss landscape of a run's returned model at one resolution: queued, running (with its
    progress, 0…1), done (its result) or failed (its error)."""

    __tablename__ = "run_landscapes"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    resolution: Mapped[int] = mapped_column(Integer, primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Every state change and progress write: a pending landscape untouched for
    # landscape.STALE_SECONDS lost its worker and is queued again.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
