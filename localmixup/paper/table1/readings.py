"""What the Table-1 records say: per dataset, the three methods' errors and their differences paired
by seed, read against the paper's claim; the flattening of the learning curves; the ablation of the
decay rate; and the chapter's reading as Markdown.

The paper's claim for a dataset of Table 1 is that Local Mixup has a lower error than Mixup and
than the baseline. Every comparison here is paired by seed (runs that share a seed share their
initial weights and data order, :func:`~localmixup.paper.stats.paired_difference`); a verdict is the
side of its 95% interval (``below``, ``above``, ``not separated``), and its direction relative to the
paper's claim (:func:`against_claim`). The functions take run records (dicts, as
:func:`~localmixup.paper.record_files.read_record` returns them) or frames, and return data; the
``describe*`` functions render it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import pandas as pd

from localmixup.paper.labels import DATASET_LABELS, DATASET_NAMES, METHOD_LABELS, MODEL_LABELS, PAPER_MODELS
from localmixup.paper.stats import PairedDifference, confidence_interval, describe_difference, paired_difference
from localmixup.paper.sweep.results import final_errors, runs_of
from localmixup.paper.table1.report import PAPER_TABLE1

METHODS = ("baseline", "mixup", "local")
#: The paired comparisons the chapter shows, ``a - b``.
PAIRS = (("local", "mixup"), ("local", "baseline"), ("mixup", "baseline"))

#: What each profile's numbers can say (the first line of the chapter's reading).
PROFILE_CAVEAT = {
    "quick": "The `quick` profile trains small networks for 4 epochs on 4,000 images: its errors are far above the "
             "paper's and say nothing about the methods; only the `paper` (GPU) and `cpu` profiles do.",
    "cpu": "The `cpu` profile trains LeNet-5, not the paper's DenseNet-BC: its errors compare the methods with one "
           "another, under one converged recipe and 10 seeds; they are not the paper's numbers and are not expected "
           "to match them.",
    "paper": "The `paper` profile follows the paper's protocol: its cells are comparable with the paper's values.",
}


def against_claim(diff: PairedDifference, claimed: str = "below") -> str:
    """Where a paired difference stands relative to a claim that ``a`` is ``claimed`` (``"below"`` or
    ``"above"``) ``b``: ``"as the paper"``, ``"opposite to the paper"`` or ``"not separated"``."""
    if diff.side == "not separated":
        return "not separated"
    return "as the paper" if diff.side == claimed else "opposite to the paper"


def load(plan) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The recorded runs of a Table-1 plan (:func:`~localmixup.paper.table1.plan.table1_plan`): the
    main runs and the decay-rate ablation's, those whose record exists."""
    from localmixup.paper.sweep.plan import record_paths
    from localmixup.paper.sweep.results import records_of

    return records_of(record_paths(plan.configs)), records_of(record_paths(plan.extra["ablation"]))


def dataset_labels(configs: Iterable[Any]) -> dict[str, str]:
    """Each dataset of ``configs`` with the network its runs use, e.g. ``Fashion-MNIST (LeNet-5)``."""
    return {c.dataset: f"{DATASET_NAMES[c.dataset]} ({MODEL_LABELS[c.model]})" for c in configs}


def errors_of(records: Iterable[Mapping[str, Any]], dataset: str, method: str,
              seeds: Iterable[int] | None = None) -> dict[int, float]:
    """Seed -> final test error (%) of the finished runs of one method on one dataset."""
    return final_errors(runs_of(records, dataset, method, seeds))


