import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import localmixup.paper as lp
import localmixup.paper.book
from localmixup.paper.book import execute_chapter

from helpers import write_chapter
from localmixup.paper.record_files import RUN_FIELDS, CorruptFile, find_corrupt, set_aside

ROOT = Path(__file__).resolve().parent.parent


def test_write_record_is_atomic_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "runs" / "seed0.json"
    lp.write_record(path, {"error": 0.25, "curve": [1.0, float("nan")]})
    record = lp.read_record(path)
    assert record["error"] == 0.25 and record["curve"][0] == 1.0
    assert [p.name for p in path.parent.iterdir()] == ["seed0.json"]
    assert lp.missing([path, tmp_path / "runs" / "seed1.json"]) == [tmp_path / "runs" / "seed1.json"]
    assert [r["error"] for r in lp.load_records(tmp_path)] == [0.25]


UMASK_CODE = """
import os, sys
os.umask({umask})
calls = []
real = os.umask
os.umask = lambda mask: calls.append(mask) or real(mask)  # any change of the umask, even undone at once
import localmixup.paper.record_files as records
records.write_record(sys.argv[1] + "/a.json", {{"x": 1}})
records.atomic_write(sys.argv[1] + "/b.pt", lambda f: f.write(b"x"), binary=True)
print(calls, oct(os.stat(sys.argv[1] + "/a.json").st_mode & 0o777), oct(os.stat(sys.argv[1] + "/b.pt").st_mode & 0o777))
"""


@pytest.mark.parametrize("umask, mode", [(0o022, "0o644"), (0o077, "0o600"), (0o002, "0o664")])
def test_records_are_ordinary_files_and_the_umask_is_never_touched(tmp_path, umask, mode):
    """Importing or writing records never changes the process's umask (another thread may create files
    meanwhile); the files get the permissions the umask gives an ordinary file."""
    out = subprocess.run([sys.executable, "-c", UMASK_CODE.format(umask=oct(umask)), str(tmp_path)], capture_output=True,
                         text=True, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["[]", mode, mode]


def test_write_record_failure_keeps_previous_file_intact(tmp_path):
    path = tmp_path / "run.json"
    lp.write_record(path, {"error": 0.1})
    with pytest.raises(TypeError):
        lp.write_record(path, {"error": object()})  # not JSON: the write fails midway
    assert lp.read_record(path) == {"error": 0.1}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_environment_names_versions_device_and_commit():
    env = lp.environment()
    assert {"torch", "torchvision", "numpy", "python", "device", "commit", "date", "localmixup"} <= env.keys()
    assert env["commit"] != "unknown"


def test_results_dir_follows_the_project_root(tmp_path, monkeypatch):
    (tmp_path / "_toc.yml").write_text("format: jb-book\n")
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.delenv("LOCALMIXUP_ROOT", raising=False)
    monkeypatch.delenv("LOCALMIXUP_RESULTS", raising=False)
    assert lp.results_dir("spirals") == tmp_path / "results" / "spirals"


def test_paper_profile_refused_on_cpu_unless_allowed():
    if lp.default_device().type == "cuda":
        pytest.skip("a GPU is visible")
    with pytest.raises(RuntimeError, match="needs a GPU"):
        lp.check_profile("paper")
    assert lp.check_profile("paper", allow_cpu=True).type == "cpu"
    with pytest.raises(ValueError, match="profile must be one of 'quick', 'cpu', 'paper'"):
        lp.check_profile("fast")


def test_failing_chapter_names_cell_and_partial_output_and_keeps_the_good_copy(tmp_path):
    source = write_chapter(tmp_path, "broken", 'profile = "quick"', "x = 1", "raise ValueError('boom ' + profile)")
    good = tmp_path / "book" / "broken.ipynb"
    good.write_text("previous good copy")
    with pytest.raises(localmixup.paper.book.NotebookFailed) as failure:
        execute_chapter(source, tmp_path, "quick")
    message = str(failure.value)
    assert "broken.ipynb: cell 3" in message and "ValueError: boom quick" in message
    assert str(tmp_path / "_build" / "failed" / "broken.ipynb") in message
    assert (tmp_path / "_build" / "failed" / "broken.ipynb").is_file()
    assert good.read_text() == "previous good copy"


def test_cli_reports_bad_input_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "localmixup.paper", "book", "--only", "nonexistent", "--profile", "quick"],
                            capture_output=True, text=True, cwd=lp.project_root())
    assert result.returncode == 1
    assert result.stderr.strip().startswith("localmixup book: --only names unknown chapters ['nonexistent']")
    assert "Traceback" not in result.stderr


