"""The book compiles from the executed chapters in book/, warnings as errors, with no CDN asset."""

import re
import subprocess
import sys
from pathlib import Path

import localmixup as lm
import localmixup.paper as lp


def test_book_builds_with_warnings_as_errors_and_serves_assets_locally(tmp_path):
    root = lp.project_root()
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jupyter_book), "build", str(root), "--path-output", str(tmp_path), "-W", "-n", "--keep-going"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = tmp_path / "_build" / "html"
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
