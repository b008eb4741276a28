"""The AdaMixup chapter's readings on small synthetic records: each verdict in each direction."""

import math

import numpy as np
import pandas as pd
import pytest

from localmixup.paper.adamixup import readings as ar

BASE = [9.9, 10.3, 9.6, 10.1, 9.8]
JITTER = [0.0, 0.03, -0.02, 0.01, -0.01]


def _record(method, seed, error, dataset="fashion_mnist", status="ok", epochs=None):
    return {"status": status, "final_test_error_pct": error, "config": {"dataset": dataset, "method": method, "seed": seed},
            "epochs": epochs or [{"epoch": 1, "test_error_pct": error + 2.0, "seconds": 10.0},
                                 {"epoch": 2, "test_error_pct": error, "seconds": 12.0}]}


def _runs(local_minus_ada: float, dataset="fashion_mnist"):
    out = []
    for seed, (b, j) in enumerate(zip(BASE, JITTER)):
        out += [_record("mixup", seed, b, dataset), _record("adamixup", seed, b - 0.1 + j, dataset),
                _record("local", seed, b - 0.1 + local_minus_ada - j, dataset)]
    return out


def test_adamixup_ahead_is_the_opposite_of_the_paper_and_leads_the_reading():
    r = ar.error_reading(_runs(+0.3), "fashion_mnist")
    assert r.claim.side == "above" and r.verdict == "AdaMixup ahead" and r.best == "adamixup"
    lines = ar.describe_error(r, "FM", "cpu")
    assert lines[0].startswith("- **Error, paired by seed**") and "**the opposite of the paper** (-0.22 points on CIFAR-10)" in lines[0]
    assert sum("Local Mixup − AdaMixup" in line for line in lines) == 1  # said once, first
    assert any("Local Mixup − Mixup" in line for line in lines) and any("AdaMixup − Mixup" in line for line in lines)


def test_local_ahead_is_as_the_paper():
    r = ar.error_reading(_runs(-0.3), "fashion_mnist")
    assert r.claim.side == "below" and r.verdict == "Local Mixup ahead"
    assert "**as in the paper**" in ar.describe_error(r, "FM", "cpu")[0]


def test_not_separated():
    r = ar.error_reading(_runs(0.0), "fashion_mnist")
    assert r.verdict == "not separated"
    assert "these runs do not separate Local Mixup from AdaMixup" in ar.describe_error(r, "FM", "cpu")[0]


def test_overlapping_intervals_are_read_after_the_paired_test():
    r = ar.error_reading(_runs(+0.3), "fashion_mnist")
    spread = ar.error_reading([{**x, "final_test_error_pct": x["final_test_error_pct"] + 3 * (x["config"]["seed"] % 2)}
                               for x in _runs(+0.3)], "fashion_mnist")
    assert not r.intervals_overlap or r.spread > 0
    assert spread.intervals_overlap  # a wide seed-to-seed spread: unpaired intervals overlap, the pairing still separates
    assert "only the pairing by seed separates them" in "\n".join(ar.describe_error(spread, "FM", "cpu"))


def test_error_table_and_filters():
    runs = _runs(0.3) + [_record("mixup", 7, math.nan, status="failed")]
    table, summary = ar.error_table(runs, "fashion_mnist", "cpu", {"fashion_mnist": "FM"}, {"cifar10": "no data"})
    assert summary["cifar10", "local"][2] == 0 and summary["fashion_mnist", "mixup"][2] == 5
    assert table.loc[("cifar10", "Local Mixup"), "paper: error %"] == "3.89 ± 0.12"
    assert table.loc[("cifar10", "Mixup"), "why no runs / notes"] == "no data"
    assert table.loc[("FM — cpu profile", "Mixup"), "why no runs / notes"] == "1 run(s) failed (NaN loss)"
    assert ar.cell([]) == "—" and ar.cell([9.0]) == "9.00 (n=1)" and ar.cell([9.0, 9.0]) == "9.00 ± 0.00 (n=2)"
    assert len(ar.runs_of(runs, "fashion_mnist", "local")) == 5 and len(ar.runs_of(runs, "fashion_mnist")) == 16


def test_convergence_and_speed():
    from localmixup.paper.sweep.results import learning_curves

    runs = _runs(0.3)
    for r in runs:
        r["config"].update(decay=None)
        for e in r["epochs"]:
            e["train_loss"] = 0.1
    curves = ar.mean_curves(learning_curves(runs))
    assert set(curves) == set(ar.METHODS) and len(curves["local"]) == 2
    speed = ar.speed_table(curves)
    assert speed.loc["Mixup", "error after epoch 1 (%)"] == pytest.approx(np.mean(BASE) + 2.0)
    assert ar.mean_curves(pd.DataFrame()) == {}


