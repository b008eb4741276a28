"""Every fenced code block of the Markdown pages (the landing page and the cluster page) is executed
or checked against the code, so that a page cannot show a call, an option or a message the library
does not have.

* ```python blocks run, with a preamble of tiny synthetic tensors (``x``, ``y``, ``model``,
  ``optimiser``, ``loader``); a block that sends runs to a Ray cluster runs up to the connection,
  which is replaced by a stand-in that records the address (no cluster here).
* ```bash blocks are split into commands, each checked by the program's own parser: ``localmixup``
  by :func:`localmixup.paper.cli.parser` and its sub-command with the training and the book build
  replaced by stand-ins (so a wrong dataset or a bad option combination fails too), ``papermill``
  by its click command and the notebook's ``parameters`` cell, ``ray`` by Ray's click commands,
  ``pip install`` against ``pyproject.toml``'s extras, ``python -c`` by running it (no download).
* ```text blocks must be a message the library prints, reproduced here.
* the ```{include} of the landing page is the findings box that ``localmixup book`` generates from
  the records (:mod:`localmixup.paper.findings`), which holds no code.

A block in a language, or a command in a program, that this file does not handle fails the test;
so does a fence the extractor did not pair. Every Markdown page of the book (``_toc.yml``) is either
one of ``PAGES`` or holds only the MyST directives of ``DIRECTIVE_PAGES``, which run no code of the
page (autodoc, and the include of README's recipes that tests/test_recipes.py executes): a page
that gains a code block no test executes fails ``test_every_markdown_page_of_the_book_is_executed``
(and the browser test, which compares the code blocks of each built Markdown page with these).
"""

from __future__ import annotations

import errno
import re
import shlex
import tomllib
import warnings
from pathlib import Path

import pytest
import torch

import localmixup as lm

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("book/intro.md", "book/cluster.md")
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
# Commands of the pages that are plain system administration, not the project's: not checked.
SYSTEM = {"chmod", "scp", "sudo", "export", "tmux", "nohup"}


# Markdown pages of the book whose fenced blocks are all MyST directives that show no code of the page:
# ``{eval-rst}`` (autodoc of the library's docstrings) and ``{include}`` of README's recipes section,
# every block of which tests/test_recipes.py runs.
DIRECTIVE_PAGES = {"book/api.md": ("{eval-rst}", "{include}")}


