"""New points, announced: on Redis, the worker publishes after each commit and streams wake at
once; on the embedded broker there is no server to publish through, and streams poll.

The database stays the only source of data: a notice carries no points, it only says "look
now", so a lost notice costs at most one polling interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import lru_cache

from backend.config import get_settings

log = logging.getLogger(__name__)
CHANNEL = "epoque:run:"


@lru_cache
def _sync_client():  # type: ignore[no-untyped-def]
    import redis

    return redis.Redis.from_url(get_settings().broker, socket_timeout=2)


def publish(run_id: int) -> None:
    """Tell the API processes that run ``run_id`` has new rows (best effort)."""
    settings = get_settings()
    if settings.embedded_broker or not settings.broker.startswith(("redis://", "rediss://")):
        return
    try:
        _sync_client().publish(f"{CHANNEL}{run_id}", b"1")
    except Exception:
        log.debug("notice for run %s not published", run_id, exc_info=True)


class Hub:
    """One Redis subscription per API process, fanned out to the streams that wait."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: dict[int, set[asyncio.Event]] = {}
        self.task: asyncio.Task[None] | None = None

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        while True:
            try:
                client = aioredis.Redis.from_url(self.url)
                async with client.pubsub() as pubsub:
                    await pubsub.psubscribe(f"{CHANNEL}*")
                    async for message in pubsub.listen():
                        if message.get("type") != "pmessage":
                            continue
                        run_id = int(message["channel"].decode().removeprefix(CHANNEL))
                        for event in self.events.get(run_id, ()):
                            event.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("notice subscription lost; retrying", exc_info=True)
                await asyncio.sleep(1.0)

    async def wait(self, run_id: int, timeout: float) -> None:
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._listen())
        event = asyncio.Event()
        self.events.setdefault(run_id, set()).add(event)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            self.events[run_id].discard(event)
            if not self.events[run_id]:
                del self.events[run_id]


_hubs: dict[tuple[int, str], Hub] = {}


async def wait_for_news(run_id: int, timeout: float) -> None:
    """Return when run ``run_id`` may have new rows, or after ``timeout`` seconds."""
    settings = get_settings()
    if settings.embedded_broker or not settings.broker.startswith(("redis://", "rediss://")):
        await asyncio.sleep(timeout)
        return
    # One hub per event loop (tests run several apps, each in its own loop).
    key = (id(asyncio.get_running_loop()), settings.broker)
    hub = _hubs.get(key) or _hubs.setdefault(key, Hub(settings.broker))
    await hub.wait(run_id, timeout)
