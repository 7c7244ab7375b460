"""The worker's throwaway timing steps (threads, packs) never allocate the spec's batch size
as such: a huge one is clamped first (it once crashed pack_pays, leaving runs 'running')."""

from __future__ import annotations

from worker.engine.spec import parse_spec
from worker.packing import pack_pays
from worker.threads import FULL_BATCH_GUESS, choose_threads, timing_batch


def test_a_huge_batch_size_is_timed_on_a_bounded_batch() -> None:
    spec = parse_spec({"optim": {"batch_size": 10**15}, "model": {"hidden": [256, 256]}})
    assert timing_batch(spec) == FULL_BATCH_GUESS
    pays, why = pack_pays(spec, 4, "cpu")  # 4 × 10**15 × 64 floats before the clamp
    assert isinstance(pays, bool) and why
    assert choose_threads(spec, cores=2) in (1, 2)
    assert timing_batch(parse_spec({"optim": {"batch_size": 32}})) == 32
