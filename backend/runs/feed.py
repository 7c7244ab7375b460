"""One database poller per followed run and API process, shared by all its streams.

Fifty students watching one run cost one query per new batch, not fifty. Each update carries
the cursor range it covers, so a stream that joins (or lags) mid-way can fill any gap itself
from the database and still deliver every point exactly once. Each stream keeps its own
cursor; the feed's own starts at the run's newest point, whatever cursor its first viewer held.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from backend.config import get_settings
from backend.db import new_session
from backend.notify import wait_for_news
from backend.runs import service
from backend.runs.models import FINAL_STATUSES, Run
from backend.runs.schemas import RunOut
from backend.workers.service import served_queues

log = logging.getLogger(__name__)

# Points per message: big enough to replay a long run quickly, small enough to stay a message.
BATCH = 5000


@dataclass
class Update:
    run: dict[str, Any] | None  # None: the run does not exist (any more)
    series: dict[str, Any]
    start: int  # the points are those with start < id ≤ cursor
    cursor: int
    more: bool  # a full batch: more points are already waiting
    boundary_epoch: int | None

    @property
    def final(self) -> bool:
        return self.run is None or (self.run["status"] in FINAL_STATUSES and not self.more)


def poll(run_id: int, cursor: int, until: int | None = None) -> Update:
    """The run (read first: once final, all its points are already committed), then points."""
    with new_session() as session:
        run = session.get(Run, run_id)
        if run is None:
            return Update(None, {}, cursor, cursor, False, None)
        served = served_queues(session=session) if run.status == "queued" else None
        run_json = RunOut.of(run, served).model_dump(mode="json")
        series, new_cursor = service.get_points(
            session=session, run_id=run_id, after=cursor, limit=BATCH, until=until)
        more = sum(len(points) for points in series.values()) >= BATCH
        boundary = service.latest_boundary_epoch(session=session, run_id=run_id)
        return Update(run_json, series, cursor, new_cursor, more, boundary)


class RunFeed:
    def __init__(self, run_id: int, cursor: int) -> None:
        self.run_id, self.cursor = run_id, cursor
        self.queues: set[asyncio.Queue[Update]] = set()
        self.task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        wait = get_settings().stream_poll_seconds
        try:
            while self.queues:
                try:
                    update = await run_in_threadpool(poll, self.run_id, self.cursor)
                except Exception:  # the database went away: retry, keep the streams
                    log.warning("stream feed of run %s: poll failed", self.run_id, exc_info=True)
                    await asyncio.sleep(1.0)
                    continue
                self.cursor = update.cursor
                for queue in self.queues:
                    queue.put_nowait(update)
                if update.final:
                    return
                if not update.more:
                    await wait_for_news(self.run_id, wait)
        finally:
            _FEEDS.pop((id(asyncio.get_running_loop()), self.run_id), None)


_FEEDS: dict[tuple[int, int], RunFeed] = {}


def newest_cursor(run_id: int) -> int:
    """The id of the run's newest point (0 if none): where its feed starts."""
    with new_session() as session:
        return service.last_cursor(session=session, run_id=run_id)


def join(run_id: int, newest: int) -> tuple[RunFeed, asyncio.Queue[Update]]:
    """Subscribe to the run's feed (started at ``newest``, the run's newest point, if it is not
    running yet: never at a viewer's own cursor, which may be anything, and one far ahead
    would leave every later viewer without a point). Every update the feed polls after this
    call lands in the returned queue."""
    key = (id(asyncio.get_running_loop()), run_id)
    feed = _FEEDS.get(key)
    if feed is None or feed.task is None or feed.task.done():
        feed = _FEEDS[key] = RunFeed(run_id, newest)
    queue: asyncio.Queue[Update] = asyncio.Queue()
    feed.queues.add(queue)
    if feed.task is None:
        feed.task = asyncio.create_task(feed._loop())
    return feed, queue


def leave(feed: RunFeed, queue: asyncio.Queue[Update]) -> None:
    feed.queues.discard(queue)
