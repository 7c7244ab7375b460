"""Celery glue: claim the run in the database, train it with the engine, store what it reports.

No training logic lives here; see worker/engine.
"""

from __future__ import annotations

import gc
import io
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from celery.signals import worker_ready, worker_shutdown
from sqlalchemy.exc import SQLAlchemyError

from backend.broker import PACK_TASK, RUN_TASK
from backend.config import get_settings
from backend.datasets.service import materialize
from backend.db import new_session
from backend.notify import publish
from backend.runs.lifecycle import (
    LeaseLost,
    RunGone,
    beat_run,
    claim_run,
    finish_run,
    load_checkpoint,
    record_epoch,
    record_epochs,
    unpack_runs,
)
from backend.runs.service import Point
from backend.workers import service as workers
from worker.celery_app import app
from worker.engine import Callbacks, Spec, TrainOutcome, parse_spec, train
from worker.engine.pack import PackTooLarge, train_pack
from worker.packing import pack_pays
from worker.testhold import hold_here
from worker.threads import choose_threads

log = logging.getLogger(__name__)

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"
# Points are buffered and written together at most this often (one commit per flush); the
# live controls (cancel, η) come back with each flush.
FLUSH_SECONDS = 0.25
# Checkpoints, and a pack's flushes (K runs' points in one transaction), take at most about
# 1/WRITE_SHARE of the time: after one that took t seconds, the next waits WRITE_SHARE·t.
WRITE_SHARE = 20

# (run id, attempt) of each run this process holds (one, or a pack's), for the heartbeat.
_current: list[tuple[int, int]] = []


def worker_device() -> str:
    wanted = get_settings().device
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def run_threads(spec: Spec) -> int:
    """EPOQUE_TORCH_THREADS when set; otherwise chosen from the cores and the model size."""
    threads = get_settings().torch_threads
    if threads is None and _device(spec).startswith("cuda"):
        threads = 1  # the GPU runs the steps: timing CPU steps would choose for the wrong device
    if threads is None:
        try:
            threads = choose_threads(spec)
        except (ValueError, RuntimeError):
            threads = 1  # an unusual model the estimate cannot build: the safe default
    torch.set_num_threads(threads)
    return threads


def configure_threads() -> int:
    # One thread per process: on a small shared CPU, oversubscribed threads make small models
    # several times slower.
    threads = get_settings().torch_threads or 1
    torch.set_num_threads(threads)
    return threads


@dataclass
class Claimed:
    run_id: int
    spec: Spec
    attempt: int
    stored: tuple[int, bytes] | None  # (epoch, snapshot) to take over from, on attempt 2+


