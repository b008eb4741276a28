"""Checkpoints of runs in progress: an interrupted run resumes after its last saved epoch.

A checkpoint holds everything a run's future depends on: the weights and buffers, the SGD
momentum, the states of the random generators (data order, augmentation, mixing draws), the
record so far and the epoch to start from. A run resumed from it continues exactly as if it had
never stopped (on a CPU, bit for bit; tested).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from localmixup.paper.training.optim import SGD
from localmixup.paper.run_record import RunRecord
from localmixup.paper.record_files import atomic_write, read_checkpoint
from localmixup.rng import Streams

CHECKPOINT_VERSION = 2


class Checkpoint:
    """The checkpoint file of one run (or one stack of runs).

    Args:
        path: where to keep it; None disables checkpointing.
        identity: what the run is (its configurations and device type); a file saved by another
            run is refused rather than resumed.
        every: least number of seconds between two saves (0: at the end of every epoch); the
            state is saved only at the end of an epoch.
    """

    def __init__(self, path: str | Path | None, identity: dict[str, Any], every: float = 60.0) -> None:
        if every < 0:
            raise ValueError(f"checkpoint_every must be a number of seconds >= 0, got {every!r}")
        self.path = None if path is None else Path(path)
        self.identity, self.every = identity, every
        self.last = time.monotonic()

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None if there is none."""
        if self.path is None or not self.path.is_file():
            return None
        state = read_checkpoint(self.path)  # a damaged file: an error naming it (CorruptFile)
        if state.get("version") != CHECKPOINT_VERSION or state.get("identity") != self.identity:
            raise ValueError(f"{self.path} holds the checkpoint of another run (or of another version of "
                             f"localmixup); delete it to train this run from the start")
        return state

    def due(self) -> bool:
        """Whether a save is due: checkpointing is on and ``every`` seconds have passed since the last."""
        return self.path is not None and time.monotonic() - self.last >= self.every

    def save(self, state: dict[str, Any]) -> None:
        """Save ``state`` atomically."""
        full = {**state, "version": CHECKPOINT_VERSION, "identity": self.identity}
        atomic_write(self.path, lambda f: torch.save(full, f), binary=True)
        self.last = time.monotonic()


def training_state(tensors: Sequence[torch.Tensor], momentum: Sequence[torch.Tensor],
                   generators: Sequence[torch.Generator | Streams]) -> dict[str, Any]:
    """Copies (on the CPU) of the tensors a training step changes, of the momentum buffers and of
    the generators' states."""
    return {"tensors": [t.detach().cpu().clone() for t in tensors],
            "momentum": [b.detach().cpu().clone() for b in momentum],
            "generators": [g.get_state() for g in generators]}


@torch.no_grad()
def restore_training_state(state: dict[str, Any], tensors: Sequence[torch.Tensor], momentum: Sequence[torch.Tensor],
                           generators: Sequence[torch.Generator | Streams]) -> None:
    """Put a :func:`~.training_state` back, in place (a captured CUDA graph keeps its addresses)."""
    for target, saved in ((tensors, state["tensors"]), (momentum, state["momentum"])):
        if len(target) != len(saved) or any(t.shape != s.shape for t, s in zip(target, saved)):
            raise ValueError("the checkpoint does not match this run's model")
        for t, s in zip(target, saved):
            t.copy_(s)
    for g, s in zip(generators, state["generators"]):
        g.set_state(s)


class Resumed(NamedTuple):
    """Where runs start: the epoch (0: from the beginning), the seconds already trained, and the
    ``extra`` values saved with the checkpoint (see :func:`~.save_checkpoint`)."""

    epoch: int
    elapsed: float
    extra: dict[str, Any]


def resume(keeper: Checkpoint, records: list[RunRecord], tensors: Sequence[torch.Tensor], optimizer: SGD,
           generators: Sequence[torch.Generator | Streams]) -> Resumed:
    """Restore the state saved in ``keeper``, if any, in place: tensors, momentum, generators, and the
    records so far (each noted as resumed after the saved epoch)."""
    state = keeper.load()
    if state is None:
        return Resumed(0, 0.0, {})
    restore_training_state(state, tensors, optimizer.buffers, generators)
    for r, saved in enumerate(state["records"]):
        records[r] = RunRecord.from_dict(saved)
        records[r].resumed_after_epochs.append(state["epoch"])
    return Resumed(state["epoch"], state["elapsed"], state["extra"])


def save_checkpoint(keeper: Checkpoint, epoch: int, records: Sequence[RunRecord], elapsed: float,
                    tensors: Sequence[torch.Tensor], optimizer: SGD, generators: Sequence[torch.Generator | Streams],
                    **extra: Any) -> None:
    """Save the state of runs that have finished ``epoch`` epochs (see :func:`~.resume`)."""
    keeper.save({**training_state(tensors, optimizer.buffers, generators), "epoch": epoch,
                 "records": [r.to_dict() for r in records], "elapsed": elapsed, "extra": extra})
