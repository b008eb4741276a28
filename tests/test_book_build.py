"""The book compiles from the executed chapters in book/, warnings as errors, with no CDN asset."""

import re


def test_book_builds_with_warnings_as_errors_and_serves_assets_locally(book_build):
    # book_build (tests/conftest.py): one fresh `jupyter-book build -W -n` per session
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