class DatasetReading(NamedTuple):
    """One dataset of Table 1 in these runs (errors in %, differences in points, paired by seed).

    ``means``/``halves``/``runs``: per method, the mean error, its 95% half-width (NaN with one run)
    and the finished runs; ``differences``: ``(a, b) -> a - b`` for each pair of :data:`PAIRS`;
    ``model``: the network of the runs; ``paper``: per method, the paper's (mean, half-width).
    """

    dataset: str
    model: str
    means: dict[str, float]
    halves: dict[str, float]
    runs: dict[str, int]
    differences: dict[tuple[str, str], PairedDifference]
    paper: dict[str, tuple[float, float]]

    @property
    def local_vs_mixup(self) -> PairedDifference:
        return self.differences["local", "mixup"]

    @property
    def best(self) -> str:
        """The method with the lowest mean error."""
        return min(self.means, key=self.means.get)

    @property
    def baseline_best(self) -> bool:
        """The baseline is below both Mixup and Local Mixup, each paired interval excluding 0."""
        return (self.differences["mixup", "baseline"].side == "above"
                and self.differences["local", "baseline"].side == "above")

    @property
    def baseline_margin(self) -> float:
        """The smaller of Mixup's and Local Mixup's mean paired excess over the baseline (points)."""
        return min(self.differences["mixup", "baseline"].mean, self.differences["local", "baseline"].mean)

    @property
    def paper_gap(self) -> float:
        """The paper's Local Mixup minus Mixup (points; NaN without a printed value)."""
        return self.paper.get("local", (math.nan,))[0] - self.paper.get("mixup", (math.nan,))[0]

    @property
    def paper_model(self) -> bool:
        """Whether these runs use the paper's network for this dataset."""
        return self.model == PAPER_MODELS.get(self.dataset)

    @property
    def verdict(self) -> str:
        """The paper's claim for this row (Local Mixup below Mixup and below the baseline):
        ``"holds"`` when both paired intervals lie below 0, ``"does not hold"`` when either lies
        above 0 (the direction opposite to the paper's), else ``"not separated"``."""
        sides = [self.differences["local", "mixup"].side, self.differences["local", "baseline"].side]
        if sides == ["below", "below"]:
            return "holds"
        return "does not hold" if "above" in sides else "not separated"


def dataset_reading(records: Sequence[Mapping[str, Any]], dataset: str) -> DatasetReading:
    """The reading of one dataset from its main runs (baseline, Mixup and Local Mixup records)."""
    errors = {m: errors_of(records, dataset, m) for m in METHODS}
    missing = [m for m in METHODS if not errors[m]]
    if missing:
        raise ValueError(f"{dataset}: no finished run of {missing}")
    stats = {m: confidence_interval(list(errors[m].values())) for m in METHODS}
    model = ", ".join(sorted({r["config"]["model"] for r in records if r["config"]["dataset"] == dataset}))
    return DatasetReading(dataset, model, {m: s[0] for m, s in stats.items()}, {m: s[1] for m, s in stats.items()},
                          {m: s[2] for m, s in stats.items()},
                          {(a, b): paired_difference(errors[a], errors[b]) for a, b in PAIRS},
                          {m: PAPER_TABLE1[dataset, m] for m in METHODS if (dataset, m) in PAPER_TABLE1})


def describe_differences(readings: Iterable[DatasetReading], labels: Mapping[str, str]) -> str:
    """Every paired difference of :data:`PAIRS` per dataset, one Markdown bullet each."""
    return "\n".join(f"- {labels.get(r.dataset, r.dataset)}: {describe_difference(METHOD_LABELS[a], METHOD_LABELS[b], d)}"
                     for r in readings for (a, b), d in r.differences.items())


class CurveChange(NamedTuple):
    """The change of one method's test error between two epochs, paired by seed (points)."""

    dataset: str
    method: str
    before: int
    last: int
    change: PairedDifference


def curve_changes(curves: pd.DataFrame, datasets: Iterable[str], methods: Iterable[str] = METHODS,
                  span: int = 2) -> list[CurveChange]:
    """Per dataset and method, the test error at the last recorded epoch minus ``span`` epochs
    earlier, paired by seed (``curves``: :func:`~localmixup.paper.sweep.results.learning_curves`)."""
    last = int(curves["epoch"].max())
    before = max(1, last - span)
    out = []
    for d in datasets:
        for m in methods:
            part = curves[(curves["dataset"] == d) & (curves["method"] == m)]
            at = {e: part[part["epoch"] == e].set_index("seed")["test_error_pct"].to_dict() for e in (before, last)}
            out.append(CurveChange(d, m, before, last, paired_difference(at[last], at[before])))
    return out


