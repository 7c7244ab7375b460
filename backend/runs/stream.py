"""WS /api/runs/{id}/stream: catch up from a cursor, then follow the run until it ends.
A run's held-out test figures (`heldout/…`) are not sent as it goes but all at once, last.

The database is the only source: every message is read from committed rows, and each carries
the cursor after it, so a client that reconnects with its last cursor misses nothing and gets
nothing twice, whichever process wrote the points.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from backend.db import new_session
from backend.deps import MAX_ID
from backend.runs import service
from backend.runs.feed import join, leave, newest_cursor, poll

router = APIRouter()


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
    newest = await run_in_threadpool(newest_cursor, run_id)
    # The run has no point past its newest, so a cursor beyond it is clamped there: it would
    # otherwise skip the run's next points (cursors are ids shared by all runs).
    after = min(after, newest)
    feed, queue = join(run_id, newest)
    try:
        await _send_updates(websocket, run_id, after, feed.cursor, queue)
    except (WebSocketDisconnect, RuntimeError):
        return  # the client left while we were sending
    finally:
        leave(feed, queue)


async def _send_updates(websocket: WebSocket, run_id: int, cursor: int, joined_at: int,
                        queue: Any) -> None:
    last_state, last_boundary = None, None
    # Catch up on our own from the client's cursor to where the shared feed stood when we
    # joined; everything after that arrives through the feed.
    while cursor < joined_at:
        update = await run_in_threadpool(poll, run_id, cursor, joined_at)
        if update.run is None or not update.series:
            break
        if shown := _shown(update.series):
            await websocket.send_json({"type": "points", "series": shown,
                                       "cursor": update.cursor})
        cursor = update.cursor
    while True:
        update = await queue.get()
        if update.run is None:
            await websocket.send_json({"type": "error", "message": f"run {run_id} not found",
                                       "cursor": cursor})
            await websocket.close(code=4404)
            return
        if update.cursor > cursor:
            series = update.series
            if update.start != cursor:
                # We are not where this update starts (we joined or caught up across it):
                # read exactly our gap, so no point is missed or sent twice.
                series = (await run_in_threadpool(poll, run_id, cursor, update.cursor)).series
            series = _shown(series)
            if series:
                await websocket.send_json({"type": "points", "series": series,
                                           "cursor": update.cursor})
            cursor = update.cursor
        if update.more:
            continue
        if update.boundary_epoch is not None and update.boundary_epoch != last_boundary:
            # A notice only: grids are large and only the newest matters (GET /boundary).
            await websocket.send_json({"type": "boundary", "epoch": update.boundary_epoch,
                                       "cursor": cursor})
            last_boundary = update.boundary_epoch
        run = update.run
        if update.final:
            # The held-out test figures (service.HELD_OUT) come once, all of them, at the end.
            held_out = await run_in_threadpool(_held_out, run_id, cursor)
            if held_out:
                await websocket.send_json({"type": "points", "series": held_out,
                                           "cursor": cursor})
            await websocket.send_json({"type": "end", "run": run, "cursor": cursor})
            await websocket.close()
            return
        state = (run["status"], run["progress"]["epoch"], run["finished_at"])
        if state != last_state:
            await websocket.send_json({"type": "run", "run": run, "cursor": cursor})
            last_state = state


def _shown(series: dict[str, Any]) -> dict[str, Any]:
    """What the stream sends as it goes: all but the held-out series, sent at the end."""
    return {k: v for k, v in series.items() if not k.startswith(service.HELD_OUT)}


def _held_out(run_id: int, until: int) -> dict[str, Any]:
    """The ended run's held-out series up to cursor ``until``."""
    with new_session() as session:
        keys = [k for k in service.series_keys(session=session, run_id=run_id)
                if k.startswith(service.HELD_OUT)]
        if not keys:
            return {}
        return service.get_points(session=session, run_id=run_id, keys=keys, until=until,
                                  held_out=True)[0]
