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

from localmixup.paper.stats import confidence_interval
from localmixup.paper.table1.report import PAPER_TABLE1, TABLE1_DATASETS, format_table1, table1
from localmixup.paper.record_files import load_records, read_record, write_record
from localmixup.paper.sweep.plan import folder_tag, make_configs, parse_seeds, pending, record_path

ROOT = Path(__file__).resolve().parent.parent


def test_parse_seeds():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5,1,1") == [1, 5]
    assert parse_seeds("0-1,4") == [0, 1, 4]
    for bad in ("3-1", "a", "-1", "1-", ""):
        with pytest.raises(ValueError, match="seeds"):
            parse_seeds(bad)


def test_make_configs_and_bad_names():
    configs = make_configs("fashion_mnist", "baseline,mixup,local", "0-1", "quick", decays=[0.1, 1.0])
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
    other_decay = make_configs("fashion_mnist", "local", "0", "quick", decays=[0.5])[0]
    shorter = make_configs("fashion_mnist", "local", "0", "quick", epochs=1)[0]
    paper = make_configs("fashion_mnist", "local", "0", "paper")[0]
    assert folder_tag(quick) == folder_tag(other_decay) == "quick" and folder_tag(paper) == "paper"
    assert folder_tag(shorter).startswith("quick-custom-")
    assert record_path(quick) != record_path(other_decay)
    assert record_path(quick) == tmp_path / "table1" / "quick" / "fashion_mnist" / "local-decay0.0005-seed0.json"
    write_record(record_path(quick), {"config": quick.to_dict(), "status": "ok"})
    assert pending([quick, other_decay, other_decay]) == [other_decay]


def test_confidence_interval_formula():
    mean, half, n = confidence_interval([1.0, 2.0, 3.0, 4.0])
    # Student t with 3 degrees of freedom: t_0.975 = 3.182446; s = sqrt(5/3)
    assert (mean, n) == (2.5, 4) and half == pytest.approx(3.182446 * math.sqrt(5 / 3) / 2, rel=1e-6)
    assert math.isnan(confidence_interval([1.0])[1]) and confidence_interval([])[2] == 0


def _fake(dataset, method, seed, error, status="ok", decay=None, model="densenet_bc"):
    return {"config": {"dataset": dataset, "method": method, "seed": seed, "decay": decay, "model": model}, "status": status,
            "final_test_error_pct": error if status == "ok" else None, "epochs": []}


