"""The record of one run: :class:`RunRecord`, the one type every trainer and executor writes,
and many records held column-wise in one object (:func:`pack_records`, for sweeps of thousands
of small runs).

Units: errors in percent (``*_pct``, in [0, 100]), times in seconds, memory in bytes. A loss that
turned NaN or infinite stays what it was (:func:`~localmixup.paper.record_files.write_record` writes it
as strict JSON and :func:`~localmixup.paper.record_files.read_record` restores it), and the run is
marked ``failed`` with the reason in ``error``.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from localmixup.checks import check_integer

STATUSES = ("ok", "failed")


@dataclass
class EpochRecord:
    """One epoch of a run.

    Attributes:
        epoch: 1-based number of the epoch.
        train_loss: mean training loss over the epoch's steps (nats), NaN or infinite where the run failed.
        test_error_pct: test error at the end of the epoch, percent; None if the run failed there.
        lr: learning rate during the epoch.
        seconds: wall-clock time of the epoch's training and evaluation.
        stats: other per-epoch means (AdaMixup's step statistics), stored beside the fields above.
    """

    epoch: int
    train_loss: float
    test_error_pct: float | None
    lr: float
    seconds: float
    stats: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "stats"}
        return {**d, **self.stats}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "EpochRecord":
        names = [f.name for f in dataclasses.fields(cls) if f.name != "stats"]
        return cls(**{k: d[k] for k in names}, stats={k: v for k, v in d.items() if k not in names})


@dataclass
class RunRecord:
    """What one run did (a sweep writes it as JSON, :meth:`to_dict`).

    Attributes:
        config: the run's configuration (:meth:`~localmixup.paper.training.config.TrainConfig.to_dict`).
        status: ``"ok"`` or ``"failed"``.
        error: why a failed run failed (one line); None for ``ok``.
        failed_epoch: 1-based epoch whose training loss was not finite, or None.
        epochs: one :class:`EpochRecord` per epoch trained.
        final_test_error_pct: test error after the last epoch, percent; None if failed.
        final_train_error_pct: training-set error after the last epoch, percent, where the trainer
            measures it (the spirals runs); None otherwise.
        parameters: trainable parameters of everything trained.
        parameter_counts: AdaMixup's parts (``classifier``, ``generator``, ``discriminator``, ``total``).
        fast_path: whether the step was captured in a CUDA graph.
        threads: torch intra-op threads of the process that trained a CPU run (None on CUDA): CPU
            kernels split their sums by thread, so the same seed gives other numbers with another count.
        stack: ``{"runs": R, "position": r}`` for a run trained in a stack of R runs
            (:mod:`~localmixup.paper.training.stacked`); None for a run trained alone.
        train_seconds: wall-clock time of the training (of the whole stack for a stacked run).
        memory: ``saved_for_backward_bytes`` (:class:`~localmixup.paper.training.memory.SavedTensorBytes`
            over the first eager step, of the whole stack for a stacked run; None when the step was
            captured in a CUDA graph or the run was resumed), ``parameter_bytes`` (one run's
            parameters), ``cuda_peak_allocated_bytes`` (``torch.cuda.max_memory_allocated`` from
            before the model was built to the end, datasets on the GPU included; None on a CPU).
        environment: :func:`~localmixup.paper.provenance.environment` at the end of the training.
        resumed_after_epochs: the epochs after which the run was resumed from a checkpoint.
        traceback: the traceback of a run whose training raised, else None.
    """

    config: dict[str, Any]
    status: str = "ok"
    error: str | None = None
    failed_epoch: int | None = None
    epochs: list[EpochRecord] = field(default_factory=list)
    final_test_error_pct: float | None = None
    final_train_error_pct: float | None = None
    parameters: int | None = None
    parameter_counts: dict[str, int] | None = None
    fast_path: bool | None = None
    threads: int | None = None
    stack: dict[str, int] | None = None
    train_seconds: float = 0.0
    memory: dict[str, int | None] | None = None
    environment: dict[str, str] | None = None
    resumed_after_epochs: list[int] = field(default_factory=list)
    traceback: str | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(map(repr, STATUSES))}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def add_epoch(self, epoch: int, train_loss: float, test_error_pct: float | None, lr: float, seconds: float,
                  **stats: float) -> bool:
        """Append epoch ``epoch`` (0-based); a non-finite training loss marks the run failed there.
        Returns whether the run goes on."""
        ok = math.isfinite(train_loss)
        self.epochs.append(EpochRecord(epoch + 1, train_loss, test_error_pct if ok else None, lr, seconds, stats))
        if not ok:
            self.fail(f"the mean training loss of epoch {epoch + 1} is {train_loss} (not finite)", epoch + 1)
        return ok

    def fail(self, error: str, epoch: int | None = None, traceback: str | None = None) -> None:
        """Mark the run failed, with ``error`` (one line) and the 1-based ``epoch`` where it failed."""
        self.status, self.error, self.failed_epoch, self.traceback = "failed", " ".join(error.split()), epoch, traceback
        self.final_test_error_pct = self.final_train_error_pct = None

    def close(self, seconds: float, memory: dict[str, int | None], environment: dict[str, str]) -> "RunRecord":
        """Final error, training time, memory and environment of a finished (or failed) run."""
        if self.ok:
            self.final_test_error_pct = self.epochs[-1].test_error_pct
        self.train_seconds, self.memory, self.environment = seconds, memory, environment
        return self

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON values (see the module's docstring for non-finite losses)."""
        d = dataclasses.asdict(self)
        d["epochs"] = [e.to_dict() for e in self.epochs]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunRecord":
        """The record of :meth:`to_dict`; ``ValueError`` naming the problem if ``d`` is not one."""
        if not isinstance(d, dict) or "config" not in d:
            raise ValueError(f"a run record is a JSON object with a 'config', got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"a run record has no field {', '.join(unknown)}")
        return cls(**{**d, "epochs": [EpochRecord.from_dict(e) for e in d.get("epochs", [])]})


def pack_records(records: Sequence[RunRecord], *, significant: int | None = None) -> dict[str, Any]:
    """Records as one JSON object: every field held once where all records agree (``"shared"``),
    else one value per record (``"each"``); nested objects are split alike, and each record's
    epochs are stored as columns (``{"epoch": [...], "test_error_pct": [...], ...}``), so R runs
    sharing a protocol cost little more than their numbers. ``significant``: round every float to
    this many significant digits (None: exact). :func:`unpack_records` inverts it.
    """
    if not records:
        raise ValueError("records must hold at least one run record to pack")
    dicts = [r.to_dict() for r in records]
    for d in dicts:
        d["epochs"] = {key: [e[key] for e in d["epochs"]] for key in (d["epochs"][0] if d["epochs"] else {})}
    packed = {"runs": len(dicts), **_split(dicts)}
    return packed if significant is None else _round(packed, check_integer("significant", significant, low=1))


def unpack_records(packed: dict[str, Any]) -> list[RunRecord]:
    """The records of :func:`pack_records`; ``ValueError`` naming the problem if ``packed`` is not one."""
    try:
        dicts = _join(packed, packed["runs"])
        for d in dicts:
            columns = d["epochs"]
            d["epochs"] = [dict(zip(columns, values)) for values in zip(*columns.values())]
    except (KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"not packed run records ({error!r})") from None
    return [RunRecord.from_dict(d) for d in dicts]


def _split(values: list[dict[str, Any]]) -> dict[str, Any]:
    shared, each = {}, {}
    for key in values[0]:
        column = [v[key] for v in values]
        if all(c == column[0] for c in column[1:]):
            shared[key] = column[0]
        elif all(isinstance(c, dict) and c.keys() == column[0].keys() for c in column):
            each[key] = _split(column)  # an object: split its fields in turn
        else:
            each[key] = column
    return {"shared": shared, "each": each}


def _join(packed: dict[str, Any], runs: int) -> list[dict[str, Any]]:
    out = [copy.deepcopy(packed["shared"]) for _ in range(runs)]  # no record shares a mutable value with another
    for key, column in packed["each"].items():
        values = _join(column, runs) if isinstance(column, dict) else column
        if len(values) != runs:
            raise ValueError(f"field {key!r} holds {len(values)} values for {runs} runs")
        for d, v in zip(out, values):
            d[key] = v
    return out


def _round(value: Any, significant: int) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return float(f"{value:.{significant}g}")
    if isinstance(value, dict):
        return {k: _round(v, significant) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v, significant) for v in value]
    return value
