"""Every figure a chapter draws is in its executed copy, however the execution was started.

The executed copies are those of ``book_build`` (tests/conftest.py): every chapter executed once
per session, quick profile, in a fresh clone."""

import json
import re

import pytest

import localmixup.paper as lp
from localmixup.paper.book import execute_chapter

from helpers import write_chapter

ROOT = lp.project_root()
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
IMAGE_TYPES = {"image/png", "image/svg+xml"}


def figures_drawn(source: dict) -> int:
    """``plt.show()`` calls in the code cells: each chapter draws one figure per call."""
    return sum(len(re.findall(r"\bplt\.show\(\)", "".join(c["source"]))) for c in source["cells"] if c["cell_type"] == "code")


def image_outputs(notebook: dict) -> int:
    return sum(1 for c in notebook["cells"] for o in c.get("outputs", []) if IMAGE_TYPES & set(o.get("data", {})))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_executed_chapter_holds_every_figure(book_build, chapter):
    source = json.loads((ROOT / "notebooks" / f"{chapter}.ipynb").read_text())
    executed = book_build.chapter(chapter)
    drawn = figures_drawn(source)
    assert drawn > 0, f"{chapter} draws no figure"
    assert image_outputs(executed) == drawn, f"book/{chapter}.ipynb holds {image_outputs(executed)} figures, its notebook draws {drawn}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_executed_chapter_prints_no_warning(book_build, chapter):
    # a warning printed by a kernel (e.g. tqdm's "IProgress not found") lands in the reader's page
    executed = book_build.chapter(chapter)
    printed = ["".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []) if o.get("name") == "stderr"]
    warnings = [line for text in printed for line in text.splitlines() if re.search(r"\w+Warning\b", line)]
    assert not warnings, f"book/{chapter}.ipynb prints: {warnings[:3]}"


def test_figures_render_even_when_the_caller_exports_a_non_inline_backend(tmp_path, monkeypatch):
    # make, CI or a user's shell may export MPLBACKEND=Agg; the kernel inherits it
    monkeypatch.setenv("MPLBACKEND", "Agg")
    source = write_chapter(tmp_path, "figure", 'profile = "quick"\nallow_cpu = False',
                           "import matplotlib.pyplot as plt\nimport localmixup.paper as lp\n"
                           "lp.start_chapter(profile, allow_cpu=allow_cpu)\nplt.plot([0, 1], [1, 0])\nplt.show()")
    executed = execute_chapter(source, tmp_path, "quick")
    assert image_outputs(json.loads(executed.read_text())) == 1


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_built_page_shows_every_figure_decodable(book_build, chapter):
    from PIL import Image

    assert book_build.returncode == 0, book_build.log
    page = book_build.html / "book" / f"{chapter}.html"
    sources = re.findall(r'<img[^>]+src="([^"]+)"', page.read_text())
    executed = book_build.chapter(chapter)
    assert len(sources) == image_outputs(executed), f"{page.name}: {len(sources)} <img>, the chapter has {image_outputs(executed)} figures"
    for src in sources:
        with Image.open(page.parent / src) as image:
            image.load()  # decodes the whole file
            assert min(image.size) > 50, f"{page.name}: {src} is {image.size}"
