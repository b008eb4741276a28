"""The Table-1 chapter's readings on small synthetic records: each verdict in each direction."""

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from localmixup.paper.stats import PairedDifference
from localmixup.paper.table1 import readings as t1

BASE = [9.0, 9.4, 8.8, 9.2, 9.1]  # per-seed baseline errors (%)
JITTER = [0.0, 0.03, -0.02, 0.01, -0.01]  # small per-seed noise, so that intervals have a width


def _record(method, seed, error, dataset="fashion_mnist", decay=None, status="ok", model="lenet5"):
    return {"status": status, "final_test_error_pct": error,
            "config": {"dataset": dataset, "method": method, "seed": seed, "decay": decay, "model": model},
            "epochs": [{"epoch": 1, "test_error_pct": error + 1.0, "train_loss": 0.5},
                       {"epoch": 2, "test_error_pct": error, "train_loss": 0.4}]}


def _runs(mixup_shift: float, local_shift: float, dataset="fashion_mnist"):
    """Mixup = baseline + mixup_shift, Local Mixup = Mixup + local_shift, seed by seed (with jitter)."""
    out = []
    for seed, (b, j) in enumerate(zip(BASE, JITTER)):
        out += [_record("baseline", seed, b, dataset), _record("mixup", seed, b + mixup_shift + j, dataset),
                _record("local", seed, b + mixup_shift + local_shift - j, dataset, decay=5e-4)]
    return out


def test_record_filters_pick_one_method_dataset_and_seeds():
    runs = _runs(1.0, 0.0) + _runs(1.0, 0.0, dataset="svhn") + [_record("mixup", 9, 50.0, status="failed")]
    assert len(t1.runs_of(runs, "fashion_mnist", "mixup")) == 6
    assert len(t1.runs_of(runs, "fashion_mnist", "mixup", seeds=[0, 1])) == 2
    assert t1.errors_of(runs, "fashion_mnist", "baseline", seeds=[0, 2]) == {0: 9.0, 2: 8.8}
    assert 9 not in t1.errors_of(runs, "fashion_mnist", "mixup")  # failed runs are not errors


def test_local_below_mixup_and_baseline_holds():
    r = t1.dataset_reading(_runs(mixup_shift=-1.0, local_shift=-0.5), "fashion_mnist")
    assert r.local_vs_mixup.side == "below" and r.verdict == "holds" and r.best == "local"
    assert not r.baseline_best
    assert t1.against_claim(r.local_vs_mixup) == "as the paper"
    assert r.paper_gap == pytest.approx(5.97 - 6.36) and not r.paper_model
    text = t1.describe("cpu", [r], {"fashion_mnist": "FM"})
    assert "these runs separate the two methods, as the paper" in text and "the baseline is best" not in text


def test_local_above_mixup_does_not_hold():
    r = t1.dataset_reading(_runs(mixup_shift=-1.0, local_shift=+0.5), "fashion_mnist")
    assert r.local_vs_mixup.side == "above" and r.verdict == "does not hold"
    assert t1.against_claim(r.local_vs_mixup) == "opposite to the paper"
    assert "opposite to the paper" in t1.describe("cpu", [r], {})


def test_local_not_separated_from_mixup():
    runs = _runs(mixup_shift=-1.0, local_shift=0.0)
    r = t1.dataset_reading(runs, "fashion_mnist")
    assert r.local_vs_mixup.side == "not separated" and r.verdict == "not separated"
    assert t1.against_claim(r.local_vs_mixup) == "not separated"
    assert "do not separate the two methods" in t1.describe("cpu", [r], {})


def test_baseline_best_by_about_one_point_is_said():
    r = t1.dataset_reading(_runs(mixup_shift=+1.0, local_shift=-0.05), "fashion_mnist")
    assert r.baseline_best and r.best == "baseline" and r.verdict == "does not hold"
    assert r.baseline_margin == pytest.approx(0.948)  # the smaller excess: Local Mixup's
    text = t1.describe("cpu", [r], {"fashion_mnist": "FM"})
    assert "**FM, the baseline is best**" in text and "about 0.9 point(s) below the others" in text
    assert "Mixup − baseline +1.00 points" in text and "Local Mixup − baseline +0.95 points" in text