# --- records: strict JSON, corrupt files named and kept -----------------------------------------

def _strict_json(text):
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_records_are_strict_json_and_keep_non_finite_numbers(tmp_path):
    path = tmp_path / "run.json"
    record = {"status": "failed", "epochs": [{"train_loss": float("nan")}, {"train_loss": 2.0}],
              "bounds": (float("inf"), -float("inf")), "by_seed": {3: float("nan")}}
    lp.write_record(path, record)
    written = _strict_json(path.read_text())
    assert written["epochs"][0]["train_loss"] is None and written["bounds"] == [None, None]
    assert written["non_finite"] == [{"at": ["epochs", 0, "train_loss"], "value": "NaN"},
                                     {"at": ["bounds", 0], "value": "Infinity"}, {"at": ["bounds", 1], "value": "-Infinity"},
                                     {"at": ["by_seed", "3"], "value": "NaN"}]
    back = lp.read_record(path)
    assert "non_finite" not in back and math.isnan(back["epochs"][0]["train_loss"]) and back["epochs"][1]["train_loss"] == 2.0
    assert back["bounds"] == [math.inf, -math.inf] and math.isnan(back["by_seed"]["3"])
    with pytest.raises(ValueError, match="must not hold the key 'non_finite'"):
        lp.write_record(path, {"non_finite": []})


def test_a_diverged_run_is_recorded_as_strict_json(tmp_path, monkeypatch):
    """A run whose loss turns NaN (a huge learning rate) is recorded failed, readably."""
    from localmixup.paper.sweep.images import run_sweep
    from localmixup.paper.sweep.plan import make_configs

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    configs = make_configs("fashion_mnist", "baseline", "0", "quick", epochs=2, train_size=64, test_size=32,
                           batch_size=32, lr=1e12)
    [path] = run_sweep(configs, progress=False, device="cpu", checkpoint_every=None).paths
    written = _strict_json(path.read_text())
    assert written["status"] == "failed" and written["failed_epoch"] in (1, 2)
    last = written["failed_epoch"] - 1
    assert written["epochs"][last]["train_loss"] is None
    assert {"at": ["epochs", last, "train_loss"], "value": "NaN"} in written["non_finite"]
    assert math.isnan(lp.read_record(path)["epochs"][last]["train_loss"])


CORRUPT_RECORDS = {
    "empty": b"", "blank": b" \n", "not JSON": b"{", "truncated": b'{"config": {"seed": 1}, "status": "ok"',
    "binary": b"\x80\x81\xfe", "array": b"[]", "empty object": b"{}", "string": b'"text"', "number": b"42",
    "null": b"null", "no config": b'{"status": "ok"}', "config not an object": b'{"config": [], "status": "ok"}',
    "status not a string": b'{"config": {}, "status": 1}',
    "bad non_finite": b'{"config": {}, "status": "ok", "non_finite": [{"at": ["x"], "value": "NaN"}]}',
}


@pytest.mark.parametrize("content", CORRUPT_RECORDS.values(), ids=CORRUPT_RECORDS)
def test_a_corrupt_record_is_named_and_kept(tmp_path, content):
    path = tmp_path / "baseline-seed0.json"
    path.write_bytes(content)
    with pytest.raises(CorruptFile) as caught:
        lp.read_record(path, RUN_FIELDS)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError) and caught.value.path == path
    assert message.startswith(f"{path} is corrupt (") and "--set-aside-corrupt" in message and "\n" not in message
    assert path.read_bytes() == content and find_corrupt([path])[0].path == path