def fenced_blocks(text: str) -> list[tuple[int, str, str]]:
    """``(line number, language, code)`` of every fenced block, dedented by its fence's indentation."""
    lines, blocks, i = text.splitlines(), [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        closing = next((j for j in range(i + 1, len(lines))
                        if lines[j].strip().startswith(fence) and set(lines[j].strip()) == {fence[0]}), None)
        if closing is None:
            raise ValueError(f"line {i + 1}: fence {fence} is never closed")
        code = "\n".join(line[indent:] if line[:indent].strip() == "" else line for line in lines[i + 1:closing])
        blocks.append((i + 1, opening["info"].strip().split(" ")[0], code + "\n"))
        i = closing + 1
    return blocks


def page_blocks() -> list[tuple[str, int, str, str]]:
    return [(page, line, lang, code) for page in PAGES
            for line, lang, code in fenced_blocks((ROOT / page).read_text(encoding="utf-8"))]


@pytest.mark.parametrize("page", PAGES)
def test_every_fence_belongs_to_a_block(page):
    """Each line that looks like a fence opens or closes one extracted block: none is skipped."""
    text = (ROOT / page).read_text(encoding="utf-8")
    fences = sum(1 for line in text.splitlines() if re.match(r"^\s*(```|~~~)", line))
    blocks = fenced_blocks(text)
    assert blocks, f"{page} has no code block: the extractor or the page changed"
    assert fences == 2 * len(blocks), f"{page}: {fences} fence lines but {len(blocks)} blocks extracted"


# ---------------------------------------------------------------------------------------------
# python


class ClusterReached(Exception):
    """Raised by the stand-in of the Ray connection: the block got as far as the cluster."""


def preamble() -> dict:
    torch.manual_seed(0)
    x_train, y_train = torch.randn(64, 1, 28, 28), torch.randint(0, 10, (64,))
    x, y = x_train[:8], y_train[:8]
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    return {"x": x, "y": y, "x_train": x_train, "y_train": y_train, "model": model, "optimiser": optimiser,
            "loader": [(x, y), (x, y)]}


def run_python(where: str, code: str, monkeypatch) -> None:
    import localmixup.paper.sweep.ray_backend as ray_backend

    reached = []

    def connect(address):
        reached.append(address)
        raise ClusterReached(address)

    monkeypatch.setattr(ray_backend, "connect", connect)
    namespace = preamble()
    before = [p.detach().clone() for p in namespace["model"].parameters()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", lm.LocalityScaleWarning)  # a page's example must not be Mixup or no mixing in disguise
            exec(compile(code, where, "exec"), namespace)  # noqa: S102 - the page's own code
    except ClusterReached:
        assert "backend=\"ray\"" in code and reached == ["HEAD_IP:6379"], reached
        return
    if "loss" in namespace:  # a training loop: it trained the preamble's model with a finite loss
        assert torch.isfinite(namespace["loss"]).all()
        assert any(not torch.equal(a, b) for a, b in zip(before, namespace["model"].parameters()))


# ---------------------------------------------------------------------------------------------
# bash


def commands(code: str) -> list[list[str]]:
    """The commands of a bash block: continuation lines joined, comments and ``NAME=value``
    prefixes dropped."""
    found = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):
            words.pop(0)
        if words:
            found.append(words)
    return found


def check_localmixup(args: list[str], monkeypatch, swept: list | None = None) -> None:
    """Parsed by the real parser, then run with the training and the book build replaced; the
    configurations a sweep would train are appended to ``swept``."""
    import localmixup.paper.book as book
    import localmixup.paper.sweep.images as images
    from localmixup.paper.chapters import FAITHFUL_FIRST
    from localmixup.paper.cli import parser

    def build_book(profile, only, parameters):
        assert profile in ("auto", *FAITHFUL_FIRST)
        known = {s.stem for s in book.chapters()}
        assert only is None or set(only) <= known, f"--only names unknown chapters: {set(only) - known}"
        return ROOT / "_build" / "html" / "index.html"

    def run_sweep(configs, **options):
        assert configs, "the sweep has no run"
        if swept is not None:
            swept.extend(configs)
        return images.SweepSummary(paths=[], trained=0, failed=[])

    monkeypatch.setattr(book, "build_book", build_book)
    monkeypatch.setattr(images, "run_sweep", run_sweep)
    try:
        namespace = parser().parse_args(args)
    except SystemExit as exit_:
        pytest.fail(f"localmixup {' '.join(args)}: rejected by the parser (exit status {exit_.code})")
    assert namespace.run(namespace) == 0


def check_papermill(args: list[str]) -> None:
    """Parsed by papermill's click command; the notebook exists and has each ``-p`` parameter."""
    from papermill.cli import papermill

    from localmixup.paper.chapters import CHAPTERS
    from localmixup.paper.cli import notebook_parameters

    options = papermill.make_context("papermill", list(args)).params
    notebook = ROOT / options["notebook_path"]
    assert notebook.is_file(), f"no notebook {options['notebook_path']}"
    names = notebook_parameters(notebook)
    for name, value in options["parameters"]:
        assert name in names, f"-p {name}: not a parameter of {notebook.name} ({', '.join(names)})"
        if name == "profile":
            assert value in CHAPTERS[notebook.stem].profiles, f"{notebook.stem} has no profile {value!r}"


def check_ray(args: list[str]) -> None:
    """Parsed by Ray's own click command (nothing is started)."""
    pytest.importorskip("ray")
    from ray.scripts.scripts import cli

    assert args and args[0] in cli.commands, f"ray has no command {args[:1]}"
    cli.commands[args[0]].make_context(f"ray {args[0]}", list(args[1:]))


def check_pip(args: list[str]) -> None:
    """``pip install`` of this project names extras that pyproject.toml defines."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    assert args[0] == "install"
    targets = [a for a in args[1:] if not a.startswith("-")]
    assert targets
    for target in targets:
        match = re.fullmatch(r"(?:localmixup|\.)\[([\w,-]+)\]", target)
        assert match, f"pip install {target}: not this project with extras"
        unknown = set(match[1].split(",")) - set(extras)
        assert not unknown, f"pip install {target}: no extra {sorted(unknown)} in pyproject.toml ({sorted(extras)})"


def check_python(args: list[str], tmp_path, monkeypatch) -> None:
    """``python -c CODE`` runs here, with an empty data folder and downloads off: it either works
    or stops with the library's message for a missing dataset."""
    from localmixup.paper.data import DatasetUnavailable

    assert args[0] == "-c" and len(args) == 2, f"python {' '.join(args)}: only python -c CODE is handled"
    monkeypatch.setenv("LOCALMIXUP_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("LOCALMIXUP_NO_DOWNLOAD", "1")
    try:
        exec(compile(args[1], "python -c", "exec"), {})  # noqa: S102 - the page's own code
    except DatasetUnavailable:
        pass


def run_bash(code: str, tmp_path, monkeypatch, swept: list | None = None) -> None:
    found = commands(code)
    assert found, "a bash block without any command"
    for words in found:
        program = Path(words[0]).name
        if program == "localmixup":
            check_localmixup(words[1:], monkeypatch, swept)
        elif program == "papermill":
            check_papermill(words[1:])
        elif program == "ray":
            check_ray(words[1:])
        elif program == "pip":
            check_pip(words[1:])
        elif program == "python":
            check_python(words[1:], tmp_path, monkeypatch)
        elif program in SYSTEM:
            pass
        else:
            pytest.fail(f"no check for the command {' '.join(words)!r}: add one to this test")


# ---------------------------------------------------------------------------------------------
# text


def check_text(code: str, monkeypatch) -> None:
    """A text block is a message of the library, reproduced here."""
    import localmixup.paper.sweep.ray_backend as ray_backend

    message = code.strip()
    match = re.fullmatch(r"localmixup sweep: cannot reach a Ray cluster at (\S+): .*", message)
    if match is None:
        pytest.fail(f"no check for the text block {message[:80]!r}: add one to this test")

    def refused(*args, **kwargs):
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    monkeypatch.setattr(ray_backend.socket, "create_connection", refused)
    with pytest.raises(RuntimeError) as error:
        ray_backend.check_reachable(match[1])
    assert f"localmixup sweep: {error.value}" == message  # the CLI's one-line form (localmixup.paper.cli.main)


# ---------------------------------------------------------------------------------------------
# {include}


def check_findings_include(page: str, line: int) -> None:
    """The only include of these pages is the findings box that ``localmixup book`` generates
    (:func:`localmixup.paper.book.write_findings`): it shows no code, only computed findings."""
    from localmixup.paper.book import FINDINGS_PAGE
    from localmixup.paper.findings import Finding, to_markdown

    opening = (ROOT / page).read_text(encoding="utf-8").splitlines()[line - 1].split()
    assert (Path(page).parent / opening[1]).as_posix() == FINDINGS_PAGE.as_posix(), f"{page}:{line}: includes {opening[1:]}"
    box = to_markdown([Finding("a result", "holds", "+0.00 points", "table1")])
    assert [lang for _, lang, _ in fenced_blocks(box)] == ["{admonition}"], box


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("page", "line", "lang", "code"), page_blocks(),
                         ids=[f"{page}:{line}-{lang}" for page, line, lang, _ in page_blocks()])
def test_code_block(page, line, lang, code, tmp_path, monkeypatch):
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if lang == "python":
        run_python(f"{page}:{line}", code, monkeypatch)
    elif lang == "bash":
        run_bash(code, tmp_path, monkeypatch)
    elif lang == "text":
        check_text(code, monkeypatch)
    elif lang == "{include}":
        check_findings_include(page, line)
    else:
        pytest.fail(f"{page}:{line}: no check for a ```{lang} block: add one to this test")


def test_inline_localmixup_commands(monkeypatch, tmp_path):
    """Complete ``localmixup`` commands quoted inline in the pages are parsed and run as the fenced ones."""
    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "results"))
    for page in PAGES:
        for command in re.findall(r"`((?:\.venv/bin/)?localmixup (?:book|sweep) [^`]*)`",
                                  (ROOT / page).read_text(encoding="utf-8")):
            if "..." not in command:
                check_localmixup(shlex.split(command)[1:], monkeypatch)


