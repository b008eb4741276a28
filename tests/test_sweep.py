"""Sweeps: parsing, pending runs, resuming after SIGKILL, aggregation against the paper."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localmixup.paper.report import PAPER_TABLE1, confidence_interval, format_table1, table1
from localmixup.paper.records import read_record, write_record
from localmixup.paper.sweep.images import folder_tag, make_configs, parse_seeds, pending, record_path

ROOT = Path(__file__).resolve().parent.parent


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5,1,1") == [1, 5]
    assert parse_seeds("0-1,4") == [0, 1, 4]
    for bad in ("3-1", "a", "-1", "1-", ""):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)


def test_make_configs_and_bad_names():
    configs = make_configs("fashion_mnist", "baseline,mixup,local", "0-1", "quick", alphas=[0.1, 1.0])
    assert len(configs) == 2 + 2 + 4
    with pytest.raises(ValueError, match="method"):
        make_configs("fashion_mnist", "baseline,cutmix", "0", "quick")
    with pytest.raises(ValueError, match="dataset"):
        make_configs("imagenet", "baseline", "0", "quick")
    with pytest.raises(ValueError, match="profile"):
        make_configs("fashion_mnist", "baseline", "0", "fast")


def test_folders_keep_profiles_and_overrides_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    quick = make_configs("fashion_mnist", "local", "0", "quick")[0]
    other_alpha = make_configs("fashion_mnist", "local", "0", "quick", alphas=[0.5])[0]
    shorter = make_configs("fashion_mnist", "local", "0", "quick", epochs=1)[0]
    paper = make_configs("fashion_mnist", "local", "0", "paper")[0]
    assert folder_tag(quick) == folder_tag(other_alpha) == "quick" and folder_tag(paper) == "paper"
    assert folder_tag(shorter).startswith("quick-custom-")
    assert record_path(quick) != record_path(other_alpha)
    assert record_path(quick) == tmp_path / "table1" / "quick" / "fashion_mnist" / "local-alpha0.0005-seed0.json"
    write_record(record_path(quick), {"config": quick.to_dict(), "status": "ok"})
    assert pending([quick, other_alpha, other_alpha]) == [other_alpha]


def test_confidence_interval_formula():
    mean, half, n = confidence_interval([1.0, 2.0, 3.0, 4.0])
    # Student t with 3 degrees of freedom: t_0.975 = 3.182446; s = sqrt(5/3)
    assert (mean, n) == (2.5, 4) and half == pytest.approx(3.182446 * math.sqrt(5 / 3) / 2, rel=1e-6)
    assert math.isnan(confidence_interval([1.0])[1]) and confidence_interval([])[2] == 0


def _fake(dataset, method, seed, error, status="ok", alpha=None):
    return {"config": {"dataset": dataset, "method": method, "seed": seed, "alpha": alpha}, "status": status,
            "final_test_error_pct": error if status == "ok" else None, "epochs": []}


def test_table1_aggregation_marks_and_notes(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    folder = tmp_path / "table1" / "paper" / "fashion_mnist"
    for seed, e in enumerate([6.1, 6.3, 6.2]):
        write_record(folder / f"baseline-seed{seed}.json", _fake("fashion_mnist", "baseline", seed, e))
    for seed, e in enumerate([9.0, 9.2]):
        write_record(folder / f"mixup-seed{seed}.json", _fake("fashion_mnist", "mixup", seed, e))
    write_record(folder / "mixup-seed2.json", _fake("fashion_mnist", "mixup", 2, None, status="failed"))
    write_record(folder / "local-alpha0.5-seed0.json", _fake("fashion_mnist", "local", 0, 1.0, alpha=0.5))  # ablation, not in table
    t = table1("paper", ["fashion_mnist", "cifar10"], unavailable={"cifar10": "dataset 'cifar10' is absent"}).set_index(["dataset", "method"])
    base = t.loc[("fashion_mnist", "baseline")]
    assert base.runs == 3 and base["mean"] == pytest.approx(6.2) and not base.outside
    mix = t.loc[("fashion_mnist", "mixup")]
    assert mix.runs == 2 and mix.failed == 1 and mix.outside == (abs(9.1 - 6.36) > mix.ci95 + 0.16)
    assert t.loc[("fashion_mnist", "local")].runs == 0
    assert t.loc[("cifar10", "mixup")].note == "dataset 'cifar10' is absent"
    assert t.loc[("cifar10", "local")].paper_mean == PAPER_TABLE1[("cifar10", "local")][0] == 4.03
    shown = format_table1(t.reset_index())
    assert "6.20 ± " in shown.loc["Baseline", ("Fashion-MNIST (DenseNet-BC)", "ours")]
    assert "[1 failed]" in shown.loc["Mixup", ("Fashion-MNIST (DenseNet-BC)", "ours")]
    assert shown.loc["Local Mixup", ("Fashion-MNIST (DenseNet-BC)", "paper")] == "5.97 ± 0.20"


def test_sweep_survives_sigkill(tmp_path):
    """A real sweep process, killed while a later run is in progress, then restarted."""
    env = dict(os.environ, LOCALMIXUP_RESULTS=str(tmp_path / "results"), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "localmixup", "sweep", "--dataset", "fashion_mnist", "--methods", "baseline,mixup",
               "--seeds", "0-1", "--profile", "quick", "--epochs", "2", "--train-size", "128", "--test-size", "64",
               "--batch-size", "32", "--device", "cpu", "--no-progress"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    folder = None
    deadline = time.time() + 150
    while time.time() < deadline and process.poll() is None:
        found = list((tmp_path / "results").rglob("*.json"))
        if found:
            folder = found[0].parent
            break
        time.sleep(0.05)
    assert folder is not None, f"no record appeared: {process.stderr.read().decode() if process.poll() is not None else 'timeout'}"
    time.sleep(0.3)  # the next run is now in progress
    process.send_signal(signal.SIGKILL)
    process.wait()
    first = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.glob("*.json")}
    assert 1 <= len(first) < 4, "the kill must land while a later run is in progress"

    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"4 runs, {len(first)} already recorded, {4 - len(first)} to train" in done.stdout
    names = sorted(p.name for p in folder.glob("*.json"))
    assert names == ["baseline-seed0.json", "baseline-seed1.json", "mixup-seed0.json", "mixup-seed1.json"]
    assert not [p for p in (tmp_path / "results").rglob("*") if p.is_file() and p.suffix != ".json"]
    for name, (mtime, content) in first.items():
        assert (folder / name).stat().st_mtime_ns == mtime and (folder / name).read_bytes() == content
    for name in names:
        record = read_record(folder / name)
        assert record["status"] == "ok" and len(record["epochs"]) == 2

    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "4 runs, 4 already recorded, 0 to train" in again.stdout


def test_cli_errors_are_one_line(tmp_path):
    env = dict(os.environ, LOCALMIXUP_RESULTS=str(tmp_path), LOCALMIXUP_DATA=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    for args, needle, code in [(["--dataset", "cifar10", "--no-download"], "dataset 'cifar10' is absent", 1),
                               (["--dataset", "fashion_mnist", "--seeds", "9-2"], "seeds must", 1),
                               (["--dataset", "fashion_mnist", "--stack", "0"], "argument --stack: must be an integer in [1, inf)", 2),
                               (["--dataset", "fashion_mnist", "--checkpoint-every", "-5"],
                                "argument --checkpoint-every: must be a real number in [0, inf)", 2)]:
        result = subprocess.run([sys.executable, "-m", "localmixup", "sweep", *args, "--device", "cpu"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == code and needle in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_pending_refuses_a_record_made_with_another_configuration(tmp_path, monkeypatch):
    import localmixup.paper as lp
    from localmixup.paper.sweep.images import make_configs, pending, record_path

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    config = make_configs(["fashion_mnist"], ["mixup"], "0", "quick")[0]
    stale = {**config.to_dict(), "lr": config.lr * 10}
    lp.write_record(record_path(config), {"config": stale, "status": "ok"})
    with pytest.raises(ValueError, match=r"recorded with another configuration \(differs in lr\)"):
        pending([config])
    lp.write_record(record_path(config), {"config": json.loads(json.dumps(config.to_dict())), "status": "ok"})
    assert pending([config]) == []


def test_interval_table_groups_with_the_student_t_interval():
    import pandas as pd

    from localmixup.paper.report import interval_table

    frame = pd.DataFrame({"eps": [1.0, 1.0, 1.0, 1.0, 2.0], "error": [1.0, 2.0, 3.0, 4.0, 7.0]})
    table = interval_table(frame, "eps", "error")
    half = 3.182446 * math.sqrt(5 / 3) / 2
    assert list(table.index) == [1.0, 2.0] and list(table.runs) == [4, 1]
    assert table.loc[1.0, "low"] == pytest.approx(2.5 - half) and table.loc[1.0, "high"] == pytest.approx(2.5 + half)
    assert table.loc[2.0, "mean"] == 7.0 and math.isnan(table.loc[2.0, "low"])


def test_a_killed_run_resumes_from_its_checkpoint(tmp_path):
    """A real sweep process killed in the middle of a run's training, restarted: the run goes on from
    its last checkpoint and ends exactly as an uninterrupted run."""
    def sweep(results):
        env = dict(os.environ, LOCALMIXUP_RESULTS=str(results), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        command = [sys.executable, "-m", "localmixup", "sweep", "--dataset", "fashion_mnist", "--methods", "local",
                   "--seeds", "0", "--profile", "quick", "--epochs", "8", "--train-size", "256", "--test-size", "64",
                   "--batch-size", "32", "--device", "cpu", "--no-progress", "--checkpoint-every", "0"]
        return command, env

    command, env = sweep(tmp_path / "whole")
    assert subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=300).returncode == 0
    whole = read_record(next((tmp_path / "whole").rglob("*.json")))

    command, env = sweep(tmp_path / "killed")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 150
    while time.time() < deadline and process.poll() is None and not list((tmp_path / "killed").rglob("*.pt")):
        time.sleep(0.02)
    assert process.poll() is None, f"the run ended before its first checkpoint: {process.stderr.read().decode()}"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not list((tmp_path / "killed").rglob("*.json")) and list((tmp_path / "killed").rglob("*.pt"))

    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "1 run, 0 already recorded, 1 to train (1 resuming from a checkpoint)" in done.stdout
    resumed = read_record(next((tmp_path / "killed").rglob("*.json")))
    assert len(resumed["resumed_after_epochs"]) == 1 and 1 <= resumed["resumed_after_epochs"][0] < 8
    assert [(e["train_loss"], e["test_error_pct"]) for e in resumed["epochs"]] == \
        [(e["train_loss"], e["test_error_pct"]) for e in whole["epochs"]]
    assert not [p for p in (tmp_path / "killed").rglob("*") if p.is_file() and p.suffix != ".json"]  # checkpoint gone
