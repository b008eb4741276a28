"""Intervals and paired differences for the readings: Student-t intervals of a mean, differences
paired by seed (or by data draw), the sentence that reads one, and interval tables of a DataFrame."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple


def confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, int]:
    """``(mean, half_width, n)``; the half-width is NaN for fewer than 2 values."""
    from scipy import stats

    n = len(values)
    if n == 0:
        return math.nan, math.nan, 0
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, 1
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n), n


class PairedDifference(NamedTuple):
    """``a - b`` over the seeds both have: mean, Student-t half-width, number of pairs, and whether
    the interval excludes 0 (``separated``; False with fewer than 2 pairs)."""

    mean: float
    half: float
    n: int
    separated: bool

    @property
    def side(self) -> str:
        """Side of a against b, ``"below"`` or ``"above"`` where the interval excludes 0, else ``"not separated"``."""
        return ("below" if self.mean < 0 else "above") if self.separated else "not separated"


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], level: float = 0.95) -> PairedDifference:
    """The difference ``a[s] - b[s]`` over the seeds ``s`` common to ``a`` and ``b`` (seed -> value),
    with the Student-t interval of its mean (:func:`confidence_interval`). Runs that share a seed
    share their initial weights and data order, so pairing them removes that part of the
    seed-to-seed spread."""
    common = sorted(set(a) & set(b))
    mean, half, n = confidence_interval([a[s] - b[s] for s in common], level)
    return PairedDifference(mean, half, n, bool(n >= 2 and abs(mean) > half))


def describe_difference(label_a: str, label_b: str, diff: PairedDifference, unit: str = "points") -> str:
    """One sentence for a paired difference, e.g. ``Local Mixup - Mixup: -0.12 points (95% CI
    -0.30 to +0.06, 10 paired seeds): the interval contains 0, so these runs do not separate them.``"""
    if diff.n < 2:
        return f"{label_a} − {label_b}: {diff.mean:+.2f} {unit} from {diff.n} paired seed(s), too few for an interval."
    head = (f"{label_a} − {label_b}: {diff.mean:+.2f} {unit} (95% CI {diff.mean - diff.half:+.2f} to "
            f"{diff.mean + diff.half:+.2f}, {diff.n} paired seeds)")
    if not diff.separated:
        return head + ": the interval contains 0, so these runs do not separate them."
    return head + f": the interval excludes 0, so {label_a} is {'lower' if diff.mean < 0 else 'higher'} in these runs."


def interval_table(frame: Any, by: str, value: str, level: float = 0.95) -> Any:
    """Mean and Student-t interval (:func:`~.confidence_interval`) of column ``value`` for each
    value of column ``by`` of a DataFrame: columns ``mean``, ``low``, ``high``, ``runs``, indexed
    by ``by`` (sorted); ``low``/``high`` are NaN where a group has a single value."""
    import pandas as pd

    rows = {key: confidence_interval(group.tolist(), level) for key, group in frame.groupby(by)[value]}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "half", "runs"])
    out.index.name = by
    out["low"], out["high"] = out["mean"] - out["half"], out["mean"] + out["half"]
    return out[["mean", "low", "high", "runs"]]
