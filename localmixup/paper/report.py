"""Table 1 from run records: mean and 95% confidence interval per cell, beside the paper's values.

Interval: Student's t, ``mean +- t_{0.975, n-1} * s / sqrt(n)`` with ``s`` the sample standard
deviation (n - 1 in the denominator) of the n finished runs' final test errors. A cell is marked
when its interval and the paper's (``mean +- printed half-width``) do not overlap:
``|mean - paper_mean| > half_width + paper_half_width``. Failed runs (NaN/inf loss) are counted
but excluded from the mean.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from localmixup.paper.records import load_records, results_dir

# The paper's Table 1, error % (mean, printed +- half-width).
PAPER_TABLE1: dict[tuple[str, str], tuple[float, float]] = {
    ("cifar10", "baseline"): (4.98, 0.03), ("cifar10", "mixup"): (4.13, 0.03), ("cifar10", "local"): (4.03, 0.03),
    ("cifar100", "baseline"): (30.6, 0.27), ("cifar100", "mixup"): (29.23, 0.4), ("cifar100", "local"): (29.08, 0.34),
    ("fashion_mnist", "baseline"): (6.20, 0.2), ("fashion_mnist", "mixup"): (6.36, 0.16), ("fashion_mnist", "local"): (5.97, 0.2),
    ("svhn", "baseline"): (10.01, 0.15), ("svhn", "mixup"): (8.31, 0.14), ("svhn", "local"): (8.20, 0.13),
}
PAPER_RUNS = {"cifar10": "100", "cifar100": "unstated", "fashion_mnist": "10", "svhn": "10"}
TABLE1_DATASETS = ("cifar10", "cifar100", "fashion_mnist", "svhn")
DATASET_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "fashion_mnist": "Fashion-MNIST", "svhn": "SVHN", "mnist": "MNIST"}
MODEL_LABELS = {"resnet18": "ResNet-18", "densenet_bc": "DenseNet-BC", "lenet5": "LeNet-5"}
PAPER_MODELS = {"cifar10": "resnet18", "cifar100": "resnet18", "fashion_mnist": "densenet_bc", "svhn": "lenet5", "mnist": "densenet_bc"}
#: Each dataset with the paper's network for it, e.g. "Fashion-MNIST (DenseNet-BC)".
DATASET_LABELS = {d: f"{name} ({MODEL_LABELS[PAPER_MODELS[d]]})" for d, name in DATASET_NAMES.items()}
METHOD_LABELS = {"baseline": "Baseline", "mixup": "Mixup", "local": "Local Mixup", "adamixup": "AdaMixup"}


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


def final_errors(records: Iterable[dict[str, Any]]) -> dict[int, float]:
    """Seed -> final test error (%) of the finished runs among ``records`` (one recipe)."""
    out: dict[int, float] = {}
    for r in records:
        if r.get("status") == "ok":
            seed = r["config"]["seed"]
            if seed in out:
                raise ValueError(f"two finished runs with seed {seed}: pass the records of one recipe")
            out[seed] = r["final_test_error_pct"]
    return out


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


def table1_records(profile: str, dataset: str, method: str, decay: float | None = None) -> list[dict[str, Any]]:
    """Records of one Table-1 cell: ``results/table1/<profile>/<dataset>/``; for ``local`` only
    those with the profile's decay rate for that dataset (or ``decay``); none for a dataset the
    profile does not train (the ``cpu`` profile trains Fashion-MNIST only)."""
    from localmixup.paper.recipes import PROTOCOLS, profile_config

    if dataset not in PROTOCOLS[profile]:
        return []
    if method == "local":
        decay = profile_config(profile, dataset, "local").decay if decay is None else decay
        pattern = f"local-decay{decay:g}-seed*.json"
    else:
        pattern = f"{method}-seed*.json"
    return load_records(results_dir("table1", profile, dataset), pattern)


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Mean, 95% half-width, number of finished and failed runs of a list of records."""
    records = list(records)
    ok = [r["final_test_error_pct"] for r in records if r.get("status") == "ok"]
    mean, half, n = confidence_interval(ok)
    return {"mean": mean, "ci95": half, "runs": n, "failed": len(records) - n}


