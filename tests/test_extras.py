"""`pip install localmixup` gives the method; a part whose extra is missing says in one line what to install."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from localmixup.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT)})


def test_extras_and_the_command_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for extra, modules in EXTRAS.items():
        names = {r.split(">")[0].split("<")[0].split("=")[0].strip() for r in project["optional-dependencies"][extra]}
        assert names == set(modules), extra
    assert project["scripts"]["localmixup"] == "localmixup.paper.cli:main"


@pytest.mark.parametrize("missing", ["tqdm", "pandas"])
def test_the_command_without_the_paper_extra_says_which_extra_in_one_line(missing):
    out = run(f"import sys; sys.modules[{missing!r}] = None; sys.argv = ['localmixup', 'sweep', '--help']\n"
              "from localmixup.paper.cli import main; sys.exit(main())")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.splitlines() == [f"localmixup: localmixup.paper needs the 'paper' extra (missing: {missing}): "
                                       "pip install 'localmixup[paper]'"]


def test_the_parts_refuse_in_one_line_and_the_core_still_mixes():
    out = run("import sys\n"
              "for name in ('scipy', 'torchvision', 'pandas', 'matplotlib', 'seaborn', 'tqdm'): sys.modules[name] = None\n"
              "import torch, localmixup as lm\n"
              "batch = lm.LocalMixup('exp', decay=0.5, seed=0)(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]))\n"
              "print(round(lm.mixup_loss(torch.zeros(4, 2), batch).item(), 6))\n"
              "for part in ('localmixup.theory', 'localmixup.paper'):\n"
              "    try:\n"
              "        __import__(part)\n"
              "    except ModuleNotFoundError as error:\n"
              "        print(error)\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "0.693147",  # ln 2: the cross-entropy of uniform logits over two classes
        "localmixup.theory needs the 'theory' extra (missing: scipy): pip install 'localmixup[theory]'",
        "localmixup.paper needs the 'paper' extra (missing: torchvision, scipy, pandas, matplotlib, seaborn, tqdm): "
        "pip install 'localmixup[paper]'",
    ]
