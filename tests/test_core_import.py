"""The core needs torch only: importing it loads none of the experiments' dependencies."""

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("pandas", "scipy", "matplotlib", "tqdm", "seaborn", "torchvision")

CODE = """
import json, sys
import torch
before = set(sys.modules)
import localmixup
print(json.dumps({"new": sorted(set(sys.modules) - before), "all": sorted(sys.modules)}))
"""


def test_import_localmixup_loads_no_heavy_dependency():
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True, cwd=root,
                         env={"PYTHONPATH": str(root), "PATH": ""})
    modules = json.loads(out.stdout)
    new_tops = {m.split(".")[0] for m in modules["new"]}
    assert not new_tops & set(HEAVY), sorted(new_tops & set(HEAVY))
    assert not [m for m in modules["all"] if m.startswith("localmixup.") and m.split(".")[1] in ("paper", "theory", "baselines")]
