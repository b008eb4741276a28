"""The image sweep's records read back: per-seed final errors, a cell's summary, learning curves."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from localmixup.paper.stats import confidence_interval


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


def runs_of(records: Iterable[Mapping[str, Any]], dataset: str, method: str | None = None,
            seeds: Iterable[int] | None = None) -> list[Mapping[str, Any]]:
    """The records of one dataset (of one method and of the given seeds only, where given)."""
    chosen = None if seeds is None else set(seeds)
    return [r for r in records if r["config"]["dataset"] == dataset and (method is None or r["config"]["method"] == method)
            and (chosen is None or r["config"]["seed"] in chosen)]


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Mean, 95% half-width, number of finished and failed runs of a list of records."""
    records = list(records)
    ok = [r["final_test_error_pct"] for r in records if r.get("status") == "ok"]
    mean, half, n = confidence_interval(ok)
    return {"mean": mean, "ci95": half, "runs": n, "failed": len(records) - n}


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
    from localmixup.paper.record_files import read_record

    return [read_record(Path(p)) for p in paths if Path(p).is_file()]
