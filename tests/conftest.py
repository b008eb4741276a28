"""Test tiers, set here rather than in each file, and the fixtures shared by the test files.

The markers (registered in pyproject.toml, so ``--strict-markers`` refuses a misspelt one):

- ``slow``: over about 5 s on an idle 2-core CPU;
- ``notebook``: executes a notebook in a Jupyter kernel (papermill, or nbval on ``pytest notebooks/``);
- ``book``: reads the book that ``book_build`` executes and builds once per session;
- ``browser``: drives headless Chromium;
- ``subprocess``: starts a Python interpreter of its own (the CLI, a script, a Ray cluster);
- ``gpu``: needs CUDA, skipped here where none is visible;
- ``dataset``: needs Debian's Fashion-MNIST files, skipped here where they are not installed (the
  tests that train on Fashion-MNIST also read them, through the data cache).

``make test-fast`` deselects slow, notebook, book, browser and subprocess; ``make test`` runs all.
"""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

# Which tests carry which marker: a test file, or file::test (every parametrization of the test).
# tests/test_tiers.py checks that every name here still exists.
RAY_CLUSTER = ("test_same_records_as_local_backend", "test_cluster_too_small_for_the_thread_count",
               "test_a_run_that_raises_is_recorded_as_failed", "test_worker_killed_mid_run_is_retried_once_recorded",
               "test_worker_killed_without_retries_is_recorded_failed", "test_cli_on_the_cluster_resumes",
               "test_cli_bad_input_one_line_errors", "test_address_local_is_accepted",
               "test_ray_on_this_machine_listens_on_loopback_only_and_keeps_its_token_private")
SWEEP_PROCESSES = ("test_sweep_survives_sigkill", "test_a_killed_run_resumes_from_its_checkpoint",
                   "test_killing_a_jobs_2_sweep_kills_its_workers",
                   "test_a_sweep_whose_runs_failed_exits_non_zero_and_says_where", "test_cli_errors_are_one_line")
TIERS = {
    # measured with --durations on the loaded 2-core machine (over about 5 s there)
    "slow": (
        "test_chapter_seeds.py::test_chapter_executes_with_a_new_seed",
        "test_book_figures.py::test_figures_render_even_when_the_caller_exports_a_non_inline_backend",
        "test_chapters.py::test_auto_picks_the_most_faithful_complete_profile",
        "test_findings.py::test_the_box_equals_what_the_readings_compute_from_the_committed_records",
        "test_mixing_loss.py::test_decay_zero_and_full_knn_draw_partners_uniformly",
        "test_retrain.py::test_a_spirals_chunk_retrains_bit_for_bit",
        "test_records_cli.py::test_cli_sets_aside_corrupt_files_and_trains_their_runs_again",
        "test_records_cli.py::test_records_are_ordinary_files_and_the_umask_is_never_touched",
        "test_spirals.py::test_sweep_survives_sigkill",
        "test_paper_profiles.py::test_the_paper_profile_executes_on_the_cpu_with_runs_of_seconds",
        *(f"test_ray_backend.py::{name}" for name in RAY_CLUSTER),
        *(f"test_sweep.py::{name}" for name in SWEEP_PROCESSES),
    ),
    "notebook": (
        "test_paper_profiles.py::test_the_paper_profile_executes_on_the_cpu_with_runs_of_seconds",
        "test_chapter_seeds.py::test_chapter_executes_with_a_new_seed",
        "test_book_figures.py::test_figures_render_even_when_the_caller_exports_a_non_inline_backend",
        "test_records_cli.py::test_failing_chapter_names_cell_and_partial_output_and_keeps_the_good_copy",
    ),
    "browser": ("test_browser.py::test_every_page_loads_offline_in_chromium_with_images_and_typeset_math",),
    "subprocess": (
        "test_chapter_seeds.py::test_chapter_executes_with_a_new_seed",
        "test_paper_profiles.py::test_the_paper_profile_executes_on_the_cpu_with_runs_of_seconds",
        "test_core_import.py::test_import_localmixup_loads_no_heavy_dependency",
        "test_extras.py::test_the_command_without_the_paper_extra_says_which_extra_in_one_line",
        "test_extras.py::test_the_parts_refuse_in_one_line_and_the_core_still_mixes",
        "test_records_cli.py::test_cli_sets_aside_corrupt_files_and_trains_their_runs_again",
        "test_records_cli.py::test_records_are_ordinary_files_and_the_umask_is_never_touched",
        "test_records_cli.py::test_cli_reports_bad_input_in_one_line",
        "test_spirals.py::test_sweep_survives_sigkill",
        *(f"test_ray_backend.py::{name}" for name in RAY_CLUSTER),
        *(f"test_sweep.py::{name}" for name in SWEEP_PROCESSES),
    ),
    "gpu": (
        "test_mixing_loss.py::test_cuda_matches_cpu_semantics",
        "test_mixing_loss.py::test_mixing_cuda_batches_with_a_cpu_generator_never_waits_for_the_gpu",
        "test_stacked.py::test_captured_steps_follow_eager_steps_on_cuda",
    ),
    "dataset": tuple(f"test_data.py::{name}" for name in (
        "test_fashion_mnist_loads_offline", "test_truncated_idx_file_is_reported_not_trained_on",
        "test_truncated_unpacked_fashion_mnist_is_unpacked_again", "test_truncated_source_gz_is_reported",
        "test_corrupt_gz_content_is_reported", "test_fashion_mnist_gz_files_in_the_raw_folder_are_used_without_debian",
        "test_a_damaged_gz_in_the_raw_folder_is_named")),
}
# tests that ask for these fixtures execute (or read) the session's book
BOOK_FIXTURES = {"book_build"}


