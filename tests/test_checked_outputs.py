"""nbval's checks (``--nbval-lax``) on the session's one execution of every chapter, instead of a
second execution by nbval itself: every cell ran without an error, and each cell marked
``# NBVAL_CHECK_OUTPUT`` printed the outputs stored in its source notebook (compared by nbval's own
code: text outputs, streams coalesced, images and metadata skipped). ``pytest notebooks/`` still
runs nbval cell by cell."""

import json

import nbformat
import pytest
from nbval.plugin import IPyNbCell, coalesce_streams, find_comment_markers, find_metadata_tags, nocolors

import localmixup.paper as lp

ROOT = lp.project_root()
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
INJECTED = "injected-parameters"  # papermill's cell


class _Comparison:
    """What nbval's comparison reads of its cell item: the keys nbval skips without --nbdime, no
    sanitizing, and nbval's own side-by-side report of a mismatch (no pytest hook to ask)."""

    parent = type("File", (), {"skip_compare": ("metadata", "traceback", "prompt_number", "output_type", "name",
                                                "execution_count", "application/vnd.jupyter.widget-view+json",
                                                "image/png", "image/jpeg")})
    colors = nocolors
    config = None
    ihook = type("Hooks", (), {"pytest_assertrepr_compare": staticmethod(lambda **_: [])})
    compare_outputs = IPyNbCell.compare_outputs
    format_output_compare = IPyNbCell.format_output_compare

    @staticmethod
    def sanitize(text):
        return text


def checked(cell) -> bool:
    """nbval --nbval-lax checks the outputs of a cell marked by a comment or a tag."""
    options = dict(find_comment_markers(cell.source)) | dict(find_metadata_tags(cell.metadata))
    return options.get("check", False) and not options.get("skip", False)


def test_nbval_markers_are_read_as_nbval_reads_them():
    assert checked(nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)"))
    assert not checked(nbformat.v4.new_code_cell("print(1)"))
    assert not checked(nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\nprint(1)"))
    comparison = _Comparison()
    stream = [nbformat.v4.new_output("stream", name="stdout", text="a\n")]
    assert comparison.compare_outputs(stream, stream)
    assert not comparison.compare_outputs([nbformat.v4.new_output("stream", name="stdout", text="b\n")], stream)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_executed_chapter_prints_the_checked_outputs(book_build, chapter):
    executed = nbformat.reads(json.dumps(book_build.chapter(chapter)), as_version=4)  # absent if a cell raised
    ran = [c for c in executed.cells if c.cell_type == "code" and INJECTED not in c.metadata.get("tags", [])]
    source = nbformat.read(ROOT / "notebooks" / f"{chapter}.ipynb", as_version=4)
    code = [c for c in source.cells if c.cell_type == "code"]
    assert len(ran) == len(code), f"book/{chapter}.ipynb has {len(ran)} code cells, its notebook {len(code)}"
    for number, (cell, run) in enumerate(zip(code, ran)):
        assert not [o for o in run.outputs if o.output_type == "error"], f"{chapter}: code cell {number} raised"
        if checked(cell) and cell.execution_count is not None:  # nbval skips a reference cell never run
            comparison = _Comparison()
            assert comparison.compare_outputs(coalesce_streams(run.outputs), coalesce_streams(cell.outputs)), (
                f"notebooks/{chapter}.ipynb, code cell {number} (# NBVAL_CHECK_OUTPUT): outputs differ\n"
                + "\n".join(map(str, comparison.comparison_traceback)) + "\n" + cell.source[:300])
