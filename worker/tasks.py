"""Celery tasks: claim the run (or a pack's runs) in the database, train with the engine,
report, finish. How runs report is reporting.py; how they use the CPU (threads, whether a pack
pays) is timing.py; the model file is engine/modelfile.py.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from celery.signals import worker_ready, worker_shutdown
from sqlalchemy.exc import SQLAlchemyError

from backend.broker import LANDSCAPE_TASK, PACK_TASK, RUN_TASK
from backend.classes import fairqueue
from backend.config import get_settings
from backend.datasets.service import materialize
from backend.db import new_session
from backend.notify import publish
from backend.public_text import public_error
from backend.runs import snapshots
from backend.runs.fork import parent_step_points
from backend.runs.lifecycle import (
    LeaseLost,
    RunGone,
    beat_run,
    claim_run,
    finish_run,
    load_checkpoint,
    record_epoch,
    unpack_runs,
)
from backend.runs.models import Run
from backend.workers import service as workers
from worker.celery_app import app
from worker.engine import Spec, TrainOutcome, parse_spec, train
from worker.engine.data_cache import DATA_CACHE
from worker.engine.fork import ForkUnavailable, start_of_fork, steps_per_epoch
from worker.engine.loop import Snapshot
from worker.engine.modelfile import model_bytes
from worker.engine.pack import PackTooLarge, train_pack
from worker.landscape_job import execute_landscape
from worker.reporting import PackReporter, RunReporter
from worker.timing import Clock, busy_cores, choose_threads, pack_pays

log = logging.getLogger(__name__)


@dataclass
class Worker:
    """This process as the database knows it; the heartbeat thread reads it."""

    name: str
    threads: int = 1
    queues: str = "cpu"
    # (run id, claim token) of each run this process trains (one, or a pack's).
    held: list[tuple[int, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def holding(self, runs: list[tuple[int, str]]) -> Iterator[None]:
        self.held = list(runs)
        try:
            yield
        finally:
            self.held = []


WORKER = Worker(f"{socket.gethostname()}:{os.getpid()}")


def worker_device() -> str:
    wanted = get_settings().device
    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return wanted


def run_threads(spec: Spec, data_root: Path | None = None,
                clock: Clock = time.perf_counter, cores: int | None = None,
                busy: Callable[[], float] = busy_cores) -> int:
    """EPOQUE_TORCH_THREADS when set; otherwise chosen from the cores (``cores``: those this
    process may use, less those ``busy()`` says other processes keep busy) and the model
    size."""
    threads = get_settings().torch_threads
    if threads is None and _device(spec).startswith("cuda"):
        threads = 1  # the GPU runs the steps: timing CPU steps would choose for the wrong device
    if threads is None:
        try:
            threads = choose_threads(spec, cores, clock=clock, data_root=data_root, busy=busy)
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
    requested_lr: float | None = None  # η set by hand, possibly while the run was queued
    token: str = ""  # this claim's token: every write names it (backend/runs/lifecycle.py)
    kind: str = "train"  # or "lr_range": an LR range test, whose settings are ``options``
    options: dict[str, Any] | None = None
    forked_from: dict[str, Any] | None = None  # a fork's {run, epoch, path} (runs/fork.py)


def prepare_data(spec: Spec) -> Path:
    """The worker's dataset folder; an uploaded dataset's processed images are unpacked there
    from the database (DatasetUnavailable when it was deleted or is not ready)."""
    root = get_settings().data_dir / "datasets"
    dataset = spec.data.dataset
    if dataset.startswith("folder:"):
        with new_session() as session:
            materialize(session=session, dataset_id=dataset.removeprefix("folder:"), data_root=root)
    return root


def _claim(run_id: int, class_id: int | None = None, queue: str = "cpu") -> Claimed | None:
    """The run, claimed; None when it cannot be claimed, or when what it stored cannot be read
    (then it has failed at once with the reason, never by a heartbeat timeout). ``class_id``:
    the message is a claim on that class's fair queue (any of its runs)."""
    with new_session() as session:
        run = claim_run(session=session, run_id=run_id, worker=WORKER.name) \
            if class_id is None else \
            fairqueue.claim_next(session=session, class_id=class_id, queue=queue,
                                 worker=WORKER.name)
        if run is None:
            log.info("run %s not claimable (deleted, cancelled, or taken by another attempt)", run_id)
            return None
        attempt, run_id, token = run.attempt, run.id, run.token
        try:
            stored = load_checkpoint(session=session, run_id=run_id) if attempt > 1 else None
            return Claimed(run_id, parse_spec(run.spec), attempt, stored, run.requested_lr,
                           token, run.kind or "train", run.options, run.forked_from)
        except Exception as exc:
            log.exception("run %s cannot start", run_id)
            error = public_error(exc)
    _finish(run_id, token, "failed", None, error, None)
    return None


