"""Keep one child process alive: ``epoque serve``'s embedded worker.

A worker killed by the OOM killer (or anything else) is started again, so runs do not queue
forever behind a dead worker. A worker that dies soon after it started (a broken install, a
database it cannot reach) is restarted after a back-off doubling with each such death, never in
a tight loop; once one has lived ``stable_seconds`` the back-off starts over. The clock and the
wait are injected, so the policy is tested without sleeping.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Child(Protocol):
    def wait(self) -> int: ...


class Supervisor:
    def __init__(
        self, start: Callable[[], Child], *, clock: Callable[[], float] = time.monotonic,
        first_delay: float = 1.0, max_delay: float = 60.0, stable_seconds: float = 60.0,
    ) -> None:
        self.start, self.clock = start, clock
        self.first_delay, self.max_delay, self.stable_seconds = first_delay, max_delay, stable_seconds
        self.child: Child | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def delay(self, quick_deaths: int) -> float:
        """Seconds before the next start, after ``quick_deaths`` deaths in a row of children
        that lived less than ``stable_seconds`` (0: the last one had lived long)."""
        return min(self.max_delay, self.first_delay * 2 ** max(quick_deaths - 1, 0))

    def run(self, wait: Callable[[float], bool] | None = None) -> None:
        """Until ``stop``: start the child, wait for it to end, back off, start it again.
        ``wait(seconds)`` returns True when stopping (default: the stop event's wait)."""
        wait = wait or self._stopping.wait
        quick_deaths = 0
        while True:
            with self._lock:  # stop() either sees this child, or this loop sees it stopping
                if self._stopping.is_set():
                    return
                started = self.clock()
                self.child = self.start()
            code = self.child.wait()
            if self._stopping.is_set():
                return
            lived = self.clock() - started
            quick_deaths = quick_deaths + 1 if lived < self.stable_seconds else 0
            delay = self.delay(quick_deaths)
            log.warning("the embedded worker exited (code %s) after %.0f s; starting another "
                        "in %.0f s", code, lived, delay)
            if wait(delay):
                return
            self.restarts += 1

    def stop(self) -> Child | None:
        """No more restarts; returns the child still running, for the caller to stop."""
        with self._lock:
            self._stopping.set()
            return self.child