def test_table1_aggregation_marks_and_notes(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    folder = tmp_path / "table1" / "paper" / "fashion_mnist"
    for seed, e in enumerate([6.1, 6.3, 6.2]):
        write_record(folder / f"baseline-seed{seed}.json", _fake("fashion_mnist", "baseline", seed, e))
    for seed, e in enumerate([9.0, 9.2]):
        write_record(folder / f"mixup-seed{seed}.json", _fake("fashion_mnist", "mixup", seed, e))
    write_record(folder / "mixup-seed2.json", _fake("fashion_mnist", "mixup", 2, None, status="failed"))
    records = load_records(folder)
    t = table1(records, ["fashion_mnist", "cifar10"], unavailable={"cifar10": "dataset 'cifar10' is absent"}).set_index(["dataset", "method"])
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


def test_table1_names_a_network_that_is_not_the_papers(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    folder = tmp_path / "table1" / "cpu" / "fashion_mnist"
    for seed, e in enumerate([9.1, 9.3]):
        write_record(folder / f"baseline-seed{seed}.json", _fake("fashion_mnist", "baseline", seed, e, model="lenet5"))
    records = load_records(folder)
    whole = table1(records)  # every Table-1 dataset, though the cpu profile trains Fashion-MNIST only
    assert set(whole.dataset) == set(TABLE1_DATASETS) and (whole[whole.dataset != "fashion_mnist"].runs == 0).all()
    shown = format_table1(table1(records, ["fashion_mnist"]))
    column = ("Fashion-MNIST (DenseNet-BC)", "ours: LeNet-5, not the paper's network")
    assert "9.20 ± " in shown.loc["Baseline", column] and "†" not in shown.loc["Baseline", column]  # 3 points off, another network
    assert shown.loc["Mixup", column] == "—"  # one column per dataset, even where a method has no run
    assert shown.loc["Baseline", ("Fashion-MNIST (DenseNet-BC)", "paper")] == "6.20 ± 0.20"


def test_paired_difference_uses_only_common_seeds_and_the_t_interval():
    from localmixup.paper.stats import describe_difference, paired_difference

    a = {0: 10.0, 1: 11.0, 2: 12.5, 3: 99.0}
    b = {0: 9.0, 1: 10.5, 2: 11.0, 7: 0.0}
    diff = paired_difference(a, b)
    mean, half, n = confidence_interval([1.0, 0.5, 1.5])
    assert (diff.mean, diff.half, diff.n) == (pytest.approx(mean), pytest.approx(half), 3)
    assert diff.separated == (abs(mean) > half)
    # the same spread between seeds, unpaired, would not separate: pairing removes it
    shifted = {s: v + 0.1 for s, v in {0: 5.0, 1: 9.0, 2: 13.0, 3: 7.0}.items()}
    paired = paired_difference(shifted, {0: 5.0, 1: 9.0, 2: 13.0, 3: 7.0})
    assert paired.separated and paired.mean == pytest.approx(0.1)
    assert paired.side == "above" and paired_difference(shifted, {s: v + 1 for s, v in shifted.items()}).side == "below"
    text = describe_difference("Local Mixup", "Mixup", paired)
    assert "+0.10 points" in text and "excludes 0" in text and "4 paired seeds" in text and "higher" in text
    noisy = paired_difference({0: 1.0, 1: 3.0, 2: 2.0}, {0: 2.0, 1: 2.0, 2: 2.0})
    assert not noisy.separated and noisy.side == "not separated" and "contains 0" in describe_difference("A", "B", noisy)
    assert "too few" in describe_difference("A", "B", paired_difference({0: 1.0}, {0: 2.0}))


def test_final_errors_refuses_two_recipes():
    from localmixup.paper.sweep.results import final_errors

    records = [_fake("fashion_mnist", "local", 0, 9.0), _fake("fashion_mnist", "local", 1, 8.0, status="failed")]
    assert final_errors(records) == {0: 9.0}
    with pytest.raises(ValueError, match="seed 0"):
        final_errors(records + [_fake("fashion_mnist", "local", 0, 7.0, decay=0.1)])


def test_sweep_survives_sigkill(tmp_path):
    """A real sweep process, killed while a later run is in progress, then restarted."""
    env = dict(os.environ, LOCALMIXUP_RESULTS=str(tmp_path / "results"), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "localmixup.paper", "sweep", "--dataset", "fashion_mnist", "--methods", "baseline,mixup",
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
        result = subprocess.run([sys.executable, "-m", "localmixup.paper", "sweep", *args, "--device", "cpu"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == code and needle in result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_pending_refuses_a_record_made_with_another_configuration(tmp_path, monkeypatch):
    import localmixup.paper as lp

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

    from localmixup.paper.stats import interval_table

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
        command = [sys.executable, "-m", "localmixup.paper", "sweep", "--dataset", "fashion_mnist", "--methods", "local",
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


# --- issue 14: nothing found after the fact, nothing silent, no orphaned workers -----------------

def _sweep_command(*args):
    return [sys.executable, "-m", "localmixup.paper", "sweep", "--dataset", "fashion_mnist", "--profile", "quick",
            "--device", "cpu", "--no-progress", *args]


def _unprivileged(check):
    """``check()``'s ValueError message (None if it passed), run as user nobody when this process is root
    (root writes in read-only folders; a user does not)."""
    if os.geteuid() != 0:
        try:
            check()
        except ValueError as error:
            return str(error)
        return None
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe
        os.close(read)
        try:
            os.setgid(65534)
            os.setuid(65534)
            check()
            message = b"passed"
        except ValueError as error:
            message = str(error).encode()
        except BaseException as error:  # noqa: BLE001
            message = f"unexpected {type(error).__name__}: {error}".encode()
        os.write(write, message)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(child, 0)
    assert not message.startswith("unexpected"), message
    return None if message == "passed" else message


def test_a_sweep_checks_every_output_path_before_it_trains(tmp_path, monkeypatch):
    """Issue 14 (1): a read-only folder, a results path that is a file, a record path that is a
    folder: each is named, with what is wrong, before any run trains."""
    import tempfile

    import localmixup.paper.sweep.images as images
    from localmixup.paper.sweep.images import run_sweep
    from localmixup.paper.sweep.plan import check_writable

    def no_training(*args, **kwargs):
        raise AssertionError("a run trained before the output paths were checked")

    monkeypatch.setattr(images, "fit", no_training)
    configs = make_configs("fashion_mnist", "baseline,mixup", "0", "quick", epochs=1, train_size=64, test_size=64,
                           batch_size=32)

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "file"))
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ValueError, match=rf"{tmp_path / 'file'} is a file, but records and checkpoints must be written"):
        run_sweep(configs, device="cpu", progress=False)

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "results"))
    blocked = record_path(configs[1])
    blocked.mkdir(parents=True)
    with pytest.raises(ValueError, match=rf"{blocked} is a folder, but the sweep must write a file there"):
        run_sweep(configs, device="cpu", progress=False)
    checkpoint = record_path(configs[0]).parent / ".checkpoints" / "mixup-seed0.pt"
    checkpoint.mkdir(parents=True)
    blocked.rmdir()
    with pytest.raises(ValueError, match=rf"{checkpoint} is a folder"):
        run_sweep(configs, device="cpu", progress=False)

    shared = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        (shared / "open").mkdir(mode=0o777)
        (shared / "open").chmod(0o777)
        (shared / "locked").mkdir()
        shared.chmod(0o755)
        (shared / "locked").chmod(0o555)
        assert _unprivileged(lambda: check_writable([shared / "open" / "results" / "a.json"])) is None
        message = _unprivileged(lambda: check_writable([shared / "locked" / "results" / "a.json"]))
        assert message is not None and f"cannot write in {shared / 'locked'} " in message
        assert "Permission denied" in message
    finally:
        (shared / "locked").chmod(0o755)
        import shutil

        shutil.rmtree(shared)


def test_cpu_records_of_another_thread_count_are_refused(tmp_path, monkeypatch):
    from localmixup.paper.run_record import RunRecord

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    config = make_configs("fashion_mnist", "mixup", "0", "quick")[0]
    write_record(record_path(config), RunRecord(config.to_dict(), threads=2).to_dict())
    assert pending([config], threads=2) == [] and pending([config]) == []
    with pytest.raises(ValueError, match="trained on a CPU with 2 torch thread.*this sweep trains with 1.*threads=2"):
        pending([config], threads=1)


def test_a_sweep_whose_runs_failed_exits_non_zero_and_says_where(tmp_path):
    """Issue 14 (6): failed runs (a diverging learning rate) are recorded, counted and named, and the
    sweep's exit status says so; a learning rate that is not a finite number is refused up front."""
    env = dict(os.environ, LOCALMIXUP_RESULTS=str(tmp_path), PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    common = ["--methods", "baseline,mixup", "--seeds", "0", "--epochs", "1", "--train-size", "64", "--test-size", "64",
              "--batch-size", "32"]
    done = subprocess.run(_sweep_command(*common, "--lr", "1e30"), cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1, done.stderr
    folder = next(tmp_path.rglob("baseline-seed0.json")).parent
    assert "2 of 2 run(s) failed" in done.stderr and str(folder) in done.stderr and "Traceback" not in done.stderr
    for name in ("baseline-seed0.json", "mixup-seed0.json"):
        record = json.loads((folder / name).read_text(), parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
        assert record["status"] == "failed" and "not finite" in record["error"]
    again = subprocess.run(_sweep_command(*common, "--lr", "1e30"), cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 1 and "0 to train" in again.stdout and "2 of 2 run(s) failed" in again.stderr
    refused = subprocess.run(_sweep_command(*common, "--lr", "inf"), cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode != 0 and "lr" in refused.stderr and "Traceback" not in refused.stderr


def _children(pid):
    """Process ids whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's reaping is left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_killing_a_jobs_2_sweep_kills_its_workers(tmp_path):
    """Issue 14 (4): SIGKILL a --jobs 2 sweep's parent while both workers train: no worker survives it,
    and no partial record is left."""
    env = dict(os.environ, LOCALMIXUP_RESULTS=str(tmp_path), PYTHONPATH=str(ROOT))
    command = _sweep_command("--methods", "baseline,mixup", "--seeds", "0", "--epochs", "200", "--train-size", "128",
                             "--test-size", "64", "--batch-size", "32", "--jobs", "2", "--checkpoint-every", "0")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and process.poll() is None and len(list(tmp_path.rglob("*.pt"))) < 2:
            time.sleep(0.1)  # each worker saves a checkpoint after its first epoch: both are training
        assert process.poll() is None, process.stderr.read().decode()
        workers = _children(process.pid)
        assert len(workers) >= 2, workers
    finally:
        process.kill()
        process.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(map(_alive, workers)):
        time.sleep(0.1)
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:  # do not leave them running, whatever the outcome
        os.kill(w, signal.SIGKILL)
    assert not survivors, f"workers {survivors} outlived their parent"
    assert not list(tmp_path.rglob("*.json"))  # no run finished: no record, and in particular no partial one


def test_the_automatic_decay_is_computed_once_from_the_training_split(tmp_path, monkeypatch):
    from localmixup.decay import auto_decay
    from localmixup.paper.data import DeviceLoader, load_arrays, spec, subset

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    configs = make_configs("fashion_mnist", "local", "0-1", "quick", decays=[0.05, "auto"], train_size=600)
    fixed, auto = configs[:2], configs[2:]
    assert [c.decay for c in fixed] == [0.05, 0.05] and all(c.decay_rule is None for c in fixed)
    s = spec("fashion_mnist")
    arrays = load_arrays("fashion_mnist")
    x, y = subset(arrays.x_train, arrays.y_train, 600)
    expected = auto_decay(DeviceLoader(x, y, 1, mean=s.mean, std=s.std).normalise(x), y)
    assert [c.decay for c in auto] == [expected, expected] and all(c.decay_rule == "nearest_other_class" for c in auto)
    assert [record_path(c).name for c in auto] == ["local-auto-seed0.json", "local-auto-seed1.json"]
    assert folder_tag(auto[0]) == folder_tag(fixed[0])  # a per-run setting, like the rate itself


def test_a_record_made_before_a_field_was_added_stands_for_its_default(tmp_path, monkeypatch):
    """A field added to TrainConfig (here subset_seed) is absent from older records: they trained as its default."""
    import json

    from localmixup.paper.protocols import profile_config
    from localmixup.paper.sweep.plan import pending, record_path

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    config = profile_config("cpu", "fashion_mnist", "baseline", 0)
    old = config.to_dict()
    del old["subset_seed"]
    path = record_path(config)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"config": old, "status": "ok", "epochs": [], "final_test_error_pct": 9.0,
                                "threads": 1, "stack": None}))
    assert pending([config]) == []
    other = profile_config("cpu", "fashion_mnist", "baseline", 0, train_size=1000, subset_seed=0)
    monkeypatch.setattr("localmixup.paper.sweep.plan.record_path", lambda c, stack=1: path)
    with pytest.raises(ValueError, match="differs in subset_seed, train_size"):
        pending([other])