def _finish(run_id: int, token: str, status: str, result: dict[str, Any] | None,
            error: str | None, model: bytes | None) -> str:
    try:
        with new_session() as session:
            finish_run(session=session, run_id=run_id, token=token, status=status,
                       result=result, error=error, model=model)
    except (RunGone, LeaseLost) as exc:
        log.info("run %s: result of this attempt dropped: %s", run_id, exc)
        return "abandoned"
    publish(run_id)
    log.info("run %s ended %s", run_id, status)
    return status


@dataclass
class Ending:
    """How one attempt at a run ends: what its body set, or what ``attempt`` made of the
    exception that stopped it."""
    status: str = "failed"
    result: dict[str, Any] | None = None
    error: str | None = None
    model: bytes | None = None
    abandoned: bool = False  # the run was deleted or taken over: nothing may be written

    def finish(self, run: Claimed) -> str:
        if self.abandoned:
            return "abandoned"
        return _finish(run.run_id, run.token, self.status, self.result, self.error, self.model)


@contextmanager
def attempt(run: Claimed, what: str) -> Iterator[Ending]:
    """The body of one attempt: any failure, set-up included, ends the run at once with its
    own message (never by a heartbeat timeout); a lost run (deleted, or its lease taken over)
    ends the attempt without a write."""
    ending = Ending()
    try:
        yield ending
    except (RunGone, LeaseLost) as exc:
        log.info("run %s: stopping this attempt: %s", run.run_id, exc)
        ending.abandoned = True
    except Exception as exc:
        log.exception("%s %s failed", what, run.run_id)
        ending.status, ending.error = "failed", public_error(exc)


def _device(spec: Spec) -> str:
    return worker_device() if spec.device == "auto" else spec.device


def _train_alone(run: Claimed, declined: str | None = None) -> str:
    """``declined``: why the pack this run was planned in trained one run after the other
    (its result says so, for the lab)."""
    reporter = RunReporter(run.run_id, run.token)
    reporter.requested_lr = run.requested_lr  # from the first epoch, not the first flush
    if run.spec.ensemble.members == 1:
        reporter.sketch_seed = run.spec.seed  # the loss landscape's path (engine/landscape.py)
    reporter.max_epochs = run.spec.training.max_epochs  # snapshots kept for forks
    resume = None
    spec = run.spec
    with attempt(run, "run") as ending:
        # Everything before training is inside: an unreadable checkpoint, a deleted dataset or
        # the thread timing fails the run at once with its own message.
        if run.stored is not None:
            epoch, blob = run.stored
            resume = Snapshot.loads(blob)
            # Marked on the charts: where this attempt took the run over.
            reporter.points.append(("events/resume", epoch + 1, float(run.attempt)))
            log.info("run %s: attempt %s resumes after epoch %s", run.run_id, run.attempt, epoch)
        data_root = prepare_data(spec)
        # After the data is there (an upload's classes size the timed network).
        threads = run_threads(spec, data_root)
        log.info("run %s: %d torch thread(s) on %s", run.run_id, threads, _device(spec))
        if resume is None and run.forked_from is not None:
            resume = _start_of_fork(run, reporter, data_root)
        outcome = train(spec, reporter.callbacks(), device=_device(spec), data_root=data_root,
                        resume=resume)
        reporter.flush()
        result = outcome.result if not declined else {**outcome.result,
                                                      "pack": {"declined": declined}}
        ending.status, ending.result, ending.model = (outcome.status, result,
                                                      model_bytes(spec, outcome))
    return ending.finish(run)


def _start_of_fork(run: Claimed, reporter: RunReporter, data_root: Path) -> dict[str, Any]:
    """The snapshot a fork resumes from: its parent's state at the fork's epoch (from the
    parent's nearest stored snapshot, else replayed from z0), with the fork's knobs. The
    parent's step-level points up to there come with the first flush (its epoch-level points
    were copied when the fork was made)."""
    fork = run.forked_from or {}
    parent, epoch, stored = fork["run"], fork["epoch"], fork.get("snapshot")
    path = [(parse_spec(spec), until) for spec, until in fork["path"]]
    start = None
    with new_session() as session:
        blob = None if stored is None else snapshots.load(session=session, run_id=parent,
                                                          epoch=stored)
        steps = parent_step_points(session=session, run_id=parent,
                                   until=epoch * steps_per_epoch(run.spec, data_root)) \
            if run.spec.training.log_every_steps else []
    if blob is not None:
        start = Snapshot.loads(blob)
        path = [(path[-1][0], epoch)]  # the parent's own spec from its stored epoch on
    elif not fork.get("replayable", True):
        raise ForkUnavailable(f"run {parent} was deleted before the fork could start, and its "
                              "η set by hand cannot be replayed")
    log.info("run %s: forks run %s at epoch %s, replayed from epoch %s", run.run_id, parent,
             epoch, start["epoch"] if start else 0)
    reporter.points.extend(steps)
    return start_of_fork(path, run.spec, device=_device(run.spec), data_root=data_root,
                         start=start)


