"""WS /api/runs/{id}/stream: catch up from a cursor, then follow the run until it ends.

The database is the only source: every message is read from committed rows, and each carries
the cursor after it, so a client that reconnects with its last cursor misses nothing and gets
nothing twice, whichever process wrote the points.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from backend.config import get_settings
from backend.db import new_session
from backend.deps import MAX_ID
from backend.notify import wait_for_news
from backend.runs import service
from backend.runs.models import FINAL_STATUSES, Run
from backend.runs.schemas import RunOut

router = APIRouter()

# Points per message: big enough to replay a long run quickly, small enough to stay a message.
BATCH = 5000


@dataclass
class _Poll:
    run: dict[str, Any] | None
    series: dict[str, Any]
    cursor: int
    more: bool
    boundary_epoch: int | None


def _poll(run_id: int, cursor: int) -> _Poll:
    """The run (read first: once final, all its points are already committed), then new points."""
    with new_session() as session:
        run = session.get(Run, run_id)
        if run is None:
            return _Poll(None, {}, cursor, False, None)
        run_json = RunOut.of(run).model_dump(mode="json")
        series, new_cursor = service.get_points(
            session=session, run_id=run_id, after=cursor, limit=BATCH
        )
        more = sum(len(points) for points in series.values()) >= BATCH
        boundary = service.latest_boundary_epoch(session=session, run_id=run_id)
        return _Poll(run_json, series, new_cursor, more, boundary)


@router.websocket("/api/runs/{run_id}/stream")
async def stream(websocket: WebSocket, run_id: int, after: int = 0) -> None:
    if not (0 < run_id <= MAX_ID and 0 <= after <= 2**62):
        await websocket.close(code=4422, reason="run id or cursor out of range")
        return
    await websocket.accept()
    # The stream only sends, so a client that leaves is noticed by listening beside it: without
    # this, the stream of a run with nothing new would poll for a departed client forever.
    # Whichever ends first ends both (anyio's structured cancellation, as Starlette's own).
    async with anyio.create_task_group() as group:

        async def first_to_end(job: Awaitable[None]) -> None:
            await job
            group.cancel_scope.cancel()

        group.start_soon(first_to_end, _follow(websocket, run_id, after))
        group.start_soon(first_to_end, _until_disconnect(websocket))


async def _until_disconnect(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _follow(websocket: WebSocket, run_id: int, after: int) -> None:
    poll_seconds = get_settings().stream_poll_seconds
    cursor, last_state, last_boundary = max(after, 0), None, None
    try:
        while True:
            poll = await run_in_threadpool(_poll, run_id, cursor)
            run, series, cursor, more = poll.run, poll.series, poll.cursor, poll.more
            if run is None:
                await websocket.send_json({"type": "error", "message": f"run {run_id} not found",
                                           "cursor": cursor})
                await websocket.close(code=4404)
                return
            if series:
                await websocket.send_json({"type": "points", "series": series, "cursor": cursor})
            if more:
                continue
            if poll.boundary_epoch is not None and poll.boundary_epoch != last_boundary:
                # A notice only: grids are large and only the newest matters (GET /boundary).
                await websocket.send_json({"type": "boundary", "epoch": poll.boundary_epoch,
                                           "cursor": cursor})
                last_boundary = poll.boundary_epoch
            state = (run["status"], run["progress"]["epoch"], run["finished_at"])
            if run["status"] in FINAL_STATUSES:
                await websocket.send_json({"type": "end", "run": run, "cursor": cursor})
                await websocket.close()
                return
            if state != last_state:
                await websocket.send_json({"type": "run", "run": run, "cursor": cursor})
                last_state = state
            await wait_for_news(run_id, poll_seconds)
    except (WebSocketDisconnect, RuntimeError):
        return  # the client left while we were sending
