"""Runs that differ only in their seed, trained together as one stacked network (a *pack*).

Member k of a pack *is* the run ``specs[k]`` trained alone: its network initialised from its
seed, its data generated and split from its seed, its minibatch order drawn from its seed. The
stacked network (models.py) only batches the K runs' steps into one; each member has its own
rows of the stacked data, its own figures, early stopping, z*, result and checkpoints, and they
equal those of the run trained alone up to float round-off (tests/engine/test_pack.py). A
member's checkpoint is a single run's snapshot, so a run taken over after a crash goes on alone.

The loop is loop.py's, the one a run trained alone goes through: a pack is K members with
their own data instead of one. A member that stops (early stopping, divergence, cancel) stops
reporting and keeps its z*; the stack trains on while any member is active. η is the schedule's, shared by the pack: a hand-set
η (``Callbacks.current_lr``) is not consulted, and the API refuses one for a packed run.

Dropout and augmentation pack too: member k draws its masks from its own generator, in the
shape its run alone draws them (layers.Dropout's per-member streams), and its augmentation
parameters from its own seed's stream (augment.PackAugmenter), so its random draws are bit for
bit those of its run alone. ``pack_reason`` says why a spec cannot be packed: an ensemble is a
stack already; full-pass batchnorm statistics are measured on one shared set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from os import PathLike
from typing import TYPE_CHECKING

from .spec import Spec, pack_key, pack_reason

if TYPE_CHECKING:  # the loop (and torch) load when a pack trains, not when one is planned
    from .loop import Callbacks, TrainOutcome

# The K members' datasets live side by side on the device; past this a pack is refused (on a
# GPU: a quarter of its memory, if more; pack_memory_budget).
PACK_MEMORY_BYTES = 1 << 30
GPU_PACK_SHARE = 0.25


def pack_memory_budget(device: str, total_bytes: int | None = None) -> int:
    """Bytes the members' datasets may take side by side: PACK_MEMORY_BYTES on the CPU; on a
    GPU a quarter of its memory (``total_bytes``, else what torch reports), at least that; the
    rest is for the stacked network, its activations and the worker's data cache."""
    if not device.startswith("cuda"):
        return PACK_MEMORY_BYTES
    if total_bytes is None:
        import torch

        total_bytes = torch.cuda.get_device_properties(torch.device(device)).total_memory
    return max(PACK_MEMORY_BYTES, int(total_bytes * GPU_PACK_SHARE))


class PackTooLarge(ValueError):
    """The members' datasets together would take more than PACK_MEMORY_BYTES."""


def train_pack(
    specs: Sequence[Spec], callbacks: Sequence[Callbacks] | None = None, *,
    device: str | None = None, data_root: PathLike | str | None = None,
    after_epoch: Callable[[int], None] | None = None,
    on_member_done: Callable[[int, TrainOutcome], None] | None = None,
) -> list[TrainOutcome]:
    """Train the runs ``specs`` (two or more, differing only in seed) as one stacked network;
    member k reports through ``callbacks[k]`` and ends as ``outcome[k]``, what ``train`` would
    return for ``specs[k]``. ``after_epoch(epoch)`` follows every member's callbacks of an
    epoch (a caller storing the figures writes all members at once there); ``on_member_done(k,
    outcome)`` comes as soon as member k stops, with its final outcome. Raises ValueError if
    they cannot be packed (``pack_reason``), PackTooLarge if their datasets would not fit side
    by side."""
    from .loop import Callbacks, Stack, make_members, run
    from .train import resolve_device

    spec = specs[0]
    if len(specs) < 2 or any(pack_key(s) != pack_key(spec) for s in specs):
        raise ValueError("a pack needs two or more runs that differ only in seed")
    if (reason := pack_reason(spec)) is not None:
        raise ValueError(f"these runs cannot be packed: {reason}")
    cbs = list(callbacks) if callbacks is not None else [Callbacks() for _ in specs]
    dev = resolve_device(device or spec.device)
    stack = Stack(specs, [s.seed for s in specs], dev, data_root, own_data=True,
                  memory_limit=pack_memory_budget(str(dev)))
    members = make_members(stack, specs, cbs, stack.start())
    return run(stack, members, after_epoch=after_epoch, on_member_done=on_member_done)
