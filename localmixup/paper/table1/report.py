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
from typing import Any

from localmixup.paper.labels import DATASET_LABELS, METHOD_LABELS, MODEL_LABELS, PAPER_MODELS
from localmixup.paper.sweep.results import summarise

# The paper's Table 1, error % (mean, printed +- half-width).
PAPER_TABLE1: dict[tuple[str, str], tuple[float, float]] = {
    ("cifar10", "baseline"): (4.98, 0.03), ("cifar10", "mixup"): (4.13, 0.03), ("cifar10", "local"): (4.03, 0.03),
    ("cifar100", "baseline"): (30.6, 0.27), ("cifar100", "mixup"): (29.23, 0.4), ("cifar100", "local"): (29.08, 0.34),
    ("fashion_mnist", "baseline"): (6.20, 0.2), ("fashion_mnist", "mixup"): (6.36, 0.16), ("fashion_mnist", "local"): (5.97, 0.2),
    ("svhn", "baseline"): (10.01, 0.15), ("svhn", "mixup"): (8.31, 0.14), ("svhn", "local"): (8.20, 0.13),
}
PAPER_RUNS = {"cifar10": "100", "cifar100": "unstated", "fashion_mnist": "10", "svhn": "10"}
TABLE1_DATASETS = ("cifar10", "cifar100", "fashion_mnist", "svhn")


def table1(records: Iterable[Mapping[str, Any]], datasets: Sequence[str] = TABLE1_DATASETS,
           methods: Sequence[str] = ("baseline", "mixup", "local"), unavailable: dict[str, str] | None = None):
    """Table 1 rebuilt from ``records`` (the main runs of a plan,
    :func:`~localmixup.paper.table1.readings.load`: one recipe per dataset and method), one row per
    (dataset, method), as a DataFrame.

    Columns: dataset, method, model (the network of our runs, e.g. "lenet5"; "" without runs),
    runs, failed, mean, ci95 (ours, error %), paper_mean, paper_ci95, paper_runs, outside (True
    when the two intervals do not overlap; False if either is undefined, or where our network is
    not the paper's, which is not expected to match its values), note (why a row has no runs: ``unavailable[dataset]`` or "no runs yet").
    """
    import pandas as pd

    rows = []
    for dataset in datasets:
        for method in methods:
            cell = [r for r in records if r["config"]["dataset"] == dataset and r["config"]["method"] == method]
            s = summarise(cell)
            model = ", ".join(sorted({r["config"]["model"] for r in cell}))
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