@pytest.mark.parametrize("content", [b"[]", b"{}", b'{"status": "ok"}', b"not json"])
def test_a_sweep_with_a_corrupt_record_stops_before_training(tmp_path, monkeypatch, content):
    from localmixup.paper.sweep.images import run_sweep
    from localmixup.paper.sweep.plan import make_configs, record_path

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    configs = make_configs("fashion_mnist", "baseline", "0-1", "quick", epochs=1, train_size=64, test_size=32, batch_size=32)
    record_path(configs[1]).parent.mkdir(parents=True)
    record_path(configs[1]).write_bytes(content)
    with pytest.raises(CorruptFile, match=re.escape(str(record_path(configs[1])))):
        run_sweep(configs, progress=False, device="cpu")
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["baseline-seed1.json"]


def _checkpoint_bytes(tmp_path):
    import torch

    from localmixup.paper.training.checkpoints import Checkpoint

    Checkpoint(tmp_path / "good.pt", {"run": 1}, 0).save({"tensors": [torch.ones(50, 50)], "epoch": 1})
    return (tmp_path / "good.pt").read_bytes()


@pytest.mark.parametrize("damage", ["empty", "garbage", "half", "tail cut", "JSON", "a list"])
def test_a_corrupt_checkpoint_is_named_and_kept(tmp_path, damage):
    import torch

    from localmixup.paper.training.checkpoints import Checkpoint

    good = _checkpoint_bytes(tmp_path)
    path = tmp_path / "run.pt"
    if damage == "a list":
        torch.save([1, 2], path)
    else:
        path.write_bytes({"empty": b"", "garbage": b"hello " * 20, "half": good[: len(good) // 2],
                          "tail cut": good[:-8], "JSON": b'{"epoch": 1}'}[damage])
    content = path.read_bytes()
    with pytest.raises(CorruptFile) as caught:
        Checkpoint(path, {"run": 1}).load()
    message = str(caught.value)
    assert message.startswith(f"{path} is corrupt (") and "--set-aside-corrupt" in message and "\n" not in message
    assert path.read_bytes() == content
    assert Checkpoint(tmp_path / "good.pt", {"run": 1}).load()["epoch"] == 1


def test_set_aside_moves_without_overwriting_and_load_records_skips_it(tmp_path):
    first = tmp_path / "run.json"
    first.write_text("{")
    assert set_aside(first) == tmp_path / "corrupt" / "run.json" and not first.exists()
    first.write_text("[]")
    assert set_aside(first) == tmp_path / "corrupt" / "run.json.1"
    assert (tmp_path / "corrupt" / "run.json").read_text() == "{" and (tmp_path / "corrupt" / "run.json.1").read_text() == "[]"
    lp.write_record(tmp_path / "ok.json", {"config": {}, "status": "ok"})
    assert lp.load_records(tmp_path) == [{"config": {}, "status": "ok"}]


def _sweep_command(*options):
    return [sys.executable, "-m", "localmixup.paper", "sweep", "--dataset", "fashion_mnist", "--methods", "baseline",
            "--seeds", "0-1", "--epochs", "1", "--train-size", "64", "--test-size", "32", "--batch-size", "32",
            "--device", "cpu", "--no-progress", *options]


def test_cli_sets_aside_corrupt_files_and_trains_their_runs_again(tmp_path, monkeypatch):
    from localmixup.paper.sweep.plan import checkpoint_path, make_configs, record_path

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path))
    env = dict(os.environ, PYTHONPATH=str(ROOT), LOCALMIXUP_DATA=str(ROOT / "data"))
    configs = make_configs("fashion_mnist", "baseline", "0-1", "quick", epochs=1, train_size=64, test_size=32, batch_size=32)
    record, checkpoint = record_path(configs[0]), checkpoint_path(configs[1:])
    checkpoint.parent.mkdir(parents=True)
    record.write_text("{}")
    checkpoint.write_bytes(b"PK\x03\x04 cut short")
    refused = subprocess.run(_sweep_command(), capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
    assert refused.stderr.startswith(f"localmixup sweep: 2 corrupt files; the first: {record} is corrupt (an empty JSON object)")
    assert "--set-aside-corrupt" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert record.read_text() == "{}" and checkpoint.read_bytes() == b"PK\x03\x04 cut short"
    assert not record.with_name("baseline-seed1.json").exists()

    done = subprocess.run(_sweep_command("--set-aside-corrupt"), capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"set aside {record} -> {record.parent / 'corrupt' / record.name}" in done.stdout
    assert f"set aside {checkpoint} -> {checkpoint.parent / 'corrupt' / checkpoint.name}" in done.stdout
    assert "2 runs, 0 already recorded, 2 to train" in done.stdout
    assert (record.parent / "corrupt" / record.name).read_text() == "{}"
    assert (checkpoint.parent / "corrupt" / checkpoint.name).read_bytes() == b"PK\x03\x04 cut short"
    assert [lp.read_record(record.with_name(f"baseline-seed{s}.json"), RUN_FIELDS)["status"] for s in (0, 1)] == ["ok", "ok"]


# --- command-line options: every bad value names its option and what it accepts -------------------

BAD_OPTIONS = [
    ("--alpha", "abc", "a real number in (0, inf)"), ("--alpha", "0", "(0, inf)"), ("--alpha", "-1", "(0, inf)"),
    ("--alpha", "nan", "(0, inf)"), ("--alpha", "inf", "(0, inf)"), ("--alpha", "0.1,0.2", "(0, inf)"),
    ("--decay", "abc", "a real number in [0, inf)"), ("--decay", "0.1,x", "[0, inf)"), ("--decay", "-1", "[0, inf)"),
    ("--decay", ",", "[0, inf)"), ("--decay", "inf", "[0, inf)"),
    ("--epochs", "abc", "an integer in [1, inf)"), ("--epochs", "0", "[1, inf)"), ("--epochs", "2.5", "an integer"),
    ("--train-size", "-5", "[1, inf)"), ("--test-size", "0", "[1, inf)"), ("--batch-size", "1", "[2, inf)"),
    ("--lr", "inf", "(0, inf)"), ("--lr", "0", "(0, inf)"), ("--lr", "-0.1", "(0, inf)"), ("--lr", "nan", "(0, inf)"),
    ("--lr", "fast", "a real number"), ("--jobs", "0", "[1, inf)"), ("--jobs", "two", "an integer"),
    ("--stack", "0", "[1, inf)"), ("--checkpoint-every", "-1", "[0, inf)"), ("--checkpoint-every", "inf", "[0, inf)"),
    ("--gpus-per-run", "abc", "(0, inf)"), ("--gpus-per-run", "0", "(0, inf)"), ("--cpus-per-run", "0", "[1, inf)"),
    ("--max-retries", "-1", "[0, inf)"), ("--device", "foo", "a torch device such as cpu, cuda or cuda:1"),
    ("--device", "cuda:x", "a torch device"),
]


@pytest.mark.parametrize("option, value, accepted", BAD_OPTIONS)
def test_cli_bad_numbers_name_the_option_and_the_accepted_values(capsys, monkeypatch, option, value, accepted):
    from localmixup.paper import cli

    monkeypatch.setattr("localmixup.paper.sweep.images.run_sweep", lambda *a, **k: pytest.fail("the sweep ran"))
    with pytest.raises(SystemExit) as caught:
        cli.main(["sweep", "--dataset", "fashion_mnist", option, value])
    err = capsys.readouterr().err
    assert caught.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"localmixup sweep: argument {option}: ") and accepted in err, err


def test_cli_numbers_reach_the_configurations(monkeypatch, capsys):
    from localmixup.paper import cli

    seen = {}
    from localmixup.paper.sweep.images import SweepSummary

    monkeypatch.setattr("localmixup.paper.sweep.images.run_sweep",
                        lambda configs, **k: seen.setdefault("configs", configs) and SweepSummary([], 0, []))
    monkeypatch.setattr(cli, "_check_files", lambda configs, set_aside_corrupt, stack: None)
    assert cli.main(["sweep", "--dataset", "fashion_mnist", "--methods", "mixup,local", "--decay", "0,0.5", "--alpha", "0.4",
                     "--epochs", "3", "--lr", "0.05", "--batch-size", "16", "--device", "cpu"]) == 0
    configs = seen["configs"]
    assert [c.method for c in configs] == ["mixup", "local", "local"]
    assert [getattr(c, cli.DECAY_FIELD) for c in configs[1:]] == [0.0, 0.5]
    assert {(getattr(c, cli.BETA_FIELD), c.epochs, c.lr, c.batch_size) for c in configs} == {(0.4, 3, 0.05, 16)}


@pytest.mark.parametrize("only", ["", ",", " , "])
def test_cli_book_only_without_a_name_is_refused(capsys, monkeypatch, only):
    from localmixup.paper import cli

    monkeypatch.setattr("localmixup.paper.book.build_book", lambda *a, **k: pytest.fail("the book was built"))
    assert cli.main(["book", "--only", only]) == 1
    err = capsys.readouterr().err
    assert err.startswith("localmixup book: --only needs at least one chapter name") and "'table1'" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("arguments, needle", [
    (["--only", "table1", "-p", "nonsense", "1"], "-p nonsense: not a parameter of chapter 'table1' (its parameters: profile, "
                                                  "allow_cpu, seeds, datasets"),
    (["-p", "seeds", "0-4"], "-p seeds: not a parameter of chapter 'method' (its parameters: profile, allow_cpu, seed, "),
    (["-p", "seeds", "0-4"], "pass --only adamixup,table1 to execute only the chapters that have it"),
    (["--only", "table1", "-p", "profile", "paper"], "-p profile: use --profile"),
    (["--only", "table1,spirals", "-p", "stack", "8"], "-p stack: not a parameter of chapter 'spirals'"),
])
def test_cli_book_refuses_unknown_chapter_parameters(capsys, monkeypatch, arguments, needle):
    from localmixup.paper import cli

    monkeypatch.setattr("localmixup.paper.book.build_book", lambda *a, **k: pytest.fail("the book was built"))
    assert cli.main(["book", *arguments]) == 1
    err = capsys.readouterr().err
    assert err.startswith("localmixup book: ") and needle in err and len(err.strip().splitlines()) == 1, err


def test_cli_book_passes_known_parameters_to_papermill(monkeypatch, capsys):
    from localmixup.paper import cli

    calls = []
    monkeypatch.setattr("localmixup.paper.book.build_book", lambda *a: calls.append(a) or Path("index.html"))
    assert cli.main(["book", "--profile", "quick", "--only", "table1", "-p", "backend", "ray", "-p", "gpus_per_run", "0.5",
                     "-p", "stack", "8", "-p", "seeds", "None", "-p", "allow_cpu", "True"]) == 0
    assert calls == [("quick", ["table1"], {"backend": "ray", "gpus_per_run": 0.5, "stack": 8, "seeds": None,
                                            "allow_cpu": True})]


def test_cli_refuses_a_cuda_device_it_does_not_show(capsys, monkeypatch):
    import torch

    from localmixup.paper import cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr("localmixup.paper.sweep.images.run_sweep", lambda *a, **k: pytest.fail("the sweep ran"))
    assert cli.main(["sweep", "--dataset", "fashion_mnist", "--device", "cuda:1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("localmixup sweep: --device cuda:1: this machine shows 1 CUDA device(s)") and "\n" not in err.strip()


def test_setting_aside_where_corrupt_is_a_file_is_one_clear_error(tmp_path):
    from localmixup.paper.record_files import set_aside

    record = tmp_path / "run.json"
    record.write_text("{trunc")
    (tmp_path / "corrupt").write_text("a file where the corrupt/ folder goes")
    with pytest.raises(ValueError, match=r"cannot set .*run.json aside into .*corrupt/ .*or move .* away by hand"):
        set_aside(record)
    assert record.read_text() == "{trunc"  # left in place
