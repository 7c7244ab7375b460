"""A test hook: a run waits at the end of an epoch until the test lets it go on.

Tests that need a run still running at a known epoch (to send η, cancel, kill its worker)
would otherwise race the worker's pace. Inert unless ``EPOQUE_TEST_HOLD_DIR`` is set, which
only the tests do, for the workers they start (tests/conftest.py's ``hold`` drives it).

In that folder, ``run-<id>`` (or ``all``, for every run without a file of its own) holds U:
at the end of an epoch N >= U the run stores its points, writes N to ``run-<id>.held`` and
waits until U is raised or the file removed; then it reads its controls again, so a cancel or
η sent while it waited counts at epoch N's end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

POLL_SECONDS = 0.02


def hold_here(run_id: int, epoch: int, flush: Callable[[], None]) -> None:
    folder = os.environ.get("EPOQUE_TEST_HOLD_DIR")
    if not folder:
        return
    held = Path(folder) / f"run-{run_id}.held"
    waited = False
    while (until := _until(Path(folder), run_id)) is not None and epoch >= until:
        if not waited:
            flush()
            held.write_text(str(epoch))
            waited = True
        time.sleep(POLL_SECONDS)
    if waited:
        held.unlink(missing_ok=True)
        flush()


def _until(folder: Path, run_id: int) -> int | None:
    for name in (f"run-{run_id}", "all"):
        try:
            return int((folder / name).read_text())
        except (FileNotFoundError, ValueError):
            continue
    return None
