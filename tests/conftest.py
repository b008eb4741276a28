import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


@dataclass(frozen=True)
class BookBuild:
    """One `jupyter-book build` of the project: its outcome and where its HTML lies."""

    root: Path        # the project (sources, _toc.yml)
    html: Path        # the built HTML (a fresh folder, never the project's _build/)
    returncode: int
    log: str          # the tail of the build's stdout and stderr, for failure messages


@pytest.fixture(scope="session")
def book_build(tmp_path_factory):
    """The book compiled once per test session from the executed chapters in book/, warnings as
    errors (-W -n), into a fresh folder so that no earlier build (or its cached doctrees, which
    would hide warnings) is reused. Tests assert on ``returncode`` themselves."""
    import localmixup.paper as lp

    root = lp.project_root()
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jupyter_book), "build", str(root), "--path-output", str(out), "-W", "-n", "--keep-going"],
                            capture_output=True, text=True)
    return BookBuild(root, out / "_build" / "html", result.returncode, result.stdout[-3000:] + result.stderr[-3000:])
