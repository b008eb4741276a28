"""The book compiles from the executed chapters in book/, warnings as errors, with no CDN asset,
and building it leaves a checkout as it was (executed chapters are build outputs git ignores)."""

import re
import subprocess


def test_book_builds_with_warnings_as_errors_and_serves_assets_locally(book_build):
    # book_build (tests/conftest.py): every chapter executed, then `jupyter-book build -W -n`, once per session
    assert book_build.returncode == 0, book_build.log
    html = book_build.html
    pages = sorted((html / "book").glob("*.html"))
    assert {p.stem for p in pages} >= {"intro", "method", "theory_1d", "spirals", "table1", "adamixup", "cluster"}
    for page in pages:
        text = page.read_text()
        assets = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="([^"]+)"', text)
        remote = [a for a in assets if re.match(r"(https?:)?//", a)]
        assert not remote, f"{page.name} loads {remote}"
        if 'class="math' in text:  # Sphinx loads MathJax only on pages with equations
            assert '_static/mathjax/tex-chtml.js' in text, page.name
    assert '_static/mathjax/tex-chtml.js' in (html / "book" / "intro.html").read_text()
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()


def test_building_the_book_in_a_fresh_clone_leaves_it_clean(book_build):
    """`localmixup book --profile quick` (every chapter executed, then the HTML) in a fresh clone of
    the checkout modifies no tracked file and leaves no file git does not ignore. It covers what
    `make book` writes except the runs a chapter trains where its records are missing (quick's
    are committed): new records belong in results/, to be committed."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=book_build.root,
                            capture_output=True, text=True, check=True).stdout
    assert status == "", f"building the book changed the checkout:\n{status}"
    # and the build went through: a build stopped early would prove less
    assert book_build.returncode == 0, book_build.log
    assert (book_build.root / "book" / "method.ipynb").is_file() and (book_build.html / "index.html").is_file()


def test_only_also_executes_the_chapters_not_executed_yet(tmp_path, monkeypatch):
    # executed chapters are not committed: in a fresh clone, `--only NAME` must still give the
    # book every chapter; the parameters given for NAME go to NAME alone
    import localmixup.paper.book as book

    from helpers import write_chapter

    for name in ("method", "theory_1d", "spirals"):
        write_chapter(tmp_path, name, 'profile = "quick"\nallow_cpu = False\nseed = 0')
    (tmp_path / "book" / "spirals.ipynb").write_text("{}")  # executed earlier
    monkeypatch.setenv("LOCALMIXUP_ROOT", str(tmp_path))
    monkeypatch.setattr(book, "CHAPTERS", {"method": None, "theory_1d": None, "spirals": None})
    monkeypatch.setattr(book, "choose_profile", lambda name, profile: ("quick", False))
    executed = []
    monkeypatch.setattr(book, "execute_chapter", lambda source, root, profile, parameters: executed.append((source.stem, parameters)))
    monkeypatch.setattr(book, "build_html", lambda root: root / "_build" / "html" / "index.html")
    monkeypatch.setattr(book, "write_findings", lambda root: None)  # tests/test_findings.py checks the box
    book.build_book("quick", ["theory_1d"], {"seed": 3})
    assert executed == [("theory_1d", {"allow_cpu": False, "seed": 3}), ("method", {"allow_cpu": False})]
    executed.clear()
    (tmp_path / "book" / "method.ipynb").write_text("{}")
    book.build_book("quick", ["theory_1d"])
    assert executed == [("theory_1d", {"allow_cpu": False})]
