"""Every page of the built book, opened from disk (file://) in headless Chromium with the network
blocked, loads without a failed request, a console error or an uncaught exception, shows every
image, and has every formula typeset by the MathJax served from _vendor (no raw TeX left).
A full-page screenshot of each page is saved to _build/screenshots/<page>.png.

The pages are also checked as a reader sees them, at a 1280-pixel-wide window:

* every image of a page is a numbered figure with a caption (``Figure 3.2 ...``: the chapters give each
  figure cell ``mystnb.figure`` metadata, name and caption, and the text cites it with ``{numref}``);
* no figure is shrunk below ``LEGIBLE_SCALE`` of the size it was drawn at (its fonts would fall below
  about 9 px): a figure wider than the column is split or drawn narrower;
* no table or figure is wider than its column (it would be cut or scroll sideways);
* no "nan"/"NaN" in a table or an output of a cell (a missing value is shown as "—");
* every code block of a Markdown page is one that a test executes: the blocks of
  tests/test_markdown_pages.py (which fails on a block it cannot check) and README's recipes that
  book/api.md includes (tests/test_recipes.py).

Needs Debian's `chromium` and the `playwright` package (`make setup` installs both; nothing here
downloads a browser). Without them the test is skipped, except in CI, where it fails.
"""

import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

CHROMIUM = os.environ.get("LOCALMIXUP_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-domain-reliability",
                 # no name resolves: a request that escaped the route below still cannot leave the machine
                 "--host-resolver-rules=MAP * ~NOTFOUND"]
MATHJAX_TIMEOUT_MS = 60_000
# A figure shown at less than this fraction of its drawn width has illegible fonts: matplotlib draws at
# 100 dpi, so an 8-point label is 11 px drawn and under 9 px below this scale.
LEGIBLE_SCALE = 0.8
MISSING = re.compile(r"\b(?:nan|NaN|NAN|NaT|<NA>)\b")
PAGE_TIMEOUT_MS = 90_000

# Raw TeX in the visible text (code blocks, MathJax output and scripts excluded): formulas between
# the delimiters MathJax should have consumed (or a lone delimiter), environments, and $...$ spans
# holding a TeX command, ^{ or _{.
RAW_TEX = re.compile(r"\\\(.{0,300}?\\\)|\\\[.{0,300}?\\\]|\$\$.{0,300}?\$\$|\\[()[\]]|\$\$|\\begin\{[a-z*]+\}"
                     r"|\$[^$\n]{0,200}?(?:\\[A-Za-z]+|[\^_]\{)[^$\n]{0,200}?\$", re.S)