def describe_curve_changes(changes: Iterable[CurveChange], labels: Mapping[str, str]) -> str:
    """One Markdown bullet per :class:`CurveChange`."""
    return "\n".join(f"- {labels.get(c.dataset, c.dataset)}, "
                     f"{describe_difference(f'{METHOD_LABELS[c.method]} at epoch {c.last}', f'epoch {c.before}', c.change)}"
                     for c in changes)


def pair_weights(distances: Any, rates: Iterable[float]) -> dict[float, float]:
    """Rate -> mean weight ``exp(-rate D)`` of a random pair, over the pair ``distances`` (a (P,)
    tensor; :func:`localmixup.decay.mean_pair_weight`)."""
    from localmixup.decay import mean_pair_weight

    rates = list(rates)
    return dict(zip(rates, mean_pair_weight(distances, rates).tolist()))


def automatic_rate(ablation: Iterable[Any]) -> float | None:
    """The automatic decay rate of the ablation's configurations (None if it has none)."""
    return next((c.decay for c in ablation if c.decay_rule), None)


def ablation_points(ablation_runs: Iterable[Mapping[str, Any]], runs: Iterable[Mapping[str, Any]],
                    seeds: Iterable[int], dataset: str = "fashion_mnist") -> pd.DataFrame:
    """One row per finished run of the decay-rate ablation (``decay``, ``seed``, ``error``), the main
    Local Mixup runs (the profile's rate) on the ablation's ``seeds`` included as one more rate."""
    main_local = runs_of(runs, dataset, "local", seeds)
    points = {(r["config"]["decay"], r["config"]["seed"]): r["final_test_error_pct"]
              for r in [*ablation_runs, *main_local] if r["status"] == "ok"}
    return pd.DataFrame([{"decay": a, "seed": s, "error": e} for (a, s), e in points.items()],
                        columns=["decay", "seed", "error"])


class DecayReading(NamedTuple):
    """The ablation of the decay rate: ``table`` (one row per rate: automatic, mean pair weight,
    runs, error %, ± 95%, minus Mixup (paired), ± 95% (paired), separated), ``differences`` (rate ->
    Local Mixup at that rate minus Mixup, paired by seed) and the ``automatic`` rate (or None)."""

    table: pd.DataFrame
    differences: dict[float, PairedDifference]
    automatic: float | None

    @property
    def best(self) -> float:
        """The rate with the lowest mean error."""
        return self.table["error %"].idxmin()

    @property
    def separated(self) -> dict[float, float]:
        """Rate -> paired difference to Mixup, for the rates whose interval excludes 0."""
        return {a: d.mean for a, d in self.differences.items() if d.separated}


def decay_reading(points: pd.DataFrame, mixup_errors: Mapping[int, float], weights: Mapping[float, float],
                  automatic: float | None = None) -> DecayReading:
    """The ablation's reading from its ``points`` (:func:`ablation_points`), Mixup's errors on the same
    seeds (seed -> %) and the mean pair weight of each rate (:func:`pair_weights`)."""
    rows, differences = [], {}
    for a, group in points.groupby("decay"):
        diff = differences[a] = paired_difference(dict(zip(group["seed"], group["error"])), mixup_errors)
        mean, half, n = confidence_interval(group["error"].tolist())
        rows.append({"decay": a, "automatic": a == automatic, "mean pair weight": weights[a], "runs": n, "error %": mean,
                     "± 95%": half, "minus Mixup (paired)": diff.mean, "± 95% (paired)": diff.half, "separated": diff.separated})
    columns = ["decay", "automatic", "mean pair weight", "runs", "error %", "± 95%", "minus Mixup (paired)",
               "± 95% (paired)", "separated"]
    return DecayReading(pd.DataFrame(rows, columns=columns).set_index("decay"), differences, automatic)