def _policy(lam, start, width, accuracy, ce):
    epochs = [{"epoch": 1, "lam_mean": 0.5, "start_mean": 0.0, "width_mean": 1.0, "discriminator_accuracy": 0.5, "intrusion_ce": 0.6},
              {"epoch": 2, "lam_mean": lam, "start_mean": start, "width_mean": width, "discriminator_accuracy": accuracy,
               "intrusion_ce": ce}]
    return ar.policy_reading(ar.policy_epochs([_record("adamixup", 0, 9.0, epochs=epochs), _record("mixup", 0, 9.0)]))


def test_policy_each_direction():
    assert _policy(0.5, 0.47, 0.06, 0.98, 0.04).policy == "narrow"
    assert _policy(0.5, 0.02, 0.97, 0.98, 0.04).policy == "plain"
    assert _policy(0.01, 0.0, 0.02, 0.98, 0.04).policy == "collapsed"
    separating, at_chance = _policy(0.5, 0.47, 0.06, 0.98, 0.04), _policy(0.5, 0.47, 0.06, 0.505, ar.PRIOR_ENTROPY)
    assert not separating.discriminator_at_chance and at_chance.discriminator_at_chance
    assert "separates real from mixed samples (balanced accuracy 0.980" in "\n".join(ar.describe_policy(separating))
    assert "is at chance" in "\n".join(ar.describe_policy(at_chance)) and "close to" in "\n".join(ar.describe_policy(at_chance))


def _cost(method, params, seconds, saved, extra=None):
    counts = {"classifier": 100, "total": params, **(extra or {})}
    return {"method": method, "parameters": params, "parameter_counts": counts, "seconds_per_step": seconds,
            "cpu_seconds_per_step": 2 * seconds, "seconds_per_epoch": 10 * seconds, "cpu_seconds_per_epoch": 20 * seconds,
            "saved_for_backward_bytes": saved, "cuda_step_peak_bytes": None, "steps_per_epoch": 10}


def test_cost_ratios_and_table():
    record = {"costs": [_cost("mixup", 100, 1.0, 2 ** 20), _cost("local", 100, 1.0, 2 ** 20),
                        _cost("adamixup", 214, 3.0, 2 ** 21, {"generator": 110, "discriminator": 4})],
              "environment": {"device": "CPU (x86_64, 2 threads)"}}
    r = ar.cost_ratios(record)
    assert (r.parameters, r.time, r.memory, r.cpu) == (2.14, 3.0, 2.0, True)
    gpu = ar.cost_ratios({**record, "environment": {"device": "NVIDIA H100"}})
    assert not gpu.cpu
    table = ar.cost_table(record, _runs(0.3), "fashion_mnist")
    assert table.loc["AdaMixup", "generator params"] == 110 and table.loc["Mixup", "generator params"] == 0
    assert table.loc["Local Mixup", "s / epoch (recorded runs, median)"] == 11.0
    assert table.loc["AdaMixup", "saved for backward / step (MiB)"] == 2.0 and math.isnan(table.loc["Mixup", "GPU step peak (MiB)"])


def test_cost_record_is_reused_for_the_same_runs_and_device(tmp_path, monkeypatch):
    import torch

    import localmixup.paper.training.costs as costs_module
    from localmixup.paper.protocols import profile_config

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    calls = []
    monkeypatch.setattr(costs_module, "step_costs", lambda configs, device, steps, rounds: calls.append(steps) or [{"m": 1}])
    configs = [profile_config("quick", "fashion_mnist", m) for m in ar.METHODS]
    path = tmp_path / "cost.json"
    first = ar.cost_record(configs, path, torch.device("cpu"), 2, 1)
    again = ar.cost_record(configs, path, torch.device("cpu"), 2, 1)
    assert calls == [2] and first["costs"] == again["costs"] == [{"m": 1}] and path.is_file()
    ar.cost_record(configs[:2], path, torch.device("cpu"), 2, 1)  # other runs: measured again
    assert calls == [2, 2]


def test_describe_leads_with_the_paired_test_and_covers_every_part():
    r = ar.error_reading(_runs(+0.3), "fashion_mnist")
    ratios = ar.CostRatios(2.14, 2.08, 2.05, True)
    curves = {"mixup": np.array([12.0, 10.0]), "local": np.array([12.5, 10.0]), "adamixup": np.array([13.0, 9.8])}
    text = ar.describe("cpu", {"fashion_mnist": "FM"}, r, {"cifar10": "no data"}, curves, "fashion_mnist",
                       _policy(0.5, 0.47, 0.06, 0.98, 0.04), ratios, 2.0)
    first = text.splitlines()[0]
    assert first.startswith("- **Error, paired by seed** (FM, cpu profile") and "opposite of the paper" in first
    for part in ("**Means**", "**CIFAR-10**: not run here (no data)", "**Convergence** (FM): lowest error averaged over the epochs for Mixup",
                 "**AdaMixup's policy**", "**AdaMixup's discriminator**", "**Cost**: AdaMixup trains x2.14", "x2.08 the CPU time"):
        assert part in text, part
    assert "**Error" not in ar.describe("cpu", {}, None, {}, {}, "fashion_mnist", None, ratios, 2.0)
