"""Retrain a recorded image run from its stored configuration and compare it with its record, epoch by
epoch: the check that a record is reproducible with the code at hand (bit for bit on the CPU with the
record's thread count, on the kind of CPU that made it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import torch

from localmixup.checks import check_integer
from localmixup.paper.record_files import read_record
from localmixup.paper.run_record import EpochRecord, RunRecord
from localmixup.paper.training.config import TrainConfig
from localmixup.paper.training.fit import train_run


class Retrained(NamedTuple):
    """How a retrained prefix compares with its record: the epochs compared, the first that differs
    (None if all agree) and the two test errors (percent) there."""

    path: Path
    epochs: int
    first_difference: int | None
    recorded_pct: float | None
    retrained_pct: float | None

    @property
    def identical(self) -> bool:
        return self.first_difference is None


def epoch_numbers(epoch: EpochRecord) -> tuple:
    """Everything an epoch records but its wall-clock time."""
    return epoch.epoch, epoch.train_loss, epoch.test_error_pct, epoch.lr, epoch.stats


def retrain_prefix(path: Path | str, epochs: int = 2) -> Retrained:
    """Train the first ``epochs`` epochs of the run recorded at ``path`` again (CPU, the record's
    thread count) and compare them with the record's. The learning rate of an epoch does not depend
    on the total number of epochs for a schedule whose first step comes later, which is checked:
    ``ValueError`` otherwise, or if the record holds fewer epochs."""
    path = Path(path)
    record = RunRecord.from_dict(read_record(path))
    epochs = check_integer("epochs", epochs, low=1, high=len(record.epochs))
    config = TrainConfig.from_dict(TrainConfig.as_recorded(record.config))
    if config.schedule == "multistep" and config.milestones and min(config.milestones) <= epochs:
        raise ValueError(f"epochs={epochs} reaches the first learning-rate step of {path} (epoch {min(config.milestones)}): "
                         "retrain fewer epochs")
    before = torch.get_num_threads()
    torch.set_num_threads(record.threads or before)
    try:
        again = train_run(dataclasses.replace(config, epochs=epochs), "cpu")
    finally:
        torch.set_num_threads(before)
    for mine, theirs in zip(again.epochs, record.epochs[:epochs]):
        if epoch_numbers(mine) != epoch_numbers(theirs):
            return Retrained(path, epochs, theirs.epoch, theirs.test_error_pct, mine.test_error_pct)
    return Retrained(path, epochs, None, None, None)