class PackSlower(Exception):
    """Timed throwaway steps say the pack would train no faster than its runs one by one."""


def _train_pack(runs: list[Claimed]) -> list[str]:
    """The runs as one stacked network (engine/pack.py); each ends with its own status, result
    and model as soon as it stops. Raises PackTooLarge or PackSlower before anything is
    trained."""
    specs = [r.spec for r in runs]
    ids = [r.run_id for r in runs]
    pack = PackReporter([(r.run_id, r.token) for r in runs])
    for member, run in zip(pack.members, runs, strict=True):
        member.max_epochs = run.spec.training.max_epochs  # snapshots kept for forks
    statuses = ["abandoned"] * len(runs)  # what a member lost on the way ends as

    def member_done(k: int, outcome: TrainOutcome) -> None:
        member, run = pack.members[k], runs[k]
        pack.flush()  # its last points first, then its final status
        if member.lost:
            return
        result = {**outcome.result, "pack": {"run_ids": ids}}
        statuses[k] = _finish(run.run_id, run.token, outcome.status, result, None,
                              model_bytes(run.spec, outcome))
        member.done = True

    try:
        # Inside the try: a failure to prepare the data or to choose threads fails the runs
        # with its message (an upload's classes size the timed network: data first).
        data_root = prepare_data(specs[0])
        threads = run_threads(specs[0].model_copy(update={
            "ensemble": specs[0].ensemble.model_copy(update={"members": len(runs)})}), data_root)
        pays, why = pack_pays(specs[0], len(runs), _device(specs[0]), mode=get_settings().packs)
        if not pays:
            raise PackSlower(why)
        log.info("runs %s: packed (%s), %d torch thread(s) on %s", ids, why, threads,
                 _device(specs[0]))
        train_pack(specs, [m.callbacks() for m in pack.members], device=_device(specs[0]),
                   data_root=data_root, after_epoch=pack.after_epoch,
                   on_member_done=member_done)
    except (PackTooLarge, PackSlower):
        raise
    except Exception as exc:
        log.exception("pack %s failed", ids)
        for k, (run, member) in enumerate(zip(runs, pack.members, strict=True)):
            if not (member.lost or member.done):
                statuses[k] = _finish(run.run_id, run.token, "failed", None,
                                      public_error(exc), None)
    return statuses


def execute_run(run_id: int, class_id: int | None = None, queue: str = "cpu") -> str:
    """Train run ``run_id`` if it can be claimed (a class's message: the class's next run in
    its fair order); returns the final status (or 'skipped')."""
    run = _claim(run_id, class_id, queue)
    if run is None:
        return "skipped"
    with WORKER.holding([(run.run_id, run.token)]):
        if run.kind == "lr_range":
            return _lr_range(run)
        return _train_alone(run)


def _lr_range(run: Claimed) -> str:
    """An LR range test: one sweep per seed (seed, seed + 1, …); the first seed's curves are
    the run's series (x = minibatch i; the API shows η_i), each sweep's suggestion goes in
    the result with their spread. Progress counts sweeps; a cancel stops between them."""
    from worker.engine.lr_range import lr_range_test, spread

    o, spec = run.options or {}, run.spec
    sweeps: list[dict[str, Any]] = []
    with attempt(run, "LR range test") as ending:
        data_root = prepare_data(spec)
        run_threads(spec, data_root)
        for k in range(int(o.get("seeds", 3))):
            sweep = lr_range_test(spec, start=o["start"], end=o["end"], steps=o["steps"],
                                  seed=spec.seed + k, device=_device(spec), data_root=data_root)
            sweeps.append(sweep)
            points = [] if k else [
                (key, i, value) for key in ("loss", "smoothed_loss", "lrs")
                for i, value in enumerate(sweep[key])]
            points = [(f"lr_range/{'lr' if key == 'lrs' else key}", i, v) for key, i, v in points]
            with new_session() as session:
                cancel, _ = record_epoch(session=session, run_id=run.run_id, token=run.token,
                                         epoch=k + 1, points=points)
            publish(run.run_id)
            if cancel:
                break
        first = sweeps[0]
        rules = ("suggested_lr", "rule", "min_lr", "alternative_lr", "alternative_rule")
        ending.result = {"lr_range": {
            **{key: first[key] for key in rules},
            "start": o["start"], "end": o["end"], "steps": o["steps"],
            "seeds": [{"seed": s["seed"], "suggested_lr": s["suggested_lr"],
                       "alternative_lr": s["alternative_lr"], "steps_run": len(s["lrs"]),
                       "stopped_early": s["stopped_early"]} for s in sweeps],
            "spread": spread([s["suggested_lr"] for s in sweeps]),
            "alternative_spread": spread([s["alternative_lr"] for s in sweeps])}}
        ending.status = "succeeded" if len(sweeps) == int(o.get("seeds", 3)) else "cancelled"
    return ending.finish(run)