def _tiers_of(item) -> set[str]:
    path = Path(str(item.fspath))
    if path.suffix == ".ipynb":  # nbval's cells: `pytest notebooks/`
        return {"notebook", "slow"}
    names = {path.name, f"{path.name}::{getattr(item, 'originalname', item.name)}"}
    found = {marker for marker, tests in TIERS.items() if names & set(tests)}
    if BOOK_FIXTURES & set(getattr(item, "fixturenames", ())) or "browser" in found:
        found |= {"book", "slow"}
    return found


def _fashion_mnist_installed() -> bool:
    from localmixup.paper.data import DEBIAN_FASHION_MNIST

    return (DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").is_file()


def pytest_collection_modifyitems(config, items):
    skips = {}
    for item in items:
        for marker in sorted(_tiers_of(item)):
            item.add_marker(marker)
        if item.get_closest_marker("gpu"):
            import torch

            if not torch.cuda.is_available():
                skips.setdefault("gpu", pytest.mark.skip(reason="needs a CUDA device"))
                item.add_marker(skips["gpu"])
        if item.get_closest_marker("dataset") and not _fashion_mnist_installed():
            skips.setdefault("dataset", pytest.mark.skip(reason="Debian package dataset-fashion-mnist not installed"))
            item.add_marker(skips["dataset"])


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """In-process tests run on one torch thread: their numbers do not depend on the machine's cores,
    and two test processes (or a test run beside a sweep) do not oversubscribe the CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@dataclass(frozen=True)
class BookBuild:
    """The book executed and built once per session, in a fresh clone of the checkout under test."""

    root: Path        # the clone: sources, executed chapters in book/, the HTML in _build/html
    html: Path
    returncode: int   # of `localmixup book --profile quick`
    log: str          # the tail of its stdout and stderr, for failure messages

    def chapter(self, name: str) -> dict:
        """The executed chapter ``book/<name>.ipynb`` of the clone (a failure naming the build's log if absent)."""
        path = self.root / "book" / f"{name}.ipynb"
        if not path.is_file():
            pytest.fail(f"book/{name}.ipynb was not executed: `localmixup book` exited {self.returncode}\n{self.log}")
        return json.loads(path.read_text())


def clone_checkout(root: Path, into: Path) -> Path:
    """A fresh ``git clone`` of the checkout at ``root`` whose HEAD is the checkout's working tree:
    its HEAD, plus its uncommitted changes (tracked and untracked files git does not ignore)
    committed on top; with nothing uncommitted (as in CI) it is a plain clone of HEAD."""
    def git(*args, cwd=into):
        return subprocess.run(["git", "-c", "user.name=tests", "-c", "user.email=tests@localhost", *args], cwd=cwd,
                              check=True, capture_output=True, text=True).stdout

    git("clone", "--quiet", "--no-checkout", str(root), str(into), cwd=root)
    git("fetch", "--quiet", str(root), "HEAD")
    git("checkout", "--quiet", "--detach", "FETCH_HEAD")
    wanted = set(filter(None, git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=root).split("\0")))
    for name in set(filter(None, git("ls-files", "-z").split("\0"))) - wanted:
        (into / name).unlink()
    for name in wanted:
        if (root / name).is_file():  # else deleted in the working tree
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, into / name)
        else:
            (into / name).unlink(missing_ok=True)
    git("add", "--all")
    if git("status", "--porcelain"):
        git("commit", "--quiet", "--message", "the working tree under test")
    return into


@pytest.fixture(scope="session")
def book_build(tmp_path_factory):
    """Every chapter executed ONCE per session (`localmixup book --profile quick`: papermill, the
    profile nbval ran) and the book built from them (-W -n), in a fresh clone of the checkout, so
    that nothing of the project (its book/, its _build/ and the cached doctrees that would hide
    warnings, its results/) is read or written. That one execution serves the checked outputs, the
    figure counts, the HTML and browser tests and the clean-checkout test. Tests assert on
    ``returncode`` (or call ``chapter``) themselves."""
    import localmixup.paper as lp

    root = lp.project_root()
    if subprocess.run(["git", "rev-parse", "--git-dir"], cwd=root, capture_output=True).returncode != 0:
        pytest.skip(f"the book tests build in a clone of the checkout, and {root} is not a git checkout")
    clone = clone_checkout(root, tmp_path_factory.mktemp("book") / "clone")
    env = {k: v for k, v in os.environ.items() if k not in ("LOCALMIXUP_ROOT", "LOCALMIXUP_RESULTS")}
    env.update(LOCALMIXUP_ROOT=str(clone), LOCALMIXUP_DATA=str(lp.data_dir()),
               PYTHONPATH=os.pathsep.join(filter(None, [str(clone), os.environ.get("PYTHONPATH")])))
    result = subprocess.run([sys.executable, "-m", "localmixup.paper", "book", "--profile", "quick"], cwd=clone, env=env,
                            capture_output=True, text=True)
    return BookBuild(clone, clone / "_build" / "html", result.returncode, result.stdout[-3000:] + result.stderr[-3000:])
