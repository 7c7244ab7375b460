"""The engine's callbacks for runs the worker trains: buffered metric writes, checkpoints now
and then, decision boundaries, and the live controls (cancel, η) that come back with each write.

A run's points are written together at most every FLUSH_SECONDS (one commit per flush); a
pack's members are written in one transaction for all of them, after every member has reported
its epoch. Checkpoints, and a pack's flushes, take at most about 1/WRITE_SHARE of the time: after
one that took t seconds, the next waits WRITE_SHARE·t. The pacing reads ``clock`` (seconds).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from backend.config import get_settings
from backend.db import new_session
from backend.notify import publish
from backend.runs.lifecycle import EpochUpdate, record_epoch, record_epochs
from backend.runs.service import Point
from backend.runs.snapshots import snapshot_epochs
from worker.engine import Callbacks
from worker.engine.loop import Snapshot
from worker.testhold import hold_here

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.25
TRAJECTORY_BUDGET = 4 << 20  # bytes of weight sketches kept per run (later epochs: none)
WRITE_SHARE = 20

Clock = Callable[[], float]


class RunReporter:
    """The engine's callbacks for one run: buffered metric writes and live control."""

    def __init__(self, run_id: int, token: str, clock: Clock = time.monotonic) -> None:
        self.run_id, self.token, self.clock = run_id, token, clock
        self.points: list[Point] = []
        self.epoch = 0
        self.last_flush = clock()
        self.boundaries: list[tuple[int, dict[str, Any]]] = []
        self.confusions: list[tuple[int, list[list[int]]]] = []
        self.cancel = False
        self.requested_lr: float | None = None
        self.applied_lr: float | None = None
        self.checkpoint: bytes | None = None
        self.last_checkpoint = clock()
        self.checkpoint_cost = 0.0  # seconds the last checkpoint took to serialise and write
        # The loss landscape's path: a sketch of the weights per epoch, for a single network
        # (sketch_seed: its run's seed; None: none kept), within TRAJECTORY_BUDGET bytes.
        self.sketch_seed: int | None = None
        self.directions: list[dict[str, Any]] | None = None
        self.sketches: list[tuple[int, list[list[float]]]] = []
        self.sketch_bytes = 0
        # Snapshots kept for forks (backend/runs/snapshots.py): which epochs is known once the
        # first one's size is; ``max_epochs`` None keeps none.
        self.max_epochs: int | None = None
        self.snapshot_epochs: frozenset[int] | None = None
        self.snapshots: list[tuple[int, bytes]] = []
        self.last_snapshot = clock()
        self.snapshot_cost = 0.0  # seconds the last one took to serialise (twice: its write)
        self.sharing = 1  # runs whose snapshots share this one's time (a pack's members)

    def callbacks(self) -> Callbacks:
        return Callbacks(on_epoch=self.on_epoch, should_stop=self.should_stop,
                         current_lr=self.current_lr, on_step=self.on_step,
                         on_boundary=self.on_boundary, on_checkpoint=self.on_checkpoint,
                         on_confusion=self.on_confusion, on_weights=self.on_weights)

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.points.extend((key, epoch, value) for key, value in metrics.items())
        self.epoch = epoch
        if self.clock() - self.last_flush >= FLUSH_SECONDS:
            self.flush()

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.points.extend((key, step, value) for key, value in metrics.items())

    def on_checkpoint(self, epoch: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Now and then, a resumable snapshot written with this epoch's points (same commit),
        so a run taken over after a crash goes on from the last epoch the database shows; and
        on the epochs kept for forks, one that stays."""
        blob = self.keep_for_forks(epoch, snapshot)
        every = max(get_settings().checkpoint_seconds, WRITE_SHARE * self.checkpoint_cost)
        if self.clock() - self.last_checkpoint < every:
            return
        t0 = self.clock()
        self.checkpoint = blob or Snapshot.dumps(snapshot())
        self.flush()
        self.last_checkpoint = self.clock()
        self.checkpoint_cost = self.last_checkpoint - t0

    def on_weights(self, epoch: int, weights: Callable[[], dict[str, Any]]) -> None:
        if self.sketch_seed is None:
            return
        from worker.engine.landscape import path_sketch, raw_directions, sketchable

        state = weights()
        if self.directions is None:
            if not sketchable(state):
                self.sketch_seed = None  # too large for a landscape: nothing to keep
                return
            self.directions = raw_directions(state, self.sketch_seed)
        sketch = path_sketch(state, self.directions)
        if not all(math.isfinite(v) for row in sketch for v in row):
            return  # a diverged epoch: no point on the path
        self.sketch_bytes += 8 * sum(len(row) for row in sketch)  # float64s (runs/trajectory.py)
        if self.sketch_bytes > TRAJECTORY_BUDGET:
            self.sketch_seed = None
            return
        self.sketches.append((epoch, sketch))
    def keep_for_forks(self, epoch: int, snapshot: Callable[[], dict[str, Any]]) -> bytes | None:
        """This epoch's snapshot bytes if it is one kept for forks (buffered for the next
        flush), else None: an epoch of the budget's set (snapshots.snapshot_epochs), at most
        every cost/share seconds (EPOQUE_FORK_SNAPSHOT_SHARE) so they never slow a run much."""
        settings = get_settings()
        budget = int(settings.fork_snapshot_mb * 2**20)
        if self.max_epochs is None or budget <= 0:
            return None
        if self.snapshot_epochs is not None and epoch not in self.snapshot_epochs:
            return None
        share = settings.fork_snapshot_share
        if share < 1 and self.clock() - self.last_snapshot < self.snapshot_cost / share:
            return None  # a fork replays the few epochs between two kept ones
        t0 = self.clock()
        blob = Snapshot.dumps(snapshot())
        self.last_snapshot = self.clock()
        self.snapshot_cost = 2 * (self.last_snapshot - t0) * self.sharing
        if self.snapshot_epochs is None:  # the first epoch this attempt sees sizes them all
            self.snapshot_epochs = snapshot_epochs(self.max_epochs, len(blob), budget)
        if epoch not in self.snapshot_epochs:
            return None
        self.snapshots.append((epoch, blob))
        return blob

    def on_boundary(self, epoch: int, grid: dict[str, Any]) -> None:
        self.boundaries.append((epoch, grid))

    def on_confusion(self, epoch: int, matrix: list[list[int]]) -> None:
        self.confusions.append((epoch, matrix))

    def should_stop(self) -> bool:
        hold_here(self.run_id, self.epoch, self.flush)  # a test's hook; inert unless set
        # Cancel and η requests come back with every flush (same statement): within an epoch
        # when epochs are longer than the flush interval, within that interval otherwise.
        if self.cancel:
            self.flush()
        return self.cancel

    def current_lr(self, epoch: int, scheduled: float) -> float | None:
        if self.requested_lr is not None and self.requested_lr != self.applied_lr:
            self.applied_lr = self.requested_lr
            self.points.append(("events/lr", epoch, self.requested_lr))
        return self.applied_lr

    def flush(self) -> None:
        with new_session() as session:
            self.cancel, self.requested_lr = record_epoch(
                session=session, run_id=self.run_id, token=self.token, epoch=self.epoch,
                points=self.points, boundaries=self.boundaries, checkpoint=self.checkpoint,
                snapshots=self.snapshots, confusions=self.confusions, sketches=self.sketches)
        publish(self.run_id)
        self.points, self.boundaries, self.checkpoint, self.confusions = [], [], None, []
        self.sketches = []
        self.snapshots = []
        self.last_flush = self.clock()


class MemberReporter(RunReporter):
    """A pack member's reporter: it only buffers; its PackReporter writes every member at once."""

    lost = False  # deleted, or taken over by another attempt: this member stops, the pack goes on
    done = False  # finished (its final status stored) while the pack trains on

    def flush(self) -> None:
        pass