def describe_decays(reading: DecayReading) -> str:
    """Each rate minus Mixup, paired by seed, one Markdown bullet each."""
    return "\n".join(f"- {describe_difference(f'Local Mixup at decay {a:g}' + (' (automatic)' if a == reading.automatic else ''), 'Mixup', d)}"
                     for a, d in reading.differences.items())


def _interval(d: PairedDifference) -> str:
    if d.n < 2:
        return f"{d.mean:+.2f} points ({d.n} paired seed)"
    return f"{d.mean:+.2f} points (95% CI {d.mean - d.half:+.2f} to {d.mean + d.half:+.2f}, {d.n} paired seeds)"


def describe_dataset(r: DatasetReading, label: str) -> list[str]:
    """The reading of one dataset as Markdown bullets: which method is best and by how much
    (every method against the baseline), then Local Mixup against Mixup beside the paper's gap."""
    to_base = {m: r.differences[m, "baseline"] for m in ("mixup", "local")}
    if r.baseline_best:
        head = (f"- **{label}, the baseline is best**: {r.means['baseline']:.2f} %, about {r.baseline_margin:.1f} point(s) "
                f"below the others: Mixup − baseline {_interval(to_base['mixup'])}, Local Mixup − baseline "
                f"{_interval(to_base['local'])}. The paper has Local Mixup "
                f"{r.paper['local'][0] - r.paper['baseline'][0]:+.2f} points against its baseline.")
    else:
        head = (f"- **{label}, against the baseline** (lowest mean: {METHOD_LABELS[r.best]}, {r.means[r.best]:.2f} %): "
                f"Mixup − baseline {_interval(to_base['mixup'])}, {to_base['mixup'].side}; Local Mixup − baseline "
                f"{_interval(to_base['local'])}, {to_base['local'].side}.")
    d = r.local_vs_mixup
    return [head,
            f"- **{label}, Local Mixup against Mixup**: {d.mean:+.2f} points over {d.n} paired seeds "
            f"(95% CI {d.mean - d.half:+.2f} to {d.mean + d.half:+.2f}); "
            + ("these runs separate the two methods" if d.separated else "these runs do not separate the two methods")
            + (f", {against_claim(d)}" if d.separated else "")
            + f". The paper reports {r.paper_gap:+.2f} points ({DATASET_LABELS[r.dataset]})."]


def describe(profile: str, readings: Iterable[DatasetReading], labels: Mapping[str, str],
             decay: DecayReading | None = None, unavailable: Mapping[str, str] | None = None) -> str:
    """The chapter's reading as Markdown: what the profile can say, each dataset's comparisons
    (:func:`describe_dataset`), the decay rate and the automatic rate, the datasets not run."""
    lines = [f"- {PROFILE_CAVEAT[profile]}"]
    for r in readings:
        lines += describe_dataset(r, labels.get(r.dataset, r.dataset))
    if decay is not None and len(decay.table):
        t, best = decay.table, decay.best
        separated = decay.separated
        lines.append(f"- **Decay rate**: the lowest mean error is at decay {best:g} ({t.loc[best, 'error %']:.2f} %, "
                     f"mean pair weight {t.loc[best, 'mean pair weight']:.2f}). "
                     + ("Against Mixup on the same seeds, the paired interval excludes 0 at decay "
                        + ", ".join(f"{a:g} ({gap:+.2f} points)" for a, gap in separated.items()) + "."
                        if separated else "Against Mixup on the same seeds, no rate's paired interval excludes 0."))
        if decay.automatic is not None:
            a = t.loc[decay.automatic]
            lines.append(f"- **Automatic rate** {decay.automatic:.3g} (a nearest pair of two classes weighs 1/2; a random pair "
                         f"{a['mean pair weight']:.2f} on average): {a['error %']:.2f} ± {a['± 95%']:.2f} % over {int(a['runs'])} runs, "
                         f"{a['minus Mixup (paired)']:+.2f} points against Mixup, "
                         + ("separated" if a["separated"] else "not separated") + " by the paired interval.")
    for d, why in (unavailable or {}).items():
        lines.append(f"- **{DATASET_LABELS[d]}**: no run here ({why}).")
    return "\n".join(lines)
