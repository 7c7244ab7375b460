"""Which epochs a run's reporter keeps snapshots of for forks: the budget's epochs, paced so
that serialising them takes at most EPOQUE_FORK_SNAPSHOT_SHARE of the time (a fake clock)."""

from __future__ import annotations

from itertools import pairwise

import torch

from worker.reporting import RunReporter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _snapshot(epoch: int) -> dict:
    return {"epoch": epoch, "weights": torch.zeros(1000)}  # ~4 kB


def _kept(reporter: RunReporter, clock: Clock, epochs: int, epoch_seconds: float,
          dump_seconds: float) -> list[int]:
    kept = []
    for epoch in range(1, epochs + 1):
        clock.now += epoch_seconds

        def snapshot(epoch: int = epoch) -> dict:
            clock.now += dump_seconds  # what serialising costs, on the fake clock
            return _snapshot(epoch)

        if reporter.keep_for_forks(epoch, snapshot) is not None:
            kept.append(epoch)
    return kept


def test_every_epoch_of_a_short_run_when_snapshots_are_cheap(configure, monkeypatch) -> None:
    configure()
    clock = Clock()
    reporter = RunReporter(1, "t", clock=clock)
    reporter.max_epochs = 20
    assert _kept(reporter, clock, 20, epoch_seconds=1.0, dump_seconds=0.01) == list(range(1, 21))
    assert [e for e, _ in reporter.snapshots] == list(range(1, 21))


def test_paced_to_a_share_of_the_time(configure, monkeypatch) -> None:
    configure()
    clock = Clock()
    reporter = RunReporter(1, "t", clock=clock)
    reporter.max_epochs = 40
    # a dump costs 0.01 s (0.02 s with its write): the next one waits 0.02 / 0.05 = 0.4 s
    # after it, that is 4 epochs of 0.13 s later (0.39 s is not enough)
    kept = _kept(reporter, clock, 40, epoch_seconds=0.13, dump_seconds=0.01)
    assert kept[:3] == [1, 5, 9] and all(b - a == 4 for a, b in pairwise(kept))
    monkeypatch.setenv("EPOQUE_FORK_SNAPSHOT_SHARE", "1")
    from backend.config import get_settings

    get_settings.cache_clear()
    reporter = RunReporter(1, "t", clock=clock)
    reporter.max_epochs = 40
    assert _kept(reporter, clock, 40, epoch_seconds=0.1, dump_seconds=0.01) == list(range(1, 41))


def test_none_without_a_budget_or_a_known_length(configure, monkeypatch) -> None:
    configure()
    clock = Clock()
    reporter = RunReporter(1, "t", clock=clock)  # max_epochs unknown: keeps none
    assert _kept(reporter, clock, 5, epoch_seconds=1.0, dump_seconds=0.0) == []
    monkeypatch.setenv("EPOQUE_FORK_SNAPSHOT_MB", "0")
    from backend.config import get_settings

    get_settings.cache_clear()
    reporter = RunReporter(1, "t", clock=clock)
    reporter.max_epochs = 5
    assert _kept(reporter, clock, 5, epoch_seconds=1.0, dump_seconds=0.0) == []


def test_a_pack_members_snapshots_count_for_the_whole_pack(configure) -> None:
    """K members each dumping c seconds take K·c of the pack's time: each waits K times longer."""
    from worker.reporting import PackReporter

    configure()
    clock = Clock()
    pack = PackReporter([(1, "a"), (2, "b")], clock=clock)
    member = pack.members[0]
    member.max_epochs = 40
    # one dump: 0.01 s, times 2 for its write, times 2 members: the next waits 0.8 s
    kept = _kept(member, clock, 40, epoch_seconds=0.13, dump_seconds=0.01)
    assert kept[:3] == [1, 8, 15]
