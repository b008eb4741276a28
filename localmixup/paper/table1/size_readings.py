"""What the size study says: Table 1's methods across training-set sizes (Fashion-MNIST, LeNet-5).

Every comparison is paired by seed: at one size, the runs of one seed train on the same
stratified subset (drawn from the seed) with the same initial weights and data order, so the
per-seed differences remove the data draw and the initialisation that the methods share. Each
interval is the Student-t interval of the mean over seeds; since the seeds span draws of the
subset, it includes the variance of the data draw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import pandas as pd

from localmixup.paper.stats import PairedDifference, confidence_interval, paired_difference

BASELINE, MIXUP = "baseline", "mixup"


def method_label(config: Mapping[str, Any]) -> str:
    """``baseline``, ``mixup``, ``local decay=5e-4`` or ``local auto`` (the automatic rate of the run's subset)."""
    if config["method"] != "local":
        return config["method"]
    return "local auto" if config.get("decay_rule") else f"local decay={config['decay']:g}"


def _mean(epochs: list[dict[str, Any]], key: str) -> float:
    values = [e[key] for e in epochs if e.get(key) is not None]
    return sum(values) / len(values) if values else float("nan")


def in_study(config: Mapping[str, Any]) -> bool:
    """The study's methods: baseline, Mixup, Local Mixup at 5e-4, 0.02 and the automatic rate."""
    return config["method"] in (BASELINE, MIXUP) or (
        config["method"] == "local" and bool(config["decay_rule"] or config["decay"] in (5e-4, 0.02)))


def study_records() -> list[dict[str, Any]]:
    """The study's recorded runs (:func:`in_study`): every size setting of
    :data:`~localmixup.paper.protocols.SIZE_SETTINGS` and the full split (the ``cpu`` profile)."""
    from localmixup.paper.protocols import SIZE_SETTINGS
    from localmixup.paper.record_files import load_records, results_dir

    return [r for name in [*SIZE_SETTINGS, "cpu"] for r in load_records(results_dir("table1", name, "fashion_mnist"))
            if in_study(r["config"])]


def load_size_runs() -> pd.DataFrame:
    """:func:`size_runs` of :func:`study_records`."""
    return size_runs(study_records())


def size_runs(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per finished run: ``size`` (training images), ``method`` (:func:`method_label`),
    ``decay``, ``seed``, ``error`` (final test error, %), and, averaged over the run's epochs,
    ``pair_weight`` (mean pair weight), ``intrusion`` (share of the virtual points nearest to
    another class), ``weighted_intrusion`` (that share weighted by the pair weights: of Eq. (2)'s
    loss); NaN for runs that do not mix."""
    rows = []
    for r in records:
        if r.get("status") != "ok":
            continue
        c = r["config"]
        rows.append({"size": c["train_size"] or 60000, "method": method_label(c), "decay": c["decay"], "seed": c["seed"],
                     "error": r["final_test_error_pct"], "pair_weight": _mean(r["epochs"], "pair_weight"),
                     "intrusion": _mean(r["epochs"], "intrusion_rate"),
                     "weighted_intrusion": _mean(r["epochs"], "weighted_intrusion_rate")})
    return pd.DataFrame(rows, columns=["size", "method", "decay", "seed", "error", "pair_weight", "intrusion",
                                       "weighted_intrusion"])


def size_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (size, method): seeds, mean error and the bounds of its 95% interval, mean pair weight,
    intrusion and weighted intrusion (%)."""
    rows = []
    for (size, method), part in runs.groupby(["size", "method"]):
        mean, half, n = confidence_interval(list(part["error"]))
        rows.append({"size": size, "method": method, "seeds": n, "mean": mean, "low": mean - half, "high": mean + half,
                     "pair_weight": part["pair_weight"].mean(), "intrusion (%)": 100 * part["intrusion"].mean(),
                     "weighted intrusion (%)": 100 * part["weighted_intrusion"].mean()})
    return pd.DataFrame(rows).set_index(["size", "method"])


def difference(runs: pd.DataFrame, size: int, a: str, b: str) -> PairedDifference:
    """Error of method ``a`` minus method ``b`` at ``size`` (points), paired by seed."""
    at = runs[runs["size"] == size]
    errors = {m: dict(zip(p["seed"], p["error"])) for m, p in at.groupby("method")}
    if a not in errors or b not in errors:
        raise ValueError(f"no runs of {a!r} and {b!r} at size {size}; methods recorded there: {sorted(errors)}")
    return paired_difference(errors[a], errors[b])


class SizeReading(NamedTuple):
    """The comparisons at one size: each Local Mixup rate against Mixup and against the baseline,
    Mixup against the baseline, and the method with the lowest mean error."""

    size: int
    seeds: int
    best: str
    mixup_vs_baseline: PairedDifference
    local_vs_mixup: dict[str, PairedDifference]
    local_vs_baseline: dict[str, PairedDifference]


def size_readings(runs: pd.DataFrame) -> list[SizeReading]:
    """One :class:`SizeReading` per size recorded, smallest first (sizes without both baseline and Mixup runs are skipped)."""
    out = []
    for size in sorted(set(runs["size"])):
        at = runs[runs["size"] == size]
        methods = set(at["method"])
        if not {BASELINE, MIXUP} <= methods:
            continue
        local = sorted(m for m in methods if m.startswith("local"))
        means = at.groupby("method")["error"].mean()
        out.append(SizeReading(int(size), int(at.groupby("method")["seed"].nunique().min()), str(means.idxmin()),
                               difference(runs, size, MIXUP, BASELINE),
                               {m: difference(runs, size, m, MIXUP) for m in local},
                               {m: difference(runs, size, m, BASELINE) for m in local}))
    return out


def _say(d: PairedDifference) -> str:
    if d.n < 2:
        return f"{d.mean:+.2f} ({d.n} seed)"
    word = {"below": "lower", "above": "higher", "not separated": "not separated"}[d.side]
    return f"{d.mean:+.2f} [{d.mean - d.half:+.2f}, {d.mean + d.half:+.2f}], {word}"


def describe(readings: list[SizeReading]) -> str:
    """The study's reading as Markdown: per size, the best method and every paired comparison
    (points of test error, 95% interval over seeds), then whether Local Mixup beats Mixup anywhere."""
    if not readings:
        return "No size has runs of both the baseline and Mixup yet."
    lines = []
    for r in readings:
        lines.append(f"- **{r.size:,} images** ({r.seeds} seed{'' if r.seeds == 1 else 's'}): lowest mean error: {r.best}. Mixup − baseline "
                     f"{_say(r.mixup_vs_baseline)}. " +
                     " ".join(f"{m} − Mixup {_say(r.local_vs_mixup[m])}; − baseline {_say(r.local_vs_baseline[m])}."
                              for m in r.local_vs_mixup))
    def where(pairs: list[tuple[int, str]]) -> str:
        return "; ".join(f"{s:,} images ({m})" for s, m in pairs)

    s = study_summary(readings)
    helps = [f"{size:,}" for size in s.mixup_helps]
    lines.append(f"- Mixup is below the baseline at {', '.join(helps) + ' images' if helps else 'no size recorded'}. "
                 f"Local Mixup is below Mixup at {where(s.local_wins) or 'no size and rate'}"
                 + (f", above it at {where(s.local_losses)}." if s.local_losses else "."))
    return "\n".join(lines)


class StudySummary(NamedTuple):
    """Across sizes: where Mixup is below the baseline (sizes), and the (size, rate) where a Local
    Mixup rate is below Mixup (``local_wins``) or above it (``local_losses``), paired intervals excluding 0."""

    mixup_helps: list[int]
    local_wins: list[tuple[int, str]]
    local_losses: list[tuple[int, str]]


def study_summary(readings: list[SizeReading]) -> StudySummary:
    """The study's verdicts across sizes (:class:`StudySummary`)."""
    return StudySummary([r.size for r in readings if r.mixup_vs_baseline.side == "below"],
                        [(r.size, m) for r in readings for m, d in r.local_vs_mixup.items() if d.side == "below"],
                        [(r.size, m) for r in readings for m, d in r.local_vs_mixup.items() if d.side == "above"])
