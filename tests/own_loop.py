"""Event loops of their own for tests that start one: the browser tests' Playwright leaves a
loop running in the main thread, where asyncio.run and anyio.run refuse to start, so a test
that starts a loop failed whenever the random order put it after them."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def on_own_loop(run: Callable[..., T], *args: Any) -> T:
    """``run(*args)`` (asyncio.run, anyio.run) in a thread of its own, where no loop runs."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(run, *args).result()