class PackReporter:
    """The members of a pack, written together: one transaction per flush for all of them (a
    commit each would cost K times as much), after every member has reported its epoch."""

    def __init__(self, runs: list[tuple[int, int]], clock: Clock = time.monotonic) -> None:
        """``runs``: (run id, claim token) of each member."""
        self.members = [MemberReporter(run_id, token, clock) for run_id, token in runs]
        for m in self.members:  # K members' snapshots take K times one's time
            m.sharing = len(self.members)
        self.clock = clock
        self.last_flush = clock()
        self.flush_every = FLUSH_SECONDS

    def after_epoch(self, epoch: int) -> None:
        # A checkpoint is written with the points of its own epoch, that is now.
        due = self.clock() - self.last_flush >= self.flush_every
        if due or any(m.checkpoint is not None for m in self.members):
            self.flush()

    def flush(self) -> None:
        t0 = self.clock()
        live = [m for m in self.members if not (m.lost or m.done)]
        checkpoints = any(m.checkpoint is not None for m in live)
        with new_session() as session:
            controls = record_epochs(session=session, updates=[
                EpochUpdate(m.run_id, m.token, m.epoch, m.points, m.boundaries, m.checkpoint,
                            m.snapshots, m.confusions)
                for m in live])
        self.last_flush = self.clock()
        cost = self.last_flush - t0
        # A flush with checkpoints is charged to the checkpoints (spaced by their own cost):
        # counting its 0.1-0.2 s against the points left a 2-member pack's progress dark for 3 s.
        if not checkpoints:
            self.flush_every = max(FLUSH_SECONDS, WRITE_SHARE * cost)
        for m in live:
            if m.run_id in controls:
                m.cancel, m.requested_lr = controls[m.run_id]
                publish(m.run_id)
            else:
                log.info("run %s: deleted or taken over; this member of the pack stops", m.run_id)
                m.lost, m.cancel = True, True
            if m.checkpoint is not None:  # the pack's write is part of what it cost
                m.checkpoint_cost += cost
            m.points, m.boundaries, m.checkpoint, m.confusions = [], [], None, []
            m.snapshots = []
