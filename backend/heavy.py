"""Heavy answers share a few threads: model downloads, metrics CSV, predictions.

Each piece of such an answer is read or computed in a thread, never on the event loop, and at
most EPOQUE_HEAVY_CONCURRENCY of them run at once; the others wait their turn a piece at a
time, so six 200 MB downloads all progress. Why a bound and not just threads: these pieces are
Python work that holds the GIL, and with six of them competing the event loop waited its turn
behind each, so /api/health took 0.3–1 s; with two it keeps its share.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import anyio
from starlette.requests import Request

from backend.config import get_settings

T = TypeVar("T")
_DONE = object()


def limiter(request: Request) -> anyio.CapacityLimiter:
    """One limiter per app, made in its event loop on first use."""
    found = getattr(request.app.state, "heavy_limiter", None)
    if found is None:
        found = anyio.CapacityLimiter(get_settings().heavy_concurrency)
        request.app.state.heavy_limiter = found
    return found


async def run(request: Request, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs),
                                          limiter=limiter(request))


async def stream(request: Request, pieces: Iterator[T]) -> AsyncIterator[T]:
    """``pieces`` (a blocking iterator) for a StreamingResponse, one piece per turn."""
    bound = limiter(request)
    try:
        while (piece := await anyio.to_thread.run_sync(next, pieces, _DONE,
                                                       limiter=bound)) is not _DONE:
            yield piece
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:  # a generator's session closes even when the client left early
            await anyio.to_thread.run_sync(close, limiter=bound)
