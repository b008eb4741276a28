"""The notebook -> book pipeline: execute chapters with papermill, build with Jupyter Book 1."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from localmixup.paper.chapters import CHAPTERS, choose_profile
from localmixup.paper.record_files import atomic_write, project_root

# papermill marks the cell it injects; the book shows the parameters through chapter_header instead.
_INJECTED_TAG = "injected-parameters"


class NotebookFailed(RuntimeError):
    """A chapter failed to execute; the message names the notebook, the cell and the partial output."""


def chapters(root: Path | None = None) -> list[Path]:
    """The chapter sources ``notebooks/*.ipynb``, sorted by name."""
    return sorted(((root or project_root()) / "notebooks").glob("*.ipynb"))


def execute_chapter(source: Path, root: Path, profile: str, parameters: dict[str, object] | None = None) -> Path:
    """Execute one chapter into ``book/<name>.ipynb``.

    The executed copy is written to ``_build/executed/`` first and moved into
    ``book/`` only when every cell succeeded, so a failure never replaces a good
    chapter; the partial notebook is kept in ``_build/failed/`` and named in the error.
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    work = root / "_build" / "executed" / source.name
    failed = root / "_build" / "failed" / source.name
    work.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(source), str(work), parameters={"profile": profile, **(parameters or {})},
            kernel_name="python3", cwd=str(source.parent), progress_bar=False,
        )
    except PapermillExecutionError as error:
        failed.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(work, failed)
        raise NotebookFailed(
            f"{source.name}: cell {error.cell_index} (execution count {error.exec_count}) raised "
            f"{error.ename}: {error.evalue}\n  partial output: {failed}"
        ) from None
    notebook = nbformat.read(work, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        if _INJECTED_TAG in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    target = root / "book" / source.name
    nbformat.write(notebook, work)
    shutil.move(work, target)
    return target


#: The findings box of the landing page (book/intro.md includes it): a build output, ignored by git.
FINDINGS_PAGE = Path("book") / "_findings.md"


def executed_profile(notebook: Path) -> str | None:
    """The profile an executed chapter ran with (papermill's injected ``profile = "..."``), or None."""
    import re

    import nbformat

    try:
        cells = nbformat.read(notebook, as_version=4).cells
    except (OSError, ValueError, AttributeError, KeyError):  # absent, or no notebook: the profile is unknown
        return None
    for cell in cells:
        if _INJECTED_TAG in cell.metadata.get("tags", []):
            found = re.search(r"^profile = ['\"](\w+)['\"]", cell.source, flags=re.M)
            return found[1] if found else None
    return None


def write_findings(root: Path) -> Path:
    """Write the landing page's findings box (:mod:`localmixup.paper.findings`) from the records of
    the profile each chapter of ``book/`` was executed with."""
    from localmixup.paper.findings import CHAPTERS as READ, findings, to_markdown

    profiles = {name: executed_profile(root / "book" / f"{name}.ipynb") for name in READ}
    text = to_markdown(findings({k: v for k, v in profiles.items() if v}))
    return atomic_write(root / FINDINGS_PAGE, lambda f: f.write(text.encode("utf-8")), binary=True)  # never half a box


def build_html(root: Path) -> Path:
    """Build the Jupyter Book (warnings are errors) and return the path of its index page."""
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "--builder", "html",
               "--warningiserror", "--nitpick", "--keep-going"]
    if subprocess.run(command, cwd=root).returncode != 0:
        raise NotebookFailed("jupyter-book build failed: see the warnings above")
    return root / "_build" / "html" / "index.html"


def build_book(profile: str = "auto", only: list[str] | None = None, parameters: dict[str, object] | None = None) -> Path:
    """Execute the chapters (all, or those named in ``only`` and those with no executed copy in
    ``book/`` yet) and build the book; return the index page.

    ``profile="auto"`` executes each chapter with the most faithful profile whose runs are all
    recorded (so nothing trains), else ``paper`` on a GPU and ``quick`` on a CPU; a named profile
    is forced on every chapter that defines it (see :func:`~localmixup.paper.chapters.choose_profile`).
    """
    from tqdm.auto import tqdm

    root = project_root()
    sources = chapters(root)
    known = {s.stem: s for s in sources}
    if only is not None:
        unknown = sorted(set(only) - set(known))
        if unknown or not only:
            what = f"names unknown chapters {unknown}" if unknown else "names no chapter"
            raise ValueError(f"--only {what}; chapters are {sorted(known)}")
        sources = [known[name] for name in only]
    unplanned = sorted(set(known) - set(CHAPTERS))
    if unplanned:
        raise ValueError(f"chapters {unplanned} are missing from localmixup.paper.chapters.CHAPTERS")
    # executed chapters are build outputs (git ignores book/*.ipynb): in a fresh clone, --only still
    # executes the chapters that have no executed copy yet, without the parameters, or the book cannot build
    missing = [s for s in known.values() if s not in sources and not (root / "book" / s.name).is_file()]
    if missing:
        print(f"book/ has no executed copy of {', '.join(s.stem for s in missing)}: executing them too "
              f"(the book needs every chapter)", flush=True)
    with tqdm([*sources, *missing], desc="chapters", unit="notebook") as bar:
        for source in bar:
            chosen, allow_cpu = choose_profile(source.stem, profile)
            bar.set_postfix_str(f"{source.stem} ({chosen})")
            start = time.perf_counter()
            execute_chapter(source, root, chosen, {"allow_cpu": allow_cpu, **((parameters or {}) if source in sources else {})})
            bar.write(f"  {source.stem}: profile {chosen}{' (recorded runs)' if allow_cpu else ''}, "
                      f"{time.perf_counter() - start:.0f} s")
    write_findings(root)  # the landing page's box, from the records of the chapters just executed
    return build_html(root)