def execute_pack(run_ids: list[int]) -> list[str]:
    """Train the runs ``run_ids`` (a study's runs that differ only in seed) as one pack. Those
    that cannot be claimed are 'skipped'; one that takes over from a checkpoint trains alone,
    and so does every run of a pack whose datasets do not fit side by side or that would train
    no faster stacked (worker/timing.py), one run after the other."""
    claimed = [run for run in map(_claim, run_ids) if run is not None]
    statuses: dict[int, str] = {}
    declined: str | None = None
    with WORKER.holding([(run.run_id, run.token) for run in claimed]):
        fresh = [run for run in claimed if run.stored is None]
        if len(fresh) > 1:
            ids = [r.run_id for r in fresh]
            try:
                statuses.update(zip(ids, _train_pack(fresh)))
            except (PackTooLarge, PackSlower) as exc:
                log.info("runs %s train one by one: %s", ids, exc)
                declined = str(exc)
                with new_session() as session:
                    unpack_runs(session=session, leases=[(r.run_id, r.token) for r in fresh])
                for run_id in ids:
                    publish(run_id)
        for run in claimed:
            if run.run_id not in statuses:
                statuses[run.run_id] = _train_alone(run, None if run.stored else declined)
    return [statuses.get(run_id, "skipped") for run_id in run_ids]


@app.task(name=RUN_TASK)
def run_training(run_id: int, class_id: int | None = None, queue: str = "cpu") -> str:
    return execute_run(run_id, class_id, queue)


@app.task(name=PACK_TASK)
def run_pack(run_ids: list[int]) -> list[str]:
    return execute_pack(run_ids)


@app.task(name=LANDSCAPE_TASK)
def run_landscape(run_id: int, resolution: int) -> str:
    with new_session() as session:
        run = session.get(Run, run_id)
        if run is None:
            return "skipped"
        spec = parse_spec(run.spec)
    return execute_landscape(run_id, resolution, prepare_data(spec))


def _register() -> None:
    with new_session() as session:
        workers.register_worker(session=session, name=WORKER.name, device=worker_device(),
                                threads=WORKER.threads, queues=WORKER.queues)


def _heartbeat(stop: threading.Event) -> None:
    while not stop.wait(get_settings().heartbeat_seconds):
        current = list(WORKER.held)
        try:
            with new_session() as session:
                known = workers.beat(session=session, name=WORKER.name,
                                     current_run_id=current[0][0] if current else None)
                for run_id, token in current:
                    beat_run(session=session, run_id=run_id, token=token)
            if not known:  # started before the database was ready, or swept: register now
                _register()
                log.info("worker %s registered", WORKER.name)
        except Exception:
            log.warning("heartbeat failed", exc_info=True)


def configure_data_cache() -> int:
    """The bytes this process keeps of datasets on its device across runs
    (EPOQUE_DATA_CACHE_MB, engine/data_cache.py)."""
    DATA_CACHE.max_bytes = get_settings().data_cache_mb << 20
    return DATA_CACHE.max_bytes


@worker_ready.connect
def _on_ready(sender: Any = None, **_: Any) -> None:
    # The imports (torch, the engine) are there for good: frozen, the collector's full passes
    # skip them (270 ms each in the API process before, about 5 ms after).
    gc.freeze()
    WORKER.threads = configure_threads()
    configure_data_cache()
    WORKER.queues = ",".join(sorted(q.name for q in app.amqp.queues.consume_from.values()))
    try:
        _register()
    except SQLAlchemyError as exc:
        # In a fresh deployment the worker may start before the API has created the tables.
        log.warning("worker %s could not register yet (%s); retrying with each heartbeat",
                    WORKER.name, type(exc).__name__)
    threading.Thread(target=_heartbeat, args=(WORKER.stop,), daemon=True).start()
    log.info("worker %s ready: device %s, %d torch thread(s), queues %s",
             WORKER.name, worker_device(), WORKER.threads, WORKER.queues)


@worker_shutdown.connect
def _on_shutdown(sender: Any = None, **_: Any) -> None:
    WORKER.stop.set()
    with new_session() as session:
        workers.forget_worker(session=session, name=WORKER.name)
