"""The chapters' ``paper`` profiles run end to end on the CPU, as a GPU user would run them, with every
run shrunk to seconds (``overrides``: one epoch on 128 images): the paper's networks, recipes, plans,
readings and figures all execute, so a user who re-executes a chapter on a GPU does not meet its first
bug there. Runs are trained into a temporary results folder."""

import json
import os
import subprocess
import sys

import pytest

import localmixup.paper as lp
from localmixup.paper.data import dataset_status

ROOT = lp.project_root()
SECONDS = {"epochs": 1, "train_size": 128, "test_size": 128}
CHAPTERS = {
    "table1": {"seeds": [0], "decay_seeds": [0], "decays": [5e-4]},
    "adamixup": {"seeds": [0], "error_dataset": "fashion_mnist", "curve_dataset": "fashion_mnist", "cost_steps": 1,
                 "cost_rounds": 1},
}


@pytest.mark.skipif(dataset_status("fashion_mnist") is not None, reason="needs Fashion-MNIST (Debian's package)")
@pytest.mark.parametrize("chapter", sorted(CHAPTERS))
def test_the_paper_profile_executes_on_the_cpu_with_runs_of_seconds(chapter, tmp_path):
    parameters = {"profile": "paper", "allow_cpu": True, **CHAPTERS[chapter], "overrides": SECONDS}
    (tmp_path / "parameters.json").write_text(json.dumps(parameters))  # JSON is YAML: papermill -f reads it
    env = dict(os.environ, LOCALMIXUP_RESULTS=str(tmp_path / "results"), OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    out = tmp_path / f"{chapter}.ipynb"
    papermill = [sys.executable, "-m", "papermill", "-k", "python3", str(ROOT / "notebooks" / f"{chapter}.ipynb"), str(out),
                 "-f", str(tmp_path / "parameters.json"), "--no-progress-bar", "--cwd", str(ROOT)]
    result = subprocess.run(papermill, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in (tmp_path / "results" / "table1").rglob("*-seed0.json")]
    assert records and {r["config"]["model"] for r in records} == {"densenet_bc"}  # the paper's Fashion-MNIST network
    assert all(r["config"]["profile"] == "paper" and r["config"]["epochs"] == 1 and r["status"] == "ok" for r in records)
    assert all("paper-custom-" in str(p) for p in (tmp_path / "results").rglob("*.json"))  # never mixed with the profile's runs
    executed = json.loads(out.read_text())
    assert not [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