# Runs in the page once it has loaded: waits for MathJax's first typesetting, the fonts and every image,
# then reports what the test checks.
INSPECT_JS = r"""async (timeoutMs) => {
  const report = {mathjax: null, math: 0, untypeset: [], texErrors: [], images: [], text: ""};
  const mathNodes = Array.from(document.querySelectorAll(".math"));
  report.math = mathNodes.length;
  const MJ = window.MathJax;
  if (MJ && MJ.startup && MJ.startup.promise) {
    const timeout = new Promise(resolve => setTimeout(() => resolve("timeout"), timeoutMs));
    try {
      const outcome = await Promise.race([MJ.startup.promise.then(() => "done"), timeout]);
      report.mathjax = outcome === "done" ? "MathJax " + MJ.version : "timeout";
    } catch (e) {
      report.mathjax = "error: " + e;
    }
  }
  await document.fonts.ready;
  for (const img of Array.from(document.images)) {
    img.loading = "eager";  // a lazy image below the fold would otherwise never load
    try { await img.decode(); } catch (e) { /* reported through naturalWidth below */ }
    if (img.naturalWidth === 0) report.images.push(img.getAttribute("src"));
  }
  for (const node of mathNodes) {
    if (!node.querySelector("mjx-container")) report.untypeset.push(node.textContent.trim().slice(0, 80));
  }
  for (const err of Array.from(document.querySelectorAll("mjx-merror"))) {
    report.texErrors.push((err.getAttribute("data-mjx-error") || err.textContent).slice(0, 120));
  }
  // an undefined macro is no error for MathJax (its noundefined package shows the name in red):
  // find it in the internal MathML of each typeset formula
  const mathItems = (MJ && MJ.startup && MJ.startup.document && MJ.startup.document.math) || [];
  for (const item of mathItems) {
    if (!item.root || !item.root.walkTree) continue;
    item.root.walkTree(node => {
      const text = node.isKind && node.isKind("mtext") && node.getText ? node.getText() : "";
      if (/^\\[A-Za-z]+$/.test(text)) report.texErrors.push(`undefined macro ${text} in ${String(item.math).slice(0, 80)}`);
    });
  }
  // what a reader sees: figures numbered and captioned, legible, within their column; no NaN in tables or outputs
  report.figures = [];
  report.wide = [];
  report.missing = [];
  const contentWidth = el => {
    const box = el.parentElement.closest("div.cell_output, div.output, figure, .bd-article, article") || document.body;
    const style = getComputedStyle(box);
    return box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  };
  const article = document.querySelector("article.bd-article") || document.body;
  for (const img of Array.from(article.querySelectorAll("img"))) {
    const figure = img.closest("figure");
    const caption = figure && figure.querySelector("figcaption");
    const number = caption && caption.querySelector(".caption-number");
    const text = caption ? caption.textContent.replace(/\s+/g, " ").trim() : "";
    const shown = img.getBoundingClientRect().width;
    report.figures.push({src: img.getAttribute("src"), number: number ? number.textContent.trim() : "",
                         caption: text.slice(0, 100), captionLength: text.length, natural: img.naturalWidth,
                         shown: shown, column: contentWidth(figure || img)});
  }
  for (const table of Array.from(article.querySelectorAll("table"))) {
    const width = Math.max(table.scrollWidth, table.getBoundingClientRect().width);
    const column = contentWidth(table);
    if (width > column + 1) {
      report.wide.push(`table ${Math.round(width)} px wide in a ${Math.round(column)} px column: ` +
                       table.textContent.replace(/\s+/g, " ").trim().slice(0, 80));
    }
    for (const cell of Array.from(table.querySelectorAll("td, th"))) {
      if (/^(nan|NaN|NAN|NaT|<NA>|None)$/.test(cell.textContent.trim())) {
        report.missing.push(`table cell "${cell.textContent.trim()}" in: ${table.textContent.replace(/\s+/g, " ").trim().slice(0, 60)}`);
      }
    }
  }
  // printed values (text outputs and streams); a Markdown output is prose, where "NaN" may be a word
  report.outputs = Array.from(article.querySelectorAll("div.cell_output pre")).map(pre => pre.textContent);
  report.codeBlocks = Array.from(article.querySelectorAll("div[class*='highlight-'] pre, div.highlight pre"))
      .filter(pre => !pre.closest("div.cell")).map(pre => pre.textContent);
  const body = document.body.cloneNode(true);
  body.querySelectorAll("pre, code, kbd, samp, script, style, textarea, noscript, template, mjx-container, .highlight")
      .forEach(el => el.remove());
  report.text = body.textContent;
  return report;
}"""


def _in_ci():
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _playwright_api():
    """playwright.sync_api, with Chromium there, or a skip (a failure in CI) naming what is missing."""
    missing = []
    try:
        import playwright.sync_api as api
    except ImportError:
        api = None
        missing.append("the `playwright` Python package (pip install -e '.[test]')")
    if not Path(CHROMIUM).is_file():
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    if missing:
        message = "browser test needs " + " and ".join(missing) + "; `make setup` installs them"
        if _in_ci():
            pytest.fail(message + " (CI is set: the setup command must have installed them)")
        pytest.skip(message)
    return api


def normalise(code: str) -> str:
    """A code block's text with its whitespace collapsed (the HTML and the Markdown source differ there)."""
    return " ".join(code.split())