def test_cluster_sweeps_cover_the_table1_chapter(monkeypatch, tmp_path):
    """The cluster page says that once its sweeps are done, the Table-1 chapter at the paper profile
    trains nothing: its ``localmixup sweep`` commands must train every run the chapter shows (every
    dataset taken as available, as on a cluster that has them)."""
    import localmixup.paper.data as data
    from localmixup.paper.chapters import table1_plan
    from localmixup.paper.sweep.plan import record_path

    monkeypatch.setenv("LOCALMIXUP_RESULTS", str(tmp_path / "results"))
    swept = []
    for _, lang, code in fenced_blocks((ROOT / "book/cluster.md").read_text(encoding="utf-8")):
        if lang == "bash" and any(Path(w[0]).name == "localmixup" for w in commands(code)):
            run_bash(code, tmp_path, monkeypatch, swept)
    monkeypatch.setattr(data, "dataset_status", lambda name, *args, **kwargs: "")
    plan = table1_plan("paper")
    assert len(plan.trained) == 4
    missing = set(plan.paths) - {record_path(c) for c in swept}
    assert not missing, f"{len(missing)} runs of the chapter are in no sweep of the page, e.g. {sorted(missing)[:3]}"


def test_every_markdown_page_of_the_book_is_executed():
    """Each Markdown page of _toc.yml has its code blocks executed here (``PAGES``), or holds only the
    directives of ``DIRECTIVE_PAGES``: a new page, or a code block added to a directive page, fails."""
    from test_browser import toc_pages
    from test_recipes import MARKERS

    markdown = [f"{page}.md" for page in toc_pages(ROOT) if (ROOT / f"{page}.md").is_file()]
    assert set(PAGES) <= set(markdown), f"PAGES names pages that are not in _toc.yml: {set(PAGES) - set(markdown)}"
    for page in markdown:
        if page in PAGES:
            continue  # test_code_block runs each of its blocks and fails on one it cannot check
        assert page in DIRECTIVE_PAGES, (f"{page} is a Markdown page of the book whose code blocks no test executes: "
                                         "add it to PAGES (and a check for its blocks)")
        text = (ROOT / page).read_text(encoding="utf-8")
        for line, lang, code in fenced_blocks(text):
            assert lang in DIRECTIVE_PAGES[page], f"{page}:{line}: a ```{lang} block that no test executes"
            if lang == "{eval-rst}":  # autodoc only: no literal code of the page's own
                assert not re.search(r"code-block|::\s*$|^\s*>>>", code, flags=re.M), f"{page}:{line}: code in an eval-rst block"
            if lang == "{include}":  # README's recipes, run by tests/test_recipes.py
                opening = text.splitlines()[line - 1].split()
                assert opening[1:] == ["../README.md"] and all(marker in code for marker in MARKERS), f"{page}:{line}: {code!r}"
