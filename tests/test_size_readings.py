"""The size study's readings on small synthetic records: each verdict in each direction."""

import pytest

from localmixup.paper.table1.size_readings import describe, difference, method_label, size_readings, size_runs, size_table


def _record(size, method, seed, error, decay=None, rule=None, weight=None, intrusion=None):
    epochs = [{"epoch": 1, "test_error_pct": error, "train_loss": 0.1, "lr": 0.05, "seconds": 1.0}]
    if weight is not None:
        epochs[0].update(pair_weight=weight, intrusion_rate=intrusion, weighted_intrusion_rate=intrusion * weight)
    return {"status": "ok", "final_test_error_pct": error, "epochs": epochs,
            "config": {"train_size": size, "method": method, "seed": seed, "decay": decay, "decay_rule": rule}}


def _study(local_shift: float, mixup_shift: float = -2.0, size: int = 1000):
    records = []
    for seed, base in enumerate([20.0, 21.0, 19.5, 20.5]):
        records += [_record(size, "baseline", seed, base), _record(size, "mixup", seed, base + mixup_shift, weight=1.0, intrusion=0.2),
                    _record(size, "local", seed, base + mixup_shift + local_shift + 0.01 * seed, decay=0.02, weight=0.5,
                            intrusion=0.1)]
    return size_runs(records)


def test_labels_name_the_rate():
    assert method_label({"method": "local", "decay": 5e-4, "decay_rule": None}) == "local decay=0.0005"
    assert method_label({"method": "local", "decay": 0.063, "decay_rule": "nearest_other_class"}) == "local auto"
    assert method_label({"method": "mixup", "decay": None}) == "mixup"


def test_local_below_mixup_is_said_and_the_best_method_named():
    runs = _study(local_shift=-1.0)
    [r] = size_readings(runs)
    assert r.best == "local decay=0.02" and r.mixup_vs_baseline.side == "below" and r.seeds == 4
    assert r.local_vs_mixup["local decay=0.02"].side == "below"
    text = describe([r])
    assert "Mixup is below the baseline at 1,000 images" in text and "Local Mixup is below Mixup at 1,000 images (local decay=0.02)" in text
    table = size_table(runs)
    assert table.loc[(1000, "local decay=0.02"), "weighted intrusion (%)"] == pytest.approx(5.0)
    assert table.loc[(1000, "mixup"), "intrusion (%)"] == pytest.approx(20.0)


def test_local_above_mixup_and_mixup_above_baseline_are_said():
    r = size_readings(_study(local_shift=+1.0, mixup_shift=+1.0, size=60000))[0]
    assert r.best == "baseline" and r.mixup_vs_baseline.side == "above" and r.local_vs_mixup["local decay=0.02"].side == "above"
    text = describe([r])
    assert "Mixup is below the baseline at no size recorded" in text and "above it at 60,000 images" in text


def test_ties_are_not_separated_and_missing_methods_refused():
    runs = _study(local_shift=0.0)
    runs.loc[runs["method"] == "local decay=0.02", "error"] += [0.3, -0.3, 0.2, -0.25]
    assert size_readings(runs)[0].local_vs_mixup["local decay=0.02"].side == "not separated"
    with pytest.raises(ValueError, match="no runs of 'adamixup'"):
        difference(runs, 1000, "adamixup", "mixup")
    assert describe([]) == "No size has runs of both the baseline and Mixup yet."
