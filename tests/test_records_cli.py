import subprocess
import sys

import pytest

import localmixup as lm
import localmixup.paper as lp
import localmixup.paper.book
from localmixup.paper.book import execute_chapter


def test_write_record_is_atomic_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "runs" / "seed0.json"
    lp.write_record(path, {"error": 0.25, "curve": [1.0, float("nan")]})
    record = lp.read_record(path)
    assert record["error"] == 0.25 and record["curve"][0] == 1.0
    assert [p.name for p in path.parent.iterdir()] == ["seed0.json"]
    assert lp.missing([path, tmp_path / "runs" / "seed1.json"]) == [tmp_path / "runs" / "seed1.json"]
    assert [r["error"] for r in lp.load_records(tmp_path)] == [0.25]


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
    import nbformat

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "book").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('profile = "quick"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('boom ' + profile)")]
    source = tmp_path / "notebooks" / "broken.ipynb"
    nbformat.write(nb, source)
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
    result = subprocess.run([sys.executable, "-m", "localmixup", "book", "--only", "nonexistent", "--profile", "quick"],
                            capture_output=True, text=True, cwd=lp.project_root())
    assert result.returncode == 1
    assert result.stderr.strip().startswith("localmixup book: --only names unknown chapters ['nonexistent']")
    assert "Traceback" not in result.stderr