class RunReporter:
    """The engine's callbacks for one run: buffered metric writes and live control."""

    def __init__(self, run_id: int, attempt: int) -> None:
        self.run_id, self.attempt = run_id, attempt
        self.points: list[Point] = []
        self.epoch = 0
        self.last_flush = time.monotonic()
        self.boundaries: list[tuple[int, dict[str, Any]]] = []
        self.cancel = False
        self.requested_lr: float | None = None
        self.applied_lr: float | None = None
        self.checkpoint: bytes | None = None
        self.last_checkpoint = time.monotonic()
        self.checkpoint_cost = 0.0  # seconds the last checkpoint took to serialise and write

    def callbacks(self) -> Callbacks:
        return Callbacks(on_epoch=self.on_epoch, should_stop=self.should_stop,
                         current_lr=self.current_lr, on_step=self.on_step,
                         on_boundary=self.on_boundary, on_checkpoint=self.on_checkpoint)

    def on_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        self.points.extend((key, epoch, value) for key, value in metrics.items())
        self.epoch = epoch
        if time.monotonic() - self.last_flush >= FLUSH_SECONDS:
            self.flush()

    def on_step(self, step: int, metrics: dict[str, float]) -> None:
        self.points.extend((key, step, value) for key, value in metrics.items())

    def on_checkpoint(self, epoch: int, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Now and then, a resumable snapshot written with this epoch's points (same commit),
        so a run taken over after a crash goes on from the last epoch the database shows."""
        every = max(get_settings().checkpoint_seconds, WRITE_SHARE * self.checkpoint_cost)
        if time.monotonic() - self.last_checkpoint < every:
            return
        t0 = time.monotonic()
        buffer = io.BytesIO()
        torch.save(snapshot(), buffer)
        self.checkpoint = buffer.getvalue()
        self.flush()
        self.last_checkpoint = time.monotonic()
        self.checkpoint_cost = self.last_checkpoint - t0

    def on_boundary(self, epoch: int, grid: dict[str, Any]) -> None:
        self.boundaries.append((epoch, grid))

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
                session=session, run_id=self.run_id, attempt=self.attempt, epoch=self.epoch,
                points=self.points, boundaries=self.boundaries, checkpoint=self.checkpoint)
        publish(self.run_id)
        self.points, self.boundaries, self.checkpoint = [], [], None
        self.last_flush = time.monotonic()


class MemberReporter(RunReporter):
    """A pack member's reporter: it only buffers; its PackReporter writes every member at once."""

    lost = False  # deleted, or taken over by another attempt: this member stops, the pack goes on
    done = False  # finished (its final status stored) while the pack trains on

    def flush(self) -> None:
        pass


class PackReporter:
    """The members of a pack, written together: one transaction per flush for all of them (a
    commit each would cost K times as much), after every member has reported its epoch."""

    def __init__(self, runs: list[Claimed]) -> None:
        self.members = [MemberReporter(r.run_id, r.attempt) for r in runs]
        self.last_flush = time.monotonic()
        self.flush_every = FLUSH_SECONDS

    def after_epoch(self, epoch: int) -> None:
        # A checkpoint is written with the points of its own epoch, that is now.
        due = time.monotonic() - self.last_flush >= self.flush_every
        if due or any(m.checkpoint is not None for m in self.members):
            self.flush()

    def flush(self) -> None:
        t0 = time.monotonic()
        live = [m for m in self.members if not (m.lost or m.done)]
        checkpoints = any(m.checkpoint is not None for m in live)
        with new_session() as session:
            controls = record_epochs(session=session, updates=[
                (m.run_id, m.attempt, m.epoch, m.points, m.boundaries, m.checkpoint)
                for m in live])
        self.last_flush = time.monotonic()
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
            m.points, m.boundaries, m.checkpoint = [], [], None


def prepare_data(spec: Spec) -> Path:
    """The worker's dataset folder; an uploaded dataset is unpacked there from the database."""
    root = get_settings().data_dir / "datasets"
    dataset = spec.data.dataset
    if dataset.startswith("folder:"):
        with new_session() as session:
            materialize(session=session, dataset_id=dataset.removeprefix("folder:"), data_root=root)
    return root


def model_blob(spec: Spec, outcome: TrainOutcome) -> bytes:
    buffer = io.BytesIO()
    torch.save({"spec": spec.model_dump(mode="json"), "state_dict": outcome.state_dict,
                "classes": outcome.classes, "input_shape": list(outcome.input_shape)}, buffer)
    return buffer.getvalue()


def _claim(run_id: int) -> Claimed | None:
    with new_session() as session:
        run = claim_run(session=session, run_id=run_id, worker=WORKER_NAME)
        if run is None:
            log.info("run %s not claimable (deleted, cancelled, or taken by another attempt)", run_id)
            return None
        attempt = run.attempt
        stored = load_checkpoint(session=session, run_id=run_id) if attempt > 1 else None
        return Claimed(run_id, parse_spec(run.spec), attempt, stored)


def _finish(run_id: int, attempt: int, status: str, result: dict[str, Any] | None,
            error: str | None, model: bytes | None) -> str:
    try:
        with new_session() as session:
            finish_run(session=session, run_id=run_id, attempt=attempt, status=status,
                       result=result, error=error, model=model)
    except (RunGone, LeaseLost) as exc:
        log.info("run %s: result of this attempt dropped: %s", run_id, exc)
        return "abandoned"
    publish(run_id)
    log.info("run %s ended %s", run_id, status)
    return status


def _device(spec: Spec) -> str:
    return worker_device() if spec.device == "auto" else spec.device


def _train_alone(run: Claimed, declined: str | None = None) -> str:
    """``declined``: why the pack this run was planned in trained one run after the other
    (its result says so, for the lab)."""
    reporter = RunReporter(run.run_id, run.attempt)
    resume = None
    if run.stored is not None:
        epoch, blob = run.stored
        resume = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        # Marked on the charts: where this attempt took the run over.
        reporter.points.append(("events/resume", epoch + 1, float(run.attempt)))
        log.info("run %s: attempt %s resumes after epoch %s", run.run_id, run.attempt, epoch)
    spec = run.spec
    threads = run_threads(spec)
    log.info("run %s: %d torch thread(s) on %s", run.run_id, threads, _device(spec))
    status, result, error, model = "failed", None, None, None
    try:
        data_root = prepare_data(spec)
        outcome = train(spec, reporter.callbacks(), device=_device(spec), data_root=data_root,
                        resume=resume)
        reporter.flush()
        status, result, model = outcome.status, outcome.result, model_blob(spec, outcome)
        if declined:
            result = {**result, "pack": {"declined": declined}}
    except (RunGone, LeaseLost) as exc:
        log.info("run %s: stopping this attempt: %s", run.run_id, exc)
        return "abandoned"
    except Exception as exc:
        log.exception("run %s failed", run.run_id)
        error = f"{type(exc).__name__}: {exc}"
    return _finish(run.run_id, run.attempt, status, result, error, model)


class PackSlower(Exception):
    """Timed throwaway steps say the pack would train no faster than its runs one by one."""


def _train_pack(runs: list[Claimed]) -> list[str]:
    """The runs as one stacked network (engine/pack.py); each ends with its own status, result
    and model as soon as it stops. Raises PackTooLarge or PackSlower before anything is
    trained."""
    specs = [r.spec for r in runs]
    ids = [r.run_id for r in runs]
    threads = run_threads(specs[0].model_copy(update={
        "ensemble": specs[0].ensemble.model_copy(update={"members": len(runs)})}))
    pays, why = True, "EPOQUE_PACKS=always"
    if get_settings().packs != "always":
        pays, why = pack_pays(specs[0], len(runs), _device(specs[0]))
    if not pays:
        raise PackSlower(why)
    log.info("runs %s: packed (%s), %d torch thread(s) on %s", ids, why, threads,
             _device(specs[0]))
    pack = PackReporter(runs)
    statuses = ["abandoned"] * len(runs)  # what a member lost on the way ends as

    def member_done(k: int, outcome: TrainOutcome) -> None:
        member, run = pack.members[k], runs[k]
        pack.flush()  # its last points first, then its final status
        if member.lost:
            return
        result = {**outcome.result, "pack": {"run_ids": ids}}
        statuses[k] = _finish(run.run_id, run.attempt, outcome.status, result, None,
                              model_blob(run.spec, outcome))
        member.done = True

    try:
        train_pack(specs, [m.callbacks() for m in pack.members], device=_device(specs[0]),
                   data_root=prepare_data(specs[0]), after_epoch=pack.after_epoch,
                   on_member_done=member_done)
    except PackTooLarge:
        raise
    except Exception as exc:
        log.exception("pack %s failed", ids)
        for k, (run, member) in enumerate(zip(runs, pack.members)):
            if not (member.lost or member.done):
                statuses[k] = _finish(run.run_id, run.attempt, "failed", None,
                                      f"{type(exc).__name__}: {exc}", None)
    return statuses


def execute_run(run_id: int) -> str:
    """Train run ``run_id`` if it can be claimed; returns the final status (or 'skipped')."""
    global _current
    run = _claim(run_id)
    if run is None:
        return "skipped"
    _current = [(run.run_id, run.attempt)]
    try:
        return _train_alone(run)
    finally:
        _current = []


def execute_pack(run_ids: list[int]) -> list[str]:
    """Train the runs ``run_ids`` (a study's runs that differ only in seed) as one pack. Those
    that cannot be claimed are 'skipped'; one that takes over from a checkpoint trains alone,
    and so does every run of a pack whose datasets do not fit side by side or that would train
    no faster stacked (worker/packing.py), one run after the other."""
    global _current
    claimed = [run for run in map(_claim, run_ids) if run is not None]
    _current = [(run.run_id, run.attempt) for run in claimed]
    statuses: dict[int, str] = {}
    declined: str | None = None
    try:
        fresh = [run for run in claimed if run.stored is None]
        if len(fresh) > 1:
            ids = [r.run_id for r in fresh]
            try:
                statuses.update(zip(ids, _train_pack(fresh)))
            except (PackTooLarge, PackSlower) as exc:
                log.info("runs %s train one by one: %s", ids, exc)
                declined = str(exc)
                with new_session() as session:
                    unpack_runs(session=session, run_ids=ids)
                for run_id in ids:
                    publish(run_id)
        for run in claimed:
            if run.run_id not in statuses:
                statuses[run.run_id] = _train_alone(run, None if run.stored else declined)
    finally:
        _current = []
    return [statuses.get(run_id, "skipped") for run_id in run_ids]


@app.task(name=RUN_TASK)
def run_training(run_id: int) -> str:
    return execute_run(run_id)


@app.task(name=PACK_TASK)
def run_pack(run_ids: list[int]) -> list[str]:
    return execute_pack(run_ids)


def _register() -> None:
    with new_session() as session:
        workers.register_worker(session=session, name=WORKER_NAME, device=worker_device(),
                                threads=_threads, queues=_queues)


def _heartbeat(stop: threading.Event) -> None:
    while not stop.wait(get_settings().heartbeat_seconds):
        current = list(_current)
        try:
            with new_session() as session:
                known = workers.beat(session=session, name=WORKER_NAME,
                                     current_run_id=current[0][0] if current else None)
                for run_id, attempt in current:
                    beat_run(session=session, run_id=run_id, attempt=attempt)
            if not known:  # started before the database was ready, or swept: register now
                _register()
                log.info("worker %s registered", WORKER_NAME)
        except Exception:
            log.warning("heartbeat failed", exc_info=True)


_stop_heartbeat = threading.Event()
_threads, _queues = 1, "cpu"


@worker_ready.connect
def _on_ready(sender: Any = None, **_: Any) -> None:
    global _threads, _queues
    # The imports (torch, the engine) are there for good: frozen, the collector's full passes
    # skip them (270 ms each in the API process before, about 5 ms after).
    gc.freeze()
    _threads = configure_threads()
    _queues = ",".join(sorted(q.name for q in app.amqp.queues.consume_from.values()))
    try:
        _register()
    except SQLAlchemyError as exc:
        # In a fresh deployment the worker may start before the API has created the tables.
        log.warning("worker %s could not register yet (%s); retrying with each heartbeat",
                    WORKER_NAME, type(exc).__name__)
    threading.Thread(target=_heartbeat, args=(_stop_heartbeat,), daemon=True).start()
    log.info("worker %s ready: device %s, %d torch thread(s), queues %s",
             WORKER_NAME, worker_device(), _threads, _queues)


@worker_shutdown.connect
def _on_shutdown(sender: Any = None, **_: Any) -> None:
    _stop_heartbeat.set()
    with new_session() as session:
        workers.forget_worker(session=session, name=WORKER_NAME)