def test_baseline_not_best_when_a_mixing_method_is_not_above_it():
    r = t1.dataset_reading(_runs(mixup_shift=+1.0, local_shift=-1.0), "fashion_mnist")
    assert not r.baseline_best and r.differences["local", "baseline"].side == "not separated"
    assert "against the baseline" in t1.describe("cpu", [r], {})


def test_describe_covers_every_pair_and_the_datasets_not_run():
    r = t1.dataset_reading(_runs(1.0, 0.0), "fashion_mnist")
    text = t1.describe_differences([r], {"fashion_mnist": "FM"})
    assert len(text.splitlines()) == len(t1.PAIRS)
    assert "Local Mixup − Mixup" in text and "Local Mixup − Baseline" in text and "Mixup − Baseline" in text
    full = t1.describe("quick", [r], {}, unavailable={"cifar10": "no data"})
    assert full.startswith("- The `quick` profile") and "**CIFAR-10 (ResNet-18)**: no run here (no data)." in full


def test_a_missing_method_is_named():
    with pytest.raises(ValueError, match="local"):
        t1.dataset_reading([r for r in _runs(1.0, 0.0) if r["config"]["method"] != "local"], "fashion_mnist")


def test_curve_changes_pair_the_last_epochs_by_seed():
    from localmixup.paper.sweep.results import learning_curves

    changes = t1.curve_changes(learning_curves(_runs(1.0, 0.0)), ["fashion_mnist"], span=1)
    assert [(c.method, c.before, c.last) for c in changes] == [(m, 1, 2) for m in t1.METHODS]
    assert all(c.change.mean == pytest.approx(-1.0) and c.change.side == "below" for c in changes)
    assert "Mixup at epoch 2 − epoch 1: -1.00 points" in t1.describe_curve_changes(changes, {})


def test_pair_weights_are_the_mean_of_exp_minus_rate_d():
    w = t1.pair_weights(torch.tensor([0.0, 2.0]), [0.0, math.log(2.0)])
    assert w == {0.0: pytest.approx(1.0), math.log(2.0): pytest.approx(0.625)}


def test_decay_ablation_each_direction():
    runs = _runs(1.0, 0.0)
    ablation = [_record("local", s, b + 1.0 - 0.5 + j, decay=0.02) for s, (b, j) in enumerate(zip(BASE, JITTER))]
    ablation += [_record("local", s, b + 1.0 + 0.5 + j, decay=0.07) for s, (b, j) in enumerate(zip(BASE, JITTER))]
    points = t1.ablation_points(ablation, runs, seeds=range(5))
    assert sorted(points["decay"].unique()) == [5e-4, 0.02, 0.07]  # the main Local Mixup runs are one more rate
    mixup = t1.errors_of(runs, "fashion_mnist", "mixup")
    reading = t1.decay_reading(points, mixup, {5e-4: 0.99, 0.02: 0.6, 0.07: 0.2}, automatic=0.07)
    assert reading.best == 0.02 and set(reading.separated) == {0.02, 0.07}
    assert reading.separated[0.02] < 0 < reading.separated[0.07]
    assert reading.differences[5e-4].side == "not separated"
    assert bool(reading.table.loc[0.07, "automatic"]) and reading.table.loc[0.02, "runs"] == 5
    assert "Local Mixup at decay 0.07 (automatic) − Mixup: +0.50" in t1.describe_decays(reading)
    text = t1.describe("cpu", [], {}, reading)
    assert "the lowest mean error is at decay 0.02" in text and "excludes 0 at decay 0.02 (-0.50 points), 0.07 (+0.50 points)" in text
    assert "**Automatic rate** 0.07" in text and "separated by the paired interval" in text


def test_automatic_rate_and_labels_come_from_the_configurations():
    configs = [SimpleNamespace(dataset="fashion_mnist", model="lenet5", decay=0.02, decay_rule=None),
               SimpleNamespace(dataset="fashion_mnist", model="lenet5", decay=0.079, decay_rule="nearest_other_class")]
    assert t1.automatic_rate(configs) == 0.079 and t1.automatic_rate(configs[:1]) is None
    assert t1.dataset_labels(configs) == {"fashion_mnist": "Fashion-MNIST (LeNet-5)"}


def test_against_claim_reads_a_claim_above_too():
    up = PairedDifference(1.0, 0.5, 5, True)
    assert t1.against_claim(up, "above") == "as the paper" and t1.against_claim(up) == "opposite to the paper"
    assert isinstance(t1.ablation_points([], [], []), pd.DataFrame)