def table1(profile: str, datasets: Sequence[str] = TABLE1_DATASETS, methods: Sequence[str] = ("baseline", "mixup", "local"),
           unavailable: dict[str, str] | None = None):
    """Table 1 rebuilt from the records of ``profile``, one row per (dataset, method), as a DataFrame.

    Columns: dataset, method, model (the network of our runs, e.g. "lenet5"; "" without runs),
    runs, failed, mean, ci95 (ours, error %), paper_mean, paper_ci95, paper_runs, outside (True
    when the two intervals do not overlap; False if either is undefined, or where our network is
    not the paper's, which is not expected to match its values), note (why a row has no runs: ``unavailable[dataset]`` or "no runs yet").
    """
    import pandas as pd

    rows = []
    for dataset in datasets:
        for method in methods:
            records = table1_records(profile, dataset, method)
            s = summarise(records)
            model = ", ".join(sorted({r["config"]["model"] for r in records}))
            paper_mean, paper_ci = PAPER_TABLE1.get((dataset, method), (math.nan, math.nan))
            # another network than the paper's (the cpu profile) is not expected to match its values
            outside = bool(s["runs"] >= 2 and not math.isnan(paper_mean) and model in ("", PAPER_MODELS[dataset])
                           and abs(s["mean"] - paper_mean) > s["ci95"] + paper_ci)
            note = ""
            if s["runs"] == 0:
                note = (unavailable or {}).get(dataset) or "no runs recorded yet"
            rows.append({"dataset": dataset, "method": method, "model": model, **s, "paper_mean": paper_mean, "paper_ci95": paper_ci,
                         "paper_runs": PAPER_RUNS.get(dataset, ""), "outside": outside, "note": note})
    return pd.DataFrame(rows)


def format_table1(table) -> Any:
    """The table as the paper prints it: rows = methods, columns = datasets, ours beside the paper's.

    A cell reads ``6.05 ± 0.21 (n=10)``; ``†`` marks intervals that do not overlap the paper's;
    ``—`` marks cells without runs. Where our runs use another network than the paper's (the
    ``cpu`` profile), the column of ours names it.
    """
    import pandas as pd

    out: dict[tuple[str, str], dict[str, str]] = {}
    for row in table.itertuples():
        label = DATASET_LABELS.get(row.dataset, row.dataset)
        paper_model = PAPER_MODELS.get(row.dataset)
        foreign = sorted({MODEL_LABELS.get(m, m) for m in table[table.dataset == row.dataset].model if m and m != paper_model})
        ours_label = f"ours: {', '.join(foreign)}, not the paper's network" if foreign else "ours"
        if row.runs == 0:
            ours = "—"
        elif row.runs == 1:
            ours = f"{row.mean:.2f} (n=1)"
        else:
            ours = f"{row.mean:.2f} ± {row.ci95:.2f} (n={row.runs})" + (" †" if row.outside else "")
        if row.failed:
            ours += f" [{row.failed} failed]"
        paper = "" if math.isnan(row.paper_mean) else f"{row.paper_mean:.2f} ± {row.paper_ci95:.2f}"
        method = METHOD_LABELS.get(row.method, row.method)
        out.setdefault((label, ours_label), {})[method] = ours
        out.setdefault((label, "paper"), {})[method] = paper
    frame = pd.DataFrame(out)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns)
    return frame


def learning_curves(records: Iterable[dict[str, Any]]):
    """Per-epoch rows (method, seed, decay, epoch, train_loss, test_error_pct) of finished runs, as a DataFrame."""
    import pandas as pd

    rows = []
    for r in records:
        if r.get("status") != "ok":
            continue
        c = r["config"]
        for e in r["epochs"]:
            rows.append({"dataset": c["dataset"], "method": c["method"], "seed": c["seed"], "decay": c["decay"],
                         "epoch": e["epoch"], "train_loss": e["train_loss"], "test_error_pct": e["test_error_pct"]})
    return pd.DataFrame(rows)


def records_of(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Read the records at ``paths`` (those that exist)."""
    from localmixup.paper.records import read_record

    return [read_record(Path(p)) for p in paths if Path(p).is_file()]
