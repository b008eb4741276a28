"""The epoch loop of every trainer: R >= 1 runs, one :class:`~.RunRecord` each, whatever trains them.

A trainer (the image runs' :func:`~localmixup.paper.training.fit.fit`, the spirals'
:func:`~localmixup.paper.spirals.trainer.train_many`) describes its runs as a :class:`Trainee`:
how to train one epoch and how to measure the test error. The loop does the rest the same way
for all: the progress bar, when to evaluate and record, failed runs, checkpoints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple

from localmixup.paper.run_record import RunRecord


class EpochResult(NamedTuple):
    """What one epoch of R runs gives: each run's mean training loss over the epoch's steps,
    the learning rate, and other per-run means (``{name: [R values]}``, stored in the records)."""

    losses: Sequence[float]
    lr: float
    stats: dict[str, Sequence[float]]


class Trainee(NamedTuple):
    """R runs as the loop sees them: ``epoch(index)`` trains epoch ``index`` (0-based) and returns
    its :class:`EpochResult`; ``errors()`` gives each run's test error in percent."""

    epoch: Callable[[int], EpochResult]
    errors: Callable[[], Sequence[float]]


def epoch_bar(description: str, first: int, epochs: int, progress: bool):
    """tqdm bar over the epochs ``first..epochs-1`` (a resumed run starts part-way)."""
    from tqdm.auto import tqdm

    return tqdm(range(first, epochs), desc=description, unit="epoch", leave=False, disable=not progress, total=epochs,
                initial=first)


def train_epochs(trainee: Trainee, records: list[RunRecord], epochs: int, *, first: int = 0,
                 alive: list[bool] | None = None, record_at: Collection[int] | None = None,
                 after_epoch: Callable[[int, list[bool]], None] | None = None, description: str = "",
                 progress: bool = False) -> list[bool]:
    """Train epochs ``first..epochs-1`` of the runs of ``records`` (one per run, updated in place).

    Args:
        trainee: the runs.
        records: their records so far (a resumed run's hold its first epochs).
        epochs: total epochs of the runs.
        first: epochs already trained (a resumed run).
        alive: which runs still train (default: all); a run whose mean training loss over an epoch
            is not finite is marked failed there and stops counting.
        record_at: 1-based epochs after which the test error is measured and an epoch record
            appended (default: every epoch); the last epoch always is, and so is an epoch where a
            run fails.
        after_epoch: called with (epochs done, alive) after every epoch but the last (checkpoints).
        description, progress: the tqdm bar's label, and whether to show it.

    Returns:
        Which runs are still alive at the end.
    """
    alive = [True] * len(records) if alive is None else alive
    bar = epoch_bar(description, first, epochs, progress)
    for epoch in bar:
        start = time.perf_counter()
        result = trainee.epoch(epoch)
        finite = [a and math.isfinite(loss) for loss, a in zip(result.losses, alive)]
        measured = record_at is None or epoch + 1 in record_at or epoch + 1 == epochs
        errors = trainee.errors() if measured and any(finite) else [None] * len(records)
        seconds = time.perf_counter() - start
        for r, record in enumerate(records):
            if alive[r] and (measured or not finite[r]):
                alive[r] = record.add_epoch(epoch, result.losses[r], errors[r], result.lr, seconds,
                                            **{name: values[r] for name, values in result.stats.items()})
        if not any(alive):
            break
        if measured:
            bar.set_postfix(error=f"{min(e for e, a in zip(errors, alive) if a):.2f}%")
        if after_epoch is not None and epoch + 1 < epochs:
            after_epoch(epoch + 1, alive)
    bar.close()
    return alive