def toc_pages(root):
    """The documents of _toc.yml (root first), as paths relative to the project without suffix."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = []

    def visit(entry):
        if isinstance(entry, dict):
            for key in ("root", "file"):
                if key in entry:
                    pages.append(re.sub(r"\.(md|ipynb|rst)$", "", entry[key]))
            for key in ("glob",):
                assert key not in entry, "_toc.yml: `glob` entries are not handled by this test"
            for value in entry.values():
                if isinstance(value, (list, dict)):
                    visit(value)
        elif isinstance(entry, list):
            for item in entry:
                visit(item)

    visit(toc)
    return pages


def test_toc_pages_are_every_chapter():
    import localmixup.paper as lp

    pages = toc_pages(lp.project_root())
    assert pages[0] == "book/intro"
    assert set(pages) >= {"book/intro", "book/method", "book/theory_1d", "book/spirals", "book/table1",
                          "book/adamixup", "book/cluster", "book/api"}
    assert len(pages) == len(set(pages)) == len({Path(p).name for p in pages})  # screenshot names are unique


def test_every_page_loads_offline_in_chromium_with_images_and_typeset_math(request):
    import localmixup.paper as lp

    api = _playwright_api()  # before the build: a skip costs nothing
    book_build = request.getfixturevalue("book_build")  # tests/conftest.py: one execution and build per session
    assert book_build.returncode == 0, book_build.log
    html = book_build.html
    pages = toc_pages(book_build.root)
    files = {page: html / f"{page}.html" for page in pages}
    absent = [str(f) for f in files.values() if not f.is_file()]
    assert not absent, f"pages of _toc.yml missing from the build: {absent}"
    screenshots = lp.project_root() / "_build" / "screenshots"  # the build's clone is temporary
    shutil.rmtree(screenshots, ignore_errors=True)
    screenshots.mkdir(parents=True)

    # the code blocks of the Markdown pages that tests execute (every block of those pages must be one)
    from test_markdown_pages import page_blocks
    from test_recipes import recipe_blocks

    markdown_pages = {f"{page}.md" for page in pages if (book_build.root / f"{page}.md").is_file()}
    executed_blocks = {normalise(code) for _, _, _, code in page_blocks()} | {normalise(code) for code in recipe_blocks()}

    problems = {page: [] for page in pages}
    current = [pages[0]]  # the page being loaded, for the event handlers

    def note(problem):
        problems[current[0]].append(problem)

    def route(route):
        url = route.request.url
        if url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            note(f"request to the network (blocked): {url}")
            route.abort("blockedbyclient")

    def request_failed(request):
        if request.url.startswith(("file:", "data:", "blob:")):  # the others are noted by route()
            note(f"failed request: {request.url} ({request.failure})")

    def console(message):
        if message.type == "error":
            note(f"console error: {message.text} ({message.location.get('url', '')})")

    def inspect(page, path, screenshot):
        """Load one page, note what fails in it and save its screenshot."""
        page.goto(path.as_uri(), wait_until="load")
        report = page.evaluate(INSPECT_JS, MATHJAX_TIMEOUT_MS)
        if report["math"]:
            if report["mathjax"] is None:
                note(f"{report['math']} formulas but MathJax did not load")
            elif not report["mathjax"].startswith("MathJax"):
                note(f"MathJax did not finish typesetting: {report['mathjax']}")
            if report["untypeset"]:
                note(f"{len(report['untypeset'])} of {report['math']} formulas not typeset, e.g. {report['untypeset'][:3]}")
        for error in report["texErrors"]:
            note(f"TeX error in a formula: {error}")
        for src in report["images"]:
            note(f"image does not decode (naturalWidth == 0): {src}")
        for figure in report["figures"]:
            where = f"figure {figure['number'] or figure['src']}"
            if not figure["number"] or figure["captionLength"] < len(figure["number"]) + 20:
                note(f"figure without a numbered caption: {figure['src']} ({figure['caption']!r})")
            if figure["natural"] and figure["shown"] < LEGIBLE_SCALE * figure["natural"]:
                note(f"{where} shown at {figure['shown'] / figure['natural']:.0%} of its drawn width "
                     f"({figure['natural']} px in a {figure['shown']:.0f} px column): its fonts are illegible; "
                     "draw it narrower or split it")
            if figure["shown"] > figure["column"] + 1:
                note(f"{where} is {figure['shown']:.0f} px wide in a {figure['column']:.0f} px column")
        for problem in report["wide"] + report["missing"]:
            note(problem)
        for output in report["outputs"]:
            for match in MISSING.finditer(output):
                note(f"{match.group()!r} in an output: {' '.join(output[max(0, match.start() - 60):match.end() + 20].split())}")
        if Path(path.with_suffix("").relative_to(html)).with_suffix(".md").as_posix() in markdown_pages:
            for block in report["codeBlocks"]:
                if normalise(block) not in executed_blocks:
                    note(f"a code block that no test executes: {' '.join(block.split())[:100]!r}")
        raw = [" ".join(m.group().split())[:100] for m in RAW_TEX.finditer(report["text"])]
        if raw:
            note(f"raw TeX in the text ({len(raw)}), e.g. {raw[:3]}")
        page.screenshot(path=str(screenshot), full_page=True)

    with api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for name, path in files.items():
                current[0] = name
                # a fresh context for each page (empty localStorage and cache), as on a first visit
                context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
                context.route("**/*", route)
                page = context.new_page()
                page.set_default_timeout(PAGE_TIMEOUT_MS)
                page.on("console", console)
                page.on("pageerror", lambda error: note(f"uncaught exception: {error}"))
                page.on("requestfailed", request_failed)
                try:
                    inspect(page, path, screenshots / f"{Path(name).name}.png")
                except api.Error as error:  # a page that does not load or hangs: go on with the others
                    note(f"page did not load: {str(error).splitlines()[0]}")
                context.close()
        finally:
            browser.close()

    failed = {page: list(dict.fromkeys(found)) for page, found in problems.items() if found}
    assert not failed, "pages of the book that fail in Chromium (offline, from file://):\n" + "\n".join(
        f"  {page}.html: {problem}" for page, found in failed.items() for problem in found)
    assert sorted(p.stem for p in screenshots.glob("*.png")) == sorted(Path(p).name for p in pages)
