"""Any seed re-executes: every chapter runs under papermill with seeds other than its default.

The light chapters run all three new seeds on every test run. The chapters that train image or
spiral runs take minutes per seed, so each test run executes one of their three seeds, chosen
by the checked-out commit (consecutive commits cover all three); ``LOCALMIXUP_ALL_SEEDS=1``
runs every seed of every chapter. Runs are trained into a temporary results folder, never into
the project's ``results/``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import localmixup.paper as lp

ROOT = lp.project_root()
NEW_SEEDS = (1, 2, 3)
LIGHT = {"method", "theory_1d"}
# the papermill parameters that change the seed of each chapter
SEED_PARAMETERS = {
    "method": lambda s: {"seed": s},
    "theory_1d": lambda s: {"seed": s},
    "spirals": lambda s: {"seed": 100 * s, "data_seed": s},
    "table1": lambda s: {"seeds": [s], "decay_seeds": [s]},
    "adamixup": lambda s: {"seeds": [s]},
}


def _rotated_seed() -> int:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return NEW_SEEDS[int(commit, 16) % len(NEW_SEEDS)] if commit else NEW_SEEDS[0]


def test_every_chapter_has_a_seed_parameter():
    assert set(SEED_PARAMETERS) == {p.stem for p in (ROOT / "notebooks").glob("*.ipynb")}


@pytest.mark.parametrize("seed", NEW_SEEDS)
@pytest.mark.parametrize("chapter", sorted(SEED_PARAMETERS))
def test_chapter_executes_with_a_new_seed(chapter, seed, tmp_path):
    if chapter not in LIGHT and seed != _rotated_seed() and not os.environ.get("LOCALMIXUP_ALL_SEEDS"):
        pytest.skip(f"this commit runs {chapter} with seed {_rotated_seed()} (LOCALMIXUP_ALL_SEEDS=1 runs all)")
    arguments = [a for name, value in SEED_PARAMETERS[chapter](seed).items() for a in ("-y", f"{name}: {value}")]
    out = tmp_path / f"{chapter}-{seed}.ipynb"
    papermill = Path(sys.executable).with_name("papermill")
    env = {**os.environ, "LOCALMIXUP_RESULTS": str(tmp_path / "results")}
    result = subprocess.run([str(papermill), str(ROOT / "notebooks" / f"{chapter}.ipynb"), str(out), "-p", "profile", "quick",
                             *arguments, "--cwd", str(ROOT / "notebooks"), "--no-progress-bar"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-4000:]
